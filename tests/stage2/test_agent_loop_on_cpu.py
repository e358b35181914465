"""The plan sentence reaches the rollout server inside the reasoning context, for both template families.

verl's real SingleTurnAgentLoop machinery (continuous-token builder, prompt capping, output assembly)
runs; only the rollout server is a fake that records the prompt ids it receives.
"""

import pytest

from lapo_test_utils.agent_loops import run_loop as _run_loop
from lapo_test_utils.agent_loops import template_ids
from lapo_verl.data.columns import PLAN_COLUMN
from lapo_verl.verl_ext.agent_loop import prompt_with_plan, render_plan_sentence


def run_loop(model_dir, tmp_path, row_extra, *overrides, prompt_length=512, hf_model_type="config"):
    """``hf_model_type`` comes from the model directory's config.json (``qwen2`` for every fixture), as in verl."""
    tok, server, out, reply, _ = _run_loop(model_dir, tmp_path, row_extra, *overrides, prompt_length=prompt_length,
                                           hf_model_type=hf_model_type)
    return tok, server, out, reply


def base_prompt_ids(tok):
    return template_ids(tok)


def test_r1_template_plan_right_after_think(r1_tok_dir, tmp_path):
    tok, server, out, reply = run_loop(r1_tok_dir, tmp_path, {PLAN_COLUMN: 734})
    base = base_prompt_ids(tok)
    assert tok.decode(base).endswith("<｜Assistant｜><think>\n")  # R1-Distill opens the reasoning itself
    plan_ids = tok.encode("I will answer the question with 734 tokens.\n", add_special_tokens=False)
    assert server.prompts == [base + plan_ids]
    # the exact ids the server received for the sentence (Qwen2 BPE shared by R1-Distill)
    assert plan_ids == [40, 686, 4226, 279, 3405, 448, 220, 22, 18, 19, 11211, 624]
    assert tok.decode(server.prompts[0]).endswith("<think>\nI will answer the question with 734 tokens.\n")
    # part of the prompt: not in the response, not trained on
    assert list(out.prompt_ids) == server.prompts[0]
    assert list(out.response_ids) == reply and len(out.response_mask) == len(reply)


def test_qwen25_template_opens_think_then_plan(qwen_tok_dir, tmp_path):
    tok, server, out, reply = run_loop(qwen_tok_dir, tmp_path, {PLAN_COLUMN: 45})
    base = base_prompt_ids(tok)
    assert tok.decode(base).endswith("<|im_start|>assistant\n")  # no <think> in the generation prompt
    extra = tok.encode("<think>\nI will answer the question with 45 tokens.\n", add_special_tokens=False)
    assert server.prompts == [base + extra]
    assert extra[:3] == tok.encode("<think>\n", add_special_tokens=False)
    assert list(out.prompt_ids) == server.prompts[0]
    assert list(out.response_ids) == reply


def test_row_without_plan_is_untouched(r1_tok_dir, tmp_path):
    tok, server, _, _ = run_loop(r1_tok_dir, tmp_path, {})
    assert server.prompts == [base_prompt_ids(tok)]


def test_implicit_ablation_sends_no_sentence(r1_tok_dir, tmp_path):
    tok, server, _, _ = run_loop(r1_tok_dir, tmp_path, {PLAN_COLUMN: 100}, "lapo.stage2.plan_in_prompt=false")
    assert server.prompts == [base_prompt_ids(tok)]


def test_before_think_ablation(r1_tok_dir, tmp_path):
    tok, server, _, _ = run_loop(r1_tok_dir, tmp_path, {PLAN_COLUMN: 100}, "lapo.stage2.plan_position=before_think")
    text = tok.decode(server.prompts[0])
    assert text.endswith("<｜Assistant｜>I will answer the question with 100 tokens.\n<think>\n")


def test_range_ablation_states_the_range(r1_tok_dir, tmp_path):
    """+recipe=lapo_stage2_range runs the stage-2 loop with lapo.stage2.plan_range_width=0.1: plan 735 -> [662, 809]
    (the bounds the reward uses); width 0 with the same template states the point, as plain stage 2 would."""
    tok, server, _, _ = _run_loop(r1_tok_dir, tmp_path, {PLAN_COLUMN: 735}, recipe="lapo_stage2_range")[:4]
    assert server.prompts == [base_prompt_ids(tok) + tok.encode(
        "I will answer the question with between 662 and 809 tokens.\n", add_special_tokens=False)]
    tok, server, _, _ = _run_loop(r1_tok_dir, tmp_path, {PLAN_COLUMN: 735}, "lapo.stage2.plan_range_width=0",
                                  recipe="lapo_stage2_range")[:4]
    assert tok.decode(server.prompts[0]).endswith("<think>\nI will answer the question with between 735 and 735 tokens.\n")


def test_too_long_with_plan_is_a_clear_error(r1_tok_dir, tmp_path):
    from transformers import AutoTokenizer

    n = len(base_prompt_ids(AutoTokenizer.from_pretrained(r1_tok_dir)))
    with pytest.raises(ValueError, match="rollout.prompt_length"):
        run_loop(r1_tok_dir, tmp_path, {PLAN_COLUMN: 100}, prompt_length=n + 3)


def test_prompt_with_plan_and_sentence_validation():
    assert prompt_with_plan("x<think>\n", "S") == "x<think>\nS\n"
    assert prompt_with_plan("x<think>", "S") == "x<think> S"  # paper raw format: one space, nothing after
    assert prompt_with_plan("x<think>\n</think>", "S") == "x<think>\nS\n"  # closed block reopened
    assert prompt_with_plan("x<think>\n\n</think>\n\n", "S") == "x<think>\n\nS\n"
    assert prompt_with_plan("x", "S") == "x<think>\nS\n"
    assert render_plan_sentence(12) == "I will answer the question with 12 tokens."
    with pytest.raises(ValueError):
        render_plan_sentence(0)
    with pytest.raises(ValueError):
        render_plan_sentence(5, "no placeholder")
    with pytest.raises(ValueError):
        prompt_with_plan("x", "S", "elsewhere")


def test_plan_text_doctests():
    """The plan-text functions the agent loops use (lapo_verl.plan_text), with their documented examples."""
    import doctest

    import lapo_verl.plan_text as mod

    result = doctest.testmod(mod)
    assert result.failed == 0 and result.attempted > 0
