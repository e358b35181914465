"""Agent loop of the range-plan ablation (``default_agent_loop: lapo_range_plan_agent``).

Same as LAPO's stage-2 loop (:class:`lapo_verl.verl_ext.agent_loop.LapoPlanAgentLoop`: position, prefill,
prompt-length check) but the sentence states a range,
``lapo.stage2_range.plan_template.format(lo=..., hi=...)`` with ``lo, hi`` from
:func:`lapo_verl.ablation_rewards.range_bounds` (the same numbers the ``lapo_stage2_range`` reward uses).
Loaded lazily by verl's agent-loop workers through ``resources/ablation_agent_loops.yaml``.
"""

from __future__ import annotations

from typing import Any

from lapo_verl import config as lapo_config
from lapo_verl.ablation_rewards import DEFAULT_RANGE_TEMPLATE, DEFAULT_RANGE_WIDTH, render_range_sentence
from lapo_verl.verl_ext.agent_loop import LapoPlanAgentLoop


class LapoRangePlanAgentLoop(LapoPlanAgentLoop):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lapo = self.config.get("lapo") or {}
        self.range_template = str(lapo_config.get(lapo, "stage2_range.plan_template", DEFAULT_RANGE_TEMPLATE))
        self.range_width = float(lapo_config.get(lapo, "stage2_range.width", DEFAULT_RANGE_WIDTH))
        render_range_sentence(1000, self.range_width, self.range_template)  # fail at start-up on bad knobs

    def plan_sentence(self, plan: int) -> str:
        return render_range_sentence(plan, self.range_width, self.range_template)
