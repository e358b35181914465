"""The labelled equivalence set: no false accept at all, agreement with the labels >= 99.5%.

Each case has a category; ``benchmarks/bench_grading.py --labelled`` prints agreement per category for
lapo-verl, math-verify and verl's ``math_dapo`` (the table in docs/grading.md)."""

import functools
import json
from pathlib import Path

from lapo_verl.grading import REASONS, grade

CASES = Path(__file__).resolve().parents[1] / "data" / "grading_cases.jsonl"
REQUIRED_CATEGORIES = {
    "authors_bug", "fraction", "nested_braces", "dfrac_tfrac", "decimal_vs_fraction", "percentage",
    "units", "degrees", "interval", "set_tuple", "matrix", "multiple_answers", "text", "thousands",
    "negative", "scientific", "latex_spacing", "plain_text", "unboxed", "several_boxes", "truncated",
    # the classes of issue 12 and cases written against the fast path's own rules
    "named_assignment", "ordered_tuple", "variables_domain", "decimal_vs_irrational", "surds", "pi_multiples",
    "thousands_vs_list", "base_subscript", "text_units", "unicode", "multiple_choice", "adversarial",
}


def _load():
    return [json.loads(line) for line in CASES.open(encoding="utf-8") if line.strip()]


def test_labelled_set_shape():
    rows = _load()
    assert len(rows) >= 600
    for r in rows:
        assert isinstance(r["response"], str) and isinstance(r["ground_truth"], str)
        assert isinstance(r["correct"], bool) and r["category"]
    assert REQUIRED_CATEGORIES <= {r["category"] for r in rows}
    # both verdicts are represented
    assert 0.2 < sum(r["correct"] for r in rows) / len(rows) < 0.9


@functools.lru_cache(maxsize=1)
def _grade_all():
    """Every case graded once (math-verify deadline 10 s: a loaded test machine must not turn a slow
    verdict into a timeout)."""
    return [(r, grade(r["response"], r["ground_truth"], truncated=r.get("truncated", False), timeout_s=10.0))
            for r in _load()]


def test_no_false_accept():
    """A wrong answer graded correct is the worst failure of an RL reward: none in the whole set."""
    false_accepts = [(r["category"], r["response"][-80:], r["ground_truth"], res)
                     for r, res in _grade_all() if res.correct and not r["correct"]]
    assert not false_accepts


def test_agreement_with_labels():
    rows = _load()
    disagreements = []
    for r, res in _grade_all():
        assert res.reason in REASONS
        assert res.correct == (res.reason in ("match_fast", "match_verify"))
        if res.correct != r["correct"]:
            disagreements.append((r["category"], r["response"][-80:], r["ground_truth"], r["correct"], res))
    agreement = 1 - len(disagreements) / len(rows)
    print(f"agreement {agreement:.2%} on {len(rows)} cases")
    for d in disagreements:
        print("DISAGREE", d)
    assert agreement >= 0.995, disagreements


def test_fast_path_never_contradicts_a_label():
    """The fast path may be undecided, but a decided verdict must match the human label."""
    from lapo_verl.grading import extract_answer, fast_equal, strip_ground_truth

    wrong = []
    for r in _load():
        e = extract_answer(r["response"], truncated=r.get("truncated", False))
        if e is None:
            continue
        v = fast_equal(e, strip_ground_truth(r["ground_truth"]))
        if v is not None and v != r["correct"]:
            wrong.append((e, r["ground_truth"], r["correct"], v))
    assert not wrong
