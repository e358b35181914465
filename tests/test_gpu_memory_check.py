"""benchmarks/gpu_memory_check.py (the GPU check of lapo_verl.memory_estimate, README "Checked on one GPU") runs its
whole control flow on CPU: FSDP2 wrapping at world size 1 over gloo, an update step and a log-prob pass per token
count, and the estimate it compares against (the pass estimate without the allocator-invisible runtime terms)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lapo_verl import memory_estimate as me

ROOT = Path(__file__).resolve().parents[1]


def test_runs_on_cpu_and_reports_the_estimates(tmp_path):
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_memory_check.py"), "--device", "cpu",
                           "--layers", "2", "--hidden", "96", "--vocab", "512", "--tokens", "32,64", "--out", str(out)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["device"].startswith("cpu") and [r["tokens"] for r in result["rows"]] == [32, 64]
    shape = replace(me.QWEN2_1_5B, num_layers=2, hidden_size=96, head_dim=96 // 12, intermediate_size=384,
                    vocab_size=512)
    inp = me.EstimateInputs(n_gpus=1, fsdp_size=1, flash_attn_cross_entropy=False, entropy_in_update=False)
    for row in result["rows"]:
        est = me.update_pass(shape, inp, tokens=row["tokens"])
        parts = {c.name: round(c.gib, 2) for c in est.components if "runtime" not in c.name and "vLLM" not in c.name}
        assert row["update_estimate_parts"] == parts
        assert "logits + their grad" in parts and "CUDA/NCCL runtime (rough)" not in row["update_estimate_parts"]
        assert "entropy copies" in row["log-prob_estimate_parts"]
        assert "update_measured_gib" not in row  # nothing is measured without a GPU


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="this machine has a GPU: the check would run for real")
def test_refuses_cuda_without_a_gpu():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_memory_check.py"), "--tokens", "8"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA GPU here" in proc.stderr
