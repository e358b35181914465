"""Stage-2 agent loop: the plan sentence inside the model's reasoning context.

Registered through ``actor_rollout_ref.rollout.agent.agent_loop_config_path`` (the packaged
``resources/agent_loops.yaml``) and selected with ``agent.default_agent_loop=lapo_plan_agent``; imported
lazily by verl's agent-loop workers, never at ``import verl`` time.

verl's single-turn loop renders the chat template with the generation prompt; this loop then appends
the row's plan, ``I will answer the question with {n} tokens.``, so the server receives it as the start
of the assistant's reasoning. It is prompt text: not trained on and not counted in the response length.

* template whose generation prompt opens ``<think>`` (DeepSeek-R1-Distill, the paper's raw format):
  ``...<｜Assistant｜><think>\\n`` + ``I will answer the question with 734 tokens.\\n``
* template that does not (Qwen2.5-Instruct): the loop opens the reasoning itself:
  ``...<|im_start|>assistant\\n`` + ``<think>\\nI will answer the question with 734 tokens.\\n``
* ``lapo.stage2.plan_position=before_think`` (paper ablation): the sentence goes before ``<think>``.

Rows without a plan (validation of the internalized model) are left untouched.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

from lapo_verl import config as lapo_config
from lapo_verl.data.columns import PLAN_COLUMN

logger = logging.getLogger(__name__)

DEFAULT_PLAN_TEMPLATE = "I will answer the question with {n} tokens."
THINK_OPEN = "<think>"
PLAN_POSITIONS = ("in_think", "before_think")
_THINK_TAIL = re.compile(r"<think>\s*$")


def render_plan_sentence(plan: int, template: str = DEFAULT_PLAN_TEMPLATE) -> str:
    plan = int(plan)
    if plan <= 0:
        raise ValueError(f"plan must be a positive number of tokens, got {plan}")
    if "{n}" not in template:
        raise ValueError(f"lapo.stage2.plan_template must contain '{{n}}', got {template!r}")
    return template.format(n=plan)


def plan_insertion(prompt_text: str, sentence: str, position: str = "in_think") -> tuple[str, str]:
    """How to put ``sentence`` into a rendered prompt: returns ``(tail_to_remove, text_to_append)``.

    ``prompt_text`` is the chat template's output with the generation prompt. The result keeps every
    character of the prompt except ``tail_to_remove`` (only for ``before_think``).

    >>> plan_insertion("<｜Assistant｜><think>\\n", "I plan.")
    ('', 'I plan.\\n')
    >>> plan_insertion("<|im_start|>assistant\\n", "I plan.")
    ('', '<think>\\nI plan.\\n')
    >>> plan_insertion("Assistant: <think>", "I plan.")
    ('', '\\nI plan.\\n')
    >>> plan_insertion("<｜Assistant｜><think>\\n", "I plan.", "before_think")
    ('<think>\\n', 'I plan.\\n<think>\\n')
    """
    if position not in PLAN_POSITIONS:
        raise ValueError(f"lapo.stage2.plan_position must be one of {PLAN_POSITIONS}, got {position!r}")
    match = _THINK_TAIL.search(prompt_text)
    if position == "in_think":
        if match:
            separator = "" if prompt_text[-1:].isspace() else "\n"
            return "", f"{separator}{sentence}\n"
        return "", f"{THINK_OPEN}\n{sentence}\n"
    if match:
        tail = match.group(0)
        return tail, f"{sentence}\n{tail if tail.endswith(chr(10)) else tail + chr(10)}"
    return "", f"{sentence}\n{THINK_OPEN}\n"


class LapoPlanAgentLoop(SingleTurnAgentLoop):
    """Single-turn loop that writes the row's plan into the reasoning context (LAPO stage 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        lapo = self.config.get("lapo") or {}
        self.plan_template = str(lapo_config.get(lapo, "stage2.plan_template", DEFAULT_PLAN_TEMPLATE))
        self.plan_position = str(lapo_config.get(lapo, "stage2.plan_position", "in_think"))
        self.plan_in_prompt = bool(lapo_config.get(lapo, "stage2.plan_in_prompt", True))
        self._plan: int | None = None

    async def run(self, sampling_params: dict[str, Any], priority: int = 0, **kwargs: Any):
        plan = kwargs.get(PLAN_COLUMN)
        self._plan = int(plan) if plan is not None and self.plan_in_prompt else None
        return await super().run(sampling_params, priority=priority, **kwargs)

    async def ct_build_initial_tokens(self, messages: list[dict], *args: Any, **kwargs: Any) -> list[int]:
        prompt_ids = await super().ct_build_initial_tokens(messages, *args, **kwargs)
        if self._plan is None:
            return prompt_ids
        return await self.loop.run_in_executor(None, self._with_plan, list(prompt_ids), messages)

    def plan_sentence(self, plan: int) -> str:
        """The sentence that states ``plan`` (ablations override this, e.g. with a range)."""
        return render_plan_sentence(plan, self.plan_template)

    def _with_plan(self, prompt_ids: list[int], messages: list[dict]) -> list[int]:
        sentence = self.plan_sentence(self._plan)
        prompt_text = self.tokenizer.decode(prompt_ids, skip_special_tokens=False)
        tail, addition = plan_insertion(prompt_text, sentence, self.plan_position)
        if tail:
            # before_think ablation: re-tokenise the edited text (the tail's ids may not be separable)
            ids = self.tokenizer.encode(prompt_text[: -len(tail)] + addition, add_special_tokens=False)
        else:
            ids = prompt_ids + self.tokenizer.encode(addition, add_special_tokens=False)
        limit = int(self.rollout_config.prompt_length)
        if len(ids) > limit:
            # Left-truncating (verl's default for text prompts) would cut the problem, not the plan.
            raise ValueError(
                f"prompt with the plan sentence has {len(ids)} tokens > rollout.prompt_length={limit}; keep "
                "data.filter_overlong_prompts=true (LapoDataset leaves room for the plan) or raise data.max_prompt_length"
            )
        return ids
