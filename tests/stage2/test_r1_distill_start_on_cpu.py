"""The paper's base models start (issue 11, items 1-3): R1-Distill tokenizer under ``model_type: qwen2``.

verl 0.9.1 picks its Qwen continuous-token builder for ``model_type: qwen2`` and that builder requires
``<|im_end|>``, which the DeepSeek-R1-Distill tokenizer lacks. The fixture here is built like the real model
directory: the R1-Distill special tokens, the model's own chat template (``tests/data/r1-distill-qwen.jinja``)
and a ``config.json`` with ``model_type: qwen2``; ``hf_model_type`` is read from that file, as verl's
agent-loop worker does. Each loop is instantiated from the recipe's ``agent_loop_config_path`` entry.
"""

from __future__ import annotations

import json

import pytest

from lapo_test_utils.agent_loops import DATA, MESSAGES, model_type_of, run_loop, template_ids, with_template
from lapo_verl.data.columns import PLAN_COLUMN
from lapo_verl.prompts import PAPER_CHAT_TEMPLATE, build_messages, paper_plan_prompt, paper_prompt

R1_SPECIALS = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>"]
PLAN = "I will answer the question with 734 tokens."


@pytest.fixture(scope="module")
def r1_dir(r1_tok_dir, tmp_path_factory):
    return with_template(r1_tok_dir, tmp_path_factory.mktemp("r1") / "model", "r1-distill-qwen.jinja")


@pytest.fixture(scope="module")
def qwen_dir(qwen_tok_dir, tmp_path_factory):
    return with_template(qwen_tok_dir, tmp_path_factory.mktemp("qwen") / "model", "qwen2.5-instruct.jinja")


def test_fixture_is_an_r1_distill_directory(r1_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(r1_dir))
    assert model_type_of(r1_dir) == "qwen2"
    assert json.loads((r1_dir / "config.json").read_text())["model_type"] == "qwen2"
    assert tok.chat_template == (DATA / "r1-distill-qwen.jinja").read_text(encoding="utf-8")
    for token in R1_SPECIALS:  # each is one token of its own, spelled exactly
        ids = tok.encode(token, add_special_tokens=False)
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == token
    assert tok.bos_token == R1_SPECIALS[0] and tok.eos_token == R1_SPECIALS[1]
    assert tok.convert_tokens_to_ids("<|im_end|>") in (None, tok.unk_token_id)
    # verl's default kwargs ({}) leave the template's enable_thinking switch off: the block is closed
    assert tok.decode(template_ids(tok)).endswith("<｜Assistant｜><think>\n</think>")


def test_verl_single_turn_loop_fails_on_this_directory(r1_dir, tmp_path):
    """The crash the issue reports, reproduced with verl's own default loop (so the fixture is faithful)."""
    with pytest.raises(Exception, match="does not define required token '<\\|im_end\\|>'"):
        run_loop(r1_dir, tmp_path, {}, "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent",
                 "actor_rollout_ref.rollout.agent.agent_loop_config_path=null", recipe="lapo_stage1")




def test_stage1_default_loop_starts_and_sends_the_open_think_prompt(r1_dir, tmp_path):
    from verl.utils.tokenizer.continuous_token import DeepSeekContinuousTokenBuilder

    tok, server, out, reply, loop = run_loop(r1_dir, tmp_path, {}, recipe="lapo_stage1")
    assert type(loop).__name__ == "LapoSingleTurnAgentLoop"
    assert type(loop.continuous_token_builder) is DeepSeekContinuousTokenBuilder
    want = template_ids(tok, enable_thinking=True)  # ...<｜Assistant｜><think>\n : one open block
    assert tok.decode(want).endswith("<｜User｜>" + MESSAGES[0]["content"] + "<｜Assistant｜><think>\n")
    assert server.prompts == [want]
    assert want[0] == tok.bos_token_id and want[-2:] == [tok.convert_tokens_to_ids("<think>"), 198]
    assert list(out.prompt_ids) == want and list(out.response_ids) == reply


def test_stage2_plan_loop_starts_and_puts_the_plan_in_one_open_think(r1_dir, tmp_path):
    tok, server, out, reply, loop = run_loop(r1_dir, tmp_path, {PLAN_COLUMN: 734})
    assert type(loop).__name__ == "LapoPlanAgentLoop"
    want = template_ids(tok, enable_thinking=True) + tok.encode(PLAN + "\n", add_special_tokens=False)
    assert server.prompts == [want]
    text = tok.decode(want)
    assert text.endswith("<｜Assistant｜><think>\n" + PLAN + "\n")
    assert text.count("<think>") == 1 and "</think>" not in text
    assert list(out.prompt_ids) == want and list(out.response_ids) == reply


@pytest.mark.parametrize("template", sorted(p.name for p in DATA.glob("*.jinja")))
@pytest.mark.parametrize("kwargs", [{}, {"enable_thinking": True}, {"enable_thinking": False}])
@pytest.mark.parametrize("recipe,row", [("lapo_stage1", {}), ("lapo_stage2", {PLAN_COLUMN: 734})])
def test_every_shipped_template_gives_one_open_think(template, kwargs, recipe, row, r1_dir, qwen_dir, tmp_path):
    """Issue 11 item 2: never ``<think>\\n</think><think>``; the response (and the plan) start inside one
    open ``<think>``. Stage 1 with a template that opens no reasoning block is sent as verl renders it."""
    model_dir = r1_dir if template.startswith("r1") else qwen_dir
    tok, server, _, _, _ = run_loop(model_dir, tmp_path, row, recipe=recipe, chat_template_kwargs=kwargs)
    text = tok.decode(server.prompts[0])
    assert "</think>" not in text
    if recipe == "lapo_stage2":
        assert text.count("<think>") == 1 and text.endswith("<think>\n" + PLAN + "\n")
    elif template.startswith("r1"):
        assert text.count("<think>") == 1 and text.endswith("<think>\n")
    else:
        assert server.prompts[0] == template_ids(tok, **kwargs)


def test_paper_format_stage2_ids(r1_dir, tmp_path):
    """Paper App. A.1 format through the stage-2 loop: BOS + the paper's LAPO-I prompt, character for character."""
    problem = "What is 2+2?"
    messages = build_messages(problem, style="paper")
    tok, server, _, _, _ = run_loop(r1_dir, tmp_path, {PLAN_COLUMN: 321}, messages=messages,
                                    chat_template_kwargs={"chat_template": PAPER_CHAT_TEMPLATE})
    text = tok.bos_token + paper_plan_prompt(problem, 321)
    assert tok.decode(server.prompts[0]) == text
    assert text.endswith("Assistant: <think> I will answer the question with 321 tokens.")
    assert server.prompts[0] == tok.encode(text, add_special_tokens=False)
    tok, server, _, _, _ = run_loop(r1_dir, tmp_path, {}, recipe="lapo_stage1", messages=messages,
                                    chat_template_kwargs={"chat_template": PAPER_CHAT_TEMPLATE})
    assert tok.decode(server.prompts[0]) == tok.bos_token + paper_prompt(problem)


def test_doctor_model_reports_the_builder_problem_and_prints_ok(r1_dir, qwen_dir, tmp_path, capsys):
    from lapo_verl.doctor import main

    assert main(["--model", str(r1_dir)]) == 0
    out = capsys.readouterr().out
    assert "verl 0.9.1 alone would fail at start-up" in out and "<|im_end|>" in out and "'deepseek'" in out
    assert "closed empty <think></think> reopened" in out
    assert out.strip().splitlines()[-1] == "model directory OK"
    assert main(["--model", str(qwen_dir)]) == 0
    out = capsys.readouterr().out
    assert "verl's 'qwen' builder fits" in out and out.strip().endswith("model directory OK")
    assert main(["--model", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "config.json not found" in out and out.strip().endswith("model directory NOT OK: see FAIL lines above")
