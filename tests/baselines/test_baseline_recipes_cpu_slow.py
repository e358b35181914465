"""Every comparison recipe runs 2 GRPO steps through verl's main_ppo on the CPU backend, and the scripts in
recipes/ (comparison, ThinkPrune chain) run end to end with the tiny model. Slow: ~1.5 min per training run
on 2 cores (``pytest -m slow tests/baselines``).

Uses the same CPU environment and overrides as tests/e2e (lapo_verl.cpu_backend.overrides), through the
helpers the scripts use (recipes/lib.sh), so the tests exercise exactly what users run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# l1_exact, l1_max and dapo_overlong are trained by test_compare_script_end_to_end_on_cpu (with their 2-step and
# merge checks), thinkprune by test_thinkprune_chain_on_cpu, acc_only by the replica smoke
# (tests/replica/test_replica_smoke_slow.py, the same lib.sh lapo_train): not run twice, to keep CI's slow group short.
RECIPES = ["lapo_stage2_before_think", "lapo_stage2_implicit", "lapo_stage2_range"]
TIMEOUT_S = 600


def _env():
    from lapo_verl.cpu_backend.overrides import cpu_env

    env = cpu_env()
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHON"] = sys.executable
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _bash(script: str, cwd: Path, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
    ray_tmp = tempfile.mkdtemp(prefix="lapo_ray_", dir="/tmp")  # short AF_UNIX paths
    env = _env()
    env["RAY_TMPDIR"] = ray_tmp
    try:
        return subprocess.run(["timeout", "-k", "15", str(timeout), "bash", "-c", script], cwd=cwd, env=env,
                              capture_output=True, text=True, start_new_session=True)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_two_steps_on_cpu(recipe, toy, tiny_bpe_dir, tmp_path):
    extra = []
    if recipe.startswith("lapo_stage2"):
        plans = {f"toy-train-{i}": 5 + i for i in range(12)}  # 4 of 16 problems unsolved: fallback plan
        (tmp_path / "plans.json").write_text(json.dumps({"format": "lapo-plans/1", "plans": plans, "unsolved": []}))
        extra.append(f"lapo.plans_path={tmp_path / 'plans.json'}")
    script = f"""set -euo pipefail
source {ROOT}/recipes/lib.sh
OUT={tmp_path}/out TRAIN={toy}/train.parquet VAL={toy}/val.parquet NGPUS=1 CPU=1 EXTRA=()
lapo_train {recipe} {tiny_bpe_dir} {recipe} {' '.join(extra)}
"""
    proc = _bash(script, tmp_path)
    log_file = tmp_path / "out/logs" / f"{recipe}.log"
    log = log_file.read_text(errors="replace") if log_file.exists() else ""
    assert proc.returncode == 0, f"{recipe}: rc={proc.returncode}\n{proc.stderr[-3000:]}\n{log[-5000:]}"
    assert "step:2 -" in log, log[-5000:]
    assert (tmp_path / "out/models" / recipe / "config.json").is_file()  # merged HF model


def test_compare_script_end_to_end_on_cpu(toy, tiny_bpe_dir, tmp_path):
    out = tmp_path / "cmp"
    proc = _bash(f"{ROOT}/recipes/compare/run_compare.sh --cpu --model {tiny_bpe_dir} --train {toy}/train.parquet "
                 f"--val {toy}/val.parquet --out {out} --methods base,l1_exact,l1_max,dapo_overlong", tmp_path,
                 timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    table = (out / "table.md").read_text()
    for row in ("base", "L1-Exact", "L1-Max", "DAPO overlong"):
        assert f"| {row} |" in table, table
    assert "LAPO-I" in table  # the paper's published rows
    assert (out / "frontier.png").stat().st_size > 1000
    for recipe in ("l1_exact", "l1_max", "dapo_overlong"):  # each recipe: 2 steps, then the merged HF model
        assert "step:2 -" in (out / "logs" / f"{recipe}.log").read_text(errors="replace"), recipe
        assert (out / "models" / recipe / "config.json").is_file(), recipe


def test_thinkprune_chain_on_cpu(toy, tiny_bpe_dir, tmp_path):
    out = tmp_path / "tp"
    proc = _bash(f"{ROOT}/recipes/thinkprune/run_thinkprune.sh --cpu --limits '20 16' --model {tiny_bpe_dir} "
                 f"--train {toy}/train.parquet --out {out}", tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    log16 = (out / "logs/thinkprune-16.log").read_text(errors="replace")
    assert f"actor_rollout_ref.model.path={out}/models/thinkprune-20" in log16 or \
        f"'{out}/models/thinkprune-20'" in log16 or str(out / "models/thinkprune-20") in log16
    assert (out / "models/thinkprune-16/config.json").is_file()


def test_scripts_help():
    for script in ("recipes/compare/run_compare.sh", "recipes/thinkprune/run_thinkprune.sh",
                   "recipes/sweeps/lapo_ablations.sh"):
        proc = subprocess.run(["bash", str(ROOT / script), "--help"], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and "CPU" in proc.stdout + proc.stderr, (script, proc.stderr)
