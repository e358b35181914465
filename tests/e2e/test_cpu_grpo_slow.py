"""Plain verl GRPO, 2 steps, on CPU: ``python -m verl.trainer.main_ppo`` with lapo_verl's CPU backend.

Exercises the whole stack the LAPO recipes sit on: V1 sync trainer, TransferQueue, agent loop with the ``hf``
rollout, the stock ``naive`` reward manager (with a dense toy reward so advantages are not 0), FSDP2 actor and
reference model (KL loss), weight sync to the rollout, validation, checkpoint save. About 1 minute and 4 GB on 2 cores.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 420


def _write_parquet(path: Path, n: int, offset: int) -> None:
    import pandas as pd

    rows = []
    for i in range(n):
        a, b = 3 + i + offset, 7 + 2 * i
        rows.append(
            {
                "data_source": "toy_add",
                "prompt": [{"role": "user", "content": f"What is {a} + {b}?"}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": str(a + b)},
                "extra_info": {"index": offset + i, "split": "train" if offset == 0 else "test"},
            }
        )
    pd.DataFrame(rows).to_parquet(path)


def parse_console_metrics(log: str) -> dict[int, dict[str, float]]:
    """``step:N - key:value - ...`` lines of verl's console logger -> {step: {key: value}}."""
    steps: dict[int, dict[str, float]] = {}
    for match in re.finditer(r"step:(\d+) - (.*)", log):
        metrics = {}
        for item in match.group(2).split(" - "):
            key, _, value = item.rpartition(":")
            try:
                metrics[key.strip()] = float(value)
            except ValueError:
                continue
        steps.setdefault(int(match.group(1)), {}).update(metrics)
    return steps


def _memory_gb_of_tree(pid: int) -> float:
    """Proportional set size (shared pages split between processes) of ``pid`` and its descendants, in GiB."""
    try:
        import psutil

        proc = psutil.Process(pid)
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                info = p.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return total / 2**30
    except Exception:
        return 0.0


def test_plain_grpo_two_steps_on_cpu(tiny_bpe_dir, tmp_path):
    from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES, cpu_env

    train, val = tmp_path / "train.parquet", tmp_path / "val.parquet"
    _write_parquet(train, 16, 0)
    _write_parquet(val, 4, 100)
    ckpt = tmp_path / "ckpt"  # fresh: resume_mode=auto would pick up an older run's checkpoint
    cmd = [
        sys.executable,
        "-m",
        "verl.trainer.main_ppo",
        *CPU_TRAINER_OVERRIDES,
        "algorithm.adv_estimator=grpo",
        "algorithm.use_kl_in_reward=False",
        f"data.train_files={train}",
        f"data.val_files={val}",
        "data.train_batch_size=4",
        "data.max_prompt_length=64",
        "data.max_response_length=16",
        f"actor_rollout_ref.model.path={tiny_bpe_dir}",
        "actor_rollout_ref.model.use_remove_padding=False",
        "actor_rollout_ref.rollout.n=2",
        "actor_rollout_ref.rollout.calculate_log_probs=True",
        "actor_rollout_ref.actor.optim.lr=5e-3",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.actor.use_kl_loss=True",
        "actor_rollout_ref.actor.kl_loss_coef=0.001",
        "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
        "reward.reward_manager.name=naive",
        f"reward.custom_reward_function.path={HERE / 'toy_dense_reward.py'}",
        "reward.custom_reward_function.name=compute_score",
        "trainer.logger=['console']",
        "trainer.project_name=lapo_cpu_e2e",
        "trainer.experiment_name=plain_grpo",
        "trainer.total_training_steps=2",
        "trainer.val_before_train=False",
        "trainer.test_freq=2",  # final validation: greedy decoding through the same rollout
        "trainer.save_freq=2",
        f"trainer.default_local_dir={ckpt}",
    ]
    env = cpu_env()
    env["PYTHONUNBUFFERED"] = "1"
    # Ray's own temp dir (short: AF_UNIX socket paths are limited to 107 bytes), removed at the end
    ray_tmp = tempfile.mkdtemp(prefix="lapo_ray_", dir="/tmp")
    env["RAY_TMPDIR"] = ray_tmp
    log_path = tmp_path / "main_ppo.log"
    start = time.time()
    peak_gb = 0.0
    with open(log_path, "w") as log_fh:
        # own session/process group: a Ray resource mistake hangs rather than fails, and SIGTERM does not stop a
        # driver blocked in ray.get, so the whole group is killed on the way out (raylet/gcs included).
        proc = subprocess.Popen(
            ["timeout", "-k", "15", str(TIMEOUT_S), *cmd],
            cwd=tmp_path,
            env=env,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while proc.poll() is None:
                peak_gb = max(peak_gb, _memory_gb_of_tree(proc.pid))
                time.sleep(1.0)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            shutil.rmtree(ray_tmp, ignore_errors=True)
    wall = time.time() - start
    log = log_path.read_text(errors="replace")
    tail = log[-6000:]
    print(f"\nmain_ppo: rc={proc.returncode} wall={wall:.1f}s peak_pss_tree={peak_gb:.2f}GB log={log_path}")
    assert proc.returncode == 0, f"main_ppo failed (rc={proc.returncode}, {wall:.0f}s):\n{tail}"
    steps = parse_console_metrics(log)
    assert 2 in steps, f"no step:2 line in the log:\n{tail}"
    for step in (1, 2):
        grad_norm = steps[step].get("actor/grad_norm")
        assert grad_norm is not None and grad_norm > 0, f"step {step}: actor/grad_norm={grad_norm}"
    # the policy moved away from the reference model (lr 5e-3: ~3e-3 here; 0 at step 1 by construction)
    assert steps[2].get("actor/kl_loss", 0.0) > 0, steps[2]
    # the hf rollout's log-probs match the actor's recomputation (~4e-5 here): at step 2 this only holds if the
    # rollout received the weights trained at step 1
    assert steps[2]["training/rollout_probs_diff_max"] < 5e-3, steps[2]
    assert "Final validation metrics" in log and "val-core/toy_add/" in log, tail
    assert (ckpt / "latest_checkpointed_iteration.txt").read_text().strip() == "2"
