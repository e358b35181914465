"""Files that must survive a crash: one owner for atomic writes, JSONL appends and tolerant JSONL reads.

* :func:`atomic_path` / :func:`atomic_write_text` / :func:`atomic_write_json` / :func:`atomic_write_jsonl`:
  write a temporary file in the target's directory, flush and fsync it, ``os.replace`` it over the target,
  then fsync the directory (so the rename itself survives a power cut). A reader sees the old file or the
  new one, never a half-written one.
* :func:`append_jsonl`: one ``write`` of whole lines, optionally fsynced (rare, must-not-lose events).
* :func:`iter_jsonl`: tolerant read of an append-only log written by several processes: a line that does not
  parse as a JSON object (a torn write after a crash) is skipped, counted in a :class:`ReadReport` and
  logged with its file and line number; never silently dropped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening a directory: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed over ``path``.

    For writers that want a file name (``pyarrow.parquet.write_table``). On an exception the temporary file is
    removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(str(target.parent))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically and durably."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> None:
    """Replace ``path`` with ``obj`` as JSON (non-ASCII kept, trailing newline)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def dumps_line(obj: dict, *, compact: bool = False) -> str:
    """One JSONL line (with its newline)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":") if compact else None) + "\n"


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[dict], *, compact: bool = False) -> None:
    """Replace ``path`` with ``rows``, one JSON object per line."""
    atomic_write_text(path, "".join(dumps_line(r, compact=compact) for r in rows))


def append_jsonl(path: str | os.PathLike, rows: Iterable[dict], *, fsync: bool = False) -> None:
    """Append ``rows`` in one write (whole lines only); ``fsync=True`` for records that must not be lost."""
    data = "".join(dumps_line(r) for r in rows).encode("utf-8")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class ReadReport:
    """What a tolerant read saw: lines read, objects kept, corrupt (torn) lines skipped, a few examples."""

    lines: int = 0
    kept: int = 0
    corrupt: int = 0
    corrupt_examples: list[str] = field(default_factory=list)


def iter_jsonl(path: str | os.PathLike, report: ReadReport | Any) -> Iterator[dict]:
    """Yield the JSON objects of ``path``; skip, count (``report.corrupt``) and log lines that are not.

    ``report`` is any object with ``lines``, ``corrupt`` and ``corrupt_examples`` attributes (e.g.
    :class:`ReadReport` or :class:`lapo_verl.records.LoadReport`); ``report.kept`` is left to the caller,
    which may filter further.
    """
    for _, obj in iter_jsonl_numbered(path, report):
        yield obj


def iter_jsonl_numbered(path: str | os.PathLike, report: ReadReport | Any) -> Iterator[tuple[int, dict]]:
    """:func:`iter_jsonl` with the 1-based line number of each object (for errors that name the row)."""
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            report.lines += 1
            try:
                obj = json.loads(raw.decode("utf-8"))
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except (UnicodeDecodeError, ValueError) as exc:
                report.corrupt += 1
                where = f"{path}:{line_no}: {exc.__class__.__name__}: {str(exc)[:80]}"
                if len(report.corrupt_examples) < 5:
                    report.corrupt_examples.append(where)
                logger.warning("skipping corrupt JSONL line %s", where)
                continue
            yield line_no, obj
