"""Prompt formats: the paper's raw string, the chat template that renders it, plans."""

from __future__ import annotations

import numpy as np
import pytest

from prep_fixtures import tiny_tokenizer

from lapo_verl.prompts import (
    CHAT_INSTRUCTION,
    PAPER_CHAT_TEMPLATE,
    PAPER_INSTRUCTION,
    PAPER_SYSTEM_PROMPT,
    PLAN_TEMPLATE,
    build_messages,
    generation_prompt_opens_think,
    paper_plan_prompt,
    paper_prompt,
    render_plan,
)

PROBLEM = r"Find $x$ such that $\lceil x \rceil + x = \dfrac{23}{7}$."

# The paper's raw prompt, written out by hand (not built from the constants under test).
EXPECTED_PAPER = (
    "You are a helpful assistant. A conversation between User and Assistant. The user asks a question, and the "
    "Assistant solves it. The Assistant first thinks about the reasoning process in the mind and then provides the "
    "user with the answer. The reasoning process is enclosed within <think> and </think> tags, respectively, i.e., "
    "<think> reasoning process here </think> answer here. "
    r"User: Find $x$ such that $\lceil x \rceil + x = \dfrac{23}{7}$. Please think step by step and output the "
    r"final answer within \boxed{}. Assistant: <think>"
)
# LAPO-I (App. A.1): the LAPO-D prompt + " I will answer the question with {length} tokens." and nothing after.
EXPECTED_PAPER_I = EXPECTED_PAPER + " I will answer the question with 321 tokens."


def test_paper_prompt_is_the_exact_paper_string():
    assert paper_prompt(PROBLEM) == EXPECTED_PAPER
    assert PAPER_INSTRUCTION == r"Please think step by step and output the final answer within \boxed{}."
    assert PAPER_SYSTEM_PROMPT.startswith("You are a helpful assistant. A conversation between User and Assistant.")
    assert "\n" not in EXPECTED_PAPER and "  " not in EXPECTED_PAPER and "<answer>" not in EXPECTED_PAPER
    assert paper_plan_prompt(PROBLEM, 321) == EXPECTED_PAPER_I


def test_chat_template_renders_the_exact_paper_string_with_a_real_tokenizer():
    tokenizer = tiny_tokenizer(corpus=(EXPECTED_PAPER,))
    text = tokenizer.apply_chat_template(
        build_messages(PROBLEM, style="paper"), add_generation_prompt=True, tokenize=False,
        chat_template=PAPER_CHAT_TEMPLATE,
    )
    assert text == EXPECTED_PAPER
    # Tokenized through the same path verl uses, it decodes back to the same text.
    ids = tokenizer.apply_chat_template(
        build_messages(PROBLEM, style="paper"), add_generation_prompt=True, tokenize=True,
        chat_template=PAPER_CHAT_TEMPLATE,
    )
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert tokenizer.decode(ids) == EXPECTED_PAPER


def test_chat_template_without_generation_prompt_and_with_bos_and_assistant_turn():
    tokenizer = tiny_tokenizer(bos="<s>", eos="</s>")
    messages = build_messages(PROBLEM, style="paper")
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                         chat_template=PAPER_CHAT_TEMPLATE)
    assert text == "<s>" + EXPECTED_PAPER  # what tokenizing the raw text with a BOS-adding tokenizer gives
    no_gen = tokenizer.apply_chat_template(messages, add_generation_prompt=False, tokenize=False,
                                           chat_template=PAPER_CHAT_TEMPLATE)
    assert no_gen == "<s>" + EXPECTED_PAPER[: -len(" Assistant: <think>")]
    turn = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": "x </think> 2"}],
                                         tokenize=False, chat_template=PAPER_CHAT_TEMPLATE)
    assert turn.endswith(" Assistant: x </think> 2</s>")
    # Without a system message (chat-style messages) the template still renders the User/Assistant frame.
    plain = tokenizer.apply_chat_template([{"role": "user", "content": "Q"}], add_generation_prompt=True,
                                          tokenize=False, chat_template=PAPER_CHAT_TEMPLATE)
    assert plain == "<s>User: Q Assistant: <think>"


def test_chat_template_rejects_unknown_roles():
    tokenizer = tiny_tokenizer()
    with pytest.raises(Exception, match="system, user and assistant"):
        tokenizer.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False,
                                      chat_template=PAPER_CHAT_TEMPLATE)


def test_build_messages_styles():
    assert build_messages("  What is 1+1?\n") == [
        {"role": "user", "content": "What is 1+1? Let's think step by step and output the final answer within \\boxed{}."}
    ]
    assert CHAT_INSTRUCTION.startswith("Let's think step by step")
    system, user = build_messages("What is 1+1?", style="paper")
    assert system == {"role": "system", "content": PAPER_SYSTEM_PROMPT}
    assert user["content"] == "What is 1+1? " + PAPER_INSTRUCTION
    with pytest.raises(ValueError, match="style"):
        build_messages("x", style="r1")
    with pytest.raises(ValueError, match="non-empty"):
        build_messages("   ")


def test_render_plan():
    assert PLAN_TEMPLATE == "I will answer the question with {n} tokens."
    assert render_plan(1024) == "I will answer the question with 1024 tokens."
    assert render_plan(np.int64(7)) == "I will answer the question with 7 tokens."
    assert render_plan(5, "<{n}> {keep}") == "<5> {keep}"
    for bad in (0, -3, 2.0, 2.5, True, "12", None):
        with pytest.raises(ValueError, match="positive integer"):
            render_plan(bad)
    with pytest.raises(ValueError, match=r"\{n\}"):
        render_plan(3, "no placeholder")


QWEN_LIKE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
R1_LIKE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}<｜User｜>{{ m['content'] }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
)


def test_generation_prompt_opens_think():
    tokenizer = tiny_tokenizer(bos="<s>")
    assert generation_prompt_opens_think(tokenizer, chat_template=PAPER_CHAT_TEMPLATE)
    assert generation_prompt_opens_think(tokenizer, chat_template=R1_LIKE)
    assert not generation_prompt_opens_think(tokenizer, chat_template=QWEN_LIKE)
    tokenizer.chat_template = R1_LIKE  # the tokenizer's own template is used when none is passed
    assert generation_prompt_opens_think(tokenizer)


def test_doctests_of_prompt_and_data_modules():
    import doctest

    import lapo_verl.data.prepare
    import lapo_verl.data.schema
    import lapo_verl.prompts

    for module in (lapo_verl.prompts, lapo_verl.data.schema, lapo_verl.data.prepare):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__
