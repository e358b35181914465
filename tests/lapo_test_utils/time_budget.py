"""The test command's time against its budget, printed after every run, and a hard limit past which it fails.

CI (``.ci/run``: install, README's main job, ``python -m pytest -m "not gpu"``) must finish within 90 minutes or
nothing lands. The test command's share is :data:`TEST_TIME_BUDGET_S`; every run ends with a "test time" section
(time per group, fast / slow, the session against the budget, the 15 slowest tests) and fails past
:data:`TEST_TIME_LIMIT_S`, so a test that pushes CI toward its limit is caught by whoever adds it, not by CI.
``LAPO_TEST_TIMES=FILE`` also writes the section to FILE (``.ci/run`` prints it at the end of CI's log).

Registered by ``tests/conftest.py`` (:func:`register`); a plugin instance per session, so nested sessions
(pytester) keep their own clocks.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

import pytest

TEST_TIME_BUDGET_S = 40 * 60
TEST_TIME_LIMIT_S = 60 * 60
SLOWEST_SHOWN = 15


class TimeBudget:
    def __init__(self, budget_s: float = TEST_TIME_BUDGET_S, limit_s: float = TEST_TIME_LIMIT_S):
        self.budget_s, self.limit_s = budget_s, limit_s
        self.start: float | None = None
        self.elapsed: float | None = None
        self.per_test: dict[str, float] = defaultdict(float)
        self.group: dict[str, str] = {}

    def pytest_sessionstart(self, session):
        self.start = time.monotonic()

    def pytest_runtest_logreport(self, report):
        self.per_test[report.nodeid] += report.duration
        self.group.setdefault(report.nodeid, "slow" if "slow" in report.keywords else "fast")

    def over_limit(self) -> bool:
        return self.elapsed is not None and self.elapsed > self.limit_s

    def summary(self) -> list[str]:
        elapsed = self.elapsed if self.elapsed is not None else time.monotonic() - (self.start or 0.0)
        lines = []
        for group in ("fast", "slow"):
            ids = [n for n, g in self.group.items() if g == group]
            if ids:
                total = sum(self.per_test[n] for n in ids)
                lines.append(f"{group} tests: {len(ids)}, {total:.0f} s ({total / 60:.1f} min, sum of their durations)")
        share = f" ({100 * elapsed / self.budget_s:.0f}%)" if self.budget_s > 0 else ""
        lines.append(f"test session: {elapsed:.0f} s ({elapsed / 60:.1f} min) of the test command's "
                     f"{self.budget_s / 60:g}-minute budget{share}; fails past {self.limit_s / 60:g} min")
        if self.over_limit():
            lines.append(f"FAILED: the tests took {elapsed / 60:.1f} min, past the {self.limit_s / 60:g}-minute limit "
                         "(CI's whole run must finish in 90 minutes or nothing lands). Make the slowest tests below "
                         "share a run or a session fixture (tests/lapo_test_utils/) instead of starting their own.")
        slowest = sorted(self.per_test.items(), key=lambda kv: -kv[1])[:SLOWEST_SHOWN]
        lines.append(f"{len(slowest)} slowest tests (setup + call + teardown):")
        lines += [f"  {seconds:7.1f} s  {nodeid}" for nodeid, seconds in slowest]
        return lines

    def pytest_sessionfinish(self, session, exitstatus):
        if self.start is None:
            return
        self.elapsed = time.monotonic() - self.start
        if self.over_limit() and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        if self.start is None or not self.per_test:
            return
        over = self.over_limit()
        lines = self.summary()
        terminalreporter.write_sep("=", "test time", red=over, bold=over)
        for line in lines:
            terminalreporter.write_line(line, red=over and line.startswith("FAILED"))
        path = os.environ.get("LAPO_TEST_TIMES")
        if path:
            with open(path, "w") as fh:
                fh.write("\n".join(lines) + "\n")


def register(config, **kwargs) -> TimeBudget:
    plugin = TimeBudget(**kwargs)
    config.pluginmanager.register(plugin, "lapo_time_budget")
    return plugin
