"""What a process needs before Hydra can compose ``+recipe=lapo_*`` on verl's config: lapo-verl's OmegaConf
resolvers and its recipe search path. Import-light (omegaconf and hydra only): :mod:`lapo_verl.plugin` calls it in
every verl process, and ``lapo-verl resolve`` calls it *without* importing verl (whose ``__init__`` imports torch
and tensordict, ~10 s of CPU on 2 cores; a shell script resolves a run directory before each training run)."""

from __future__ import annotations

import importlib.util
import os


def register_config_hooks() -> None:
    """Register the resolvers (``${lapo_token_budget:...}``, ...) and the ``pkg://lapo_verl.hydra_conf`` search
    path with Hydra. Idempotent."""
    from lapo_verl.resources import register_resolvers

    register_resolvers()
    try:
        from hydra.core.plugins import Plugins
        from hydra_plugins.lapo_verl_searchpath.lapo_verl_searchpath import LapoVerlSearchPathPlugin
    except ImportError:  # hydra is a verl dependency; a partial install is reported by `lapo-verl doctor`
        return
    # Hydra's namespace scan finds the plugin in a regular install; an editable install in setuptools' strict mode
    # hides it, hence the explicit registration
    Plugins.instance().register(LapoVerlSearchPathPlugin)


def verl_config_dir() -> str:
    """``<installed verl>/trainer/config``, found without running ``verl/__init__``."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("verl is not installed in this environment: pip install 'verl==0.9.1'")
    path = os.path.join(list(spec.submodule_search_locations)[0], "trainer", "config")
    if not os.path.isfile(os.path.join(path, "ppo_trainer.yaml")):
        raise FileNotFoundError(f"{path}/ppo_trainer.yaml not found: is verl 0.9.1 installed?")
    return path


def compose_main_ppo_config(overrides: list[str]):
    """The config ``python -m verl.trainer.main_ppo <overrides>`` composes (a ``DictConfig``, unresolved), from
    verl's own YAML files, without importing verl. verl 0.9.1 registers no OmegaConf resolvers of its own, so the
    result is the one main_ppo composes (tests/test_resolve.py compares the two)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_config_hooks()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=verl_config_dir(), version_base=None):
        return compose("ppo_trainer", overrides=list(overrides))
