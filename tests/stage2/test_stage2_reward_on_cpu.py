"""Stage-2 reward manager inside verl's RewardLoopManager: acc + beta * acc * exp(-(len - plan)^2 / 2 sigma^2)."""

import math

import pytest
from omegaconf import OmegaConf

from lapo_test_utils.batches import reward_batch
from lapo_test_utils.verl_config import compose_recipe
from lapo_verl.records import load_records


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
    records, _ = load_records(cfg.lapo.records.dir)
    assert sorted((r.problem_id, r.plan) for r in records) == [("a", n), ("b", n + 5), ("c", n)]


def test_stage2_reward_centres_on_the_eq8_plan(ray_session, tiny_bpe_dir, tmp_path):
    """lapo.stage2.update_plans=true: the reward uses the plan the agent loop stated (Eq. 8 over earlier steps)."""
    import time

    from transformers import AutoTokenizer
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    from lapo_verl.records import LengthRecord, RecordWriter

    cfg = compose_recipe("lapo_stage2", f"lapo.output_root={tmp_path}", f"actor_rollout_ref.model.path={tiny_bpe_dir}",
                         "reward.num_workers=1", "lapo.stage2.sigma=5", "lapo.stage2.update_plans=true", minimal=False)
    OmegaConf.resolve(cfg)
    tok = AutoTokenizer.from_pretrained(tiny_bpe_dir)
    text = "so the answer is \\boxed{4}"
    n = len(tok.encode(text, add_special_tokens=False))
    w = RecordWriter(cfg.lapo.records.dir)
    for index, (length, ok) in enumerate([(n, True), (n, True), (999, False)]):  # step 1 of problem a: median n
        w.write(LengthRecord(problem_id="a", step=1, group_uid="a-1", sample_index=index, group_size=3,
                             response_length=length, correct=ok, time=time.time()))
    rows = [{"pid": "a", "gt": "4", "response": text, "step": 2, "extra": {"lapo_plan": n + 50}}]
    out = RewardLoopManager(cfg).compute_rm_score(reward_batch(tok, rows)[0])
    assert out.batch["rm_scores"].sum(-1).tolist() == pytest.approx([1.8], abs=1e-6)  # centred on n, not n + 50
    records, _ = load_records(cfg.lapo.records.dir)
    assert [r.plan for r in records if r.step == 2] == [n]
