"""The lapo_stage1 reward manager inside verl's real RewardLoopManager (Ray workers load the plugin)."""

import os

import pytest
import torch
from omegaconf import OmegaConf

from lapo_test_utils.batches import reward_batch
from lapo_test_utils.verl_config import compose_recipe


@pytest.fixture(scope="module")
def stage1_manager(ray_session, tiny_bpe_dir, tmp_path_factory):
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    root = tmp_path_factory.mktemp("runs")
    cfg = compose_recipe(
        "lapo_stage1", f"lapo.output_root={root}", f"actor_rollout_ref.model.path={tiny_bpe_dir}",
        "reward.num_workers=2", "actor_rollout_ref.rollout.n=4", "data.max_response_length=64",
        "actor_rollout_ref.rollout.response_length=64", minimal=False,
    )
    OmegaConf.resolve(cfg)
    return RewardLoopManager(cfg), cfg


def test_scores_records_and_validation_rows(stage1_manager, tiny_bpe_dir):
    from transformers import AutoTokenizer

    manager, cfg = stage1_manager
    tok = AutoTokenizer.from_pretrained(tiny_bpe_dir)
    rows = [
        {"pid": "p1", "gt": "4", "response": "so 2+2 = \\boxed{4}", "uid": "g1"},
        {"pid": "p1", "gt": "4", "response": "it is \\boxed{5}", "uid": "g1"},
        {"pid": "p1", "gt": "4", "response": "we get \\boxed{\\frac{8}{2}} done", "uid": "g1"},
        {"pid": "p1", "gt": "4", "response": "no box here", "uid": "g1"},
        {"pid": "v1", "gt": "4", "response": "\\boxed{4}", "uid": "gv", "record": False},
        {"pid": "p2", "gt": "\\frac{1}{2}", "response": "half: \\boxed{0.5}", "uid": "g2"},
    ]
    data, lengths = reward_batch(tok, rows)
    out = manager.compute_rm_score(data)
    rm = out.batch["rm_scores"]
    scores = rm.sum(-1).tolist()
    assert scores == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]  # stage-1 manager emits acc only
    for i, n in enumerate(lengths):  # the score sits on the last valid response token
        assert rm[i, n - 1] == scores[i] and torch.all(rm[i, n:] == 0)
    assert out.non_tensor_batch["length"].tolist() == [float(n) for n in lengths]
    assert out.non_tensor_batch["grade_reason"][3] in ("no_answer", "truncated")

    # the reward workers write no file (issue 20): what a length record needs goes back with the sample, and the
    # trainer's sampler writes the records (tests/stage2/test_plan_updates.py, tests/e2e)
    assert not os.path.exists(cfg.lapo.records.dir)
    assert out.non_tensor_batch["acc"].tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]
    assert set(out.non_tensor_batch["grade_reason"][:3]) <= {"match_fast", "match_verify", "mismatch"}


def test_missing_ground_truth_is_reported(stage1_manager, tiny_bpe_dir):
    from transformers import AutoTokenizer

    manager, _ = stage1_manager
    tok = AutoTokenizer.from_pretrained(tiny_bpe_dir)
    data, _ = reward_batch(tok, [{"pid": "px", "gt": " ", "response": "\\boxed{1}"}] * 2)
    with pytest.raises(Exception, match="ground_truth"):
        manager.compute_rm_score(data)
