"""The test command's time guard (tests/lapo_test_utils/time_budget.py): every run reports its time against the
budget, per group, with the slowest tests; a session past the limit fails with a message that says why."""

from __future__ import annotations

from lapo_test_utils import time_budget

INNER_TESTS = """
import pytest

def test_fast():
    assert True

@pytest.mark.slow
def test_slow():
    assert True
"""


def _inner(pytester, budget_s: float, limit_s: float):
    pytester.makeconftest(f"""
from lapo_test_utils import time_budget

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slow")
    time_budget.register(config, budget_s={budget_s}, limit_s={limit_s})
""")
    pytester.makepyfile(test_inner=INNER_TESTS)
    times = pytester.path / "times.txt"
    pytester._monkeypatch.setenv("LAPO_TEST_TIMES", str(times))
    plugins = ("no:cacheprovider", "no:hypothesispytest", "no:hydra_pytest", "no:anyio", "no:xdist")  # not needed here
    return pytester.runpytest(*(a for p in plugins for a in ("-p", p))), times


def test_the_defaults_are_ci_s_budget_and_limit():
    assert (time_budget.TEST_TIME_BUDGET_S, time_budget.TEST_TIME_LIMIT_S) == (40 * 60, 60 * 60)


def test_a_session_within_the_limit_reports_its_time_and_passes(pytester):
    result, times = _inner(pytester, budget_s=time_budget.TEST_TIME_BUDGET_S, limit_s=time_budget.TEST_TIME_LIMIT_S)
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*= test time =*", "fast tests: 1, * s *", "slow tests: 1, * s *",
                                 "test session: * of the test command's 40-minute budget (*%); fails past 60 min",
                                 "2 slowest tests (setup + call + teardown):", "*test_inner.py::test_*"])
    assert "FAILED" not in times.read_text() and "slow tests: 1" in times.read_text()


def test_a_session_past_the_limit_fails_with_a_clear_message(pytester):
    result, times = _inner(pytester, budget_s=0.0, limit_s=0.0)  # every session is past a zero limit
    result.assert_outcomes(passed=2)  # every test passed, the session itself fails
    assert result.ret == 1
    result.stdout.fnmatch_lines(["FAILED: the tests took * min, past the 0-minute limit (CI's whole run must finish "
                                 "in 90 minutes or nothing lands)*"])
    assert "FAILED: the tests took" in times.read_text()
