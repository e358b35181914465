"""Extraction rules: last balanced box, </think> region, truncation rule, fallbacks."""

import pytest

from lapo_verl.grading import extract_answer, grade, last_boxed, strip_ground_truth


def test_nested_braces_authors_bug():
    assert extract_answer(r"so \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert grade(r"so \boxed{\frac{1}{2}}.", "0.5").correct


def test_last_box_wins_and_fbox():
    assert extract_answer(r"\boxed{3} no wait \boxed{5}") == "5"
    assert extract_answer(r"\boxed{3} then \fbox{7}") == "7"
    assert last_boxed(r"\boxed 5") == "5"


def test_answer_only_after_closed_think():
    assert extract_answer(r"<think>\boxed{1}</think> final \boxed{2}") == "2"
    assert extract_answer(r"<think>\boxed{1}</think> no box here at all, sorry friend") is None
    assert extract_answer(r"<think>still thinking \boxed{1}") is None
    # no tags at all: whole response (non-reasoning models) ...
    assert extract_answer(r"plain \boxed{4}") == "4"
    # ... unless the prompt prefilled <think>
    assert extract_answer(r"plain \boxed{4}", reasoning_prefilled=True) is None
    assert extract_answer(r"x</think>\boxed{4}", reasoning_prefilled=True) == "4"


@pytest.mark.parametrize(
    "response,expected",
    [
        (r"<think>r \boxed{1}", None),  # cut inside reasoning
        (r"<think>r</think> \boxed{12}. In summary we", "12"),  # complete box after </think>
        (r"<think>r</think> \boxed{\frac{1}{", None),  # cut inside the box
        (r"no tags \boxed{12} and then", None),  # never closed reasoning
        (r"<think>r</think> The answer is 12", None),  # unboxed fallback not used when truncated
    ],
)
def test_truncation_rule(response, expected):
    assert extract_answer(response, truncated=True) == expected
    res = grade(response, "12", truncated=True)
    if expected is None:
        assert res.reason == "truncated" and not res.correct


def test_unboxed_statement_fallback_and_no_last_number():
    assert extract_answer("Thus the final answer is $\\frac{3}{4}$.") == r"\frac{3}{4}"
    assert extract_answer("Answer: 42") == "42"
    assert extract_answer("We had 3 apples and then 10 more came along to the party later on.") is None
    assert grade("We had 3 apples and then 10 more came along to the party later on.", "10").reason == "no_answer"


def test_ground_truth_stripping():
    assert strip_ground_truth(r"\boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert strip_ground_truth(r"$5$") == "5"
    assert grade(r"\boxed{5}", r"$\boxed{5}$").correct
