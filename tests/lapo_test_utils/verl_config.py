"""Compose verl's real ppo_trainer config with a lapo recipe, as `python -m verl.trainer.main_ppo` does."""

from __future__ import annotations

import functools

# verl's validate_config needs micro-batch sizes; the model path is never opened by composition.
MINIMAL_OVERRIDES = (
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=2",
    "actor_rollout_ref.model.path=/nonexistent/model",
)


@functools.lru_cache(maxsize=32)
def _compose(overrides: tuple[str, ...]):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module("verl.trainer.config", version_base=None):
        return compose("ppo_trainer", overrides=list(overrides))


def compose_recipe(recipe: str | None, *overrides: str, minimal: bool = True):
    """A fresh copy of the composed config (cached composition; callers may mutate the copy)."""
    from omegaconf import OmegaConf

    full = ((f"+recipe={recipe}",) if recipe else ()) + (MINIMAL_OVERRIDES if minimal else ()) + tuple(overrides)
    cfg = _compose(full)
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    OmegaConf.set_struct(copy, True)
    return copy


def validate(cfg) -> None:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
