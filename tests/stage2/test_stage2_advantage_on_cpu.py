"""Stage 2's estimator (``lapo_grpo``) through verl's real V1 advantage call: verl's GRPO, but a group of equal
rewards gets an advantage of exactly 0 (issue 11 item 7)."""

import numpy as np
import pytest
import torch

from lapo_test_utils.verl_config import compose_recipe
from lapo_verl import rewards as R


@pytest.fixture(scope="module")
def algo_cfg(tmp_path_factory):
    cfg = compose_recipe("lapo_stage2", f"lapo.output_root={tmp_path_factory.mktemp('runs')}")
    assert cfg.algorithm.adv_estimator == "lapo_grpo"
    return cfg.algorithm


def _v1(rewards, uids, algo_cfg, estimator):
    import lapo_verl.plugin  # noqa: F401
    from verl import DataProto
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    n, width = len(rewards), 6
    mask = torch.ones(n, width)
    tlr = torch.zeros(n, width)
    tlr[:, -1] = torch.tensor(rewards, dtype=torch.float32)
    data = DataProto.from_dict(tensors={"token_level_rewards": tlr, "response_mask": mask})
    data.non_tensor_batch["uid"] = np.array(uids, dtype=object)
    keys = [f"{u}_{i}_0" for i, u in enumerate(uids)]
    out = compute_advantage_for_multi_trajectories(data, batch_keys=keys, adv_estimator=estimator, gamma=1.0,
                                                   lam=1.0, num_repeat=1, norm_adv_by_std_in_grpo=True,
                                                   config=algo_cfg)
    return out.batch["advantages"][:, -1]


def test_equal_stage2_rewards_get_exactly_zero(algo_cfg):
    # all 8 correct, each exactly on its plan: R_I = 1 + 0.8 * exp(0) = 1.8 for every response
    r_i = R.stage2_reward(True, 400, 400, beta=0.8, sigma=120)
    assert r_i == pytest.approx(1.8)
    rewards = [r_i] * 8 + [1.8, 1.2, 0.0, 1.5]
    uids = ["g"] * 8 + ["h"] * 4
    plain = _v1(rewards, uids, algo_cfg, "grpo")
    assert plain[:8].abs().max().item() > 0.05  # verl's own GRPO: float32 rounding -> nonzero advantages
    ours = _v1(rewards, uids, algo_cfg, "lapo_grpo")
    assert torch.all(ours[:8] == 0.0)
    assert ours[8:] == pytest.approx(plain[8:], abs=1e-5)  # elsewhere identical to verl's GRPO


@pytest.mark.parametrize("norm", [True, False])
def test_groups_of_one_to_eight_match_verl_grpo(norm):
    """Issue 19 item 5: lapo_grpo is verl's ``compute_grpo_outcome_advantage`` for groups of 1..8 (a group of one:
    mean 0, std 1, so its advantage is the raw reward), with and without std normalisation, mixed sizes in one
    shuffled batch; a group of >= 2 equal rewards gets exactly 0; padding rows stay 0."""
    import lapo_verl.plugin  # noqa: F401
    from omegaconf import OmegaConf
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, get_adv_estimator_fn

    rng = np.random.default_rng(5)
    groups = [(f"r{size}_{k}", size, False) for size in range(1, 9) for k in range(5)]
    groups += [(f"e{size}", size, True) for size in range(2, 9)]  # equal rewards: verl's float32 mean leaves ~0.1
    uids, rewards = [], []
    for uid, size, equal in groups:
        uids += [uid] * size
        rewards += [1.8] * size if equal else rng.normal(1.0, 0.7, size=size).tolist()
    order = rng.permutation(len(uids))
    uids, rewards = [uids[i] for i in order] + ["pad_0", "pad_1", "pad_1"], [rewards[i] for i in order] + [0.0] * 3
    width, n = 7, len(uids)
    lengths = rng.integers(1, width + 1, size=n)
    lengths[-3:] = 0  # padding rows: all-zero mask
    mask = (torch.arange(width)[None, :] < torch.as_tensor(lengths)[:, None]).float()
    tlr = torch.zeros(n, width)
    tlr[torch.arange(n), torch.as_tensor(lengths - 1).clamp(min=0)] = torch.tensor(rewards, dtype=torch.float32)
    index = np.array(uids, dtype=object)

    want, _ = compute_grpo_outcome_advantage(tlr, mask, index, norm_adv_by_std_in_grpo=norm)
    got, returns = get_adv_estimator_fn("lapo_grpo")(token_level_rewards=tlr, response_mask=mask, index=index,
                                                     config=OmegaConf.create({"norm_adv_by_std_in_grpo": norm}))
    assert torch.equal(got, returns)
    equal = torch.tensor([u.startswith("e") for u in uids])
    assert torch.all(got[equal] == 0.0)
    if norm:
        assert (want[equal].abs().amax(dim=1) > 0.05).any()  # what the exact zero is for
    assert torch.allclose(got[~equal], want[~equal], atol=1e-6, rtol=1e-6)
    single = torch.tensor([u.startswith("r1_") for u in uids])
    raw = torch.tensor(rewards)[single] / ((1.0 + 1e-6) if norm else 1.0)
    assert torch.allclose(got[single].sum(dim=1) / mask[single].sum(dim=1), raw, atol=1e-6)  # the raw reward
    assert torch.all(got[-3:] == 0)


def test_rollout_n_1_gives_verls_advantages(algo_cfg):
    """``actor_rollout_ref.rollout.n=1`` (all groups of one) through verl's V1 call: the raw rewards, as ``grpo``."""
    rewards, uids = [1.8, 0.0, 1.3, 1.0], ["a", "b", "c", "d"]
    ours = _v1(rewards, uids, algo_cfg, "lapo_grpo")
    assert torch.allclose(ours, _v1(rewards, uids, algo_cfg, "grpo"))
    assert ours.tolist() == pytest.approx([r / (1 + 1e-6) for r in rewards])
