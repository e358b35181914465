"""lapo-verl's agent loops: verl's single-turn loop, made to start with R1-style tokenizers, plus the plan.

Registered through ``actor_rollout_ref.rollout.agent.agent_loop_config_path`` (the packaged
``resources/agent_loops.yaml``) and imported lazily by verl's agent-loop workers, never at ``import verl``.

``lapo_single_turn_agent`` (every recipe's default loop, stage 1 and baselines) is verl's
``SingleTurnAgentLoop`` with two changes:

* the continuous-token builder fits the tokenizer (:mod:`lapo_verl.verl_ext.token_builder`): verl 0.9.1
  picks the Qwen builder for ``model_type: qwen2`` and it requires ``<|im_end|>``, which the
  DeepSeek-R1-Distill tokenizer of both paper models lacks (``ValueError`` at start-up otherwise);
* a generation prompt that already closed an empty reasoning block (``<think>\n</think>``, e.g. the
  R1-Distill template with an ``enable_thinking`` switch left at verl's default kwargs) is reopened:
  the response starts inside one open ``<think>``. Any other prompt is sent exactly as verl renders it.

``lapo_plan_agent`` (stage 2) then appends the row's plan inside the reasoning context. It is prompt text:
not trained on and not counted in the response length.

* paper raw format (``Assistant: <think>``, nothing after): one space, the sentence, nothing after:
  ``... Assistant: <think> I will answer the question with 734 tokens.`` (paper App. A.1, verbatim)
* template whose generation prompt opens ``<think>`` + newline (DeepSeek-R1-Distill):
  ``...<｜Assistant｜><think>\n`` + ``I will answer the question with 734 tokens.\n``
* template that does not open it (Qwen2.5-Instruct): the loop opens the reasoning itself:
  ``...<|im_start|>assistant\n`` + ``<think>\nI will answer the question with 734 tokens.\n``
* ``lapo.stage2.plan_position=before_think`` (paper ablation): the sentence goes before ``<think>``.
* ``lapo.stage2.plan_range_width=w > 0`` (range ablation): the sentence states a range, e.g.
  ``I will answer the question with between 662 and 809 tokens.`` (``lapo.stage2.plan_template`` with
  ``{lo}`` and ``{hi}``, the bounds the stage-2 reward uses).

Rows without a plan (validation of the internalized model) get only the single-turn treatment.
"""

from __future__ import annotations

import logging
from typing import Any

from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

from lapo_verl import config as lapo_config
from lapo_verl.data.columns import PLAN_COLUMN, PROBLEM_ID_COLUMN, RECORD_COLUMN

logger = logging.getLogger(__name__)

# The plan text (render, insert, reopen a closed <think>) is owned by lapo_verl.plan_text; re-exported here.
from lapo_verl.plan_text import (  # noqa: E402,F401
    PLAN_POSITIONS,
    PLAN_TEMPLATE as DEFAULT_PLAN_TEMPLATE,
    THINK_OPEN,
    prompt_with_plan,
    render_plan as render_plan_sentence,
    reopen_think,
)


def retokenize(tokenizer: Any, prompt_ids: list[int], new_text: str) -> list[int]:
    """Ids for ``new_text`` that keep verl's ids of the longest prefix of ``prompt_ids`` whose text
    ``new_text`` starts with; only the changed tail is tokenised again."""
    k = len(prompt_ids)
    while k > 0:
        head = tokenizer.decode(prompt_ids[:k], skip_special_tokens=False)
        if new_text.startswith(head):
            break
        k -= 1
    head = tokenizer.decode(prompt_ids[:k], skip_special_tokens=False) if k else ""
    rest = new_text[len(head):]
    return list(prompt_ids[:k]) + (tokenizer.encode(rest, add_special_tokens=False) if rest else [])


class LapoSingleTurnAgentLoop(SingleTurnAgentLoop):
    """verl's single-turn loop with a continuous-token builder that fits the tokenizer and no closed
    empty reasoning block at the end of the prompt (module docstring)."""

    def __init__(self, *args: Any, hf_model_type: str | None = None, **kwargs: Any) -> None:
        from lapo_verl.verl_ext.token_builder import choose_builder_family, create_builder

        tokenizer = kwargs.get("tokenizer", args[2] if len(args) > 2 else None)
        processor = kwargs.get("processor", args[3] if len(args) > 3 else None)
        data_cfg = kwargs.get("data_config", args[5] if len(args) > 5 else None)
        template_kwargs = dict((data_cfg.config.get("apply_chat_template_kwargs") or {}) if data_cfg else {})
        choice = None
        if tokenizer is not None and getattr(processor, "image_processor", None) is None:
            choice = choose_builder_family(tokenizer, hf_model_type, template_kwargs)
        if choice is None or not choice.overridden:
            super().__init__(*args, hf_model_type=hf_model_type, **kwargs)
            return
        # verl's pick cannot be built for this tokenizer: let verl build its generic builder, then use ours.
        super().__init__(*args, hf_model_type=None, **kwargs)
        self.continuous_token_builder = create_builder(tokenizer, choice, self.apply_chat_template_kwargs)
        _log_override_once(hf_model_type, choice)

    async def ct_build_initial_tokens(self, messages: list[dict], *args: Any, **kwargs: Any) -> list[int]:
        prompt_ids = await super().ct_build_initial_tokens(messages, *args, **kwargs)
        return await self.loop.run_in_executor(None, self._finish_prompt, list(prompt_ids))

    def edit_prompt_text(self, prompt_text: str) -> str:
        return reopen_think(prompt_text)

    def _finish_prompt(self, prompt_ids: list[int]) -> list[int]:
        prompt_text = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        new_text = self.edit_prompt_text(prompt_text)
        if new_text == prompt_text:
            return prompt_ids
        ids = retokenize(self.tokenizer, prompt_ids, new_text)
        limit = int(self.rollout_config.prompt_length)
        if len(ids) > limit:
            # Left-truncating (verl's default for text prompts) would cut the problem, not the plan.
            raise ValueError(
                f"prompt with the plan sentence has {len(ids)} tokens > rollout.prompt_length={limit}; keep "
                "data.filter_overlong_prompts=true (LapoDataset leaves room for the plan) or raise data.max_prompt_length"
            )
        return ids


_LOGGED: set = set()


def _log_override_once(hf_model_type: str | None, choice: Any) -> None:
    key = (hf_model_type, choice.family)
    if key in _LOGGED:
        return
    _LOGGED.add(key)
    logger.warning(
        "[lapo] continuous-token builder %r instead of verl's %r (model_type=%r): %s",
        choice.family, choice.verl_family, hf_model_type, choice.verl_error,
    )


class LapoPlanAgentLoop(LapoSingleTurnAgentLoop):
    """Single-turn loop that writes the row's plan into the reasoning context (LAPO stage 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lapo = lapo_config.load(self.config, where="the agent loop's config (lapo)")
        self.plan_template = lapo.stage2.plan_template
        self.plan_range_width = lapo.stage2.plan_range_width
        self.plan_position = lapo.stage2.plan_position
        self.plan_in_prompt = lapo.stage2.plan_in_prompt
        self.update_plans = lapo.stage == 2 and lapo.stage2.update_plans  # paper Eq. 8 (lapo_verl/plan_updates.py)
        self.run_dir = lapo.run_dir  # names the run's plan board
        self._plan: int | None = None

    async def current_plan(self, kwargs: dict[str, Any]) -> int | None:
        """The row's plan; with ``update_plans`` (training rows) the Eq. 8 plan of this step from the trainer's
        table (:func:`lapo_verl.plan_updates.plan_table_for_step`: fails when that table is not there)."""
        plan = kwargs.get(PLAN_COLUMN)
        if plan is None or not self.update_plans or not kwargs.get(RECORD_COLUMN):
            return None if plan is None else int(plan)
        if kwargs.get("global_steps") is None:
            raise ValueError("lapo.stage2.update_plans=true needs verl's V1 trainer (trainer.use_v1=true), which "
                             "passes global_steps to the agent loop")
        from lapo_verl.plan_updates import plan_table_for_step

        table = await plan_table_for_step(self.run_dir, int(kwargs["global_steps"]))
        # a problem with no plan in the table is unsolved: its row carries the fallback (the maximum length)
        return int(table.get(str(kwargs[PROBLEM_ID_COLUMN]), plan))

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs: Any):
        from lapo_verl.plan_updates import STATED_PLAN_FIELD

        plan = await self.current_plan(kwargs)
        self._plan = plan if plan is not None and self.plan_in_prompt else None
        output = await super().run(sampling_params, priority=priority, **kwargs)
        if plan is not None:  # the plan of this rollout travels with it to the reward and the trainer
            for out in output if isinstance(output, list) else [output]:
                out.extra_fields = {**out.extra_fields, STATED_PLAN_FIELD: int(plan)}
        return output

    def plan_sentence(self, plan: int) -> str:
        """The sentence that states ``plan`` (a range with ``lapo.stage2.plan_range_width > 0``)."""
        return render_plan_sentence(plan, self.plan_template, self.plan_range_width)

    def edit_prompt_text(self, prompt_text: str) -> str:
        if self._plan is None:
            return super().edit_prompt_text(prompt_text)
        return prompt_with_plan(prompt_text, self.plan_sentence(self._plan), self.plan_position)
