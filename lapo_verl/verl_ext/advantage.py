"""Stage-1 band bonus as a verl advantage estimator (``algorithm.adv_estimator=lapo_stage1``).

Why here: in verl 0.9.1's V1 trainer each response is scored on its own in a random reward worker, so
no reward hook sees a whole GRPO group. The advantage step does: it receives every response of every
group (``index`` = verl's per-prompt ``uid``), the response mask (lengths) and the scores. The stage-1
reward manager emits exactly ``acc`` in {0, 1}; this estimator adds ``alpha * R1`` (the band bonus,
:func:`lapo_verl.rewards.band_bonus_batched`) to each response's reward and then runs verl's own GRPO
normalisation, unchanged.

``lapo_grpo`` (stage 2 and the baselines) is verl's GRPO on the reward manager's scores with one change
that holds for both: each group's scores are shifted by the group's first score, in float64, before verl's
GRPO runs (:func:`group_shifted_scores`). GRPO is invariant to a per-group shift, but verl computes the
group mean in float32: for a group of equal scores (all correct with the same length: R_D = 1.7 for 8
responses) the mean is off by one ulp, the std is ~1e-7, and ``(x - mean) / (std + 1e-6)`` gives about
+0.106 per response instead of 0. Shifted, the group is exactly zero and so is its advantage.
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
from lapo_verl.step_metrics import CORRECT_THRESHOLD, band_bonus_summary, stage1_band  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)

def group_shifted_scores(scores: np.ndarray, group: np.ndarray) -> np.ndarray:
    """``scores - scores[first row of the group]`` in float64: a group of equal scores becomes exact zeros.

    >>> group_shifted_scores(np.array([1.7, 1.7, 1.7, 0.3, 0.5]), np.array([0, 0, 0, 1, 1])).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.2]
    """
    scores = np.asarray(scores, dtype=np.float64)
    group = np.asarray(group)
    _, first = np.unique(group, return_index=True)
    _, inverse = np.unique(group, return_inverse=True)
    return scores - scores[first][inverse]


def _group_ids(index: np.ndarray) -> np.ndarray:
    return np.unique(np.asarray(index, dtype=object).astype(str), return_inverse=True)[1]



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


def _grpo_of_summed_rewards(rewards: np.ndarray, index: np.ndarray, token_level_rewards: torch.Tensor,
                            response_mask: torch.Tensor, epsilon: float, config: Any):
    """verl's GRPO on one summed reward per response (float64), shifted per group first (module docstring).

    GRPO only uses each response's summed reward, so it gets the (bs, 1) column instead of a copy of the
    (bs, T) token tensor: same advantages, one less pass over the batch.
    """
    with torch.no_grad():
        shifted = group_shifted_scores(rewards, _group_ids(index))
        column = torch.as_tensor(shifted, dtype=token_level_rewards.dtype).to(token_level_rewards.device).unsqueeze(-1)
    return compute_grpo_outcome_advantage(
        token_level_rewards=column,
        response_mask=response_mask,
        index=index,
        epsilon=epsilon,
        norm_adv_by_std_in_grpo=bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True,
        config=config,
    )


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
        correct, r1, lo, _ = stage1_band(scores, lengths, index, params)
    advantages, returns = _grpo_of_summed_rewards(
        scores.astype(np.float64) + params.alpha * r1, index, token_level_rewards, response_mask, epsilon, config
    )
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
    """verl's GRPO on each response's summed reward, shifted per group in float64 first, so that a
    group of equal rewards gets an advantage of exactly 0 (module docstring). Otherwise identical."""
    if index is None:
        raise ValueError("lapo_grpo needs verl's group index (uid); got none")
    with torch.no_grad():
        scores = token_level_rewards.double().sum(dim=-1).cpu().numpy()
    return _grpo_of_summed_rewards(scores, index, token_level_rewards, response_mask, epsilon, config)
