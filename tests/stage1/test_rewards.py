"""LAPO's reward maths against hand-computed values from shared/lapo-method.md."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lapo_verl import rewards as R


# ------------------------------------------------------------------ stage 1: band
def test_band_bounds_linear_interpolation():
    # 5 correct lengths: P30 at position 1.2 -> 200 + 0.2*100 = 220; P70 at 2.8 -> 300 + 0.8*100 = 380
    assert R.band_bounds([500, 100, 300, 200, 400]) == pytest.approx((220.0, 380.0))
    # 4 lengths: P30 at 0.9 -> 100 + 0.9*100 = 190; P70 at 2.1 -> 300 + 0.1*300 = 330
    assert R.band_bounds([100, 200, 300, 600]) == pytest.approx((190.0, 330.0))


def test_band_length_score_inside_outside_and_falloff():
    assert R.band_length_score(220, 220, 380) == 1.0  # closed interval
    assert R.band_length_score(380, 220, 380) == 1.0
    assert R.band_length_score(190, 220, 380) == pytest.approx(0.7)  # 30 below, w=100
    assert R.band_length_score(480, 220, 380) == 0.0  # exactly w away
    assert R.band_length_score(1000, 220, 380) == 0.0  # never negative
    assert R.band_length_score(405, 220, 380, falloff=50) == pytest.approx(0.5)


def test_stage1_group_hand_computed():
    # lengths of 8 responses, 6 correct: correct lengths 100,200,300,400,500,600
    lengths = [100, 200, 300, 400, 500, 600, 50, 900]
    correct = [1, 1, 1, 1, 1, 1, 0, 0]
    # P30: pos 1.5 -> 250; P70: pos 3.5 -> 450
    got = R.stage1_group_rewards(lengths, correct)
    # 100: d=150 -> 0; 200: d=50 -> 0.5; 300,400: inside; 500: d=50 -> 0.5; 600: d=150 -> 0
    expected = [1.0, 1.35, 1.7, 1.7, 1.35, 1.0, 0.0, 0.0]
    assert got == pytest.approx(expected)


def test_stage1_no_correct_all_zero():
    assert R.stage1_group_rewards([10, 20, 30], [0, 0, 0]) == [0.0, 0.0, 0.0]


def test_stage1_one_correct_gets_full_bonus_paper_rule():
    assert R.stage1_group_rewards([700, 10, 20], [1, 0, 0]) == pytest.approx([1.7, 0.0, 0.0])


def test_identical_lengths_paper_vs_authors_code():
    lengths = np.array([300, 300, 300, 50], dtype=float)
    correct = np.array([1, 1, 1, 0], dtype=bool)
    group = np.zeros(4, dtype=int)
    paper, _, _ = R.band_bonus_batched(lengths, correct, group)
    authors, _, _ = R.band_bonus_batched(lengths, correct, group, empty_band_gets_bonus=False)
    assert paper.tolist() == [1.0, 1.0, 1.0, 0.0]  # band collapses to 300, all inside
    assert authors.tolist() == [0.0, 0.0, 0.0, 0.0]  # authors: no bonus unless P30 < P70


def test_batched_matches_per_group_reference_with_padding_like_rows():
    rng = np.random.default_rng(0)
    groups, n = 50, 8
    lengths = rng.integers(0, 800, size=groups * n).astype(float)
    correct = rng.random(groups * n) < 0.5
    group = np.repeat(np.arange(groups), n)
    perm = rng.permutation(groups * n)  # rows of a group need not be contiguous
    lengths, correct, group = lengths[perm], correct[perm], group[perm]
    r1, lo, hi = R.band_bonus_batched(lengths, correct, group)
    for g in range(groups):
        rows = group == g
        ref = R.stage1_group_rewards(lengths[rows], correct[rows], alpha=1.0)
        ref_r1 = [r - c for r, c in zip(ref, correct[rows], strict=True)]
        assert r1[rows] == pytest.approx(ref_r1)
        if correct[rows].any():
            assert (lo[g], hi[g]) == pytest.approx(R.band_bounds(lengths[rows][correct[rows]]))
        else:
            assert math.isnan(lo[g])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.booleans()), min_size=1, max_size=16),
       st.floats(0.0, 0.5), st.floats(0.5, 1.0))
def test_property_batched_equals_scalar(rows, low, high):
    lengths = np.array([r[0] for r in rows], dtype=float)
    correct = np.array([r[1] for r in rows])
    r1, _, _ = R.band_bonus_batched(lengths, correct, np.zeros(len(rows), dtype=int), band=(low, high))
    ref = R.stage1_group_rewards(lengths, correct, alpha=1.0, band=(low, high))
    assert r1 == pytest.approx([r - c for r, c in zip(ref, correct, strict=True)])
    assert ((r1 >= 0) & (r1 <= 1)).all()
    assert (r1[~correct] == 0).all()


@pytest.mark.parametrize("band", [(0.7, 0.3), (-0.1, 0.5), (0.2,), (0.3, 1.2)])
def test_bad_band_rejected(band):
    with pytest.raises(ValueError, match="band"):
        R.band_bounds([1, 2, 3], band)


def test_bad_knobs_rejected():
    with pytest.raises(ValueError, match="falloff"):
        R.band_length_score(1, 0, 0, falloff=0)
    with pytest.raises(ValueError, match="alpha"):
        R.Stage1Params(alpha=-1)
    with pytest.raises(ValueError, match="sigma"):
        R.Stage2Params(sigma=0)
    with pytest.raises(ValueError, match="bonus_rule"):
        R.Stage1Params(bonus_rule="other")


# ------------------------------------------------------------------ plan statistic
def test_plan_statistic_median_mean_min_rounding():
    assert R.plan_statistic([100, 200, 301, 400]) == 251  # median 250.5 rounds half up
    assert R.plan_statistic([100, 200, 300]) == 200
    assert R.plan_statistic([100, 201], "mean") == 151  # 150.5 -> 151
    assert R.plan_statistic([300, 100, 200], "min") == 100
    with pytest.raises(ValueError):
        R.plan_statistic([], "median")
    with pytest.raises(ValueError):
        R.plan_statistic([1], "max")


# ------------------------------------------------------------------ stage 2
def test_stage2_reward_hand_computed():
    assert R.stage2_reward(True, 734, 734) == pytest.approx(1.8)
    # 120 tokens off = one sigma: 1 + 0.8 * exp(-1/2)
    assert R.stage2_reward(True, 854, 734) == pytest.approx(1 + 0.8 * math.exp(-0.5))
    # 240 off: exp(-2)
    assert R.stage2_reward(True, 494, 734) == pytest.approx(1 + 0.8 * math.exp(-2))
    assert R.stage2_reward(False, 734, 734) == 0.0
    assert R.stage2_reward(True, 100, 100, beta=0.7, sigma=50) == pytest.approx(1.7)


def test_updated_plan_eq8():
    assert R.updated_plan(None, [300, 500]) == 400
    assert R.updated_plan(350, [300, 500]) == 350
    assert R.updated_plan(500, [300, 500]) == 400
    assert R.updated_plan(None, []) is None


# ------------------------------------------------------------------ baselines
def test_l1_rewards_hand_computed():
    assert R.l1_exact_reward(True, 1200, 1000) == pytest.approx(1 - 0.0003 * 200)
    assert R.l1_exact_reward(False, 1200, 1000) == pytest.approx(-0.06)
    assert R.l1_max_reward(True, 1000, 2000) == pytest.approx(0.8)  # 0.0003*1000 + 0.5
    assert R.l1_max_reward(True, 3000, 1000) == pytest.approx(0.0)  # clipped at 0
    assert R.l1_max_reward(True, 100, 4000) == pytest.approx(1.0)  # clipped at 1
    assert R.l1_max_reward(False, 100, 4000) == 0.0


def test_thinkprune_reward():
    assert R.thinkprune_reward(True, 4000, 4000) == 1.0
    assert R.thinkprune_reward(True, 4001, 4000) == 0.0
    assert R.thinkprune_reward(True, 10, 4000, truncated=True) == 0.0
    assert R.thinkprune_reward(False, 10, 4000) == 0.0


def test_doctests():
    import doctest

    failures, _ = doctest.testmod(R)
    assert failures == 0
