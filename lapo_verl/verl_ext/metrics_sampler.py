"""LAPO metrics into verl's tracker, through verl's replay-buffer sampler hook.

Why here: verl 0.9.1's V1 trainer logs training metrics from a fixed set of places (the sampler, the
actor/critic updates, ``compute_data_metrics`` over a fixed list of tensor fields); ``reward_extra_info`` is
reduced only in validation, and advantage estimators return no metrics. The sampler is the documented
extension point (``trainer.v1.sampler.custom_sampler.{path,name}``, see verl's ``ReplayBuffer.sample``) whose
returned metrics dict verl merges into the step's metrics and passes to ``Tracking.log`` with the same step
as its own. It runs in the trainer process on each step's exact training batch (whole GRPO groups), before
the advantage step, so it can read every response's score, length, group uid and ``reward_extra_info`` from
TransferQueue and compute (with the functions the estimator itself uses) what :mod:`lapo_verl.step_metrics`
documents.

Limits: verl hands custom samplers neither ``algorithm.filter_groups`` (DAPO dynamic sampling) nor
``trainer.v1.sampler.sync_refill_failed_groups``, and the class is the sync replay buffer; so those settings
and ``trainer.v1.trainer_mode`` other than ``sync`` are refused at start-up with what to do. Set
``trainer.v1.sampler.custom_sampler.path=null`` to use verl's own replay buffer (LAPO metrics then only in
``lapo_metrics.jsonl`` and the records).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from lapo_verl import config as lapo_config
from lapo_verl.step_metrics import response_metrics, stage1_metrics

logger = logging.getLogger(__name__)

OFF_HINT = "or set trainer.v1.sampler.custom_sampler.path=null (verl's own replay buffer; LAPO metrics then only in lapo_metrics.jsonl)"


def _get(mapping: Any, key: str, default: Any = None) -> Any:
    getter = getattr(mapping, "get", None)
    return default if getter is None else getter(key, default)


def _session_final(keys: list[str]) -> list[int]:
    """Row positions of the last output of each (uid, session): keys are ``{uid}_{session}_{index}``."""
    last: dict[str, tuple[int, int]] = {}
    for pos, key in enumerate(keys):
        head, _, index = key.rpartition("_")
        idx = int(index) if index.isdigit() else 0
        if head not in last or idx >= last[head][0]:
            last[head] = (idx, pos)
    return sorted(pos for _, pos in last.values())


class LapoMetricsReplayBuffer(ReplayBuffer):
    """verl's sync replay buffer + ``lapo/...`` metrics of each training batch.

    ``sampler_kwargs`` (set by ``paper_grpo.yaml``): ``lapo`` (the ``lapo:`` section), ``adv_estimator``,
    ``filter_groups`` and ``sync_refill_failed_groups`` (mirrors of verl's keys, checked here because verl does
    not apply them to custom samplers).
    """

    def __init__(self, trainer_mode: str, trainer_config: Any, max_off_policy_threshold: Any,
                 max_off_policy_strategy: str, sampler_kwargs: Any, **kwargs: Any) -> None:
        if trainer_mode != "sync":
            raise ValueError(f"LapoMetricsReplayBuffer is verl's sync replay buffer; trainer.v1.trainer_mode is "
                             f"{trainer_mode!r}: use trainer.v1.trainer_mode=sync, {OFF_HINT}")
        filter_groups = _get(sampler_kwargs, "filter_groups")
        if filter_groups is not None and bool(_get(filter_groups, "enable", False)):
            raise ValueError("algorithm.filter_groups.enable=true (DAPO dynamic sampling) is not applied by verl to "
                             f"a custom sampler such as LapoMetricsReplayBuffer: turn it off, {OFF_HINT}")
        if bool(_get(sampler_kwargs, "sync_refill_failed_groups", False)):
            raise ValueError("trainer.v1.sampler.sync_refill_failed_groups=true is not applied by verl to a custom "
                             f"sampler such as LapoMetricsReplayBuffer: turn it off, {OFF_HINT}")
        self.lapo = lapo_config.load(sampler_kwargs, where="trainer.v1.sampler.sampler_kwargs.lapo")
        self.adv_estimator = str(_get(sampler_kwargs, "adv_estimator", "") or "")
        super().__init__(trainer_mode=trainer_mode, trainer_config=trainer_config,
                         max_off_policy_threshold=max_off_policy_threshold,
                         max_off_policy_strategy=max_off_policy_strategy, sampler_kwargs=sampler_kwargs, **kwargs)

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        batch, metrics = super().sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        if partition_id == "train" and batch.keys:
            metrics = dict(metrics)
            metrics.update(self.batch_metrics(batch))
        return batch, metrics

    def batch_metrics(self, batch: Any) -> dict[str, float]:
        import transfer_queue as tq

        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                               select_fields=["rm_scores", "response_mask", "extra_fields"])
        scores = np.array([float(v.sum().item()) for v in data["rm_scores"]], dtype=np.float64)
        lengths = np.array([float(v.sum().item()) for v in data["response_mask"]], dtype=np.float64)
        infos = []
        for value in data["extra_fields"]:
            extra = getattr(value, "data", value)
            info = extra.get("reward_extra_info", {}) if isinstance(extra, dict) else {}
            infos.append(info if isinstance(info, dict) else {})
        return compute_batch_metrics(list(batch.keys), scores, lengths, infos, self.lapo, self.adv_estimator)


def compute_batch_metrics(keys: list[str], scores: np.ndarray, lengths: np.ndarray, infos: list[dict], lapo: Any,
                          adv_estimator: str) -> dict[str, float]:
    """``lapo/...`` metrics of one training batch: responses (session-final outputs) and, when the
    ``lapo_stage1`` estimator is on, its band statistics over the same rows and groups it sees."""
    final = _session_final(keys)
    out = response_metrics([infos[i] for i in final], lengths[final])
    if adv_estimator == "lapo_stage1":
        uids = [key.split("_")[0] for key in keys]
        out.update(stage1_metrics(scores, lengths, uids, lapo_config.LapoConfig.from_section(lapo).stage1.params()))
    return out
