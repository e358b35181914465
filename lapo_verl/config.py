"""Reading the ``lapo:`` config section, shared by every verl adapter.

The recipes put all LAPO knobs under a top-level ``lapo:`` section and mirror it into the two places
verl hands to plugin code that never sees the full config: ``algorithm.lapo`` (advantage estimators get
only ``cfg.algorithm``) and ``data.lapo`` (dataset classes get only ``cfg.data``).
"""

from __future__ import annotations

from typing import Any

from lapo_verl.rewards import Stage1Params, Stage2Params

RECIPE_HINT = "add +recipe=lapo_stage1 (or lapo_stage2) to the command, or set the key it names"


def _get(section: Any, key: str, default: Any = None) -> Any:
    if section is None:
        return default
    getter = getattr(section, "get", None)
    if getter is not None:
        value = getter(key, default)
    else:
        value = getattr(section, key, default)
    return default if value is None else value


def lapo_section(config: Any, *, where: str) -> Any:
    """Return the ``lapo`` mapping found in ``config`` (full config, ``algorithm`` or ``data``).

    Raises a ``KeyError`` that says how to fix the command when the section is absent, because silently
    falling back to defaults would train with knobs the user never saw.
    """
    section = _get(config, "lapo")
    if section is None:
        raise KeyError(f"LAPO settings not found in {where}: {RECIPE_HINT}")
    return section


def stage1_params(lapo: Any) -> Stage1Params:
    s1 = _get(lapo, "stage1", {})
    band = _get(s1, "band", (0.3, 0.7))
    return Stage1Params(
        alpha=float(_get(s1, "alpha", 0.7)),
        band=(float(band[0]), float(band[1])) if len(band) == 2 else tuple(band),
        falloff=float(_get(s1, "falloff", 100.0)),
        bonus_rule=str(_get(s1, "bonus_rule", "paper")),
    )


def stage2_params(lapo: Any) -> Stage2Params:
    check_supported(lapo)
    s2 = _get(lapo, "stage2", {})
    return Stage2Params(beta=float(_get(s2, "beta", 0.8)), sigma=float(_get(s2, "sigma", 120.0)))


UPDATE_PLANS_UNSUPPORTED = (
    "lapo.stage2.update_plans=true (paper Eq. 8, online plan update during stage 2) is not implemented in "
    "lapo-verl for verl 0.9.1: the agent-loop workers that build the prompts are not told the training step, so "
    "an updated plan could not reach all rollouts of a group consistently, nor be replayed on resume. The "
    "paper's published numbers were produced without it (the authors' code never fed the update back into the "
    "prompts). Set lapo.stage2.update_plans=false."
)


def check_supported(lapo: Any) -> None:
    """Refuse, at start-up, knobs that are accepted by the config but not implemented (never ignore them)."""
    if bool(get(lapo, "stage2.update_plans", False)):
        raise ValueError(UPDATE_PLANS_UNSUPPORTED)


def get(section: Any, dotted: str, default: Any = None) -> Any:
    """``get(lapo, "records.enable", True)``: dotted lookup that tolerates missing levels."""
    node = section
    for part in dotted.split("."):
        node = _get(node, part)
        if node is None:
            return default
    return node
