"""Stage-1 band bonus as a verl advantage estimator (``algorithm.adv_estimator=lapo_stage1``).

Why here: in verl 0.9.1's V1 trainer each response is scored on its own in a random reward worker, so
no reward hook sees a whole GRPO group. The advantage step does: it receives every response of every
group (``index`` = verl's per-prompt ``uid``), the response mask (lengths) and the scores. The stage-1
reward manager emits exactly ``acc`` in {0, 1}; this estimator adds ``alpha * R1`` (the band bonus,
:func:`lapo_verl.rewards.band_bonus_batched`) to each response's reward and then runs verl's own GRPO
normalisation (with the one change below).

``lapo_grpo`` (stage 2 and the baselines) is verl's GRPO on the reward manager's scores. Both estimators call
verl's own ``compute_grpo_outcome_advantage`` on one summed reward per response and change one thing
afterwards: a group of two or more responses with equal scores gets an advantage of exactly 0
(:func:`lapo_verl.rewards.equal_score_rows`). verl computes the group mean in float32: for a group of equal
scores (all correct with the same length: R_D = 1.7 for 8 responses) the mean is off by one ulp, the std is
~1e-7, and ``(x - mean) / (std + 1e-6)`` gives about +0.106 per response instead of 0. Everything else is
verl's result as is, including a group of one response: verl's rule (mean 0, std 1) gives it its raw score
as advantage (``actor_rollout_ref.rollout.n=1`` trains on the raw reward, as with verl's ``grpo``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage, register_adv_est

from lapo_verl import config as lapo_config
from lapo_verl.rewards import equal_score_rows, group_ids
from lapo_verl.step_metrics import CORRECT_THRESHOLD, band_bonus_summary, stage1_band  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)


class _StepLog:
    """Appends one JSON line per advantage call to ``<lapo.run_dir>/lapo_metrics.jsonl`` and logs it."""

    def __init__(self) -> None:
        self.calls = 0

    def write(self, run_dir: str | None, summary: dict[str, float]) -> None:
        self.calls += 1
        summary = {"call": self.calls, "time": time.time(), **summary}
        line = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in summary.items())
        logger.warning("[lapo] %s", line)  # verl sets the root level to WARNING; this must be seen
        if run_dir:
            os.makedirs(run_dir, exist_ok=True)
            with open(os.path.join(run_dir, "lapo_metrics.jsonl"), "a", encoding="utf-8") as fh:
                fh.write(json.dumps(summary) + "\n")


_step_log = _StepLog()


def _grpo_of_summed_rewards(column: torch.Tensor, group: np.ndarray, index: np.ndarray,
                            response_mask: torch.Tensor, epsilon: float, config: Any):
    """verl's GRPO on one summed reward per response, then exact zeros for groups of equal rewards.

    ``column`` is the ``(bs, 1)`` summed reward (GRPO only uses each response's sum, so it gets the column
    instead of the ``(bs, T)`` token tensor: same advantages, one less pass over the batch); ``group`` the
    integer ids of ``index`` (:func:`lapo_verl.rewards.group_ids`).
    """
    with torch.no_grad():
        # float64 holds every float dtype exactly: equal stays equal, different stays different
        equal = equal_score_rows(column[:, 0].to(torch.float64).cpu().numpy(), group)
    advantages, returns = compute_grpo_outcome_advantage(
        token_level_rewards=column,
        response_mask=response_mask,
        index=index,
        epsilon=epsilon,
        norm_adv_by_std_in_grpo=bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True,
        config=config,
    )
    if equal.any():
        rows = torch.from_numpy(np.flatnonzero(equal)).to(advantages.device)
        advantages.index_fill_(0, rows, 0.0)
        if returns is not advantages:
            returns.index_fill_(0, rows, 0.0)
    return advantages, returns


@register_adv_est("lapo_stage1")
def compute_lapo_stage1_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    epsilon: float = 1e-6,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO advantages of ``R_D = acc + alpha * R1`` (LAPO stage 1).

    Args follow verl's custom-estimator contract: ``token_level_rewards`` (bs, T) with the stage-1
    reward manager's ``acc`` on the last token, ``response_mask`` (bs, T), ``index`` the group uid per
    row, ``config`` the ``algorithm`` section, which must carry ``lapo`` (the recipe sets
    ``algorithm.lapo: ${lapo}``).
    """
    if index is None:
        raise ValueError("lapo_stage1 needs verl's group index (uid); got none")
    lapo = lapo_config.load(config, where="algorithm (algorithm.lapo)")  # built once per config object
    params = lapo.stage1.params()
    if config is not None and config.get("use_kl_in_reward", False):
        raise ValueError(
            "lapo_stage1 reads correctness from the reward, which algorithm.use_kl_in_reward=True changes; "
            "LAPO uses the KL as a loss term: set algorithm.use_kl_in_reward=False, actor_rollout_ref.actor.use_kl_loss=True"
        )

    with torch.no_grad():
        scores = token_level_rewards.sum(dim=-1).float().cpu().numpy()
        lengths = response_mask.sum(dim=-1).float().cpu().numpy()
        group = group_ids(index)
        correct, r1, lo, _ = stage1_band(scores, lengths, index, params, group=group)
        r_d = scores + params.alpha * r1  # float64 (r1 is), then one rounding to the rewards' dtype
        column = torch.from_numpy(r_d).to(dtype=token_level_rewards.dtype, device=token_level_rewards.device)
    advantages, returns = _grpo_of_summed_rewards(column.unsqueeze(-1), group, index, response_mask, epsilon, config)
    if lapo.log_step_stats:
        _step_log.write(lapo.run_dir, band_bonus_summary(lengths, correct, r1, lo))
    return advantages, returns


@register_adv_est("lapo_grpo")
def compute_lapo_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    epsilon: float = 1e-6,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's GRPO on each response's summed reward, except that a group of two or more equal rewards gets
    an advantage of exactly 0 (module docstring). Otherwise identical, groups of one included."""
    if index is None:
        raise ValueError("lapo_grpo needs verl's group index (uid); got none")
    with torch.no_grad():
        column = token_level_rewards.sum(dim=-1, keepdim=True)  # the sum verl's GRPO takes, same dtype
    return _grpo_of_summed_rewards(column, group_ids(index), index, response_mask, epsilon, config)
