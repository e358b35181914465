"""The environment and Hydra overrides a CPU run of ``verl.trainer.main_ppo`` needs (one list for every test,
script and benchmark). Import-light: no verl, no torch.

Usage::

    from lapo_verl.cpu_backend.overrides import CPU_ENV, CPU_TRAINER_OVERRIDES
    env = {**os.environ, **CPU_ENV}
    cmd = [sys.executable, "-m", "verl.trainer.main_ppo", *CPU_TRAINER_OVERRIDES, "data.train_files=...", ...]

The overrides only make the run *possible* on CPU; model path, data, batch sizes, lengths, steps, logging and
checkpoint paths stay with the caller. Use a fresh ``trainer.default_local_dir`` per run: with the default
``trainer.resume_mode=auto`` verl resumes whatever checkpoint it finds there.
"""

from __future__ import annotations

import os

def _physical_cores() -> int:
    """Physical cores, the count TransferQueue compares its thread target with (logical ones as a fallback)."""
    try:
        import psutil  # installed with ray

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


# Environment for the driver; Ray workers inherit it.
CPU_ENV: dict[str, str] = {
    # Selects lapo_verl's CPU platform (and activates the CPU backend in every verl process).
    "VERL_PLATFORM": "cpu",
    # verl registers its FSDP engines for device cuda/npu only; this is verl's switch to pick them anyway
    # (verl/workers/engine/base.py:404). The backend also sets it when unset; kept here to be explicit.
    "VERL_ENGINE_DEVICE": "cuda",
    # Tiny local models and tokenizers only: never reach for the hub.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # Do NOT set CUDA_VISIBLE_DEVICES="": Ray then refuses to advertise the logical GPU verl needs.
    "RAY_DEDUP_LOGS": "0",
    # TransferQueue sizes its thread pools from TQ_NUM_THREADS (default 8) and warns on every put/get when that
    # exceeds the physical cores: hundreds of log lines per run on a laptop.
    "TQ_NUM_THREADS": str(max(1, min(8, _physical_cores()))),
}

# Hydra overrides (plain verl keys; `+` where verl's config has no such key).
CPU_TRAINER_OVERRIDES: list[str] = [
    # rollout: lapo_verl's transformers backend, one process per replica
    "actor_rollout_ref.rollout.name=hf",
    "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
    # one agent-loop worker (default 8: ~30 s of start-up and +2.6 GB on a 2-core box)
    "actor_rollout_ref.rollout.agent.num_workers=1",
    # FSDP1 cannot run on CPU (device_id / sync_module_states); FSDP2 can. Ref and critic follow the actor.
    "actor_rollout_ref.actor.strategy=fsdp2",
    # flash_attention_2 is verl's default (verl/workers/config/model.py:185)
    "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
    "actor_rollout_ref.actor.use_torch_compile=False",
    "actor_rollout_ref.ref.use_torch_compile=False",
    # trainer on the CPU platform with one logical GPU per process
    "trainer.device=cpu",
    "trainer.n_gpus_per_node=1",
    "trainer.nnodes=1",
    "reward.num_workers=1",
    # TransferQueue: 1 storage unit (8 by default, each needs a Ray CPU)
    "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
    # Ray CPUs are logical: >= 5 are needed or tq.init hangs silently; 8 leaves headroom. Ray must also
    # advertise a logical GPU because verl's ResourcePoolManager always asks for GPUs.
    "ray_kwargs.ray_init.num_cpus=8",
    "+ray_kwargs.ray_init.num_gpus=1",
    # Ray's dashboard is a handful of extra processes that compete for the laptop's cores at start-up
    "+ray_kwargs.ray_init.include_dashboard=False",
    # ---- speed (measured with benchmarks/bench_cpu_speed.py; see README "CPU backend")
    # verl's padding-free path packs a whole micro-batch into one sequence for flash-attn's varlen kernels;
    # with sdpa on CPU that becomes one attention over the packed length, quadratic in it (3.4x slower step).
    "actor_rollout_ref.model.use_remove_padding=False",
    # recomputing activations saves GPU memory; on a CPU with a tiny model it only costs time
    "actor_rollout_ref.model.enable_gradient_checkpointing=False",
    # bf16 (verl's default compute dtype) has no native kernels on most laptop CPUs: ~7x slower than fp32
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "+actor_rollout_ref.ref.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "actor_rollout_ref.rollout.dtype=float32",
    # the dataset is a few rows: no loader worker processes (8 by default). Ray kills them at shutdown, which
    # printed a "DataLoader worker ... is killed by signal" traceback at the end of every successful run.
    "data.dataloader_num_workers=0",
]


def cpu_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) updated with :data:`CPU_ENV`."""
    import os

    env = dict(os.environ if base is None else base)
    env.update(CPU_ENV)
    return env
