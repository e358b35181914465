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

The same pass is LAPO's one writer of state (issue 20): from that batch it builds one
:class:`~lapo_verl.records.LengthRecord` per response (problem id from the row, step, group uid and session from
the TransferQueue key, length, correctness, grade and stage-2 plan from the reward's ``reward_extra_info``) and
appends them to the run's records file with an fsync, before verl saves that step's checkpoint; and with
``lapo.stage2.update_plans=true`` it owns the Eq. 8 plan table (:mod:`lapo_verl.plan_updates`), folds the batch
into it and publishes the next step's table to the run's plan board. Reward workers and agent loops, on any
node, write and read no LAPO file.

Limits: verl hands custom samplers neither ``algorithm.filter_groups`` (DAPO dynamic sampling) nor
``trainer.v1.sampler.sync_refill_failed_groups``, and the class is the sync replay buffer; so those settings
and ``trainer.v1.trainer_mode`` other than ``sync`` are refused at start-up with what to do. With
``trainer.v1.sampler.custom_sampler.path=null`` (verl's own replay buffer) LAPO writes no length records, cannot
make plans from the run and cannot update plans (Eq. 8): the checkpoint callback says so at start-up.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from typing import Any

import numpy as np
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

from lapo_verl import config as lapo_config
from lapo_verl.data.columns import PROBLEM_ID_COLUMN, RECORD_COLUMN
from lapo_verl.records import LengthRecord, RecordWriter, append_event
from lapo_verl.step_metrics import response_metrics, stage1_metrics

logger = logging.getLogger(__name__)

OFF_HINT = ("or set trainer.v1.sampler.custom_sampler.path=null (verl's own replay buffer: no LAPO metrics, no length "
            "records, no Eq. 8)")
#: the checkpoint's copy of the Eq. 8 plan table
PLAN_TABLE_NAME = "lapo_plan_table.json"


def _get(mapping: Any, key: str, default: Any = None) -> Any:
    getter = getattr(mapping, "get", None)
    return default if getter is None else getter(key, default)


def _key_parts(key: str) -> tuple[str, int]:
    """``{uid}_{session}_{index}`` -> (uid, session)."""
    head, _, _ = key.rpartition("_")
    uid, _, session = head.rpartition("_")
    return uid, int(session) if session.isdigit() else 0


def _plain(value: Any) -> Any:
    value = getattr(value, "data", value)
    return value.item() if hasattr(value, "item") and getattr(value, "ndim", 1) == 0 else value


def _number(value: Any) -> float | None:
    try:
        out = float(_plain(value))
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


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
        # verl passes the trainer's refill method: its trainer holds the full config (rollout.n, batch size)
        self._trainer = getattr(kwargs.get("refill_fn"), "__self__", None)
        full = getattr(self._trainer, "config", None)
        self.group_size = int(full.actor_rollout_ref.rollout.n) if full is not None else None
        self.records_dir = self.lapo.records_dir
        self.writer = RecordWriter(self.records_dir) if self.records_dir else None
        self.records_written = 0
        self.plan_table = None
        self.board = None
        if self.lapo.stage == 2 and self.lapo.stage2.update_plans:
            self._start_plan_table(full)

    # ------------------------------------------------------------------ Eq. 8: the one owner of the plan table
    def _start_plan_table(self, full: Any) -> None:
        from lapo_verl.plan_updates import PlanTable, start_board
        from lapo_verl.plans import read_plans
        from lapo_verl.records import load_records
        from lapo_verl.verl_ext.checkpoint import resolve_resume_step

        self.initial_plans, self.initial_unsolved, _ = read_plans(str(self.lapo.plans_path))
        resume = resolve_resume_step(full.trainer) if full is not None else 0
        table, source = PlanTable(self.initial_plans, self.initial_unsolved), "the plans file"
        if resume:
            saved = os.path.join(str(full.trainer.default_local_dir), f"global_step_{resume}", PLAN_TABLE_NAME)
            if os.path.isfile(saved):
                with open(saved, encoding="utf-8") as fh:
                    table, source = PlanTable.from_json(json.load(fh)), saved
            else:  # a checkpoint without a table (written by an earlier version): fold its committed records
                records, _ = load_records(str(self.records_dir), max_step=resume)
                for step in sorted({r.step for r in records}):
                    table.fold([r for r in records if r.step == step], step)
                source = f"the records of steps <= {resume} in {self.records_dir}"
            if table.step != resume and source != "the plans file":
                logger.warning("[lapo] Eq. 8 table from %s is at step %d, resuming at %d", source, table.step, resume)
            table.step = resume
        self.plan_table = table
        self.board = start_board(self.lapo.run_dir, resume + 1, table.plans)
        logger.warning("[lapo] Eq. 8 plan table (%d plans) from %s, published for step %d", len(table.plans), source,
                       resume + 1)

    def sample(self, global_steps: int, partition_id: str, batch_size: int):
        batch, metrics = super().sample(global_steps=global_steps, partition_id=partition_id, batch_size=batch_size)
        if partition_id == "train" and batch.keys:
            metrics = dict(metrics)
            metrics.update(self.process_batch(batch, int(global_steps), int(batch_size)))
        return batch, metrics

    def process_batch(self, batch: Any, step: int, prompts: int | None = None) -> dict[str, float]:
        """Metrics of one training batch; its length records (written + fsynced); the Eq. 8 table update."""
        import transfer_queue as tq

        keys = list(batch.keys)
        fields = ["rm_scores", "response_mask", "extra_fields"]
        if self.writer is not None or self.plan_table is not None:
            fields += [PROBLEM_ID_COLUMN, RECORD_COLUMN]
        try:
            data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=fields)
        except Exception as err:  # noqa: BLE001 - re-raised with what is missing
            raise RuntimeError(f"LapoMetricsReplayBuffer could not read {fields} of the training batch from "
                               f"TransferQueue ({err}); LAPO's rows need data.custom_cls=LapoDataset "
                               f"(the recipes set it)") from err
        scores = np.array([float(v.sum().item()) for v in data["rm_scores"]], dtype=np.float64)
        lengths = np.array([float(v.sum().item()) for v in data["response_mask"]], dtype=np.float64)
        infos, extras = [], []
        for value in data["extra_fields"]:
            extra = _plain(value)
            extra = extra if isinstance(extra, dict) else {}
            info = extra.get("reward_extra_info", {})
            infos.append(info if isinstance(info, dict) else {})
            extras.append(extra)
        metrics = compute_batch_metrics(keys, scores, lengths, infos, self.lapo, self.adv_estimator)
        if self.writer is None and self.plan_table is None:
            return metrics
        records = self.build_records(keys, step, scores, lengths, infos, extras, [_plain(v) for v in data[PROBLEM_ID_COLUMN]],
                                     [bool(_plain(v)) for v in data[RECORD_COLUMN]])
        if self.writer is not None:
            self.commit_records(records, step, prompts)
        if self.plan_table is not None:
            changed = self.plan_table.fold(records, step)
            import ray

            ray.get(self.board.publish.remote(step + 1, self.plan_table.plans))
            metrics["lapo/stage2/plans_changed"] = float(changed)
        return metrics

    def build_records(self, keys: list[str], step: int, scores: np.ndarray, lengths: np.ndarray, infos: list[dict],
                      extras: list[dict], problem_ids: list[Any], recorded: list[bool]) -> list[LengthRecord]:
        """One record per response (the last output of each session), as the reward scored it."""
        from lapo_verl.plan_updates import STATED_PLAN_FIELD

        final = _session_final(keys)
        sizes: dict[str, int] = {}
        for i in final:
            uid, _ = _key_parts(keys[i])
            sizes[uid] = sizes.get(uid, 0) + 1
        now = time.time()
        records = []
        for i in final:
            if not recorded[i]:
                continue
            uid, session = _key_parts(keys[i])
            info = infos[i]
            if "acc" not in info:
                raise RuntimeError(f"training response {keys[i]} has no 'acc' in its reward_extra_info: LAPO's length "
                                   "records need one of LAPO's reward managers (reward.reward_manager.name=lapo_*)")
            plan = _number(info.get("plan"))
            stated = extras[i].get(STATED_PLAN_FIELD)
            if self.plan_table is not None and (stated is None or plan is None or int(stated) != int(plan)):
                raise RuntimeError(f"training response {keys[i]} (problem {problem_ids[i]!r}, step {step}): the prompt "
                                   f"stated plan {stated!r}, the reward used {plan!r}")
            length = _number(info.get("length"))
            target = _number(info.get("target"))
            records.append(LengthRecord(
                problem_id=str(problem_ids[i]), step=step, group_uid=uid, sample_index=session,
                group_size=self.group_size or sizes[uid],
                response_length=int(length if length is not None else lengths[i]),
                correct=(_number(info["acc"]) or 0.0) >= 0.5,
                time=now, grade_reason=info.get("grade_reason"), plan=plan,
                target=None if target is None else int(target), plan_closeness=_number(info.get("r2")),
                reward=float(scores[i]),
            ))
        return records

    def commit_records(self, records: list[LengthRecord], step: int, prompts: int | None = None) -> None:
        """Append and fsync one step's records, then log the step's count against prompts x n (the count
        ``lapo-verl plans`` checks)."""
        self.writer.write_many(records, fsync=True)
        self.records_written += len(records)
        groups = prompts or len({r.group_uid for r in records})
        expected = groups * (self.group_size or 0) or len(records)
        append_event(str(self.records_dir), {"event": "step", "step": step, "records": len(records),
                                             "expected": expected, "file": os.path.basename(self.writer.path or "")})


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
