"""Checkpoint callback that keeps LAPO's length records consistent with verl's checkpoints.

Set by the recipes as ``trainer.checkpoint_callback_class=lapo_verl.verl_ext.checkpoint.LapoCheckpointCallback``.
It runs in verl's TaskRunner:

* at construction (trainer start, before any training rollout) it resolves the step verl will resume
  from, with the same rule as ``trainer.resume_mode`` (verl has no load hook), and logs a ``start``
  event; records of later steps written before this event are then ignored (they are redone);
* at construction it also says what LAPO cannot do when verl's own replay buffer replaces LAPO's metrics
  sampler (the one writer of length records and owner of the Eq. 8 table): no records (a warning), no Eq. 8
  (an error);
* after each save (the step's records were fsynced by the sampler before verl saved) it logs a ``checkpoint``
  event and writes the committed records up to that step into ``global_step_N/lapo_records.jsonl``, so a
  checkpoint carries its own statistics (``lapo-verl plans --records <ckpt>/lapo_records.jsonl``);
* with ``lapo.stage2.update_plans=true`` (paper Eq. 8) it saves the sampler's plan table with the checkpoint
  (``global_step_N/lapo_plan_table.json``, restored on resume) and exports it as a plans file,
  ``global_step_N/lapo_plans.json`` and ``<lapo.run_dir>/plans_updated.json``;
* at the last step it logs the records written against steps x batch x n.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from typing import Any

from verl.trainer.ppo.checkpoint_callback import CheckpointCallback

from lapo_verl import config as lapo_config
from lapo_verl.jsonl import atomic_write_json
from lapo_verl.records import append_event, fsync_records, load_records, write_snapshot

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
    sync_steps = int(((trainer_config.get("v1") or {}).get("sync") or {}).get("parameter_sync_step", 1) or 1)
    if use_v1 and mode == "sync" and sync_steps != 1:
        raise ValueError(
            f"lapo.stage2.update_plans=true (paper Eq. 8) needs trainer.v1.sync.parameter_sync_step=1 (got {sync_steps}): "
            "the plan table is folded and published per sampled batch, and each step's rollouts must all see one table"
        )
    if not use_v1 or mode != "sync":
        raise ValueError(
            f"lapo.stage2.update_plans=true (paper Eq. 8) needs trainer.use_v1=true and trainer.v1.trainer_mode=sync "
            f"(got use_v1={use_v1}, trainer_mode={mode!r}): in other modes a step's rollouts may start before the "
            "previous step's rewards are recorded, so the plans would differ within a group"
        )


LAPO_SAMPLER = "LapoMetricsReplayBuffer"


def check_sampler(config: Any, lapo: lapo_config.LapoConfig) -> str | None:
    """What LAPO cannot do with this run's replay buffer: raises for Eq. 8, returns a warning for records."""
    sampler = (((config.trainer.get("v1") or {}).get("sampler") or {}).get("custom_sampler") or {})
    use_v1 = bool(config.trainer.get("use_v1", True))
    if use_v1 and sampler.get("path") and str(sampler.get("name")) == LAPO_SAMPLER:
        return None
    what = ("verl's own replay buffer (trainer.v1.sampler.custom_sampler.path=null)" if use_v1
            else "verl's legacy trainer (trainer.use_v1=false)")
    if lapo.stage == 2 and lapo.stage2.update_plans:
        raise ValueError(f"lapo.stage2.update_plans=true (paper Eq. 8) needs LAPO's metrics sampler, which owns the "
                         f"plan table; this run uses {what}: set trainer.v1.sampler.custom_sampler.path="
                         f"pkg://lapo_verl.verl_ext.metrics_sampler and .name={LAPO_SAMPLER} (the recipes do)")
    if lapo.records_dir:
        return (f"[lapo] this run uses {what}: LAPO writes no length records (lapo.records.dir stays empty, so "
                "`lapo-verl plans` cannot make plans from this run) and logs no lapo/... metrics; the rewards are "
                f"unchanged. LAPO's {LAPO_SAMPLER} (the recipes' default) writes them.")
    return None


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
        warning = check_sampler(config, self.lapo)
        if warning:
            logger.warning(warning)
            print(warning, flush=True)
        rollout = (config.get("actor_rollout_ref") or {}).get("rollout") or {}
        batch = (config.get("data") or {}).get("train_batch_size")
        self.per_step = int(batch or 0) * int(rollout.get("n", 1) or 1)
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
        fsync_records(self.records_dir)  # the sampler fsynced each step's records; files of older versions too
        records, report = load_records(self.records_dir, max_step=global_step)
        write_snapshot(records, os.path.join(checkpoint_dir, SNAPSHOT_NAME))
        append_event(self.records_dir, {"event": "checkpoint", "step": int(global_step), "records": len(records)})
        if self.export_plans:
            self._save_plan_table(getattr(trainer, "replay_buffer", None), int(global_step), checkpoint_dir)
        logger.warning(
            "[lapo] step %d: %d records snapshotted to %s (%d corrupt lines skipped)",
            global_step, len(records), checkpoint_dir, report.corrupt,
        )
        total = getattr(trainer, "total_training_steps", None)
        if total is not None and int(global_step) >= int(total):
            self.log_run_end(records, int(global_step))

    def log_run_end(self, records: list, last_step: int) -> None:
        """The run's records against steps x batch x n (printed and logged as an ``end`` event)."""
        steps = sorted({r.step for r in records})
        expected = last_step * self.per_step
        line = (f"[lapo] run end: {len(records)} length records for steps 1..{last_step} in {self.records_dir}; "
                f"steps x batch x n = {last_step} x {self.per_step} = {expected}"
                + ("" if len(records) == expected else f"  <- {expected - len(records)} MISSING"
                   + (f" (steps with records: {steps[0]}..{steps[-1]}, {len(steps)})" if steps else "")))
        logger.warning(line)
        print(line, flush=True)
        append_event(self.records_dir, {"event": "end", "step": last_step, "records": len(records),
                                        "expected": expected})

    def _save_plan_table(self, sampler: Any, step: int, checkpoint_dir: str) -> None:
        from lapo_verl.plans import write_plans
        from lapo_verl.verl_ext.metrics_sampler import PLAN_TABLE_NAME

        table = getattr(sampler, "plan_table", None)
        if table is None:
            raise RuntimeError("lapo.stage2.update_plans=true but the trainer's replay buffer holds no plan table: "
                               f"it must be LAPO's {LAPO_SAMPLER}")
        if table.step != step:
            raise RuntimeError(f"Eq. 8 plan table is at step {table.step}, the checkpoint is step {step}")
        atomic_write_json(os.path.join(checkpoint_dir, PLAN_TABLE_NAME), table.to_json())
        doc = table.as_plans_file(sampler.initial_plans, sampler.initial_unsolved)
        doc["source"] = {"initial_plans": str(self.lapo.plans_path), "records": self.records_dir}
        write_plans(doc, os.path.join(checkpoint_dir, PLANS_SNAPSHOT_NAME))
        run_dir = self.lapo.run_dir
        if run_dir:
            write_plans(doc, os.path.join(str(run_dir), UPDATED_PLANS_NAME))
        logger.warning("[lapo] step %d: Eq. 8 plan table saved, plans exported (%d changed by stage 2) to %s", step,
                       doc["summary"]["changed_by_stage2"], checkpoint_dir)
