"""Paths to files shipped inside the package, and the OmegaConf resolver that exposes them to configs.

verl reads some settings as file paths (e.g. ``actor_rollout_ref.rollout.agent.agent_loop_config_path``
must be absolute on multi-node runs). Recipes write ``${lapo_resource:agent_loops.yaml}`` and this
resolver turns it into the absolute path of the installed file.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

RESOURCE_DIR = Path(__file__).resolve().parent / "resources"
RESOLVER_NAME = "lapo_resource"


def resource_path(name: str) -> str:
    """Absolute path of a packaged resource file; raises with the list of known files if absent."""
    path = RESOURCE_DIR / name
    if not path.is_file():
        known = sorted(p.name for p in RESOURCE_DIR.iterdir())
        raise FileNotFoundError(f"lapo_verl resource {name!r} not found in {RESOURCE_DIR}; known: {known}")
    return str(path)


def register_resolvers() -> None:
    """Register ``${lapo_resource:...}`` once per process (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER_NAME):
        OmegaConf.register_new_resolver(RESOLVER_NAME, resource_path)
