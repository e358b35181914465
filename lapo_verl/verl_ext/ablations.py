"""Reward managers of lapo-verl's LAPO ablations (registry ``verl.experimental.reward_loop``).

* ``lapo_stage2_range``: stage 2 with a range plan, ``acc + beta * acc * C(len)`` where ``C`` is 1 inside
  ``[lo, hi] = plan * (1 -/+ lapo.stage2_range.width)`` and LAPO's Gaussian (``lapo.stage2.sigma``) outside
  (:func:`lapo_verl.ablation_rewards.range_plan_reward`). The prompt side is the ``lapo_range_plan_agent``
  agent loop (:mod:`lapo_verl.verl_ext.ablation_agent_loop`, loaded lazily by verl's agent-loop workers).

The other ablations of the paper are knobs of the existing pieces (see ``docs/baselines.md``).
Imported by :mod:`lapo_verl.plugin`; keep it light (no agent-loop imports here).
"""

from __future__ import annotations

from verl.experimental.reward_loop.reward_manager import register

from lapo_verl import config as lapo_config
from lapo_verl.ablation_rewards import DEFAULT_RANGE_WIDTH, range_bounds, range_closeness, range_plan_reward
from lapo_verl.data.columns import PLAN_COLUMN
from lapo_verl.verl_ext.reward_managers import LapoRewardManagerBase, ScoredRow


def range_width(lapo) -> float:
    return float(lapo_config.get(lapo, "stage2_range.width", DEFAULT_RANGE_WIDTH))


@register("lapo_stage2_range")
class LapoStage2RangeRewardManager(LapoRewardManagerBase):
    """Stage 2 with a range plan: ``acc + beta * acc * C(len)`` (1 inside the range, Gaussian outside)."""

    def __init__(self, config, tokenizer, compute_score=None, **kwargs):
        super().__init__(config, tokenizer, compute_score, **kwargs)
        self.params = lapo_config.stage2_params(self.lapo)
        self.width = range_width(self.lapo)
        range_bounds(1000, self.width)  # validate the knob at start-up, not at the first response

    def score(self, row: ScoredRow, correct: bool) -> tuple[float, dict]:
        plan = self.current_plan(row)
        nan = float("nan")
        if plan is None and not row.record:  # validation without a plan: accuracy only (as lapo_stage2)
            return float(correct), {"plan": nan, "plan_lo": nan, "plan_hi": nan, "r2": nan, "plan_abs_error": nan}
        if plan is None:
            raise ValueError(
                f"row of problem {row.problem_id!r} carries no {PLAN_COLUMN!r}: the range ablation needs "
                "+recipe=lapo_stage2_range (LapoDataset with lapo.stage=2 and a plans file)"
            )
        plan = int(plan)
        lo, hi = range_bounds(plan, self.width)
        r2 = range_closeness(row.length, lo, hi, self.params.sigma) if correct else 0.0
        reward = range_plan_reward(correct, row.length, plan, width=self.width, beta=self.params.beta,
                                   sigma=self.params.sigma)
        outside = 0.0 if lo <= row.length <= hi else float(min(abs(row.length - lo), abs(row.length - hi)))
        return reward, {"plan": float(plan), "plan_lo": float(lo), "plan_hi": float(hi), "r2": r2,
                        "plan_abs_error": outside}
