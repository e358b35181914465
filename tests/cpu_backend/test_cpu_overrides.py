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

    from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES, tiny_run_overrides

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        cfg = compose(
            "ppo_trainer",
            overrides=[
                *CPU_TRAINER_OVERRIDES,
                "algorithm.adv_estimator=grpo",
                f"actor_rollout_ref.model.path={tiny_bpe_dir}",
                *tiny_run_overrides(),
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
    # the tiny run (defaults: the recipes' --cpu runs)
    assert cfg.data.train_batch_size == 4 and cfg.actor_rollout_ref.rollout.n == 2
    assert cfg.data.max_response_length == 16 and cfg.trainer.total_training_steps == 2
    assert cfg.trainer.save_freq == 2 and cfg.trainer.test_freq == -1 and cfg.trainer.val_before_train is False


def test_tiny_run_sizes_and_errors():
    from lapo_verl.cpu_backend.overrides import tiny_run_overrides

    o = tiny_run_overrides(batch=8, n=4, steps=3, prompt_len=96, response_len=160, micro=32)
    assert "data.train_batch_size=8" in o and "actor_rollout_ref.actor.ppo_mini_batch_size=8" in o
    assert "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=32" in o
    assert "trainer.total_training_steps=3" in o and "trainer.save_freq=3" in o
    assert "data.max_prompt_length=96" in o and "data.max_response_length=160" in o
    keys = [x.split("=", 1)[0] for x in o]
    assert len(keys) == len(set(keys))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        tiny_run_overrides(steps=0)


def test_overrides_command_prints_the_same_lists(capsys):
    import shlex

    from lapo_verl.cli import main
    from lapo_verl.cpu_backend.overrides import CPU_ENV, CPU_TRAINER_OVERRIDES, tiny_run_overrides

    assert main(["overrides", "--cpu", "--tiny", "--steps", "4", "--n", "4"]) == 0
    assert capsys.readouterr().out.splitlines() == [*CPU_TRAINER_OVERRIDES, *tiny_run_overrides(steps=4, n=4)]
    assert main(["overrides", "--env"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"export {k}={shlex.quote(v)}" for k, v in CPU_ENV.items()]
    with pytest.raises(SystemExit):
        main(["overrides"])


def test_rollout_config_accepts_hf(composed):
    from verl.utils.config import omega_conf_to_dataclass

    rollout = omega_conf_to_dataclass(composed.actor_rollout_ref.rollout)  # as engine_workers.py does
    assert rollout.name == "hf" and rollout.tensor_model_parallel_size == 1
