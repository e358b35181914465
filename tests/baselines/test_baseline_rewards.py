"""Reward maths of every comparison row, against values computed by hand (no verl, milliseconds)."""

import math

import pytest

from lapo_verl.plan_text import RANGE_PLAN_TEMPLATE, render_plan
from lapo_verl.rewards import (
    l1_exact_reward,
    l1_max_reward,
    plan_range,
    range_closeness,
    stage2_reward,
    thinkprune_reward,
)


def test_l1_exact_by_hand():
    # 1[correct] - 0.0003 * |target - n|
    assert l1_exact_reward(True, 1000, 1000) == 1.0
    assert l1_exact_reward(True, 1500, 1000) == pytest.approx(1 - 0.15)
    assert l1_exact_reward(True, 500, 1000) == pytest.approx(0.85)  # symmetric: shorter is penalised too
    assert l1_exact_reward(False, 1000, 1000) == 0.0
    assert l1_exact_reward(False, 4100, 100) == pytest.approx(-1.2)  # no clipping (L1's linear_reward)
    assert l1_exact_reward(True, 1100, 1000, alpha=0.01) == pytest.approx(0.0)


def test_l1_max_by_hand():
    # 1[correct] * clip(0.0003 * (target - n) + 0.5, 0, 1)
    assert l1_max_reward(True, 1000, 1000) == pytest.approx(0.5)
    assert l1_max_reward(True, 0, 1000) == pytest.approx(0.8)
    assert l1_max_reward(True, 1000, 3000) == pytest.approx(1.0)  # 0.6 + 0.5 clipped to 1
    assert l1_max_reward(True, 2000, 1000) == pytest.approx(0.2)
    assert l1_max_reward(True, 3000, 1000) == 0.0  # -0.6 + 0.5 clipped to 0
    assert l1_max_reward(False, 100, 4000) == 0.0
    assert l1_max_reward(True, 1000, 1000, delta=0.9) == pytest.approx(0.9)


def test_thinkprune_by_hand():
    assert thinkprune_reward(True, 4000, 4000) == 1.0  # at the limit still counts
    assert thinkprune_reward(True, 4001, 4000) == 0.0
    assert thinkprune_reward(True, 2000, 4000, truncated=True) == 0.0  # cut by the cap: no answer
    assert thinkprune_reward(False, 10, 4000) == 0.0
    assert thinkprune_reward(True, 2500, 2000) == 0.0 and thinkprune_reward(True, 1999, 2000) == 1.0


def dapo_overlong(correct, n, max_len=4096, buffer=1024, factor=1.0):
    """The formula verl's `dapo` manager applies (verl/experimental/reward_loop/reward_manager/dapo.py)."""
    return float(correct) + min(-(n - (max_len - buffer)) / buffer * factor, 0)


def test_dapo_overlong_formula_by_hand():
    assert dapo_overlong(True, 3072) == 1.0  # up to L_max - L_buf: no penalty
    assert dapo_overlong(True, 3584) == pytest.approx(0.5)  # half-way into the buffer
    assert dapo_overlong(True, 4096) == pytest.approx(0.0)
    assert dapo_overlong(False, 4096) == pytest.approx(-1.0)


def test_range_plan_by_hand():
    """lapo.stage2.plan_range_width = w > 0: the stage-2 reward of a range plan."""
    assert plan_range(2000, 0.1) == (1800, 2200)
    assert plan_range(1000, 0.25) == (750, 1250)
    assert plan_range(5, 0.5) == (3, 8)  # 2.5 -> 3, 7.5 -> 8 (halves up)
    assert range_closeness(1800, 1800, 2200) == 1.0 and range_closeness(2200, 1800, 2200) == 1.0
    assert range_closeness(2440, 1800, 2200) == pytest.approx(math.exp(-2.0))  # 2 sigma above hi
    assert range_closeness(1740, 1800, 2200, sigma=60) == pytest.approx(math.exp(-0.5))
    assert stage2_reward(True, 2000, 2000, width=0.1) == pytest.approx(1.8)
    assert stage2_reward(True, 2100, 2000, width=0.1) == pytest.approx(1.8)  # inside the range: full bonus
    assert stage2_reward(True, 1680, 2000, width=0.1) == pytest.approx(1 + 0.8 * math.exp(-0.5))
    assert stage2_reward(False, 2000, 2000, width=0.1) == 0.0
    # width 0 is LAPO's stage-2 reward (the point plan), and the range maths agree with it there
    for n in (100, 480, 500, 777):
        point = 1 + 0.8 * math.exp(-((n - 500) ** 2) / (2 * 120.0 ** 2))
        assert stage2_reward(True, n, 500) == stage2_reward(True, n, 500, width=0.0) == pytest.approx(point)
        assert 1 + 0.8 * range_closeness(n, *plan_range(500, 0.0)) == pytest.approx(point)
    assert render_plan(735, RANGE_PLAN_TEMPLATE, 0.1) == "I will answer the question with between 662 and 809 tokens."
    assert render_plan(735) == "I will answer the question with 735 tokens."


@pytest.mark.parametrize("bad", [-0.1, 1.0, float("nan")])
def test_range_width_is_validated(bad):
    with pytest.raises(ValueError, match="plan_range_width"):
        plan_range(1000, bad)


def test_range_template_needs_both_numbers():
    with pytest.raises(ValueError, match="lo"):
        render_plan(1000, "I will answer the question with {n} tokens.", 0.1)


def test_range_prompt_room_is_the_longest_range_sentence():
    """LapoDataset leaves room for the longest sentence the run can state: with a range, hi may gain a digit."""
    from lapo_verl.plan_text import plan_sentence_tokens

    class Words:  # one token per word
        def encode(self, text, add_special_tokens=False):
            return text.split()

    class Chars:
        def encode(self, text, add_special_tokens=False):
            return list(text)

    assert plan_sentence_tokens(Chars(), [950, 999], RANGE_PLAN_TEMPLATE, 0.1) == len(render_plan(950, RANGE_PLAN_TEMPLATE, 0.1))
    assert render_plan(950, RANGE_PLAN_TEMPLATE, 0.1).endswith("855 and 1045 tokens.")  # 1045 > 999: 4 digits
    assert plan_sentence_tokens(Words(), [5, 1234]) == len("I will answer the question with 1234 tokens.".split())
