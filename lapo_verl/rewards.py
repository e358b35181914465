r"""LAPO's reward maths, as pure typed functions (no verl, no torch).

Every formula follows ``shared/lapo-method.md`` (the paper, arXiv 2507.15758, with the disagreements
between paper and the authors' code settled there). The verl adapters in :mod:`lapo_verl.verl_ext` are
thin wrappers around these functions.

Stage 1 (Discovery, paper Eq. 3-5)
    For one prompt group let :math:`L` be the lengths of the *correct* responses and
    :math:`[L_{lo}, L_{hi}] = [P_{30}(L), P_{70}(L)]` (linear interpolation, numpy's default).

    .. math::
        R_1(r) = \begin{cases} 1 & acc(r)=1,\ L_{lo} \le |r| \le L_{hi} \\
                 \max(0, 1 - d/w) & acc(r)=1 \text{ otherwise},\ d=\min(||r|-L_{lo}|, ||r|-L_{hi}|) \\
                 0 & acc(r) = 0 \end{cases}
        \qquad R_D(r) = acc(r) + \alpha R_1(r)

Stage 2 (Internalization, paper Eq. 7)
    .. math:: R_I(r) = acc(r) + \beta\, acc(r) \exp\!\big(-(|r| - n)^2 / (2\sigma^2)\big)

    With ``lapo.stage2.plan_range_width = w > 0`` (lapo-verl's "w/ Range" ablation, paper Table 2; the
    sentence and width are lapo-verl's) the plan is the range ``[round(n (1-w)), round(n (1+w))]``: 1 inside,
    the same Gaussian from the nearer end outside (:func:`stage2_reward`); ``w = 0`` is Eq. 7 exactly.

Baselines: L1-Exact / L1-Max (LCPO, arXiv 2503.04697) and ThinkPrune (arXiv 2504.01296).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

PlanStatistic = Literal["median", "mean", "min"]
PLAN_STATISTICS: tuple[str, ...] = ("median", "mean", "min")
BONUS_RULES: tuple[str, ...] = ("paper", "authors_code")

# The defaults of every knob below, stated once (the typed settings in lapo_verl/config.py and the recipes'
# paper_grpo.yaml use these; tests/test_config.py checks that they agree).
ALPHA = 0.7  #: stage 1: weight of the band bonus R1
BAND = (0.3, 0.7)  #: stage 1: percentiles of the correct lengths
FALLOFF = 100.0  #: stage 1: tokens over which R1 falls from 1 to 0 outside the band
BETA = 0.8  #: stage 2: weight of the plan-closeness bonus (authors' code and appendix)
SIGMA = 120.0  #: stage 2: width of the Gaussian closeness, tokens
PLAN_RANGE_WIDTH = 0.0  #: stage 2: relative half-width of a range plan; 0 = the paper's point plan
L1_ALPHA = 3e-4  #: L1 (LCPO): weight of the length error
L1_DELTA = 0.5  #: L1-Max: reward of a correct answer exactly at its target


def _check_band(band: Sequence[float], name: str = "band") -> tuple[float, float]:
    if len(band) != 2:
        raise ValueError(f"{name} must be two percentiles (low, high), got {band!r}")
    low, high = float(band[0]), float(band[1])
    if not (0.0 <= low <= high <= 1.0):
        raise ValueError(f"{name} must satisfy 0 <= low <= high <= 1 (fractions, e.g. [0.3, 0.7]), got {band!r}")
    return low, high


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return value


def round_half_up(value: float) -> int:
    """Nearest integer, halves rounded up (Python's ``round`` rounds halves to even: 2.5 -> 2)."""
    return int(math.floor(value + 0.5))


# --------------------------------------------------------------------------------------------
# Stage 1
# --------------------------------------------------------------------------------------------
def band_bounds(correct_lengths: Sequence[float], band: Sequence[float] = BAND) -> tuple[float, float]:
    """Percentile band ``[P_low, P_high]`` of the correct responses' lengths (linear interpolation).

    >>> band_bounds([100, 200, 300, 400, 500])
    (220.0, 380.0)
    >>> band_bounds([250])  # one correct response: the band collapses onto its length
    (250.0, 250.0)
    """
    low, high = _check_band(band)
    if len(correct_lengths) == 0:
        raise ValueError("band_bounds needs at least one correct length")
    arr = np.asarray(correct_lengths, dtype=np.float64)
    lo, hi = np.percentile(arr, [100.0 * low, 100.0 * high])
    return float(lo), float(hi)


def band_length_score(length: float, lo: float, hi: float, falloff: float = FALLOFF) -> float:
    """R1 of a *correct* response: 1 inside ``[lo, hi]``, else ``max(0, 1 - d / falloff)``.

    >>> band_length_score(300, 220, 380)
    1.0
    >>> band_length_score(430, 220, 380)  # 50 tokens above the band, fall-off 100
    0.5
    >>> band_length_score(50, 220, 380)
    0.0
    """
    falloff = _check_positive("falloff", falloff)
    if lo <= length <= hi:
        return 1.0
    distance = min(abs(length - lo), abs(length - hi))
    return max(0.0, 1.0 - distance / falloff)


def stage1_group_rewards(
    lengths: Sequence[float],
    correct: Sequence[bool],
    *,
    alpha: float = ALPHA,
    band: Sequence[float] = BAND,
    falloff: float = FALLOFF,
) -> list[float]:
    """Stage-1 rewards ``R_D = acc + alpha * R1`` of one prompt group (paper formula).

    A group with no correct response gets all zeros; one correct response gets the full bonus.

    >>> [round(r, 4) for r in stage1_group_rewards([100, 200, 300, 400, 500, 999], [1, 1, 1, 1, 1, 0])]
    [1.0, 1.56, 1.7, 1.56, 1.0, 0.0]
    """
    if len(lengths) != len(correct):
        raise ValueError(f"lengths ({len(lengths)}) and correct ({len(correct)}) differ in size")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    correct_lengths = [float(n) for n, c in zip(lengths, correct, strict=True) if c]
    if not correct_lengths:
        return [0.0] * len(lengths)
    lo, hi = band_bounds(correct_lengths, band)
    return [
        (1.0 + alpha * band_length_score(float(n), lo, hi, falloff)) if c else 0.0
        for n, c in zip(lengths, correct, strict=True)
    ]


def band_bonus_batched(
    lengths: np.ndarray,
    correct: np.ndarray,
    group: np.ndarray,
    *,
    band: Sequence[float] = BAND,
    falloff: float = FALLOFF,
    empty_band_gets_bonus: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised R1 for a whole batch of groups: the training-step hot path.

    Args:
        lengths: ``(N,)`` response lengths in tokens.
        correct: ``(N,)`` booleans.
        group: ``(N,)`` integer group ids in ``[0, G)`` (e.g. from ``np.unique(uid, return_inverse=True)``).

    Returns:
        ``(r1, lo, hi)``: ``r1`` is ``(N,)`` (0 for wrong responses), ``lo``/``hi`` are ``(G,)`` band
        bounds (NaN for groups with no correct response). Equal to :func:`stage1_group_rewards`
        per group, without a Python loop over groups.
        ``empty_band_gets_bonus=False`` reproduces the authors' code, which pays no bonus at all in a
        group whose band is a single point (``P_low == P_high``, e.g. one correct response).
    """
    low, high = _check_band(band)
    falloff = _check_positive("falloff", falloff)
    lengths = np.asarray(lengths, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    group = np.asarray(group, dtype=np.int64)
    n_groups = int(group.max()) + 1 if group.size else 0

    # Sort by group, correct responses first, then by length: the correct lengths of group g are the
    # first k_g entries of its segment, in ascending order, which is what linear interpolation needs.
    order = np.lexsort((lengths, ~correct, group))
    sorted_lengths = lengths[order]
    group_sizes = np.bincount(group, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(group_sizes)[:-1])) if n_groups else np.zeros(0, dtype=np.int64)
    n_correct = np.bincount(group, weights=correct.astype(np.float64), minlength=n_groups).astype(np.int64)

    lo = np.full(n_groups, np.nan)
    hi = np.full(n_groups, np.nan)
    has = n_correct > 0
    for q, out in ((low, lo), (high, hi)):
        # numpy's "linear" method: h = (k - 1) * q, value = x[floor(h)] + frac * (x[ceil(h)] - x[floor(h)])
        pos = (n_correct[has] - 1) * q
        below = np.floor(pos).astype(np.int64)
        above = np.minimum(below + 1, n_correct[has] - 1)
        frac = pos - below
        x_below = sorted_lengths[starts[has] + below]
        x_above = sorted_lengths[starts[has] + above]
        out[has] = x_below + frac * (x_above - x_below)

    row_lo, row_hi = lo[group], hi[group]
    distance = np.minimum(np.abs(lengths - row_lo), np.abs(lengths - row_hi))
    inside = (lengths >= row_lo) & (lengths <= row_hi)
    with np.errstate(invalid="ignore"):
        r1 = np.where(inside, 1.0, np.maximum(0.0, 1.0 - distance / falloff))
    r1 = np.where(correct, r1, 0.0)
    if not empty_band_gets_bonus:
        r1 = np.where(row_lo < row_hi, r1, 0.0)
    return r1, lo, hi


def group_ids(index: Sequence[object]) -> np.ndarray:
    """Integer group ids in ``[0, G)``, in order of first appearance, of a batch's GRPO group keys.

    Rows are grouped as verl's GRPO groups them (its ``index`` values as dict keys), in one pass.

    >>> group_ids(["b", "a", "b", "c", "a"]).tolist()
    [0, 1, 0, 2, 1]
    """
    ids: dict[object, int] = {}
    return np.fromiter((ids.setdefault(key, len(ids)) for key in index), dtype=np.int64, count=len(index))


def equal_score_rows(scores: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Rows whose GRPO group has at least two responses, all with the same score: their advantage is exactly 0.

    GRPO's advantage ``(r - mean) / (std + eps)`` is 0 for such a group in exact arithmetic; in float32 the group
    mean can be off by one ulp, and dividing by ``std + 1e-6`` (std ~1e-7) turns that into about +0.1 per
    response. A group of **one** response is never among these rows: it follows verl's GRPO rule (mean 0,
    std 1), so its advantage is its raw score.

    Args:
        scores: ``(N,)`` summed reward per response, exactly as GRPO sees them (e.g. the float32 column).
        group: ``(N,)`` integer group ids in ``[0, G)`` (:func:`group_ids`).

    Returns:
        ``(N,)`` booleans. One vectorised pass, no loop over groups: a group is equal when every row equals
        one representative row of the group (an exact comparison, so NaN scores never count as equal).

    >>> equal_score_rows(np.array([1.7, 1.7, 1.7, 0.3, 0.5, 2.0, 0.0, 0.0]), np.array([0, 0, 0, 1, 1, 2, 3, 3])).tolist()
    [True, True, True, False, False, False, True, True]
    """
    scores = np.asarray(scores)
    group = np.asarray(group, dtype=np.int64)
    if group.size == 0:
        return np.zeros(0, dtype=bool)
    n_groups = int(group.max()) + 1
    representative = np.empty(n_groups, dtype=np.int64)
    representative[group] = np.arange(group.size)  # any row of the group will do, whichever write wins
    differs = scores != scores[representative[group]]
    sizes = np.bincount(group, minlength=n_groups)
    n_differ = np.bincount(group, weights=differs, minlength=n_groups)
    equal_group = (sizes >= 2) & (n_differ == 0)
    return equal_group[group]


def plan_statistic(correct_lengths: Sequence[float], statistic: str = "median") -> int:
    """The recorded length of one visit: median (paper), mean or min of the correct lengths, rounded.

    >>> plan_statistic([100, 200, 301, 400])
    251
    >>> plan_statistic([100, 200, 301, 400], "min")
    100
    """
    if statistic not in PLAN_STATISTICS:
        raise ValueError(f"statistic must be one of {PLAN_STATISTICS}, got {statistic!r}")
    if len(correct_lengths) == 0:
        raise ValueError("plan_statistic needs at least one correct length")
    arr = np.asarray(correct_lengths, dtype=np.float64)
    value = {"median": np.median, "mean": np.mean, "min": np.min}[statistic](arr)
    return round_half_up(float(value))


# --------------------------------------------------------------------------------------------
# Stage 2
# --------------------------------------------------------------------------------------------
def plan_closeness(length: float, plan: float, sigma: float = SIGMA) -> float:
    """R2 for a correct response: ``exp(-(length - plan)^2 / (2 sigma^2))``.

    >>> plan_closeness(500, 500)
    1.0
    >>> round(plan_closeness(620, 500), 6)  # one sigma away
    0.606531
    """
    sigma = _check_positive("sigma", sigma)
    return math.exp(-((float(length) - float(plan)) ** 2) / (2.0 * sigma * sigma))


def check_range_width(width: float, name: str = "lapo.stage2.plan_range_width") -> float:
    """A range plan's relative half-width: a number in ``[0, 1)`` (0 = the paper's point plan)."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not (0.0 <= float(width) < 1.0):
        raise ValueError(f"{name} must be a number in [0, 1) (0 = the paper's point plan), got {width!r}")
    return float(width)


def plan_range(plan: float, width: float = PLAN_RANGE_WIDTH) -> tuple[int, int]:
    r"""The range ``[lo, hi]`` a range plan states (lapo-verl's "w/ Range" ablation, paper Table 2).

    .. math:: lo = \mathrm{round}(p (1 - w)), \qquad hi = \mathrm{round}(p (1 + w))

    halves rounded up, ``lo >= 1``. The range is relative to the plan (a 2,000-token plan gets +-200 tokens
    at ``w = 0.1``, a 300-token plan +-30), so its width scales like the spread of correct lengths.
    ``w = 0`` is the paper's point plan: ``lo = hi = plan``.

    >>> plan_range(2000, 0.1)
    (1800, 2200)
    >>> plan_range(735, 0.1)  # 661.5 -> 662, 808.5 -> 809 (halves up)
    (662, 809)
    >>> plan_range(500, 0.0)
    (500, 500)
    """
    plan = float(plan)
    width = check_range_width(width)
    if not (plan > 0 and math.isfinite(plan)):
        raise ValueError(f"plan must be a positive number of tokens, got {plan!r}")
    lo = max(1, round_half_up(plan * (1.0 - width)))
    hi = max(lo, round_half_up(plan * (1.0 + width)))
    return lo, hi


def range_closeness(length: float, lo: float, hi: float, sigma: float = SIGMA) -> float:
    """``C(n)``: 1 inside ``[lo, hi]``, Gaussian fall-off (``sigma`` tokens) from the nearer end outside.

    With ``lo == hi == plan`` this is :func:`plan_closeness`.

    >>> range_closeness(1900, 1800, 2200)
    1.0
    >>> round(range_closeness(2320, 1800, 2200), 6)  # one sigma above hi
    0.606531
    >>> round(range_closeness(1560, 1800, 2200), 6)  # two sigma below lo
    0.135335
    """
    sigma = _check_positive("sigma", sigma)
    if lo > hi:
        raise ValueError(f"range needs lo <= hi, got [{lo}, {hi}]")
    n = float(length)
    if lo <= n <= hi:
        return 1.0
    d = min(abs(n - lo), abs(n - hi))
    return math.exp(-(d * d) / (2.0 * sigma * sigma))


def stage2_reward(correct: bool, length: float, plan: float, *, beta: float = BETA, sigma: float = SIGMA,
                  width: float = PLAN_RANGE_WIDTH) -> float:
    r"""``R_I = acc + beta * acc * R2`` (wrong responses get 0).

    ``R2`` is :func:`plan_closeness` to the plan (paper Eq. 7, ``width = 0``) or, for a range plan
    (``width > 0``), :func:`range_closeness` to ``[lo, hi] = plan_range(plan, width)``: 1 inside the range,
    the same Gaussian from the nearer end outside.

    >>> stage2_reward(True, 500, 500)
    1.8
    >>> stage2_reward(False, 500, 500)
    0.0
    >>> stage2_reward(True, 2100, 2000, width=0.1)  # inside [1800, 2200]
    1.8
    >>> round(stage2_reward(True, 2320, 2000, width=0.1), 6)  # one sigma above hi: 1 + 0.8 * exp(-0.5)
    1.485225
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    if width:
        lo, hi = plan_range(plan, width)
        return 1.0 + beta * range_closeness(length, lo, hi, sigma) if correct else 0.0
    if not correct:
        return 0.0
    return 1.0 + beta * plan_closeness(length, plan, sigma)


def updated_plan(current: int | None, correct_lengths: Sequence[float]) -> int | None:
    """Paper Eq. 8: after a visit, an unsolved problem takes the median of the correct lengths; a solved
    one keeps the smaller of its plan and that median. No correct response leaves the plan unchanged.

    >>> updated_plan(None, [300, 500])
    400
    >>> updated_plan(350, [300, 500])
    350
    >>> updated_plan(350, [])
    350
    """
    if len(correct_lengths) == 0:
        return current
    median = plan_statistic(correct_lengths, "median")
    return median if current is None else min(int(current), median)


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------
def l1_exact_reward(correct: bool, length: float, target: float, *, alpha: float = L1_ALPHA) -> float:
    """L1-Exact (LCPO): ``1[correct] - alpha * |target - length|`` (no clipping, as in the L1 code).

    >>> round(l1_exact_reward(True, 1200, 1000), 6)
    0.94
    """
    return float(bool(correct)) - alpha * abs(float(target) - float(length))


def l1_max_reward(correct: bool, length: float, target: float, *, alpha: float = L1_ALPHA, delta: float = L1_DELTA) -> float:
    """L1-Max (LCPO): ``1[correct] * clip(alpha * (target - length) + delta, 0, 1)``.

    >>> round(l1_max_reward(True, 1000, 2000), 6)
    0.8
    >>> l1_max_reward(True, 9000, 2000)
    0.0
    """
    if not correct:
        return 0.0
    return min(1.0, max(0.0, alpha * (float(target) - float(length)) + delta))


def thinkprune_reward(correct: bool, length: float, limit: int, *, truncated: bool = False) -> float:
    """ThinkPrune: plain correctness under a hard length limit; overflow (or a cut-off answer) scores 0.

    >>> thinkprune_reward(True, 3000, 4000), thinkprune_reward(True, 4001, 4000)
    (1.0, 0.0)
    """
    if truncated or length > limit:
        return 0.0
    return float(bool(correct))


@dataclass(frozen=True)
class Stage1Params:
    """Validated stage-1 knobs (``lapo.stage1.*``)."""

    alpha: float = ALPHA
    band: tuple[float, float] = BAND
    falloff: float = FALLOFF
    bonus_rule: Literal["paper", "authors_code"] = "paper"

    def __post_init__(self) -> None:
        if not (self.alpha >= 0 and math.isfinite(self.alpha)):
            raise ValueError(f"lapo.stage1.alpha must be a finite number >= 0, got {self.alpha!r}")
        object.__setattr__(self, "band", _check_band(self.band, "lapo.stage1.band"))
        _check_positive("lapo.stage1.falloff", self.falloff)
        if self.bonus_rule not in BONUS_RULES:
            raise ValueError(f"lapo.stage1.bonus_rule must be one of {BONUS_RULES}, got {self.bonus_rule!r}")


@dataclass(frozen=True)
class Stage2Params:
    """Validated stage-2 reward knobs (``lapo.stage2.{beta, sigma, plan_range_width}``)."""

    beta: float = BETA
    sigma: float = SIGMA
    width: float = PLAN_RANGE_WIDTH

    def __post_init__(self) -> None:
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"lapo.stage2.beta must be a finite number >= 0, got {self.beta!r}")
        _check_positive("lapo.stage2.sigma", self.sigma)
        check_range_width(self.width)
