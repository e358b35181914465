"""The labelled equivalence set: agreement with human labels must be >= 99.5%."""

import json
from pathlib import Path

from lapo_verl.grading import REASONS, grade

CASES = Path(__file__).resolve().parents[1] / "data" / "grading_cases.jsonl"
REQUIRED_CATEGORIES = {
    "authors_bug", "fraction", "nested_braces", "dfrac_tfrac", "decimal_vs_fraction", "percentage",
    "units", "degrees", "interval", "set_tuple", "matrix", "multiple_answers", "text", "thousands",
    "negative", "scientific", "latex_spacing", "plain_text", "unboxed", "several_boxes", "truncated",
}


def _load():
    return [json.loads(line) for line in CASES.open(encoding="utf-8") if line.strip()]


def test_labelled_set_shape():
    rows = _load()
    assert len(rows) >= 300
    for r in rows:
        assert isinstance(r["response"], str) and isinstance(r["ground_truth"], str)
        assert isinstance(r["correct"], bool) and r["category"]
    assert REQUIRED_CATEGORIES <= {r["category"] for r in rows}
    # both verdicts are represented
    assert 0.2 < sum(r["correct"] for r in rows) / len(rows) < 0.9


def test_agreement_with_labels():
    rows = _load()
    disagreements = []
    for r in rows:
        res = grade(r["response"], r["ground_truth"], truncated=r.get("truncated", False))
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
