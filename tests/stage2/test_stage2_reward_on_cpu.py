"""Stage-2 reward manager inside verl's RewardLoopManager: acc + beta * acc * exp(-(len - plan)^2 / 2 sigma^2)."""

import math
import os

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.batches import reward_batch
from lapo_test_utils.verl_config import compose_recipe


def test_stage2_reward_uses_each_rows_plan(ray_session, tiny_bpe_dir, tmp_path):
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    cfg = compose_recipe("lapo_stage2", f"lapo.output_root={tmp_path}", f"actor_rollout_ref.model.path={tiny_bpe_dir}",
                         "reward.num_workers=1", "lapo.stage2.sigma=5", minimal=False)
    OmegaConf.resolve(cfg)
    tok = AutoTokenizer.from_pretrained(tiny_bpe_dir)
    text = "so the answer is \\boxed{4}"
    n = len(tok.encode(text, add_special_tokens=False))
    rows = [
        {"pid": "a", "gt": "4", "response": text, "extra": {"lapo_plan": n}},  # exactly on plan
        {"pid": "b", "gt": "4", "response": text, "extra": {"lapo_plan": n + 5}},  # one sigma off
        {"pid": "c", "gt": "5", "response": text, "extra": {"lapo_plan": n}},  # wrong: 0
        {"pid": "v", "gt": "4", "response": text, "record": False, "extra": {"lapo_plan": None}},  # val, no plan
    ]
    data, lengths = reward_batch(tok, rows)
    out = RewardLoopManager(cfg).compute_rm_score(data)
    scores = out.batch["rm_scores"].sum(-1).tolist()
    assert scores == pytest.approx([1.8, 1 + 0.8 * math.exp(-0.5), 0.0, 1.0], abs=1e-6)
    assert out.non_tensor_batch["plan_abs_error"][:3].tolist() == [0.0, 5.0, 0.0]
    assert out.non_tensor_batch["plan"][:3].tolist() == [n, n + 5, n]  # what the trainer records


def test_stage2_reward_centres_on_the_plan_the_prompt_stated(ray_session, tiny_bpe_dir, tmp_path):
    """lapo.stage2.update_plans=true: the reward uses the plan the agent loop stated, carried with the sample
    (``tool_extra_fields``), whatever the row or any plan source says: no records directory and no plan board
    exist here (a missing plan source), the row's plan is stale, and the reward still centres on the stated plan.
    A training response that carries no stated plan is an error, not a silent fallback to the row's plan."""
    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    from lapo_verl.plan_updates import STATED_PLAN_FIELD

    cfg = compose_recipe("lapo_stage2", f"lapo.output_root={tmp_path}", f"actor_rollout_ref.model.path={tiny_bpe_dir}",
                         "reward.num_workers=1", "lapo.stage2.sigma=5", "lapo.stage2.update_plans=true", minimal=False)
    OmegaConf.resolve(cfg)
    tok = AutoTokenizer.from_pretrained(tiny_bpe_dir)
    text = "so the answer is \\boxed{4}"
    n = len(tok.encode(text, add_special_tokens=False))
    rows = [{"pid": "a", "gt": "4", "response": text, "step": 2,
             "extra": {"lapo_plan": n + 50, "tool_extra_fields": {STATED_PLAN_FIELD: n}}}]
    manager = RewardLoopManager(cfg)
    out = manager.compute_rm_score(reward_batch(tok, rows)[0])
    assert out.batch["rm_scores"].sum(-1).tolist() == pytest.approx([1.8], abs=1e-6)  # centred on n, not n + 50
    assert out.non_tensor_batch["plan"].tolist() == [n]
    assert not os.path.exists(cfg.lapo.records.dir)
    rows[0]["extra"] = {"lapo_plan": n + 50, "tool_extra_fields": {}}
    with pytest.raises(Exception, match="carries no 'lapo_stated_plan'"):
        manager.compute_rm_score(reward_batch(tok, rows)[0])
