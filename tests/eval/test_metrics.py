"""Plan-sentence parsing and per-benchmark metrics."""

from __future__ import annotations

import pytest

from lapo_verl.eval.metrics import average_row, find_plan, plan_regex, summarize_records
from lapo_verl.prompts import PLAN_TEMPLATE, render_plan


@pytest.mark.parametrize(
    "text, expected",
    [
        (render_plan(512), (512, True)),
        ("<think>\n" + render_plan(1024) + " Let me see.", (1024, True)),
        ("  I will   answer the\nquestion with 1,024 tokens.", (1024, True)),
        ("i will answer the question with 77 tokens.", (77, True)),
        ("First... I will answer the question with 300 tokens. Then I will answer the question with 9 tokens.", (300, False)),
        ("I will answer the question with many tokens.", (None, False)),
        ("I will answer the question with 300 tokens", (None, False)),  # the template's period is part of it
        ("", (None, False)),
    ],
)
def test_find_plan(text, expected):
    assert find_plan(text) == expected


def test_plan_regex_follows_the_template():
    assert plan_regex("Budget: {n} tokens.").search("xx Budget:  42 tokens.").group(1) == "42"
    assert plan_regex(PLAN_TEMPLATE).search(render_plan(3)).group(1) == "3"
    with pytest.raises(ValueError):
        plan_regex("no placeholder")


def _rec(pid, k, correct, n, plan=None, truncated=False):
    return {"problem_id": pid, "sample": k, "correct": correct, "n_tokens": n, "stated_plan": plan,
            "plan_at_start": plan is not None, "truncated": truncated, "extracted": "1" if correct else None}


def test_summarize_records():
    recs = [
        _rec("a", 0, True, 100, plan=120), _rec("a", 1, False, 300, truncated=True),
        _rec("b", 0, True, 50, plan=40), _rec("b", 1, True, 70),
    ]
    m = summarize_records(recs)
    assert m["n_problems"] == 2 and m["n_samples"] == 4 and m["samples_per_problem"] == 2
    assert m["pass@1"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["avg_tokens"] == pytest.approx(130.0)
    assert m["avg_tokens_correct"] == pytest.approx(220 / 3)
    assert m["truncated_frac"] == 0.25
    assert m["plan"]["stated_frac"] == 0.5 and m["plan"]["n_stated"] == 2
    assert m["plan"]["mean_abs_err"] == pytest.approx(15.0)
    assert m["plan"]["mean_signed_err"] == pytest.approx((-20 + 10) / 2)
    avg = average_row({"x": m, "y": dict(m, **{"pass@1": 0.25, "avg_tokens": 30.0})})
    assert avg["pass@1"] == pytest.approx((0.75 + 0.25) / 2) and avg["avg_tokens"] == pytest.approx(80.0)
