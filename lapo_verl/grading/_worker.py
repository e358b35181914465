"""math-verify worker process: reads JSON lines ``[id, gold, pred]`` on stdin, writes
``[id, verdict]`` (verdict true/false, or null on an internal error) on stdout.

Runs math-verify with its signal-based timeouts disabled; the parent enforces the deadline by
killing this process. Started by :mod:`lapo_verl.grading.verify_pool` as
``python -m lapo_verl.grading._worker``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from functools import lru_cache


def _setup():
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    import math_verify.grader as g
    import math_verify.parser as p
    import math_verify.utils as u

    # silence the "timeout is disabled" warning: the parent process is the timeout
    for mod in (g, p, u):
        if hasattr(mod, "TIMEOUT_WARNING_SHOWN"):
            mod.TIMEOUT_WARNING_SHOWN = True
    from math_verify import parse, verify

    @lru_cache(maxsize=4096)
    def parse_boxed(ans: str):
        return parse("\\boxed{" + ans + "}", parsing_timeout=None)

    def check(gold: str, pred: str) -> bool:
        g_ = parse_boxed(gold)
        p_ = parse_boxed(pred)
        if not g_ or not p_:
            return False
        return bool(verify(g_, p_, timeout_seconds=None))

    return check


def main() -> None:
    # the parent owns Ctrl-C (it kills workers it no longer needs); a worker never turns an
    # interrupt into an "error" verdict
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.setrecursionlimit(10000)
    check = _setup()
    out = sys.stdout
    out.write('["ready", null]\n')
    out.flush()
    for line in sys.stdin:
        try:
            rid, gold, pred = json.loads(line)
        except Exception:
            continue
        try:
            res = check(gold, pred)
        except Exception:  # noqa: BLE001 - report, keep serving
            res = None
        out.write(json.dumps([rid, res]) + "\n")
        out.flush()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
