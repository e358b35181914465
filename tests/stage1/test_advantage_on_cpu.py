"""The lapo_stage1 estimator through verl's real V1 advantage call."""

import numpy as np
import pytest
import torch

from lapo_verl import rewards as R
from lapo_test_utils.verl_config import compose_recipe


@pytest.fixture(scope="module")
def algo_cfg(tmp_path_factory):
    run_root = tmp_path_factory.mktemp("runs")
    cfg = compose_recipe("lapo_stage1", f"lapo.output_root={run_root}")
    return cfg.algorithm


def _batch(lengths, scores, uids, width=None):
    from verl import DataProto

    width = width or max(max(lengths), 1)
    n = len(lengths)
    mask = torch.zeros(n, width)
    rewards = torch.zeros(n, width)
    for i, (length, score) in enumerate(zip(lengths, scores, strict=True)):
        mask[i, :length] = 1
        if length:
            rewards[i, length - 1] = score
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask})
    data.non_tensor_batch["uid"] = np.array(uids, dtype=object)
    return data


def _v1_advantage(data, algo_cfg, estimator="lapo_stage1"):
    import lapo_verl.plugin  # noqa: F401  (what `import verl` does through the entry point)
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    keys = [f"{u}_{i}_0" for i, u in enumerate(data.non_tensor_batch["uid"])]
    out = compute_advantage_for_multi_trajectories(
        data, batch_keys=keys, adv_estimator=estimator, gamma=1.0, lam=1.0, num_repeat=4,
        norm_adv_by_std_in_grpo=True, config=algo_cfg,
    )
    return out.batch["advantages"]


def test_matches_grpo_on_hand_computed_lapo_rewards(algo_cfg):
    # group a: correct lengths 100,200,300,400 -> P30=190, P70=310; wrong one at 50
    # group b: no correct -> all zero reward
    lengths = [100, 200, 300, 400, 50, 10, 20, 30]
    scores = [1, 1, 1, 1, 0, 0, 0, 0]
    uids = ["a"] * 5 + ["b"] * 3
    adv = _v1_advantage(_batch(lengths, scores, uids), algo_cfg)
    r_a = [1 + 0.7 * R.band_length_score(n, 190, 310) for n in (100, 200, 300, 400)] + [0.0]
    assert r_a == pytest.approx([1 + 0.7 * 0.1, 1.7, 1.7, 1 + 0.7 * 0.1, 0.0])
    r_a = torch.tensor(r_a)
    expected_a = (r_a - r_a.mean()) / (r_a.std() + 1e-6)
    got_a = torch.stack([adv[i, lengths[i] - 1] for i in range(5)])
    assert got_a == pytest.approx(expected_a, abs=1e-5)
    assert torch.all(adv[5:] == 0)  # all-wrong group: zero advantage
    # the advantage covers exactly the response tokens
    assert torch.all(adv[0, 100:] == 0) and torch.all(adv[0, :100] == adv[0, 0])


def test_padding_rows_are_harmless(algo_cfg):
    lengths = [5, 6, 7, 8, 0, 0]
    scores = [1, 0, 1, 1, 0, 0]
    uids = ["g"] * 4 + ["pad_x", "pad_x"]
    adv = _v1_advantage(_batch(lengths, scores, uids, width=10), algo_cfg)
    assert torch.all(adv[4:] == 0)
    assert torch.isfinite(adv).all()


def test_same_as_verl_grpo_when_alpha_is_zero(tmp_path):
    cfg = compose_recipe("lapo_stage1", "lapo.stage1.alpha=0", f"lapo.output_root={tmp_path}").algorithm
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 40, size=32).tolist()
    scores = (rng.random(32) < 0.5).astype(float).tolist()
    uids = [f"u{i // 8}" for i in range(32)]
    ours = _v1_advantage(_batch(lengths, scores, uids), cfg)
    verl = _v1_advantage(_batch(lengths, scores, uids), cfg, estimator="grpo")
    assert torch.allclose(ours, verl)


def test_cli_override_reaches_the_estimator(tmp_path):
    cfg = compose_recipe("lapo_stage1", "lapo.stage1.alpha=0.9", "lapo.stage1.band=[0.2,0.8]",
                         f"lapo.output_root={tmp_path}")
    assert cfg.algorithm.lapo.stage1.alpha == 0.9
    assert list(cfg.algorithm.lapo.stage1.band) == [0.2, 0.8]


def test_missing_lapo_section_is_a_clear_error():
    from omegaconf import OmegaConf

    with pytest.raises(KeyError, match=r"\+recipe=lapo_stage1"):
        _v1_advantage(_batch([3, 4], [1, 0], ["a", "a"]), OmegaConf.create({"adv_estimator": "lapo_stage1"}))


def test_kl_in_reward_is_rejected(tmp_path):
    cfg = compose_recipe("lapo_stage1", "algorithm.use_kl_in_reward=true", f"lapo.output_root={tmp_path}").algorithm
    with pytest.raises(ValueError, match="use_kl_in_reward"):
        _v1_advantage(_batch([3, 4], [1, 0], ["a", "a"]), cfg)


def test_step_stats_are_logged(tmp_path):
    cfg = compose_recipe("lapo_stage1", f"lapo.output_root={tmp_path}")
    from omegaconf import OmegaConf

    OmegaConf.resolve(cfg)
    _v1_advantage(_batch([10, 20, 30, 40], [1, 1, 0, 1], ["a"] * 4), cfg.algorithm)
    import json
    import os

    lines = open(os.path.join(cfg.lapo.run_dir, "lapo_metrics.jsonl")).read().splitlines()
    last = json.loads(lines[-1])
    assert last["lapo/stage1/accuracy"] == pytest.approx(0.75)
    assert last["lapo/stage1/groups_with_correct"] == 1


def test_algoconfig_canary():
    """verl 0.9.1 never turns cfg.algorithm into AlgoConfig (which would reject algorithm.lapo).

    If a future verl starts doing so in the V1 trainer, this test fails and the recipes must move
    the estimator's parameters elsewhere.
    """
    import inspect

    from verl.trainer.ppo.v1 import trainer_base

    source = inspect.getsource(trainer_base)
    assert "omega_conf_to_dataclass(self.config.algorithm" not in source
    assert "AlgoConfig(" not in source


def test_group_of_equal_rewards_gets_exactly_zero_advantage(algo_cfg):
    """Issue 11 item 7: all correct with equal lengths -> R_D = 1.7 for every response. verl's GRPO alone gives
    about +0.106 per response (float32 mean off by one ulp, divided by std + 1e-6); lapo_stage1 gives 0."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    lengths, scores, uids = [37] * 8 + [5, 9, 5, 9], [1] * 8 + [1, 1, 0, 0], ["g"] * 8 + ["h"] * 4
    # the bug, reproduced with verl's own GRPO on the same R_D values
    r_d = torch.full((8, 1), 1.0 + 0.7 * 1.0, dtype=torch.float32)
    plain, _ = compute_grpo_outcome_advantage(r_d, torch.ones(8, 1), np.array(["g"] * 8, dtype=object))
    assert plain.abs().max().item() > 0.05
    adv = _v1_advantage(_batch(lengths, scores, uids), algo_cfg)
    assert torch.all(adv[:8] == 0.0)
    # the other group is unchanged by the per-group shift (GRPO is shift-invariant)
    r_h = torch.tensor([1.7, 1.7, 0.0, 0.0])
    want = (r_h - r_h.mean()) / (r_h.std() + 1e-6)
    got = torch.stack([adv[8 + i, lengths[8 + i] - 1] for i in range(4)])
    assert got == pytest.approx(want, abs=1e-5)


def _mixed_groups(rng, sizes, prefix):
    """uids of groups of the given sizes, rows shuffled (a group's rows need not be adjacent)."""
    uids = [f"{prefix}{g}" for g, size in enumerate(sizes) for _ in range(size)]
    return [uids[i] for i in rng.permutation(len(uids))]


@pytest.mark.parametrize("norm", [True, False])
def test_groups_of_one_to_eight_follow_verl_grpo(tmp_path, norm):
    """Issue 19 item 5: every group, a group of one included, gets verl's GRPO advantage of its R_D (a group of one:
    mean 0, std 1, i.e. its raw R_D), except that a group of >= 2 equal R_D gets exactly 0. Checked against verl's own
    ``compute_grpo_outcome_advantage``, with and without std normalisation, on one batch of mixed group sizes."""
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    cfg = compose_recipe("lapo_stage1", f"algorithm.norm_adv_by_std_in_grpo={str(norm).lower()}",
                         f"lapo.output_root={tmp_path}").algorithm
    rng = np.random.default_rng(19)
    uids = _mixed_groups(rng, [size for size in range(1, 9) for _ in range(6)], "u")
    n = len(uids)
    lengths = rng.integers(1, 400, size=n)
    acc = (rng.random(n) < 0.6).astype(float)
    # plus: an all-correct group of equal lengths (R_D = 1.7 each), an all-wrong one, padding rows (verl's "pad" uids)
    uids += ["same"] * 8 + ["wrong"] * 5 + ["pad_0", "pad_1", "pad_1"]
    lengths = np.concatenate([lengths, [37] * 8, rng.integers(1, 400, size=5), [0, 0, 0]])
    acc = np.concatenate([acc, [1.0] * 8, [0.0] * 5, [0.0, 0.0, 0.0]])

    # R_D per group from the scalar reference (paper formula), not from the estimator's own batched code
    r_d = np.zeros(len(uids))
    for uid in dict.fromkeys(uids):
        rows = [i for i, u in enumerate(uids) if u == uid]
        r_d[rows] = R.stage1_group_rewards(lengths[rows].tolist(), [bool(acc[i]) and lengths[i] > 0 for i in rows])
    verl_in = _batch(lengths.tolist(), r_d.tolist(), uids).batch
    want, _ = compute_grpo_outcome_advantage(verl_in["token_level_rewards"], verl_in["response_mask"],
                                             np.array(uids, dtype=object), norm_adv_by_std_in_grpo=norm)

    data = _batch(lengths.tolist(), acc.tolist(), uids)
    import lapo_verl.plugin  # noqa: F401
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    got, returns = get_adv_estimator_fn("lapo_stage1")(
        token_level_rewards=data.batch["token_level_rewards"], response_mask=data.batch["response_mask"],
        index=data.non_tensor_batch["uid"], config=cfg)
    assert torch.equal(got, returns)

    sizes = {u: uids.count(u) for u in uids}
    equal = np.array([sizes[u] >= 2 and len(set(r_d[[j for j, v in enumerate(uids) if v == u]])) == 1 for u in uids])
    single = np.array([sizes[u] == 1 for u in uids])
    assert (~equal[:n] & ~single[:n]).sum() > 100 and equal[n:n + 13].all()  # random groups: mostly unequal
    assert torch.all(got[torch.as_tensor(equal)] == 0.0)  # exactly, where verl's float32 mean may leave ~0.1
    assert torch.allclose(got[torch.as_tensor(~equal)], want[torch.as_tensor(~equal)], atol=1e-5, rtol=1e-5)
    # groups of one: the raw R_D on every response token (1.7 correct, 0 wrong), as verl's grpo gives it
    last = torch.as_tensor(lengths - 1).clamp(min=0)
    raw = got[torch.arange(len(uids)), last][torch.as_tensor(single)]
    scale = 1.0 / (1.0 + 1e-6) if norm else 1.0
    assert raw.tolist() == pytest.approx((r_d[single] * scale).tolist(), abs=1e-6)
    assert (raw > 1.0).any() and (raw == 0).any()
    assert torch.all(got[-3:] == 0)  # padding rows


def test_rollout_n_1_trains_on_the_raw_reward(algo_cfg):
    """``actor_rollout_ref.rollout.n=1``: every group has one response; through verl's V1 call lapo_stage1 gives
    what verl's ``grpo`` gives for R_D (the raw reward), not 0 (which would train nothing)."""
    lengths, scores, uids = [12, 30, 7, 19], [1, 0, 1, 1], ["a", "b", "c", "d"]
    ours = _v1_advantage(_batch(lengths, scores, uids), algo_cfg)
    verl = _v1_advantage(_batch(lengths, [1.7 * s for s in scores], uids), algo_cfg, estimator="grpo")
    assert torch.allclose(ours, verl, atol=1e-6)
    assert ours[0, 0].item() == pytest.approx(1.7, abs=1e-5) and torch.all(ours[1] == 0)
