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
from lapo_verl.verl_ext.agent_loop import LapoPlanAgentLoop, plan_insertion


class LapoRangePlanAgentLoop(LapoPlanAgentLoop):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lapo = self.config.get("lapo") or {}
        self.range_template = str(lapo_config.get(lapo, "stage2_range.plan_template", DEFAULT_RANGE_TEMPLATE))
        self.range_width = float(lapo_config.get(lapo, "stage2_range.width", DEFAULT_RANGE_WIDTH))
        render_range_sentence(1000, self.range_width, self.range_template)  # fail at start-up on bad knobs

    def _with_plan(self, prompt_ids: list[int], messages: list[dict]) -> list[int]:
        sentence = render_range_sentence(self._plan, self.range_width, self.range_template)
        prompt_text = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        tail, addition = plan_insertion(prompt_text, sentence, self.plan_position)
        if tail:
            ids = self.tokenizer.encode(prompt_text[: -len(tail)] + addition, add_special_tokens=False)
        else:
            ids = prompt_ids + self.tokenizer.encode(addition, add_special_tokens=False)
        limit = int(self.rollout_config.prompt_length)
        if len(ids) > limit:
            raise ValueError(
                f"prompt with the range plan sentence has {len(ids)} tokens > rollout.prompt_length={limit}; keep "
                "data.filter_overlong_prompts=true or raise data.max_prompt_length"
            )
        return ids
