"""A small pool of persistent math-verify subprocesses with a hard deadline per answer.

math-verify's own timeouts use ``signal.alarm`` and only work in the main thread; verl grades
from executor threads. So the slow path runs in worker processes
(``python -m lapo_verl.grading._worker``), one request at a time per worker, and the calling
thread waits on the worker's pipe with ``select`` until the deadline. A worker that misses the
deadline is killed (SIGKILL) at once; a background thread reaps it and starts a replacement (its
import runs in the background), so a sympy hang costs one answer ``timeout_s`` plus a few
milliseconds and never blocks anything else. A replacement that is still starting when the next answer arrives counts against
that answer's deadline too (the answer times out rather than waiting for the import); only the
first start of a worker is waited for without a deadline.

Ctrl-C: workers run in their own session and ignore SIGINT, so a terminal interrupt reaches only
the parent; a ``KeyboardInterrupt`` raised while waiting for a worker kills that worker (it may be
busy) and propagates to the caller.

Thread safety: workers are checked out of a ``queue.Queue``; a worker is used by exactly one
thread at a time. The verdict cache is guarded by a lock.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict

TIMEOUT = "timeout"
ERROR = "error"
_STARTUP_TIMEOUT_S = 60.0
_NOT_READY = "not_ready"  # a replacement worker still importing when the deadline passed
_HANDED_OFF = object()  # the slot is refilled by the thread that replaces a killed worker


class _Worker:
    def __init__(self, replacement: bool = False) -> None:
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lapo_verl.grading._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
            close_fds=True,
            start_new_session=True,  # a terminal Ctrl-C goes to the parent only
        )
        self.replacement = replacement
        self.fd = self.proc.stdout.fileno()
        self.buf = b""
        self.ready = False
        self.ids = itertools.count()

    def _readline(self, deadline: float) -> bytes | None:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError("worker exited")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def wait_ready(self) -> None:
        if self.ready:
            return
        line = self._readline(time.monotonic() + _STARTUP_TIMEOUT_S)
        if line is None or not line.startswith(b'["ready"'):
            raise RuntimeError("math-verify worker did not start")
        self.ready = True

    def ask(self, gold: str, pred: str, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        if not self.ready and self.replacement:
            line = self._readline(deadline)
            if line is None:
                return _NOT_READY
            if not line.startswith(b'["ready"'):
                raise RuntimeError("math-verify worker did not start")
            self.ready = True
        self.wait_ready()
        rid = next(self.ids)
        self.proc.stdin.write((json.dumps([rid, gold, pred]) + "\n").encode())
        self.proc.stdin.flush()
        while True:
            line = self._readline(deadline)
            if line is None:
                return TIMEOUT
            got_id, res = json.loads(line)
            if got_id == rid:
                return ERROR if res is None else bool(res)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal_kill(self) -> None:
        try:
            self.proc.kill()
        except Exception:  # noqa: BLE001
            pass

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass


class VerifyPool:
    """``check(gold, pred, timeout_s)`` -> True | False | "timeout" | "error"."""

    def __init__(self, size: int | None = None, cache_size: int = 200_000) -> None:
        if size is None:
            size = int(os.environ.get("LAPO_GRADING_WORKERS", "0")) or min(4, os.cpu_count() or 1)
        self.size = max(1, size)
        self._slots: queue.Queue = queue.Queue()
        for _ in range(self.size):
            self._slots.put(None)
        self._all: list[_Worker] = []
        self._all_lock = threading.Lock()
        self._cache: OrderedDict = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self.closed = False

    def _spawn(self, replacement: bool = False) -> _Worker:
        w = _Worker(replacement)
        with self._all_lock:
            self._all = [x for x in self._all if x.alive()] + [w]
        return w

    def prewarm(self) -> None:
        """Start every worker now (they import sympy in the background)."""
        got = []
        try:
            while True:
                got.append(self._slots.get_nowait())
        except queue.Empty:
            pass
        for k, w in enumerate(got):
            if w is None or not w.alive():
                got[k] = self._spawn()
        for w in got:
            self._slots.put(w)

    def cached(self, gold: str, pred: str):
        with self._cache_lock:
            r = self._cache.get((gold, pred))
            if r is not None:
                self._cache.move_to_end((gold, pred))
            return r

    def check(self, gold: str, pred: str, timeout_s: float = 2.0):
        if self.closed:
            return ERROR
        r = self.cached(gold, pred)
        if r is not None:
            return r
        # waiting for a free worker is bounded too: each busy worker frees up within timeout_s
        try:
            w = self._slots.get(timeout=timeout_s * (self.size + 8) + _STARTUP_TIMEOUT_S)
        except queue.Empty:
            return TIMEOUT
        try:
            if w is None or not w.alive():
                w = self._spawn(replacement=w is not None)
            res = w.ask(gold, pred, timeout_s)
            if res == _NOT_READY:
                res = TIMEOUT  # keep the starting worker
            elif res == TIMEOUT:
                # SIGKILL now; reaping it and starting the replacement happen off this answer's clock
                w.signal_kill()
                threading.Thread(target=self._replace, args=(w,), daemon=True).start()
                w = _HANDED_OFF
        except Exception:  # noqa: BLE001 - broken pipe, dead worker, bad json
            if w is not None:
                w.kill()
            w = None
            res = ERROR
        except BaseException:  # KeyboardInterrupt / SystemExit: the worker may be busy, drop it
            if w is not None:
                w.kill()
            w = None
            raise
        finally:
            if w is not _HANDED_OFF:
                self._slots.put(w)
        if isinstance(res, bool):
            with self._cache_lock:
                self._cache[(gold, pred)] = res
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return res

    def _replace(self, old: "_Worker") -> None:
        """Reap a killed worker and put a fresh one (importing in the background) into its slot."""
        old.kill()
        try:
            new = None if self.closed else self._spawn(replacement=True)
        except Exception:  # noqa: BLE001 - the next check() spawns one
            new = None
        self._slots.put(new)

    def clear_cache(self) -> None:
        with self._cache_lock:
            self._cache.clear()

    def close(self) -> None:
        self.closed = True
        with self._all_lock:
            ws, self._all = self._all, []
        for w in ws:
            w.kill()


_POOL: VerifyPool | None = None
_POOL_LOCK = threading.Lock()
_POOL_PID: int | None = None


def get_pool() -> VerifyPool:
    """The process-wide pool (re-created after a fork)."""
    global _POOL, _POOL_PID
    if _POOL is None or _POOL_PID != os.getpid():
        with _POOL_LOCK:
            if _POOL is None or _POOL_PID != os.getpid():
                _POOL = VerifyPool()
                _POOL_PID = os.getpid()
    return _POOL


@atexit.register
def _shutdown() -> None:
    if _POOL is not None and _POOL_PID == os.getpid():
        _POOL.close()
