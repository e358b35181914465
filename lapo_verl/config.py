"""The ``lapo:`` config section as typed settings: :class:`LapoConfig`, in verl's own ``BaseConfig`` style.

The recipes put every LAPO knob under a top-level ``lapo:`` section and mirror it into the places verl hands
to plugin code that never sees the full config: ``algorithm.lapo`` (advantage estimators get only
``cfg.algorithm``), ``data.lapo`` (dataset classes get only ``cfg.data``) and
``trainer.v1.sampler.sampler_kwargs.lapo`` (the metrics sampler).

* Defaults are stated once, here (the reward maths' defaults come from :mod:`lapo_verl.rewards`, the plan
  sentence from :mod:`lapo_verl.plan_text`); ``paper_grpo.yaml`` shows the same values, and
  ``tests/test_config.py`` fails if the two drift apart.
* :func:`load` validates the whole section at once: an unknown key or an unsupported value raises
  :class:`LapoConfigError` naming the full key (``lapo.stage2.sigma``) and what is allowed. The Hydra
  preflight callback (:mod:`lapo_verl.preflight`) calls it in the driver before Ray starts; every component
  (reward manager, dataset, agent loop, advantage estimator, sampler, checkpoint callback) builds its typed
  settings once, when it is constructed, with the same call.
* A component that needs the section and does not find it raises a ``KeyError`` that says how to fix the
  command, instead of training with defaults nobody chose.
"""

from __future__ import annotations

import difflib
import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Optional, Union, get_args, get_origin, get_type_hints

from verl.base_config import BaseConfig

from lapo_verl import rewards
from lapo_verl.grading import GRADING_TIMEOUT_S
from lapo_verl.plan_text import PLAN_POSITIONS, PLAN_TEMPLATE, check_plan_template

__all__ = [
    "RECIPE_HINT",
    "LapoConfigError",
    "LapoConfig",
    "RecordsConfig",
    "GradingConfig",
    "Stage1Config",
    "Stage2Config",
    "TargetLengthConfig",
    "L1Config",
    "ThinkPruneConfig",
    "DapoOverlongConfig",
    "UNSOLVED_POLICIES",
    "MISSING_POLICIES",
    "lapo_section",
    "load",
]

RECIPE_HINT = "add +recipe=lapo_stage1 (or lapo_stage2) to the command, or set the key it names"

UNSOLVED_POLICIES = ("max_length", "drop")
MISSING_POLICIES = ("unsolved", "error")
STAGES = (1, 2)

#: keys of earlier versions, with where their knob lives now (named in the unknown-key error)
MOVED = {
    "lapo.stage2_range": "the range plan is a stage-2 knob now: lapo.stage2.plan_range_width (0 = the paper's "
                         "point plan) with lapo.stage2.plan_template containing {lo} and {hi}",
}


class LapoConfigError(ValueError):
    """An unknown key or unsupported value in the ``lapo:`` section; the message names the full key."""


def _fail(key: str, message: str) -> None:
    raise LapoConfigError(f"{key}: {message}")


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        _fail(key, f"got {value!r}; allowed: {allowed}")


@dataclass
class _Section(BaseConfig):
    """A typed part of the ``lapo:`` section; :meth:`check` runs on construction."""

    key: ClassVar[str] = "lapo"

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse unsupported values (with the full key); subclasses extend."""


@dataclass
class RecordsConfig(_Section):
    """``lapo.records``: per-response length records (stage 1 -> plans; kept for analysis elsewhere)."""

    key: ClassVar[str] = "lapo.records"
    enable: bool = True
    dir: Optional[str] = None  # the recipes: ${lapo.run_dir}/records (written by the trainer process only)


@dataclass
class GradingConfig(_Section):
    """``lapo.grading``: the reward managers' grader."""

    key: ClassVar[str] = "lapo.grading"
    timeout_s: float = GRADING_TIMEOUT_S

    def check(self) -> None:
        _require(self.timeout_s > 0 and math.isfinite(self.timeout_s), f"{self.key}.timeout_s", self.timeout_s,
                 "a positive number of seconds")


@dataclass
class Stage1Config(_Section):
    """``lapo.stage1``: the band bonus (paper Eq. 3-5); rules in :class:`lapo_verl.rewards.Stage1Params`."""

    key: ClassVar[str] = "lapo.stage1"
    alpha: float = rewards.ALPHA
    band: tuple[float, float] = rewards.BAND
    falloff: float = rewards.FALLOFF
    bonus_rule: str = rewards.BONUS_RULES[0]

    def check(self) -> None:
        self.params()

    def params(self) -> rewards.Stage1Params:
        try:
            return rewards.Stage1Params(alpha=self.alpha, band=self.band, falloff=self.falloff,
                                        bonus_rule=self.bonus_rule)  # type: ignore[arg-type]
        except ValueError as err:
            raise LapoConfigError(str(err)) from None


@dataclass
class Stage2Config(_Section):
    """``lapo.stage2``: plans in the prompt and the plan-closeness reward (paper Eq. 7), plus the paper's
    Table 2 ablations as knobs: ``plan_position``, ``plan_in_prompt`` and ``plan_range_width`` (a range plan,
    lapo-verl's "w/ Range" row; 0 = the paper's point plan)."""

    key: ClassVar[str] = "lapo.stage2"
    beta: float = rewards.BETA
    sigma: float = rewards.SIGMA
    plan_template: str = PLAN_TEMPLATE
    plan_position: str = PLAN_POSITIONS[0]
    plan_in_prompt: bool = True
    plan_range_width: float = rewards.PLAN_RANGE_WIDTH
    unsolved_policy: str = UNSOLVED_POLICIES[0]
    unsolved_length: Optional[int] = None  # None: data.max_response_length (the recipes interpolate it)
    missing_policy: str = MISSING_POLICIES[0]
    allow_unknown_plan_ids: bool = False
    val_with_plan: bool = False
    update_plans: bool = False

    def check(self) -> None:
        self.params()
        try:
            check_plan_template(self.plan_template, self.plan_range_width, name=f"{self.key}.plan_template")
        except ValueError as err:
            raise LapoConfigError(str(err)) from None
        _require(self.plan_position in PLAN_POSITIONS, f"{self.key}.plan_position", self.plan_position,
                 " | ".join(PLAN_POSITIONS))
        _require(self.unsolved_policy in UNSOLVED_POLICIES, f"{self.key}.unsolved_policy", self.unsolved_policy,
                 " | ".join(UNSOLVED_POLICIES))
        _require(self.missing_policy in MISSING_POLICIES, f"{self.key}.missing_policy", self.missing_policy,
                 " | ".join(MISSING_POLICIES))
        _require(self.unsolved_length is None or self.unsolved_length > 0, f"{self.key}.unsolved_length",
                 self.unsolved_length, "a positive number of tokens, or null for data.max_response_length")

    def params(self) -> rewards.Stage2Params:
        try:
            return rewards.Stage2Params(beta=self.beta, sigma=self.sigma, width=self.plan_range_width)
        except ValueError as err:
            raise LapoConfigError(str(err)) from None


@dataclass
class TargetLengthConfig(_Section):
    """``lapo.target_length``: a per-problem target length in the prompt (the L1 and ThinkPrune baselines)."""

    key: ClassVar[str] = "lapo.target_length"
    enable: bool = False
    min: int = 100  # L1: N ~ U[100, 4000]
    max: int = 4000
    seed: int = 0
    fixed: Optional[int] = None  # one target for every problem
    prompt_template: Optional[str] = None  # appended to the last user message, e.g. " Think for {n} tokens."

    def check(self) -> None:
        _require(0 < self.min <= self.max, f"{self.key}.min/max", (self.min, self.max), "0 < min <= max")
        _require(self.fixed is None or self.fixed > 0, f"{self.key}.fixed", self.fixed,
                 "null or a positive number of tokens")
        _require(self.prompt_template is None or "{n}" in self.prompt_template, f"{self.key}.prompt_template",
                 self.prompt_template, "null or text containing '{n}'")


@dataclass
class L1Config(_Section):
    """``lapo.l1``: LCPO rewards (L1-Exact, L1-Max)."""

    key: ClassVar[str] = "lapo.l1"
    alpha: float = rewards.L1_ALPHA
    delta: float = rewards.L1_DELTA

    def check(self) -> None:
        _require(self.alpha >= 0 and math.isfinite(self.alpha), f"{self.key}.alpha", self.alpha,
                 "a finite number >= 0")
        _require(math.isfinite(self.delta), f"{self.key}.delta", self.delta, "a finite number")


@dataclass
class ThinkPruneConfig(_Section):
    """``lapo.thinkprune``: the hard length limit L."""

    key: ClassVar[str] = "lapo.thinkprune"
    limit: Optional[int] = None  # None: the generation cap (actor_rollout_ref.rollout.response_length)

    def check(self) -> None:
        _require(self.limit is None or self.limit > 0, f"{self.key}.limit", self.limit,
                 "null or a positive number of tokens")


@dataclass
class DapoOverlongConfig(_Section):
    """``lapo.dapo_overlong``: DAPO's soft overlong punishment (read by verl's ``dapo`` manager)."""

    key: ClassVar[str] = "lapo.dapo_overlong"
    buffer: int = 1024
    penalty_factor: float = 1.0
    reasoning_prefilled: bool = False

    def check(self) -> None:
        _require(self.buffer > 0, f"{self.key}.buffer", self.buffer, "a positive number of tokens")
        _require(self.penalty_factor >= 0 and math.isfinite(self.penalty_factor), f"{self.key}.penalty_factor",
                 self.penalty_factor, "a finite number >= 0")


@dataclass
class LapoConfig(_Section):
    """The whole ``lapo:`` section. Paths the recipes derive by interpolation default to None here."""

    key: ClassVar[str] = "lapo"
    stage: int = 1
    output_root: str = "runs/lapo"
    experiment: str = "lapo"
    tag: str = ""
    experiment_dir: Optional[str] = None  # the recipes: ${lapo.output_root}/${lapo.experiment}
    run_dir: Optional[str] = None  # the recipes: ${lapo.experiment_dir}/stage${lapo.stage}-${lapo_settings_tag:}
    plans_path: Optional[str] = None  # the recipes: ${lapo.experiment_dir}/plans.json
    log_step_stats: bool = True
    preflight: bool = True
    records: RecordsConfig = field(default_factory=RecordsConfig)
    grading: GradingConfig = field(default_factory=GradingConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    target_length: TargetLengthConfig = field(default_factory=TargetLengthConfig)
    l1: L1Config = field(default_factory=L1Config)
    thinkprune: ThinkPruneConfig = field(default_factory=ThinkPruneConfig)
    dapo_overlong: DapoOverlongConfig = field(default_factory=DapoOverlongConfig)

    def check(self) -> None:
        _require(self.stage in STAGES, "lapo.stage", self.stage, "1 (discovery) | 2 (internalization)")
        if self.stage2.update_plans and self.stage == 2 and not (self.records.enable and self.records.dir):
            raise LapoConfigError(
                "lapo.stage2.update_plans=true (paper Eq. 8) folds each step's length records into the plans and "
                "restores them on resume: set lapo.records.enable=true and lapo.records.dir"
            )

    @property
    def records_dir(self) -> str | None:
        """Where the length records go; None when they are off."""
        return str(self.records.dir) if self.records.enable and self.records.dir else None

    @property
    def update_plans_dir(self) -> str | None:
        """The records directory of a stage-2 run with Eq. 8 plan updates (``update_plans``), else None."""
        return str(self.records.dir) if self.stage == 2 and self.stage2.update_plans else None

    @classmethod
    def from_section(cls, section: Any) -> LapoConfig:
        """Typed, validated settings from a ``lapo`` mapping (DictConfig, dict or a LapoConfig)."""
        if isinstance(section, cls):
            return section
        try:
            from omegaconf import OmegaConf

            if OmegaConf.is_config(section):
                from lapo_verl.resources import register_resolvers

                register_resolvers()  # ${lapo_settings_tag:} in run_dir
                section = OmegaConf.to_container(section, resolve=True)
        except ImportError:  # omegaconf comes with verl; plain dicts need nothing
            pass
        return _build(cls, section, "lapo")


# ------------------------------------------------------------------------------------------------ building
def _type_name(tp: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = get_origin(tp)
    if origin is Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        if value is None:
            return None
        (tp,) = [a for a in get_args(tp) if a is not type(None)]
        return _coerce(tp, value, key)
    if isinstance(tp, type) and issubclass(tp, _Section):
        return _build(tp, value, key)
    if origin is tuple:
        args = get_args(tp)
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != len(args):
            _fail(key, f"expected a list of {len(args)} numbers, got {value!r}")
        return tuple(_coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    ok = False
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif tp is str:  # Hydra parses `lapo.experiment=2024` or `lapo.tag=1` as numbers: names stay names
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        ok = isinstance(value, str)
    if not ok:
        _fail(key, f"expected {_type_name(tp)}, got {value!r}")
    return value


def _build(cls: type[_Section], data: Any, key: str) -> _Section:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        _fail(key, f"expected a mapping of settings, got {data!r}")
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls) if f.name != "_target_"]
    kwargs = {}
    for name, value in data.items():
        full = f"{key}.{name}"
        if name == "_target_":
            continue
        if name not in known:
            hint = MOVED.get(full)
            if hint is None:
                close = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean {key}.{close[0]}?" if close else ""
            _fail(full, f"unknown key ({hint + '; ' if hint else ''}known keys of {key}: {', '.join(known)})")
        kwargs[name] = _coerce(hints[name], value, full)
    return cls(**kwargs)


# ------------------------------------------------------------------------------------------------ access
def lapo_section(config: Any, *, where: str) -> Any:
    """The raw ``lapo`` mapping of ``config`` (full config, ``algorithm``, ``data`` or the sampler kwargs).

    Raises a ``KeyError`` that says how to fix the command when the section is absent: silently falling
    back to defaults would train with knobs the user never saw.
    """
    section = config.get("lapo") if config is not None and hasattr(config, "get") else None
    if section is None:
        raise KeyError(f"LAPO settings not found in {where}: {RECIPE_HINT}")
    return section


_LAST: list[tuple[Any, LapoConfig]] = []


def load(config: Any, *, where: str = "the config (lapo)") -> LapoConfig:
    """The typed, validated :class:`LapoConfig` of ``config``'s ``lapo`` section (see :func:`lapo_section`).

    The last few sections built are remembered by identity, so a function that verl calls every step with
    the same config object (the advantage estimator) builds its settings once.
    """
    section = lapo_section(config, where=where)
    for seen, typed in _LAST:
        if seen is section:
            return typed
    typed = LapoConfig.from_section(section)
    _LAST.append((section, typed))
    del _LAST[:-4]
    return typed
