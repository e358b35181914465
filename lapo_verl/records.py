"""Per-problem length records: append-only, crash- and resume-safe.

Layout of a records directory (``lapo.records.dir``, by default ``<lapo.run_dir>/records``)::

    records-<host>-<pid>-<start>.jsonl   one file per reward-worker process, one JSON object per response
    events.jsonl                          trainer start/resume and checkpoint events (TaskRunner)

A record is ``{"pid", "step", "uid", "sid", "gn", "len", "ok", "t", ...}``: problem id, verl global step,
verl's group uid, sample index in the group, expected group size, response length in tokens,
correctness, wall time. Stage 2 adds ``plan`` and ``r`` (reward).

Why files and not a Ray actor: the n responses of a group are scored in different worker processes at
different times, possibly on different nodes; appending a line per response needs no coordination and
survives any crash (a torn last line is skipped with a warning and counted). On multi-node runs the
directory must be on a filesystem every node shares (the checkpoint root usually is).

Resume without double counting: when the trainer starts it logs ``{"event": "start", "resume_step": S}``
(see :mod:`lapo_verl.verl_ext.checkpoint`). Records written before that event with ``step > S`` belong to
steps that verl will redo, so :func:`load_records` drops them.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from lapo_verl.jsonl import append_jsonl, atomic_write_jsonl
from lapo_verl.jsonl import iter_jsonl as _iter_jsonl

logger = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"
RECORD_GLOB = "records-*.jsonl"
REQUIRED_FIELDS = ("pid", "step", "len", "ok", "t")


class RecordWriter:
    """Appends records of one process to its own file. Thread-safe; each record reaches the OS at once.

    One ``os.write`` on an ``O_APPEND`` descriptor per record: no Python-side buffer that a crash could
    lose, and no flush call (this is the reward hot path; see benchmarks/bench_stage1.py). The checkpoint
    callback fsyncs every records file before a checkpoint is declared complete.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.path: str | None = None
        self.written = 0

    def _open(self) -> int:
        os.makedirs(self.directory, exist_ok=True)
        name = f"records-{socket.gethostname()}-{os.getpid()}-{time.time_ns()}.jsonl"
        self.path = os.path.join(self.directory, name)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def write(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            fd = self._fd if self._fd is not None else self._open()
            os.write(fd, line)
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def append_event(directory: str, event: dict) -> None:
    """Append one event line to ``events.jsonl`` and fsync it (events are rare and must not be lost)."""
    append_jsonl(os.path.join(directory, EVENTS_FILE), [{"t": time.time(), **event}], fsync=True)


def fsync_records(directory: str) -> int:
    """fsync every records file of ``directory`` (any fd of a file syncs its data). Returns the count."""
    count = 0
    for path in glob.glob(os.path.join(directory, RECORD_GLOB)):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            count += 1
        finally:
            os.close(fd)
    return count


@dataclass
class LoadReport:
    """What :func:`load_records` read, kept, and why it skipped anything (never silently)."""

    files: int = 0
    lines: int = 0
    kept: int = 0
    corrupt: int = 0
    rolled_back: int = 0
    starts: int = 0
    corrupt_examples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "corrupt_examples"}


def read_events(directory: str, report: LoadReport | None = None) -> list[dict]:
    path = os.path.join(directory, EVENTS_FILE)
    if not os.path.exists(path):
        return []
    return sorted(_iter_jsonl(path, report or LoadReport()), key=lambda e: e.get("t", 0.0))


def _valid_record(rec: dict) -> bool:
    if any(k not in rec for k in REQUIRED_FIELDS):
        return False
    return isinstance(rec["len"], int) and rec["len"] >= 0 and isinstance(rec["step"], int)


def apply_rollbacks(records: Iterable[dict], events: list[dict], report: LoadReport) -> list[dict]:
    """Drop records of steps that a later (re)start redid: written before a start event, step > resume_step."""
    starts = [(float(e["t"]), int(e.get("resume_step", 0))) for e in events if e.get("event") == "start"]
    report.starts = len(starts)
    kept = []
    for rec in records:
        t, step = float(rec["t"]), int(rec["step"])
        if any(t < t0 and step > resume_step for t0, resume_step in starts):
            report.rolled_back += 1
            continue
        kept.append(rec)
    return kept


def load_records(directory: str, *, max_step: int | None = None) -> tuple[list[dict], LoadReport]:
    """All committed records of a records directory, after rollbacks, sorted by (step, time).

    ``max_step`` keeps only steps ``<= max_step`` (used for checkpoint snapshots).
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"records directory {directory!r} does not exist: point --run at a stage-1 run dir "
            "(lapo.run_dir) or --records at its records/ folder"
        )
    report = LoadReport()
    events = read_events(directory, report)
    raw: list[dict] = []
    for path in sorted(glob.glob(os.path.join(directory, RECORD_GLOB))):
        report.files += 1
        for rec in _iter_jsonl(path, report):
            if not _valid_record(rec):
                report.corrupt += 1
                if len(report.corrupt_examples) < 5:
                    report.corrupt_examples.append(f"{path}: record missing fields {REQUIRED_FIELDS}: {rec}")
                logger.warning("skipping malformed record in %s: %s", path, rec)
                continue
            raw.append(rec)
    records = apply_rollbacks(raw, events, report)
    if max_step is not None:
        records = [r for r in records if r["step"] <= max_step]
    records.sort(key=lambda r: (r["step"], r["t"]))
    report.kept = len(records)
    return records, report


def load_snapshot(path: str) -> tuple[list[dict], LoadReport]:
    """Records from a checkpoint snapshot file (already rolled back when it was written)."""
    report = LoadReport(files=1)
    records = list(_iter_jsonl(path, report))
    report.kept = len(records)
    return records, report


def write_snapshot(records: list[dict], path: str) -> None:
    """Atomically write ``records`` as JSONL (tmp file + fsync + rename: :mod:`lapo_verl.jsonl`)."""
    atomic_write_jsonl(path, records, compact=True)
