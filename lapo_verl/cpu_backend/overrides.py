"""The environment and Hydra overrides a CPU run of ``verl.trainer.main_ppo`` needs (one list for every test,
script and benchmark). Import-light: no verl, no torch.

Usage::

    from lapo_verl.cpu_backend.overrides import CPU_ENV, CPU_TRAINER_OVERRIDES, tiny_run_overrides
    env = {**os.environ, **CPU_ENV}
    cmd = [sys.executable, "-m", "verl.trainer.main_ppo", *CPU_TRAINER_OVERRIDES, *tiny_run_overrides(steps=4),
           "data.train_files=...", ...]

Shell scripts read the same lists from ``lapo-verl overrides`` (``--cpu``, ``--tiny``, ``--env``; see ``main``).

The CPU overrides only make the run *possible* on CPU; model path, data and checkpoint paths stay with the caller.
:func:`tiny_run_overrides` is the one definition of a tiny run (batch, group size, lengths, steps, no validation)
used by the recipes' ``--cpu`` modes, the quickstart, the GPU smoke test and the CPU replica. Use a fresh ``trainer.default_local_dir`` per run: with the default
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
    # Ray starts one idle Python worker per logical CPU when it starts (8 here: TransferQueue needs the logical
    # CPUs) and one more batch for the first driver; verl's actors do not use them (they carry the job's runtime
    # env). On 2 cores they only compete with verl's own start-up for CPU and memory: a 1-step run went from 61 to
    # 57 s alone and from 80-85 to 75-80 s with a second run beside it (2026-12-04, one measurement each, inside
    # run-to-run noise of ~10 s). Ray's own config flags, read from the environment.
    "RAY_enable_worker_prestart": "0",
    "RAY_prestart_worker_first_driver": "0",
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
    # the recipes chunk the entropy over the vocabulary to bound GPU memory at long responses; a tiny model's
    # small vocabulary on a CPU needs no bound, so CPU runs compute it in one pass as before (the ref follows)
    "actor_rollout_ref.actor.entropy_from_logits_with_chunking=False",
    # bf16 (verl's default compute dtype) has no native kernels on most laptop CPUs: ~7x slower than fp32
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "+actor_rollout_ref.ref.fsdp_config.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    "actor_rollout_ref.rollout.dtype=float32",
    # the dataset is a few rows: no loader worker processes (8 by default). Ray kills them at shutdown, which
    # printed a "DataLoader worker ... is killed by signal" traceback at the end of every successful run.
    "data.dataloader_num_workers=0",
]


def tiny_run_overrides(*, batch: int = 4, n: int = 2, steps: int = 2, prompt_len: int = 192,
                       response_len: int = 16, micro: int | None = None) -> list[str]:
    """Hydra overrides of a tiny training run: ``batch`` prompts x ``n`` responses per step (one PPO mini-batch
    per step), ``steps`` steps with a checkpoint at the last one, no validation, console logging.

    ``micro`` is the micro-batch of the actor update and of both log-prob passes (default: ``batch``). The
    defaults are the recipes' ``--cpu`` runs (recipes/lib.sh); other callers pass their own sizes.

    >>> tiny_run_overrides(steps=3)[:2]
    ['data.train_batch_size=4', 'actor_rollout_ref.rollout.n=2']
    """
    for name, value in (("batch", batch), ("n", n), ("steps", steps), ("prompt_len", prompt_len),
                        ("response_len", response_len), ("micro", micro if micro is not None else batch)):
        if value < 1:
            raise ValueError(f"tiny run: {name} must be >= 1, got {value}")
    micro = batch if micro is None else micro
    return [
        f"data.train_batch_size={batch}",
        f"actor_rollout_ref.rollout.n={n}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={batch}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={micro}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={micro}",
        f"data.max_prompt_length={prompt_len}",
        f"data.max_response_length={response_len}",
        # a few rows: one process filters over-long prompts (the default forks several)
        "data.filter_overlong_prompts_workers=1",
        f"trainer.total_training_steps={steps}",
        f"trainer.save_freq={steps}",
        "trainer.test_freq=-1",
        "trainer.val_before_train=False",
        "trainer.logger=[console]",
    ]


def cpu_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: ``os.environ``) updated with :data:`CPU_ENV`."""
    import os

    env = dict(os.environ if base is None else base)
    env.update(CPU_ENV)
    return env


def main(argv: list[str] | None = None) -> int:
    """``lapo-verl overrides``: print the lists above for shell scripts, one override per line."""
    import argparse
    import shlex

    ap = argparse.ArgumentParser(
        prog="lapo-verl overrides",
        description="Print Hydra overrides for verl's main_ppo, one per line: --cpu the CPU backend's, --tiny a "
                    "tiny run's (sizes below). --env prints the CPU environment as shell export lines instead.",
        epilog='example: eval "$(lapo-verl overrides --env)"; mapfile -t o < <(lapo-verl overrides --cpu --tiny --steps 4)',
    )
    ap.add_argument("--cpu", action="store_true", help="the CPU backend's overrides (CPU_TRAINER_OVERRIDES)")
    ap.add_argument("--tiny", action="store_true", help="a tiny run's overrides (tiny_run_overrides)")
    ap.add_argument("--env", action="store_true", help="only print the CPU environment (CPU_ENV) as export lines")
    ap.add_argument("--batch", type=int, default=4, help="prompts per step (default 4)")
    ap.add_argument("--n", type=int, default=2, help="responses per prompt (default 2)")
    ap.add_argument("--steps", type=int, default=2, help="training steps (default 2)")
    ap.add_argument("--prompt-len", type=int, default=192, help="data.max_prompt_length (default 192)")
    ap.add_argument("--response-len", type=int, default=16, help="data.max_response_length (default 16)")
    ap.add_argument("--micro", type=int, default=None, help="micro-batch size (default: --batch)")
    args = ap.parse_args(argv)
    if args.env:
        print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in CPU_ENV.items()))
        return 0
    if not (args.cpu or args.tiny):
        ap.error("give --cpu, --tiny (or both) or --env")
    lines = list(CPU_TRAINER_OVERRIDES) if args.cpu else []
    if args.tiny:
        try:
            lines += tiny_run_overrides(batch=args.batch, n=args.n, steps=args.steps, prompt_len=args.prompt_len,
                                        response_len=args.response_len, micro=args.micro)
        except ValueError as exc:
            ap.error(str(exc))
    print("\n".join(lines))
    return 0
