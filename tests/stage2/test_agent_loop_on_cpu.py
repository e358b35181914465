"""The plan sentence reaches the rollout server inside the reasoning context, for both template families.

verl's real SingleTurnAgentLoop machinery (continuous-token builder, prompt capping, output assembly)
runs; only the rollout server is a fake that records the prompt ids it receives.
"""

import asyncio

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.verl_config import compose_recipe
from lapo_verl.data.columns import PLAN_COLUMN
from lapo_verl.verl_ext.agent_loop import plan_insertion, render_plan_sentence

MESSAGES = [{"role": "user", "content": "What is 2+2? Let's think step by step and output the final answer within \\boxed{}."}]


class RecordingServer:
    def __init__(self, reply_ids):
        self.prompts = []
        self.reply_ids = reply_ids

    async def generate(self, request_id, prompt_ids, sampling_params, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        self.prompts.append(list(prompt_ids))
        return TokenOutput(token_ids=self.reply_ids, log_probs=[-0.1] * len(self.reply_ids), stop_reason="completed")


def run_loop(model_dir, tmp_path, row_extra, *overrides, prompt_length=512, hf_model_type=None):
    """``hf_model_type=None`` selects verl's generic continuous-token builder. The R1-Distill tokenizer we
    rebuild offline has no ``<|im_end|>``, which verl's qwen2 builder requires (see README: verified facts)."""
    from hydra.utils import instantiate
    from transformers import AutoTokenizer
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap
    from verl.utils.dataset.rl_dataset import RLHFDataset

    cfg = compose_recipe("lapo_stage2", f"lapo.output_root={tmp_path}", f"actor_rollout_ref.model.path={model_dir}",
                         f"actor_rollout_ref.rollout.prompt_length={prompt_length}",
                         "actor_rollout_ref.rollout.response_length=16", *overrides, minimal=False)
    OmegaConf.resolve(cfg)
    entry = OmegaConf.load(cfg.actor_rollout_ref.rollout.agent.agent_loop_config_path)
    assert [e.name for e in entry] == [cfg.actor_rollout_ref.rollout.agent.default_agent_loop]
    tok = AutoTokenizer.from_pretrained(model_dir)
    reply = tok.encode("4 </think> \\boxed{4}", add_special_tokens=False)
    server = RecordingServer(reply)

    async def go():
        loop_obj = instantiate(entry[0], trainer_config=DictConfigWrap(cfg), server_manager=server, tokenizer=tok,
                               processor=None, dataset_cls=RLHFDataset, data_config=DictConfigWrap(cfg.data),
                               hf_model_type=hf_model_type)
        return await loop_obj.run({"temperature": 1.0}, raw_prompt=MESSAGES, **row_extra)

    out = asyncio.run(go())
    return tok, server, out, reply


def base_prompt_ids(tok):
    ids = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


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
    tok, server, out, reply = run_loop(qwen_tok_dir, tmp_path, {PLAN_COLUMN: 45}, hf_model_type="qwen2")
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


def test_too_long_with_plan_is_a_clear_error(r1_tok_dir, tmp_path):
    from transformers import AutoTokenizer

    n = len(base_prompt_ids(AutoTokenizer.from_pretrained(r1_tok_dir)))
    with pytest.raises(ValueError, match="rollout.prompt_length"):
        run_loop(r1_tok_dir, tmp_path, {PLAN_COLUMN: 100}, prompt_length=n + 3)


def test_plan_insertion_and_sentence_validation():
    assert plan_insertion("x<think>\n", "S") == ("", "S\n")
    assert plan_insertion("x", "S") == ("", "<think>\nS\n")
    assert render_plan_sentence(12) == "I will answer the question with 12 tokens."
    with pytest.raises(ValueError):
        render_plan_sentence(0)
    with pytest.raises(ValueError):
        render_plan_sentence(5, "no placeholder")
    with pytest.raises(ValueError):
        plan_insertion("x", "S", "elsewhere")
