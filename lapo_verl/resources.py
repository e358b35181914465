"""Paths to files shipped inside the package, and the OmegaConf resolver that exposes them to configs.

verl reads some settings as file paths (e.g. ``actor_rollout_ref.rollout.agent.agent_loop_config_path``
must be absolute on multi-node runs). Recipes write ``${lapo_resource:agent_loops.yaml}`` and this
resolver turns it into the absolute path of the installed file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

RESOURCE_DIR = Path(__file__).resolve().parent / "resources"
RESOLVER_NAME = "lapo_resource"
TAG_RESOLVER_NAME = "lapo_settings_tag"
TOKENS_RESOLVER_NAME = "lapo_token_budget"

#: The method knobs that name a run directory: two runs differing in any of them never share outputs,
#: checkpoints or records (Hydra sweeps reuse one working dir, and verl auto-resumes whatever checkpoint
#: it finds there). Resource, logging and schedule knobs (trainer.*, micro-batch sizes) are left out on
#: purpose so that a resumed run may change them; sweep those with an explicit ``lapo.tag``.
TAG_KEYS: tuple[str, ...] = (
    "lapo.stage",
    "lapo.tag",
    "lapo.stage1",
    "lapo.stage2.beta",
    "lapo.stage2.sigma",
    "lapo.stage2.plan_template",
    "lapo.stage2.plan_position",
    "lapo.stage2.plan_in_prompt",
    "lapo.stage2.unsolved_policy",
    "lapo.stage2.unsolved_length",
    "lapo.target_length",
    "lapo.l1",
    "lapo.thinkprune",
    "lapo.dapo_overlong",
    "lapo.stage2.plan_range_width",
    "lapo.plans_path",
    "reward.reward_kwargs",
    "algorithm.adv_estimator",
    "algorithm.norm_adv_by_std_in_grpo",
    "reward.reward_manager.name",
    "data.train_files",
    "data.train_batch_size",
    "data.max_prompt_length",
    "data.max_response_length",
    "actor_rollout_ref.model.path",
    "actor_rollout_ref.actor.optim",
    "actor_rollout_ref.actor.ppo_mini_batch_size",
    "actor_rollout_ref.actor.use_kl_loss",
    "actor_rollout_ref.actor.kl_loss_coef",
    "actor_rollout_ref.actor.kl_loss_type",
    "actor_rollout_ref.actor.entropy_coeff",
    "actor_rollout_ref.actor.clip_ratio",
    "actor_rollout_ref.rollout.n",
    "actor_rollout_ref.rollout.temperature",
    "actor_rollout_ref.rollout.top_p",
)


#: knobs the digest records under an earlier name, with the value that means "off" (recorded as None, as when
#: the earlier section was absent): run directories of settings that existed before keep their names
TAG_ALIASES: dict[str, tuple[str, Any]] = {"lapo.stage2.plan_range_width": ("lapo.stage2_range", 0)}


def resource_path(name: str) -> str:
    """Absolute path of a packaged resource file; raises with the list of known files if absent."""
    path = RESOURCE_DIR / name
    if not path.is_file():
        known = sorted(p.name for p in RESOURCE_DIR.iterdir())
        raise FileNotFoundError(f"lapo_verl resource {name!r} not found in {RESOURCE_DIR}; known: {known}")
    return str(path)


def settings_tag(*, _root_: Any) -> str:
    """8-hex digest of the :data:`TAG_KEYS` values of a config (``${lapo_settings_tag:}``).

    Deterministic in every process (the TaskRunner resolves the config, not the Hydra driver, so
    ``${hydra:job.override_dirname}`` cannot be used) and stable across resumes of the same run.
    """
    picked = {}
    for key in TAG_KEYS:
        node = OmegaConf.select(_root_, key, default=None, throw_on_missing=False)
        if node is not None and OmegaConf.is_config(node):
            node = OmegaConf.to_container(node, resolve=True)
        if key in TAG_ALIASES:
            key, off = TAG_ALIASES[key]
            node = None if node is None or node == off else node
        picked[key] = node
    blob = json.dumps(picked, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def token_budget(factor: Any, prompt_length: Any, response_length: Any, cap: Any = None) -> int:
    """``${lapo_token_budget:k,${data.max_prompt_length},${data.max_response_length}[,cap]}`` =
    max(prompt + response, min(k x (prompt + response), cap)).

    The per-GPU token limit of verl's dynamic (token-balanced) batches, derived from the sequence caps as
    verl's long-response recipes do (DAPO: 2x for the actor update, 3x for log-prob passes). ``cap`` bounds it
    for long responses, where k x (prompt + response) tokens of logits over a 152k vocabulary no longer fit a
    GPU (DeepScaleR's 16k-response scripts use 32,768 for the update on A100-80GB). It is never below one full
    sequence, or verl could not place a maximal sample in any micro-batch.

    >>> token_budget(2, 1024, 4096), token_budget(3, "1024", "4096")
    (10240, 15360)
    >>> token_budget(2, 1024, 16384, 32768), token_budget(2, 1024, 32768, 32768)
    (32768, 33792)
    """
    k, prompt, response = int(factor), int(prompt_length), int(response_length)
    limit = None if cap is None or str(cap).lower() in ("", "none", "null") else int(cap)
    if k < 1 or prompt < 1 or response < 1 or (limit is not None and limit < 1):
        raise ValueError(f"lapo_token_budget needs factor, prompt and response lengths (and cap) >= 1, got {factor}, "
                         f"{prompt_length}, {response_length}, {cap}")
    sequence = prompt + response
    budget = k * sequence if limit is None else min(k * sequence, limit)
    return max(sequence, budget)


def register_resolvers() -> None:
    """Register ``${lapo_resource:...}``, ``${lapo_settings_tag:}`` and ``${lapo_token_budget:...}`` once per
    process (idempotent)."""
    if not OmegaConf.has_resolver(RESOLVER_NAME):
        OmegaConf.register_new_resolver(RESOLVER_NAME, resource_path)
    if not OmegaConf.has_resolver(TAG_RESOLVER_NAME):
        OmegaConf.register_new_resolver(TAG_RESOLVER_NAME, settings_tag)
    if not OmegaConf.has_resolver(TOKENS_RESOLVER_NAME):
        OmegaConf.register_new_resolver(TOKENS_RESOLVER_NAME, token_budget)
