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
