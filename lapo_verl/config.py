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


def check_supported(lapo: Any) -> None:
    """Refuse, at start-up, knob combinations that could not act (never ignore a knob)."""
    if bool(get(lapo, "stage2.update_plans", False)) and int(get(lapo, "stage", 2)) == 2:
        if not get(lapo, "records.enable", True) or not get(lapo, "records.dir"):
            raise ValueError(
                "lapo.stage2.update_plans=true (paper Eq. 8) computes each step's plans from the length records: "
                "set lapo.records.enable=true and lapo.records.dir (a directory every node shares)"
            )


def update_plans(lapo: Any) -> str | None:
    """The records directory the Eq. 8 plans are computed from, or None when ``update_plans`` is off."""
    if not bool(get(lapo, "stage2.update_plans", False)):
        return None
    check_supported(lapo)
    return str(get(lapo, "records.dir"))


def get(section: Any, dotted: str, default: Any = None) -> Any:
    """``get(lapo, "records.enable", True)``: dotted lookup that tolerates missing levels."""
    node = section
    for part in dotted.split("."):
        node = _get(node, part)
        if node is None:
            return default
    return node
