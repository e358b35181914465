r"""Prompt formats used by LAPO, as constants and small pure functions.

Two prompt styles are offered (see ``/work/shared/lapo-method.md``, "Prompt format"):

* ``"chat"`` (default for users): one user message, ``problem + " " + CHAT_INSTRUCTION``. The
  model's own chat template is applied by verl's agent loop (DeepSeek-R1-Distill's template
  already opens ``<think>``).
* ``"paper"`` (reproduction): a system message with :data:`PAPER_SYSTEM_PROMPT` and a user
  message ``problem + " " + PAPER_INSTRUCTION``. Rendered with :data:`PAPER_CHAT_TEMPLATE`
  (pass it as ``data.apply_chat_template_kwargs.chat_template``; verl forwards these kwargs to
  ``tokenizer.apply_chat_template``) the prompt is the paper's raw text::

      {PAPER_SYSTEM_PROMPT} User: {problem} Please think step by step and output the final answer within \boxed{}. Assistant: <think>

Stage 2 puts the plan sentence (:func:`render_plan`) right after the generation prompt, i.e.
inside the reasoning; the agent loop does that, not the dataset.

>>> render_plan(512)
'I will answer the question with 512 tokens.'
>>> paper_prompt("What is 1+1?")[-52:]
'the final answer within \\boxed{}. Assistant: <think>'
"""

from __future__ import annotations


__all__ = [
    "PAPER_SYSTEM_PROMPT",
    "PAPER_INSTRUCTION",
    "CHAT_INSTRUCTION",
    "PAPER_CHAT_TEMPLATE",
    "PLAN_TEMPLATE",
    "PROMPT_STYLES",
    "build_messages",
    "paper_prompt",
    "paper_plan_prompt",
    "render_plan",
    "generation_prompt_opens_think",
]

# The paper's prompt (LAPO, arXiv 2507.15758 v2, App. A.1), verbatim: this system text, then
# "User: {question} <PAPER_INSTRUCTION> Assistant: <think>", all on one line joined by single spaces.
# Keep it byte-stable: it is part of every paper-style prompt (tests compare it character for character).
PAPER_SYSTEM_PROMPT = (
    "You are a helpful assistant. A conversation between User and Assistant. The user asks a question, and "
    "the Assistant solves it. The Assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. The reasoning process is enclosed within <think> and </think> tags, "
    "respectively, i.e., <think> reasoning process here </think> answer here."
)

# The instruction the paper appends to every problem (paper style).
PAPER_INSTRUCTION = "Please think step by step and output the final answer within \\boxed{}."

# The common DeepScaleR / R1-Distill instruction (chat style).
CHAT_INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}."

PROMPT_STYLES = ("chat", "paper")

# Jinja chat template that renders [system?, user] messages into the paper's raw format:
#   "<system> User: <user content> Assistant: <think>"
# Parts are joined by single spaces. ``add_generation_prompt`` appends "Assistant: <think>".
# A completed assistant turn renders as "Assistant: <content>" (content is expected to start
# inside the reasoning, as the model generates it after "<think>"), followed by the EOS token.
# If the tokenizer has a BOS token it is emitted first: that is what tokenizing the raw text with
# the tokenizer's default special tokens gives (R1-Distill/Llama-style tokenizers add BOS;
# Qwen2.5 has none), because apply_chat_template itself adds no special tokens.
PAPER_CHAT_TEMPLATE = (
    "{%- if bos_token is defined and bos_token %}{{ bos_token }}{% endif -%}"
    "{%- set ns = namespace(parts=[]) -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- set ns.parts = ns.parts + [message['content']] -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{%- set ns.parts = ns.parts + ['User: ' + message['content']] -%}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{%- set ns.parts = ns.parts + ['Assistant: ' + message['content'] + "
    "(eos_token if eos_token is defined and eos_token else '')] -%}"
    "{%- else -%}"
    "{{ raise_exception('the LAPO paper template supports only system, user and assistant roles, got ' "
    "+ message['role']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{%- set ns.parts = ns.parts + ['Assistant: <think>'] -%}"
    "{%- endif -%}"
    "{{ ns.parts | join(' ') }}"
)

# The stage-2 plan sentence (the paper: "I will answer the question with {length} tokens.").
# the plan sentence and everything about its text: lapo_verl.plan_text (re-exported here)
from lapo_verl.plan_text import PLAN_TEMPLATE, generation_prompt_opens_think, render_plan  # noqa: E402,F401


def build_messages(problem: str, *, style: str = "chat") -> list[dict[str, str]]:
    r"""Messages for one problem, in verl's ``prompt`` column format.

    Args:
        problem: the problem text (stripped of surrounding whitespace here).
        style: ``"chat"`` (one user message with :data:`CHAT_INSTRUCTION`) or ``"paper"`` (system
            message :data:`PAPER_SYSTEM_PROMPT` + user message with :data:`PAPER_INSTRUCTION`).

    >>> build_messages("What is 1+1?")
    [{'role': 'user', 'content': "What is 1+1? Let's think step by step and output the final answer within \\boxed{}."}]
    >>> [m["role"] for m in build_messages("What is 1+1?", style="paper")]
    ['system', 'user']
    """
    if not isinstance(problem, str) or not problem.strip():
        raise ValueError(f"problem must be a non-empty string, got {problem!r}")
    if style == "chat":
        return [{"role": "user", "content": f"{problem.strip()} {CHAT_INSTRUCTION}"}]
    if style == "paper":
        return [
            {"role": "system", "content": PAPER_SYSTEM_PROMPT},
            {"role": "user", "content": f"{problem.strip()} {PAPER_INSTRUCTION}"},
        ]
    raise ValueError(f"style must be one of {PROMPT_STYLES}, got {style!r}")


def paper_prompt(problem: str) -> str:
    """The paper's raw prompt text for ``problem`` (what :data:`PAPER_CHAT_TEMPLATE` renders for
    ``build_messages(problem, style="paper")`` with ``add_generation_prompt=True``, without BOS)."""
    system, user = build_messages(problem, style="paper")
    return f"{system['content']} User: {user['content']} Assistant: <think>"


def paper_plan_prompt(problem: str, n: int, template: str = PLAN_TEMPLATE) -> str:
    """LAPO-I's prompt in the paper's raw format (App. A.1): :func:`paper_prompt` + one space + the plan
    sentence, nothing after it. This is what the stage-2 agent loop sends for paper-style rows.

    >>> paper_plan_prompt("What is 1+1?", 42)[-61:]
    'Assistant: <think> I will answer the question with 42 tokens.'
    """
    return f"{paper_prompt(problem)} {render_plan(n, template)}"
