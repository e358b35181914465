"""Start-up check of a recipe's settings (the typed ``lapo:`` section) and inputs: data files, model,
stage-2 plans file.

``python -m verl.trainer.main_ppo +recipe=lapo_stage2`` with nothing else would otherwise start Ray, a
TaskRunner and worker groups before failing deep inside verl on ``~/data/rlhf/gsm8k/train.parquet``. The
recipes register :class:`LapoPreflight` as a Hydra job callback (``hydra.callbacks.lapo_preflight`` in
``paper_grpo.yaml``): Hydra calls ``on_job_start`` in the driver right before verl's ``main`` runs, so a
missing input is reported first, all at once, each with the command that makes it. Before that, the
``lapo:`` section is validated once (:class:`lapo_verl.config.LapoConfig`: unknown keys and unsupported values
stop the run with the full key's name), whatever ``lapo.preflight`` says.

Only local paths are checked: anything with a URL scheme (``hdfs://``, ``s3://``...) and model ids that
look like Hugging Face repos (``org/name`` with no such local directory) are left to verl. Turn the check
off with ``lapo.preflight=false`` (e.g. inputs that only exist on the worker nodes).
"""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

PREPARE_DATA_HINT = (
    "lapo-verl prepare-data hf:agentica-org/DeepScaleR-Preview-Dataset:train --out data/ --val-fraction 0.02\n"
    "      then add: data.train_files=data/train.parquet data.val_files=data/val.parquet\n"
    "      (a CPU toy set, from a source checkout: python recipes/dev/quickstart.py --out runs/quickstart\n"
    "       -> runs/quickstart/data/*.parquet)"
)
STAGE1_MODEL_HINT = (
    "add actor_rollout_ref.model.path=<Hugging Face id or local model dir>, "
    "e.g. actor_rollout_ref.model.path=agentica-org/DeepScaleR-1.5B-Preview"
)
STAGE2_MODEL_HINT = (
    "stage 2 starts from the stage-1 model in Hugging Face format:\n"
    "      python -m verl.model_merger merge --backend fsdp "
    "--local_dir <stage-1 run>/checkpoints/global_step_<N>/actor --target_dir models/lapo_d\n"
    "      then add: actor_rollout_ref.model.path=models/lapo_d"
)


@dataclass(frozen=True)
class MissingInput:
    """One input the run cannot start without."""

    key: str  # config key, e.g. "data.train_files"
    path: str  # the value as configured
    fix: str  # command(s) that make it

    def render(self) -> str:
        return f"  - {self.key}={self.path}: not found\n    fix: {self.fix}"


def _is_remote(path: str) -> bool:
    return "://" in path


def _paths(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, ListConfig)):
        return [str(v) for v in value]
    return [str(value)]


def looks_local(path: str) -> bool:
    """True when ``path`` can only be a local path: absolute, ``~``, ``./`` or ``../``, two or more ``/``,
    or ``dir/name`` whose ``dir`` exists here. ``org/name`` or ``name`` otherwise may be a Hugging Face id."""
    if path.startswith(("~", "./", "../")) or os.path.isabs(path):
        return True
    parts = path.replace("\\", "/").split("/")
    return len(parts) > 2 or (len(parts) == 2 and os.path.isdir(parts[0]))


def _select(cfg: Any, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None, throw_on_missing=False)


def stage1_runs(experiment_dir: str) -> list[str]:
    """Stage-1 run directories of an experiment that hold length records (newest first)."""
    runs = [d for d in glob.glob(os.path.join(os.path.expanduser(experiment_dir), "stage1-*"))
            if os.path.isdir(os.path.join(d, "records"))]
    return sorted(runs, key=os.path.getmtime, reverse=True)


def missing_inputs(cfg: DictConfig) -> list[MissingInput]:
    """Every local input of a recipe's run that does not exist, with the command that makes it."""
    problems: list[MissingInput] = []
    for key in ("data.train_files", "data.val_files"):
        for path in _paths(_select(cfg, key)):
            if not _is_remote(path) and not os.path.exists(os.path.expanduser(path)):
                problems.append(MissingInput(key, path, PREPARE_DATA_HINT))
    stage = int(_select(cfg, "lapo.stage") or 1)
    model = _select(cfg, "actor_rollout_ref.model.path")
    if model is not None:
        model = str(model)
        if not _is_remote(model) and looks_local(model) and not os.path.exists(os.path.expanduser(model)):
            problems.append(MissingInput("actor_rollout_ref.model.path", model,
                                         STAGE2_MODEL_HINT if stage == 2 else STAGE1_MODEL_HINT))
    if stage == 2:
        plans = _select(cfg, "lapo.plans_path")
        if not plans or (not _is_remote(str(plans)) and not os.path.isfile(os.path.expanduser(str(plans)))):
            experiment_dir = str(_select(cfg, "lapo.experiment_dir") or "<lapo.output_root>/<lapo.experiment>")
            runs = stage1_runs(experiment_dir)
            run = runs[0] if runs else f"{experiment_dir}/stage1-<tag>"
            fix = f"lapo-verl plans --run {run} --out {plans}"
            if not runs:
                fix += ("\n      (no stage-1 run with records under " + experiment_dir + ": run stage 1 first, "
                        "+recipe=lapo_stage1 with the same lapo.experiment / lapo.output_root; "
                        "`lapo-verl resolve lapo_stage1 lapo.run_dir -- <overrides>` prints its directory)")
            elif len(runs) > 1:
                fix += "\n      (other stage-1 runs there: " + ", ".join(runs[1:4]) + ")"
            problems.append(MissingInput("lapo.plans_path", str(plans), fix))
    return problems


def format_report(problems: list[MissingInput], recipe_hint: str = "") -> str:
    lines = [f"lapo-verl: this run cannot start, {len(problems)} input(s) missing{recipe_hint}:"]
    for i, problem in enumerate(problems):
        same_fix = i > 0 and problems[i - 1].fix == problem.fix
        lines.append(f"  - {problem.key}={problem.path}: not found" if same_fix else problem.render())
    lines.append("  (checked before Ray starts; lapo.preflight=false skips this check)")
    return "\n".join(lines)


class PreflightExit(SystemExit):
    """Exit status 2 carrying a report; a ``SystemExit`` so Hydra does not bury it under a traceback."""

    def __init__(self, report: str) -> None:
        super().__init__(2)
        self.report = report

    def __str__(self) -> str:
        return self.report


class LapoSettingsInvalid(PreflightExit):
    """A ``lapo`` setting is invalid."""


def check_settings(cfg: DictConfig) -> None:
    """Validate the ``lapo:`` section (typed settings, :mod:`lapo_verl.config`) before Ray starts; a config
    without one is not a LAPO run and is left to verl."""
    if _select(cfg, "lapo") is None:
        return
    from lapo_verl.config import LapoConfig, LapoConfigError

    try:
        LapoConfig.from_section(cfg.lapo)
    except LapoConfigError as err:
        report = f"lapo-verl: this run cannot start, a LAPO setting is invalid:\n  {err}"
        print(report, file=sys.stderr, flush=True)
        raise LapoSettingsInvalid(report) from None


class LapoInputsMissing(PreflightExit):
    """An input of the run (data file, model, plans file) is missing."""


def check(cfg: DictConfig) -> None:
    """Raise :class:`LapoSettingsInvalid` if a ``lapo`` setting is invalid, then :class:`LapoInputsMissing`
    (after printing the report to stderr) if an input is missing."""
    check_settings(cfg)
    enabled = _select(cfg, "lapo.preflight")
    if enabled is not None and not bool(enabled):
        return
    problems = missing_inputs(cfg)
    if problems:
        report = format_report(problems)
        print(report, file=sys.stderr, flush=True)
        raise LapoInputsMissing(report)


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # hydra is a verl dependency; only the callback needs it
    _HydraCallback = object  # type: ignore[assignment,misc]


class LapoPreflight(_HydraCallback):  # type: ignore[misc,valid-type]
    """Hydra job callback (``hydra.callbacks.lapo_preflight._target_``): runs :func:`check` in the driver
    before the task function (verl's ``main``) starts."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        check(config)
