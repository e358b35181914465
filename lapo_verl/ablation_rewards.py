r"""Reward maths of lapo-verl's LAPO ablations that the paper does not define (pure functions, no verl).

Range plan (``+recipe=lapo_stage2_range``)
    Stage 2 with a range instead of a point: from the stage-1 plan :math:`p` and a relative ``width`` w,

    .. math::
        lo = \mathrm{round}(p (1 - w)), \qquad hi = \mathrm{round}(p (1 + w))

    (halves rounded up, ``lo >= 1``), the prompt states "I will answer the question with between {lo}
    and {hi} tokens." and a correct response of length :math:`n` earns

    .. math::
        C(n) = \begin{cases} 1 & lo \le n \le hi \\ \exp(-d^2 / (2\sigma^2)) & \text{otherwise},\
               d = \min(|n - lo|, |n - hi|) \end{cases} \qquad R(r) = acc(r) + \beta\, acc(r)\, C(|r|)

    Design choices: the range is relative to the plan (a 2,000-token plan gets +-200 tokens, a 300-token
    plan +-30), so its width scales like the spread of correct lengths; outside the range the fall-off is
    LAPO stage 2's Gaussian with the same ``sigma`` (120 tokens) and ``beta`` (0.8), so ``width = 0``
    reproduces the stage-2 reward exactly.
"""

from __future__ import annotations

import math

from lapo_verl.rewards import _check_positive, round_half_up

DEFAULT_RANGE_WIDTH = 0.1
DEFAULT_RANGE_TEMPLATE = "I will answer the question with between {lo} and {hi} tokens."


def range_bounds(plan: float, width: float = DEFAULT_RANGE_WIDTH) -> tuple[int, int]:
    """``(lo, hi) = (round(plan * (1 - width)), round(plan * (1 + width)))``, ``lo >= 1``.

    >>> range_bounds(2000, 0.1)
    (1800, 2200)
    >>> range_bounds(735, 0.1)  # 661.5 -> 662, 808.5 -> 809 (halves up)
    (662, 809)
    >>> range_bounds(500, 0.0)
    (500, 500)
    """
    plan = float(plan)
    width = float(width)
    if not (plan > 0 and math.isfinite(plan)):
        raise ValueError(f"plan must be a positive number of tokens, got {plan!r}")
    if not (0.0 <= width < 1.0):
        raise ValueError(f"lapo.stage2_range.width must be in [0, 1), got {width!r}")
    lo = max(1, round_half_up(plan * (1.0 - width)))
    hi = max(lo, round_half_up(plan * (1.0 + width)))
    return lo, hi


def range_closeness(length: float, lo: float, hi: float, sigma: float = 120.0) -> float:
    """``C(n)``: 1 inside ``[lo, hi]``, Gaussian fall-off (``sigma`` tokens) from the nearer end outside.

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


def range_plan_reward(correct: bool, length: float, plan: float, *, width: float = DEFAULT_RANGE_WIDTH,
                      beta: float = 0.8, sigma: float = 120.0) -> float:
    """``acc + beta * acc * C(n)`` with ``[lo, hi] = range_bounds(plan, width)``; wrong answers get 0.

    >>> range_plan_reward(True, 2100, 2000)
    1.8
    >>> round(range_plan_reward(True, 2320, 2000), 6)  # 1 + 0.8 * exp(-0.5)
    1.485225
    >>> range_plan_reward(False, 2000, 2000)
    0.0
    """
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta!r}")
    lo, hi = range_bounds(plan, width)
    if not correct:
        return 0.0
    return 1.0 + beta * range_closeness(length, lo, hi, sigma)


def render_range_sentence(plan: int, width: float = DEFAULT_RANGE_WIDTH,
                          template: str = DEFAULT_RANGE_TEMPLATE) -> str:
    """The range plan sentence for a plan.

    >>> render_range_sentence(2000)
    'I will answer the question with between 1800 and 2200 tokens.'
    """
    if "{lo}" not in template or "{hi}" not in template:
        raise ValueError(f"lapo.stage2_range.plan_template must contain '{{lo}}' and '{{hi}}', got {template!r}")
    lo, hi = range_bounds(plan, width)
    return template.format(lo=lo, hi=hi)
