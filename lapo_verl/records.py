"""Per-problem length records: append-only, crash- and resume-safe, written by one process.

Layout of a records directory (``lapo.records.dir``, by default ``<lapo.run_dir>/records``)::

    records-<host>-<process id>-<start>.jsonl   one file per trainer start, one JSON object per response
    events.jsonl                                 trainer start/resume, per-step counts and checkpoint events

A record is one :class:`LengthRecord` (its fields are the JSON keys): ``problem_id``, ``step`` (verl's global
step), ``group_uid`` (verl's ``uid`` of the GRPO group), ``sample_index`` (verl's ``session_id``: the response's
index in its group), ``group_size`` (responses expected in the group), ``response_length`` (tokens),
``correct``, ``time`` (wall clock), ``grade_reason``, ``reward``; stage 2 adds ``plan`` and
``plan_closeness`` (the Gaussian term before beta), the L1 baselines ``target``. Files written before the
keys had these names (``pid``, ``uid``, ``sid``, ``gn``, ``len``, ``ok``, ``t``, ``why``, ``r2``, ``r``) still
load: :meth:`LengthRecord.from_json` is the one reader and accepts both spellings.

Who writes them: the trainer process, once per step, from the training batch it already reads
(:mod:`lapo_verl.verl_ext.metrics_sampler`: every response's score, length and ``reward_extra_info`` travel back
through verl's TransferQueue from whichever node scored them). So the directory is local to the trainer and
needs no filesystem shared between nodes; each step's records are appended and fsynced before that step's
checkpoint is saved. Directories written by earlier versions (one file per reward-worker process) still load.

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from lapo_verl.jsonl import append_jsonl, atomic_write_jsonl, iter_jsonl_numbered
from lapo_verl.jsonl import iter_jsonl as _iter_jsonl

logger = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"
RECORD_GLOB = "records-*.jsonl"

#: the keys of records written before the fields were renamed -> today's field names
OLD_FIELD_NAMES: dict[str, str] = {
    "pid": "problem_id",
    "uid": "group_uid",
    "sid": "sample_index",
    "gn": "group_size",
    "len": "response_length",
    "ok": "correct",
    "t": "time",
    "why": "grade_reason",
    "r2": "plan_closeness",
    "r": "reward",
}
_NEW_TO_OLD = {new: old for old, new in OLD_FIELD_NAMES.items()}
REQUIRED_FIELDS = ("problem_id", "step", "response_length", "correct", "time")


class RecordFieldError(ValueError):
    """A record that cannot be read; ``field`` names the offending key (today's name)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class LengthRecord:
    """One training response as a reward worker scored it: one line of a records file.

    >>> rec = LengthRecord.from_json({"pid": "p1", "step": 3, "len": 120, "ok": 1, "t": 5.0, "r": 1.0})
    >>> rec.problem_id, rec.response_length, rec.correct, rec.reward
    ('p1', 120, True, 1.0)
    >>> rec.to_json()
    {'problem_id': 'p1', 'step': 3, 'group_uid': '', 'response_length': 120, 'correct': True, 'time': 5.0, 'reward': 1.0}
    """

    problem_id: str
    step: int  # verl's global step
    response_length: int  # tokens (verl's response length, the plan sentence not counted)
    correct: bool
    time: float  # wall clock (time.time()) when the response was scored
    group_uid: str = ""  # verl's uid of the GRPO group; "" in records that had none
    sample_index: int | None = None  # verl's session_id: the response's index in its group, [0, n)
    group_size: int | None = None  # responses expected in the group (rollout.n)
    grade_reason: str | None = None  # match_fast / match_verify / mismatch / no_answer / truncated / timeout
    plan: float | None = None  # stage 2: the plan the reward centred on (tokens)
    target: int | None = None  # L1 baselines: the row's target length
    plan_closeness: float | None = None  # stage 2: exp(-(len - plan)^2 / (2 sigma^2)) if correct, else 0
    reward: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as read

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this record: today's field names, optional fields only when set."""
        out: dict[str, Any] = {
            "problem_id": self.problem_id, "step": self.step, "group_uid": self.group_uid,
        }
        for name in ("sample_index", "group_size"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(response_length=self.response_length, correct=self.correct, time=self.time)
        for name in ("grade_reason", "plan", "target", "plan_closeness", "reward"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LengthRecord:
        """Read a record written under today's names, the old terse ones, or a mix.

        Raises :class:`RecordFieldError` naming the field when a required field is missing, has the wrong
        type, or is given under both names with different values.
        """
        known = {f.name for f in fields(cls)} - {"extra"}
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in obj.items():
            name = OLD_FIELD_NAMES.get(key, key)
            if name not in known:
                extra[key] = value
                continue
            if name in values and values[name] != value:
                raise RecordFieldError(name, f"field {name!r} given twice with different values "
                                             f"({name!r} and {_NEW_TO_OLD[name]!r})")
            values[name] = value
        for name in REQUIRED_FIELDS:
            if name not in values:
                raise RecordFieldError(name, f"field {name!r} (or old {_NEW_TO_OLD.get(name, name)!r}) is missing")
        for name in ("response_length", "step"):
            value = values[name]
            if not isinstance(value, int) or (name == "response_length" and value < 0):
                raise RecordFieldError(name, f"field {name!r} = {value!r} is not a "
                                             f"{'non-negative ' if name == 'response_length' else ''}integer")
        try:
            clock = float(values["time"])
        except (TypeError, ValueError):
            raise RecordFieldError("time", f"field 'time' = {values['time']!r} is not a number") from None

        def optional_int(name: str) -> int | None:
            value = values.get(name)
            if value is None:
                return None
            try:
                return int(value)
            except (TypeError, ValueError):
                raise RecordFieldError(name, f"field {name!r} = {value!r} is not an integer") from None

        group_uid = values.get("group_uid")
        return cls(
            problem_id=str(values["problem_id"]),
            step=values["step"],
            response_length=values["response_length"],
            correct=bool(values["correct"]),
            time=clock,
            group_uid="" if group_uid is None else str(group_uid),
            sample_index=optional_int("sample_index"),
            group_size=optional_int("group_size"),
            grade_reason=values.get("grade_reason"),
            plan=values.get("plan"),
            target=values.get("target"),
            plan_closeness=values.get("plan_closeness"),
            reward=values.get("reward"),
            extra=extra,
        )


class RecordWriter:
    """Appends records of one process to its own file. Thread-safe; each record reaches the OS at once.

    One ``os.write`` on an ``O_APPEND`` descriptor per call: no Python-side buffer that a crash could lose.
    :meth:`write_many` (the trainer's per-step call) writes a step's records in one call and fsyncs them.
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

    @staticmethod
    def _line(record: LengthRecord) -> bytes:
        return (json.dumps(record.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")

    def write(self, record: LengthRecord) -> None:
        self.write_many([record], fsync=False)

    def write_many(self, records: Iterable[LengthRecord], *, fsync: bool = True) -> int:
        """Append ``records`` (one ``os.write``) and, with ``fsync``, make them durable. Returns the count."""
        lines = [self._line(r) for r in records]
        with self._lock:
            fd = self._fd if self._fd is not None else self._open()
            data = b"".join(lines)
            while data:
                data = data[os.write(fd, data):]
            if fsync:
                os.fsync(fd)
            self.written += len(lines)
        return len(lines)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def append_event(directory: str, event: dict) -> None:
    """Append one event line to ``events.jsonl`` and fsync it (events are rare and must not be lost).

    Each event gets ``time`` (wall clock); files written before the rename call it ``t`` (:func:`read_events`
    reads both)."""
    append_jsonl(os.path.join(directory, EVENTS_FILE), [{"time": time.time(), **event}], fsync=True)


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
    """The events of ``directory`` in time order, each with ``time`` (old files' ``t`` is renamed)."""
    path = os.path.join(directory, EVENTS_FILE)
    if not os.path.exists(path):
        return []
    events = []
    for event in _iter_jsonl(path, report or LoadReport()):
        if "time" not in event and "t" in event:
            event = {"time": event.pop("t"), **event}
        events.append(event)
    return sorted(events, key=lambda e: e.get("time", 0.0))


def apply_rollbacks(records: Iterable[LengthRecord], events: list[dict], report: LoadReport) -> list[LengthRecord]:
    """Drop records of steps that a later (re)start redid: written before a start event, step > resume_step."""
    starts = [(float(e["time"]), int(e.get("resume_step", 0))) for e in events if e.get("event") == "start"]
    report.starts = len(starts)
    kept = []
    for rec in records:
        t, step = rec.time, rec.step
        if any(t < t0 and step > resume_step for t0, resume_step in starts):
            report.rolled_back += 1
            continue
        kept.append(rec)
    return kept


def _read_records(path: str, report: LoadReport) -> Iterable[LengthRecord]:
    """The records of one file; torn lines and malformed records are skipped, counted and reported with
    file, line and field."""
    for line_no, obj in iter_jsonl_numbered(path, report):
        try:
            yield LengthRecord.from_json(obj)
        except RecordFieldError as exc:
            report.corrupt += 1
            where = f"{path}:{line_no}: malformed record, field {exc.field!r}: {exc}"
            if len(report.corrupt_examples) < 5:
                report.corrupt_examples.append(where)
            logger.warning("skipping %s", where)


def load_records(directory: str, *, max_step: int | None = None) -> tuple[list[LengthRecord], LoadReport]:
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
    raw: list[LengthRecord] = []
    for path in sorted(glob.glob(os.path.join(directory, RECORD_GLOB))):
        report.files += 1
        raw.extend(_read_records(path, report))
    records = apply_rollbacks(raw, events, report)
    if max_step is not None:
        records = [r for r in records if r.step <= max_step]
    records.sort(key=lambda r: (r.step, r.time))
    report.kept = len(records)
    return records, report


def load_snapshot(path: str) -> tuple[list[LengthRecord], LoadReport]:
    """Records from a checkpoint snapshot file (already rolled back when it was written)."""
    report = LoadReport(files=1)
    records = list(_read_records(path, report))
    report.kept = len(records)
    return records, report


def write_snapshot(records: list[LengthRecord], path: str) -> None:
    """Atomically write ``records`` as JSONL (tmp file + fsync + rename: :mod:`lapo_verl.jsonl`)."""
    atomic_write_jsonl(path, (r.to_json() for r in records), compact=True)
