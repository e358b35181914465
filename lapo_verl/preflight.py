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


class LapoPlansInvalid(PreflightExit):
    """The stage-2 plans file exists but cannot be used (bad JSON, format, or entries)."""


def check_plans_file(cfg: DictConfig) -> None:
    """Stage 2: read and validate ``lapo.plans_path`` before Ray starts (the dataset would fail on it only in
    the TaskRunner, after Ray and the worker groups started). Every bad entry is named
    (:func:`lapo_verl.plans.read_plans`). A missing or remote file is left to :func:`missing_inputs`."""
    plans = _select(cfg, "lapo.plans_path")
    if int(_select(cfg, "lapo.stage") or 1) != 2 or not plans or _is_remote(str(plans)):
        return
    path = os.path.expanduser(str(plans))
    if not os.path.isfile(path):
        return
    from lapo_verl.plans import PlansFileError, read_plans

    try:
        read_plans(path)
    except PlansFileError as err:
        report = (f"lapo-verl: this run cannot start, the plans file is not usable:\n  lapo.plans_path={plans}: {err}\n"
                  "  (checked before Ray starts; lapo.preflight=false skips this check)")
        print(report, file=sys.stderr, flush=True)
        raise LapoPlansInvalid(report) from None


class VerlConfigInvalid(PreflightExit):
    """verl's workers could not build their typed configs from this run's config."""


class NotEnoughGpus(PreflightExit):
    """The run asks for more GPUs or nodes than the machine or the running Ray cluster has."""


class RayClusterBusy(PreflightExit):
    """The Ray cluster the run would join already trains another verl run (one TransferQueue per cluster)."""


def _stop(exit_class: type[PreflightExit], headline: str, lines: list[str]) -> None:
    report = "\n".join([headline, *lines, "  (checked before Ray starts; lapo.preflight=false skips this check)"])
    print(report, file=sys.stderr, flush=True)
    raise exit_class(report)


def check_verl_config(cfg: DictConfig, capacity: Any = None) -> None:
    """Build the typed configs verl's workers build and run verl's own validation
    (:func:`lapo_verl.verl_config_check.build_problems`), then compare the GPUs asked for with ``capacity`` (default:
    what verl's ``ray.init`` will find) and make sure no other verl run trains on the Ray cluster it joins, then print
    the memory estimate's warnings (never stops a run)."""
    from lapo_verl import verl_config_check as verl_check

    problems = verl_check.build_problems(cfg)
    if problems:
        _stop(VerlConfigInvalid, f"lapo-verl: this run cannot start, verl's workers would reject its config "
              f"({len(problems)} problem(s)):", [p.render() for p in problems])
    capacity = capacity if capacity is not None else verl_check.gpu_capacity(cfg)
    problem = verl_check.capacity_problem(cfg, capacity)
    if problem:
        _stop(NotEnoughGpus, "lapo-verl: this run cannot start, it asks for GPUs that are not there:", [problem.render()])
    problem = verl_check.busy_cluster_problem(capacity)
    if problem:
        _stop(RayClusterBusy, "lapo-verl: this run cannot start, its Ray cluster is training another verl run:",
              [problem.render()])
    warn_memory(cfg)


def warn_memory(cfg: DictConfig) -> None:
    """Print the per-GPU memory estimate of a GPU run (``lapo_verl.memory_estimate``): one summary line, the full
    table and a warning naming the knob when a phase exceeds the GPU. An estimate never stops a run; nothing is
    printed for the CPU backend."""
    if str(_select(cfg, "trainer.device") or "cuda") == "cpu" or os.environ.get("VERL_PLATFORM") == "cpu":
        return
    from lapo_verl.memory_estimate import estimate_from_config, format_estimate, preflight_memory_lines

    estimate = estimate_from_config(cfg)
    lines = format_estimate(estimate).splitlines() if estimate is not None and estimate.warnings else \
        preflight_memory_lines(cfg)
    print("\n".join(f"lapo-verl: {line}" for line in lines), file=sys.stderr, flush=True)


def check(cfg: DictConfig, capacity: Any = None) -> None:
    """Raise :class:`LapoSettingsInvalid` if a ``lapo`` setting is invalid, then :class:`LapoInputsMissing`
    (after printing the report to stderr) if an input is missing, then :class:`VerlConfigInvalid`,
    :class:`NotEnoughGpus` or :class:`RayClusterBusy` (:func:`check_verl_config`)."""
    check_settings(cfg)
    enabled = _select(cfg, "lapo.preflight")
    if enabled is not None and not bool(enabled):
        return
    problems = missing_inputs(cfg)
    if problems:
        report = format_report(problems)
        print(report, file=sys.stderr, flush=True)
        raise LapoInputsMissing(report)
    check_verl_config(cfg, capacity)
    check_plans_file(cfg)


#: LAPO's paths: made absolute in the driver before verl starts, so that every process (the TaskRunner and the
#: workers, on any node and in any working directory) names the same directories
LAPO_PATH_KEYS = ("lapo.output_root", "lapo.experiment_dir", "lapo.run_dir", "lapo.plans_path", "lapo.records.dir")
#: keys whose value holds the run-directory digest: frozen at the driver's value, so that the TaskRunner, whose
#: digest would see the absolute plans path, names the run (tracker, checkpoints) as the driver did
DIGEST_KEYS = ("trainer.experiment_name",)


def absolute_lapo_paths(cfg: DictConfig, cwd: str | None = None) -> dict[str, str]:
    """Resolve :data:`LAPO_PATH_KEYS` (and :data:`DIGEST_KEYS`) here and set them as literals, the paths absolute
    against ``cwd`` (default: the working directory of the command). Remote paths (``s3://``...) are kept.
    Returns the values set; a config without a ``lapo`` section is left alone."""
    if _select(cfg, "lapo") is None:
        return {}
    from lapo_verl.resources import register_resolvers

    register_resolvers()
    base = cwd or os.getcwd()
    values: dict[str, str] = {}
    for key in (*LAPO_PATH_KEYS, *DIGEST_KEYS):  # all resolved before any is set: the digest sees the originals
        value = _select(cfg, key)
        if value is None:
            continue
        value = str(value)
        if key in LAPO_PATH_KEYS and not _is_remote(value):
            value = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
        values[key] = value
    from omegaconf import open_dict, read_write

    with read_write(cfg), open_dict(cfg):
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, merge=False)
    return values


def _task_config_of_this_job() -> DictConfig | None:
    """The config Hydra hands to the task function (verl's ``main``). Hydra 1.3 copies it before calling
    ``on_job_start``, so the callback finds the copy in its caller ``run_job`` (``task_cfg``)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "run_job" and isinstance(frame.f_locals.get("task_cfg"), DictConfig):
            return frame.f_locals["task_cfg"]
        frame = frame.f_back
    return None


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # hydra is a verl dependency; only the callback needs it
    _HydraCallback = object  # type: ignore[assignment,misc]


class LapoPreflight(_HydraCallback):  # type: ignore[misc,valid-type]
    """Hydra job callback (``hydra.callbacks.lapo_preflight._target_``): runs :func:`check` in the driver
    before the task function (verl's ``main``) starts."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        check(config)
        if _select(config, "lapo") is None:
            return
        task_cfg = _task_config_of_this_job()
        if task_cfg is None:
            print("lapo-verl: could not make LAPO's paths absolute (Hydra's run_job not found); on several nodes "
                  "set lapo.output_root to an absolute path", file=sys.stderr, flush=True)
            return
        absolute_lapo_paths(task_cfg)
        absolute_lapo_paths(config)
