"""CPU_TRAINER_OVERRIDES compose with verl's own trainer config and pass its validation."""

from __future__ import annotations

import pytest


def test_env_lists_are_plain_strings():
    from lapo_verl.cpu_backend.overrides import CPU_ENV, CPU_TRAINER_OVERRIDES, cpu_env

    assert CPU_ENV["VERL_PLATFORM"] == "cpu" and CPU_ENV["VERL_ENGINE_DEVICE"] == "cuda"
    assert CPU_ENV["HF_HUB_OFFLINE"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in CPU_ENV  # an empty value stops Ray from advertising the logical GPU
    assert all(isinstance(o, str) and "=" in o for o in CPU_TRAINER_OVERRIDES)
    keys = [o.split("=", 1)[0].lstrip("+") for o in CPU_TRAINER_OVERRIDES]
    assert len(keys) == len(set(keys))
    assert cpu_env({"A": "1"}) == {"A": "1", **CPU_ENV}


@pytest.fixture(scope="module")
def composed(tiny_bpe_dir):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(
            "ppo_trainer",
            overrides=[
                *CPU_TRAINER_OVERRIDES,
                "algorithm.adv_estimator=grpo",
                f"actor_rollout_ref.model.path={tiny_bpe_dir}",
                "data.train_batch_size=4",
                "actor_rollout_ref.rollout.n=2",
                "actor_rollout_ref.actor.ppo_mini_batch_size=4",
                "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
                "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
                "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4",
            ],
        )
    GlobalHydra.instance().clear()
    return cfg


def test_overrides_land_where_intended(composed):
    cfg = composed
    assert cfg.actor_rollout_ref.rollout.name == "hf"
    assert cfg.actor_rollout_ref.actor.strategy == "fsdp2"
    assert cfg.actor_rollout_ref.ref.strategy == "fsdp2"  # interpolated from the actor
    assert cfg.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert cfg.trainer.device == "cpu" and cfg.trainer.n_gpus_per_node == 1
    assert cfg.ray_kwargs.ray_init.num_cpus == 8 and cfg.ray_kwargs.ray_init.num_gpus == 1
    assert cfg.transfer_queue.backend.SimpleStorage.num_data_storage_units == 1


def test_rollout_config_accepts_hf(composed):
    from verl.utils.config import omega_conf_to_dataclass

    rollout = omega_conf_to_dataclass(composed.actor_rollout_ref.rollout)  # as engine_workers.py does
    assert rollout.name == "hf" and rollout.tensor_model_parallel_size == 1
