"""The plan sentence of LAPO stage 2, in one place: its text, where it goes in a prompt, how it is read back.

* :func:`render_plan` -- ``"I will answer the question with {n} tokens."`` for a planned length n, or a
  range plan (``lapo.stage2.plan_range_width > 0``: ``{lo}``/``{hi}`` from :func:`lapo_verl.rewards.plan_range`);
* :func:`check_plan_template` -- the start-up check of ``lapo.stage2.plan_template`` against the width;
* :func:`prompt_with_plan` -- a rendered prompt with the sentence inside the open reasoning block (or before
  it, the ablation), reopening a closed empty ``<think></think>`` first (:func:`reopen_think`);
* :func:`plan_sentence_tokens` -- token count of the longest sentence a run can state (prompt room);
* :func:`plan_regex` / :func:`find_plan` -- reading a stated plan back from a model's output;
* :func:`prompt_opens_reasoning` / :func:`generation_prompt_opens_think` -- does a prompt end inside an
  open ``<think>`` (then an answer counts only after ``</think>``)?

Pure text functions (no verl, no torch): the dataset, the agent loops, the reward managers, the evaluation,
the doctor and the replica all use these.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable
from typing import Any

from lapo_verl.rewards import PLAN_RANGE_WIDTH, plan_range

__all__ = [
    "PLAN_TEMPLATE",
    "RANGE_PLAN_TEMPLATE",
    "PLAN_POSITIONS",
    "THINK_OPEN",
    "THINK_CLOSE",
    "render_plan",
    "check_plan_template",
    "reopen_think",
    "prompt_with_plan",
    "plan_sentence_tokens",
    "plan_regex",
    "find_plan",
    "prompt_opens_reasoning",
    "generation_prompt_opens_think",
]

PLAN_TEMPLATE = "I will answer the question with {n} tokens."
#: the sentence of the range ablation (``+recipe=lapo_stage2_range``; lapo-verl's wording, not the paper's)
RANGE_PLAN_TEMPLATE = "I will answer the question with between {lo} and {hi} tokens."
PLAN_POSITIONS = ("in_think", "before_think")
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_THINK_TAIL = re.compile(r"<think>\s*\Z")
_CLOSED_EMPTY_THINK = re.compile(r"<think>(\s*)</think>\s*\Z")


def check_plan_template(template: Any, width: float = PLAN_RANGE_WIDTH,
                        name: str = "lapo.stage2.plan_template") -> str:
    """``template`` if it can state a plan of this ``width``: ``{n}`` (the plan) or both ``{lo}`` and ``{hi}``
    (the range); a range plan (``width > 0``) needs ``{lo}`` and ``{hi}``.

    >>> check_plan_template(RANGE_PLAN_TEMPLATE, 0.1) == RANGE_PLAN_TEMPLATE
    True
    >>> check_plan_template(PLAN_TEMPLATE, 0.1)
    Traceback (most recent call last):
    ...
    ValueError: lapo.stage2.plan_template must contain '{lo}' and '{hi}' when lapo.stage2.plan_range_width=0.1 (a range plan), e.g. 'I will answer the question with between {lo} and {hi} tokens.'; got 'I will answer the question with {n} tokens.'
    """
    if not isinstance(template, str):
        raise ValueError(f"{name} must be a string, got {template!r}")
    has_range = "{lo}" in template and "{hi}" in template
    if width and not has_range:
        raise ValueError(f"{name} must contain '{{lo}}' and '{{hi}}' when lapo.stage2.plan_range_width={width} "
                         f"(a range plan), e.g. {RANGE_PLAN_TEMPLATE!r}; got {template!r}")
    if "{n}" not in template and not has_range:
        raise ValueError(f"{name} must contain '{{n}}' (or '{{lo}}' and '{{hi}}' for a range plan), got {template!r}")
    return template


def render_plan(n: int, template: str = PLAN_TEMPLATE, width: float = PLAN_RANGE_WIDTH) -> str:
    """The plan sentence for a budget of ``n`` tokens.

    Args:
        n: planned length in tokens; a positive integer (``bool`` and non-integral numbers are rejected).
        template: text containing the placeholder ``{n}`` and/or ``{lo}`` and ``{hi}`` (the range
            ``plan_range(n, width)``); other braces are left untouched.
        width: relative half-width of a range plan (``lapo.stage2.plan_range_width``); 0 = the paper's plan.

    >>> render_plan(3)
    'I will answer the question with 3 tokens.'
    >>> render_plan(7, "Budget: {n} tokens. {not a field}")
    'Budget: 7 tokens. {not a field}'
    >>> render_plan(2000, RANGE_PLAN_TEMPLATE, 0.1)
    'I will answer the question with between 1800 and 2200 tokens.'
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or int(n) <= 0:
        raise ValueError(f"plan length n must be a positive integer, got {n!r}")
    check_plan_template(template, width, name="plan template")
    text = template.replace("{n}", str(int(n)))
    if "{lo}" in template and "{hi}" in template:
        lo, hi = plan_range(int(n), width)
        text = text.replace("{lo}", str(lo)).replace("{hi}", str(hi))
    return text


def reopen_think(prompt_text: str) -> str:
    """A generation prompt ending in an empty, closed reasoning block gets it reopened.

    >>> reopen_think("<｜Assistant｜><think>\\n</think>")
    '<｜Assistant｜><think>\\n'
    >>> reopen_think("<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n")
    '<|im_start|>assistant\\n<think>\\n\\n'
    >>> reopen_think("Assistant: <think>")
    'Assistant: <think>'
    """
    match = _CLOSED_EMPTY_THINK.search(prompt_text)
    if not match:
        return prompt_text
    return prompt_text[: match.start()] + THINK_OPEN + match.group(1)


def prompt_with_plan(prompt_text: str, sentence: str, position: str = "in_think") -> str:
    """``prompt_text`` (rendered with the generation prompt) with ``sentence`` in the reasoning context.

    A closed empty ``<think></think>`` at the end is reopened first (:func:`reopen_think`), so the sentence
    always lands inside one open ``<think>``.

    >>> prompt_with_plan("Assistant: <think>", "I plan.")          # the paper's raw format
    'Assistant: <think> I plan.'
    >>> prompt_with_plan("<｜Assistant｜><think>\\n", "I plan.")
    '<｜Assistant｜><think>\\nI plan.\\n'
    >>> prompt_with_plan("<｜Assistant｜><think>\\n</think>", "I plan.")
    '<｜Assistant｜><think>\\nI plan.\\n'
    >>> prompt_with_plan("<|im_start|>assistant\\n", "I plan.")
    '<|im_start|>assistant\\n<think>\\nI plan.\\n'
    >>> prompt_with_plan("<｜Assistant｜><think>\\n", "I plan.", "before_think")
    '<｜Assistant｜>I plan.\\n<think>\\n'
    >>> prompt_with_plan("Assistant: <think>", "I plan.", "before_think")
    'Assistant: I plan. <think>'
    """
    if position not in PLAN_POSITIONS:
        raise ValueError(f"lapo.stage2.plan_position must be one of {PLAN_POSITIONS}, got {position!r}")
    text = reopen_think(prompt_text)
    match = _THINK_TAIL.search(text)
    if position == "in_think":
        if not match:
            return f"{text}{THINK_OPEN}\n{sentence}\n"
        if text.endswith(THINK_OPEN):
            return f"{text} {sentence}"
        return f"{text}{sentence}\n"
    if not match:
        return f"{text}{sentence}\n{THINK_OPEN}\n"
    tail = match.group(0)
    return f"{text[: match.start()]}{sentence}{' ' if tail == THINK_OPEN else chr(10)}{tail}"


def plan_sentence_tokens(tokenizer: Any, plans: Iterable[int], template: str = PLAN_TEMPLATE,
                         width: float = PLAN_RANGE_WIDTH) -> int:
    """Tokens of the longest plan sentence for ``plans`` (the one with the most characters: the most digits),
    for prompt room."""
    longest = max((render_plan(int(n), template, width) for n in plans), key=len)
    return len(tokenizer.encode(longest, add_special_tokens=False))


def plan_regex(template: str | None = None) -> re.Pattern[str]:
    """A regex for the plan sentence, built from ``PLAN_TEMPLATE`` (``{n}`` -> an integer).

    Whitespace in the template matches any run of whitespace; matching is case-insensitive; the
    number may contain thousands separators (``1,024``).
    """
    if template is None:
        template = PLAN_TEMPLATE
    if "{n}" not in template:
        raise ValueError(f"plan template must contain '{{n}}': {template!r}")
    before, after = template.split("{n}", 1)

    def part(text: str) -> str:
        pieces = [re.escape(p) for p in re.split(r"\s+", text.strip())]
        core = r"\s+".join(p for p in pieces if p)
        lead = r"\s*" if text[:1].isspace() or not text.strip() else ""
        trail = r"\s*" if text[-1:].isspace() or not text.strip() else ""
        return lead + core + trail

    pattern = part(before) + r"(\d{1,3}(?:,\d{3})+|\d+)" + part(after)
    return re.compile(pattern, re.IGNORECASE)


_PLAN_RE: re.Pattern[str] | None = None
_LEAD_RE = re.compile(r"\A\s*(?:<think>)?\s*")


def find_plan(response: str, pattern: re.Pattern[str] | None = None) -> tuple[int | None, bool]:
    """``(stated tokens, stated at the start)`` for the first plan sentence in ``response``.

    "At the start" means only whitespace (and an optional ``<think>``) precedes it.
    """
    global _PLAN_RE
    if pattern is None:
        if _PLAN_RE is None:
            _PLAN_RE = plan_regex()
        pattern = _PLAN_RE
    m = pattern.search(response or "")
    if not m:
        return None, False
    n = int(m.group(1).replace(",", ""))
    at_start = _LEAD_RE.match(response).end() == m.start()
    return n, at_start


def prompt_opens_reasoning(prompt_tail_text: str) -> bool:
    """True when the prompt ends inside an unclosed ``<think>`` (R1 templates, the paper format, stage-2
    plans): the response then holds only the rest of the reasoning, and an answer counts only after the
    model closes it with ``</think>`` (``reasoning_prefilled``)."""
    start = prompt_tail_text.rfind(THINK_OPEN)
    return start >= 0 and THINK_CLOSE not in prompt_tail_text[start:]


_OPENS_THINK = re.compile(r"<think>\n?\Z")


def generation_prompt_opens_think(tokenizer: Any, **chat_template_kwargs: Any) -> bool:
    """Whether ``tokenizer``'s chat template (with ``add_generation_prompt=True``) ends the prompt
    with ``<think>`` (optionally followed by one newline), i.e. the response starts inside the
    reasoning. Extra keyword arguments (e.g. verl's ``data.apply_chat_template_kwargs``, such as
    ``chat_template=PAPER_CHAT_TEMPLATE``) are passed to ``apply_chat_template``.
    """
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 1+1?"}],
        add_generation_prompt=True,
        tokenize=False,
        **chat_template_kwargs,
    )
    if not isinstance(text, str):  # defensive: some processors return a list for batched input
        text = text[0] if isinstance(text, list) and text and isinstance(text[0], str) else str(text)
    return bool(_OPENS_THINK.search(text))
