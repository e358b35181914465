"""The lapo_stage1 reward manager inside verl's real RewardLoopManager (Ray workers load the plugin)."""

import os

import pytest
import torch
from omegaconf import OmegaConf

from lapo_test_utils.batches import reward_batch
from lapo_test_utils.verl_config import compose_recipe
from lapo_verl.plans import build_plans
from lapo_verl.records import load_records


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

    records, report = load_records(cfg.lapo.records.dir)
    assert report.corrupt == 0
    assert sorted(r.problem_id for r in records) == ["p1"] * 4 + ["p2"]  # validation row v1 not recorded
    assert {r.response_length for r in records if r.problem_id == "p1"} == set(lengths[:4])  # verl token counts
    assert all(r.group_size == 4 and r.step == 1 for r in records)
    doc = build_plans(records, include_incomplete=True)
    assert doc["plans"]["p1"] == round((lengths[0] + lengths[2]) / 2 + 1e-9) or doc["plans"]["p1"] == int(
        (lengths[0] + lengths[2]) / 2 + 0.5)
    assert len(os.listdir(cfg.lapo.records.dir)) >= 1


def test_missing_ground_truth_is_reported(stage1_manager, tiny_bpe_dir):
    from transformers import AutoTokenizer

    manager, _ = stage1_manager
    tok = AutoTokenizer.from_pretrained(tiny_bpe_dir)
    data, _ = reward_batch(tok, [{"pid": "px", "gt": " ", "response": "\\boxed{1}"}] * 2)
    with pytest.raises(Exception, match="ground_truth"):
        manager.compute_rm_score(data)
