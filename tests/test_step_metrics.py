"""lapo/... tracker metrics: hand-computed values, the same stage-1 numbers as the advantage estimator, and
the sampler's start-up refusals."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lapo_verl import step_metrics
from lapo_verl.config import LapoConfig
from lapo_verl.step_metrics import response_metrics, stage1_metrics

LAPO = {"stage": 1, "stage1": {"alpha": 0.7, "band": [0.3, 0.7], "falloff": 10, "bonus_rule": "paper"}}


def test_doctests():
    failures, _ = doctest.testmod(step_metrics)
    assert failures == 0


def test_response_metrics_by_hand():
    infos = [
        {"acc": 1.0, "grade_reason": "match_fast", "plan": 100.0, "plan_abs_error": 10.0, "r2": 0.5},
        {"acc": 1.0, "grade_reason": "match_verify", "plan": 100.0, "plan_abs_error": 30.0, "r2": 0.25},
        {"acc": 0.0, "grade_reason": "timeout", "plan": 50.0, "plan_abs_error": 50.0, "r2": 0.0},
        {"acc": 0.0, "grade_reason": "no_answer", "plan": 50.0, "plan_abs_error": 150.0, "r2": 0.0},
    ]
    m = response_metrics(infos, [110, 70, 100, 200])
    assert m["lapo/accuracy"] == 0.5
    assert m["lapo/length/mean"] == 120.0 and m["lapo/length/mean_correct"] == 90.0
    assert m["lapo/grading/timeout_frac"] == m["lapo/grading/no_answer_frac"] == 0.25
    assert m["lapo/grading/truncated_frac"] == 0.0 and m["lapo/grading/match_fast_frac"] == 0.25
    assert m["lapo/stage2/plan_abs_error/mean"] == 60.0
    assert m["lapo/stage2/plan_abs_error/median"] == 40.0
    assert m["lapo/stage2/plan_abs_error/p90"] == pytest.approx(120.0)  # numpy linear: 50 + 0.7 * 100
    assert m["lapo/stage2/plan_abs_error_correct/mean"] == 20.0
    assert m["lapo/stage2/plan_error_signed/mean"] == (10 - 30 + 50 + 150) / 4
    assert m["lapo/stage2/closeness/mean_correct"] == 0.375 and m["lapo/stage2/plan/mean"] == 75.0
    # verl's MetricsAggregator reduces names containing these words with min/max/sum (parameter_sync_step > 1)
    s1 = stage1_metrics(np.ones(4), np.arange(1.0, 5.0), ["a"] * 4, LapoConfig.from_section(LAPO).stage1.params())
    assert not [k for k in [*m, *s1] if any(w in k.lower() for w in ("min", "max", "sum", "total"))]


def test_rows_without_plan_and_managers_without_keys():
    # validation-style rows (NaN plan) are left out of the plan error; a row without a plan key drops it
    nan = float("nan")
    m = response_metrics([{"acc": 1.0, "plan": 10.0, "plan_abs_error": 2.0},
                          {"acc": 0.0, "plan": nan, "plan_abs_error": nan}], [12, 5])
    assert m["lapo/stage2/plan_abs_error/mean"] == 2.0 and m["lapo/stage2/planned_frac"] == 0.5
    m = response_metrics([{"score": 0.3}, {}], [4, 6])  # e.g. verl's naive manager
    assert m == {"lapo/length/mean": 5.0}
    # lapo_verl.grading.compute_score behind verl's dapo manager reports "reason"
    m = response_metrics([{"acc": 1.0, "reason": "match_fast"}, {"acc": 0.0, "reason": "truncated"}], [3, 9])
    assert m["lapo/grading/truncated_frac"] == 0.5


def test_stage1_metrics_equal_the_estimators_numbers(tmp_path):
    """The sampler's band statistics are the ones the lapo_stage1 estimator computes on the same batch."""
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    rng = np.random.default_rng(0)
    n_groups, n = 6, 8
    lengths = rng.integers(1, 60, size=n_groups * n).astype(float)
    scores = (rng.random(n_groups * n) < 0.6).astype(float)
    uids = np.array([f"u{g}" for g in range(n_groups) for _ in range(n)], dtype=object)
    width = int(lengths.max())
    mask = torch.zeros(len(lengths), width)
    rewards = torch.zeros(len(lengths), width)
    for i, length in enumerate(lengths.astype(int)):
        mask[i, :length] = 1
        rewards[i, length - 1] = scores[i]
    lapo = OmegaConf.create({**LAPO, "run_dir": str(tmp_path)})
    get_adv_estimator_fn("lapo_stage1")(token_level_rewards=rewards, response_mask=mask, index=uids,
                                        config=OmegaConf.create({"lapo": lapo}))
    logged = json.loads((tmp_path / "lapo_metrics.jsonl").read_text().splitlines()[-1])
    ours = stage1_metrics(scores, lengths, list(uids), LapoConfig.from_section(lapo).stage1.params())
    for key, value in logged.items():
        if key.startswith("lapo/"):
            assert ours[key] == pytest.approx(value), key
    assert ours["lapo/stage1/band_width/mean"] > 0 and 0 < ours["lapo/stage1/reward/mean"] < 1.7


def test_compute_batch_metrics_uses_session_final_outputs_and_estimator_switch():
    from lapo_verl.verl_ext.metrics_sampler import compute_batch_metrics

    keys = ["a_0_0", "a_1_0", "b_0_0", "b_0_1"]  # b_0 has two outputs (multi-turn): only b_0_1 counts
    infos = [{"acc": 1.0}, {"acc": 0.0}, {"acc": 0.0}, {"acc": 1.0}]
    scores, lengths = np.array([1.0, 0.0, 0.0, 1.0]), np.array([4.0, 6.0, 8.0, 10.0])
    m = compute_batch_metrics(keys, scores, lengths, infos, LAPO, "grpo")
    assert m["lapo/accuracy"] == pytest.approx(2 / 3) and m["lapo/length/mean"] == pytest.approx(20 / 3)
    assert not any(k.startswith("lapo/stage1/") for k in m)
    m = compute_batch_metrics(keys, scores, lengths, infos, LAPO, "lapo_stage1")
    assert m["lapo/stage1/groups"] == 2 and m["lapo/stage1/groups_with_correct"] == 2


@pytest.mark.parametrize("kwargs, match", [
    ({"trainer_mode": "async"}, "trainer_mode"),
    ({"sampler_kwargs": {"lapo": LAPO, "filter_groups": {"enable": True}}}, "filter_groups"),
    ({"sampler_kwargs": {"lapo": LAPO, "sync_refill_failed_groups": True}}, "sync_refill_failed_groups"),
    ({"sampler_kwargs": {}}, "sampler_kwargs.lapo"),
])
def test_sampler_refuses_what_verl_would_not_apply(kwargs, match):
    from lapo_verl.verl_ext.metrics_sampler import LapoMetricsReplayBuffer

    args = {"trainer_mode": "sync", "trainer_config": {}, "max_off_policy_threshold": None,
            "max_off_policy_strategy": "drop", "sampler_kwargs": {"lapo": LAPO}, "refill_fn": lambda n: None, **kwargs}
    with pytest.raises((ValueError, KeyError), match=match):
        LapoMetricsReplayBuffer(**args)
    ok = LapoMetricsReplayBuffer(**{**args, "trainer_mode": "sync", "sampler_kwargs": {"lapo": LAPO}})
    assert ok.lapo == LapoConfig.from_section(LAPO) and ok.lapo.stage1.falloff == 10.0  # typed once, at start-up
