"""Checkpoint callback that keeps LAPO's length records consistent with verl's checkpoints.

Set by the recipes as ``trainer.checkpoint_callback_class=lapo_verl.verl_ext.checkpoint.LapoCheckpointCallback``.
It runs in verl's TaskRunner:

* at construction (trainer start, before any training rollout) it resolves the step verl will resume
  from, with the same rule as ``trainer.resume_mode`` (verl has no load hook), and logs a ``start``
  event; records of later steps written before this event are then ignored (they are redone);
* after each save it fsyncs every records file, logs a ``checkpoint`` event and writes the committed
  records up to that step into ``global_step_N/lapo_records.jsonl``, so a checkpoint carries its own
  statistics (``lapo-verl plans --records <ckpt>/lapo_records.jsonl``);
* with ``lapo.stage2.update_plans=true`` (paper Eq. 8) it also exports the plans after that step as a plans
  file, ``global_step_N/lapo_plans.json`` and ``<lapo.run_dir>/plans_updated.json``
  (:func:`lapo_verl.plan_updates.export_plans`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from typing import Any

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from lapo_verl import config as lapo_config
from lapo_verl.records import LengthRecord, append_event, fsync_records, load_records, write_snapshot

logger = logging.getLogger(__name__)

SNAPSHOT_NAME = "lapo_records.jsonl"
PLANS_SNAPSHOT_NAME = "lapo_plans.json"
UPDATED_PLANS_NAME = "plans_updated.json"


def resolve_resume_step(trainer_config: Any) -> int:
    """The global step verl's trainer will resume from (0 = from scratch), mirroring ``_load_checkpoint``."""
    mode = trainer_config.get("resume_mode", "auto")
    if mode == "disable":
        return 0
    if mode == "resume_path":
        path = str(trainer_config.get("resume_from_path") or "")
        match = re.search(r"global_step_(\d+)", path)
        return int(match.group(1)) if match else 0
    folder = str(trainer_config.get("default_local_dir"))
    if not os.path.isabs(folder):
        folder = os.path.join(os.getcwd(), folder)
    tracker = os.path.join(folder, "latest_checkpointed_iteration.txt")
    if not os.path.exists(tracker):
        return 0
    with open(tracker, encoding="utf-8") as fh:
        step = int(fh.read().strip())
    return step if os.path.isdir(os.path.join(folder, f"global_step_{step}")) else 0


def check_eq8_trainer(trainer_config: Any) -> None:
    """Eq. 8 plans of step s come from the records of steps < s: every one of them must be written before step
    s's rollouts start, which verl 0.9.1 guarantees in the V1 trainer's ``sync`` mode only."""
    use_v1 = bool(trainer_config.get("use_v1", True))
    mode = str((trainer_config.get("v1") or {}).get("trainer_mode", "sync"))
    if not use_v1 or mode != "sync":
        raise ValueError(
            f"lapo.stage2.update_plans=true (paper Eq. 8) needs trainer.use_v1=true and trainer.v1.trainer_mode=sync "
            f"(got use_v1={use_v1}, trainer_mode={mode!r}): in other modes a step's rollouts may start before the "
            "previous step's rewards are recorded, so the plans would differ within a group"
        )


def records_dir(config: Any) -> str | None:
    """The records directory configured in ``lapo.records.dir`` (None when records are off)."""
    return lapo_config.load(config, where="the trainer config (lapo)").records_dir


class LapoCheckpointCallback(CheckpointCallback):
    def __init__(self, config: Any = None) -> None:
        super().__init__(config=config)
        self.lapo = lapo_config.load(config, where="the trainer config handed to LapoCheckpointCallback (lapo)")
        self.records_dir = self.lapo.records_dir
        self.export_plans = self.lapo.update_plans_dir is not None
        if self.export_plans:
            check_eq8_trainer(config.trainer)
        if self.records_dir:
            self.resume_step = resolve_resume_step(config.trainer)
            append_event(
                self.records_dir,
                {"event": "start", "resume_step": self.resume_step, "host": socket.gethostname(),
                 "process_id": os.getpid()},
            )
            logger.warning("[lapo] records in %s; resuming at step %d", self.records_dir, self.resume_step)

    def on_save(self, trainer, global_step: int, checkpoint_dir: str, async_save: bool = False, **kwargs) -> None:
        if not self.records_dir:
            return
        fsync_records(self.records_dir)
        records, report = load_records(self.records_dir, max_step=global_step)
        write_snapshot(records, os.path.join(checkpoint_dir, SNAPSHOT_NAME))
        append_event(self.records_dir, {"event": "checkpoint", "step": int(global_step), "records": len(records)})
        if self.export_plans:
            self._export_plans(records, int(global_step), checkpoint_dir)
        logger.warning(
            "[lapo] step %d: %d records snapshotted to %s (%d corrupt lines skipped)",
            global_step, len(records), checkpoint_dir, report.corrupt,
        )

    def _export_plans(self, records: list[LengthRecord], step: int, checkpoint_dir: str) -> None:
        from lapo_verl.plan_updates import export_plans
        from lapo_verl.plans import read_plans, write_plans

        plans, unsolved, _ = read_plans(str(self.lapo.plans_path))
        doc = export_plans(records, plans, unsolved, step)
        doc["source"] = {"initial_plans": str(self.lapo.plans_path), "records": self.records_dir}
        write_plans(doc, os.path.join(checkpoint_dir, PLANS_SNAPSHOT_NAME))
        run_dir = self.lapo.run_dir
        if run_dir:
            write_plans(doc, os.path.join(str(run_dir), UPDATED_PLANS_NAME))
        logger.warning("[lapo] step %d: Eq. 8 plans exported (%d changed by stage 2) to %s", step,
                       doc["summary"]["changed_by_stage2"], checkpoint_dir)
