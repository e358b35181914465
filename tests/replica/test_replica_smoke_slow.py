"""The replica's smoke mode end to end (what CI runs): every stage runs through verl's real trainer and the
report has its shape. Never checks the thresholds (a 1-step run proves plumbing, not LAPO). The warmed-up base
model is cached with the test assets (``REPLICA_CACHE``), so only a fresh machine pays for its warm-up."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lapo_verl.replica import report, task

REPO = Path(__file__).resolve().parents[2]
# recipes/lib.sh's markers: training (+ merge) per run, the plans file, and the script's own evaluations
STAGES = ["train_acc_only", "train_lapo_d", "plans_plans", "train_lapo_i", "train_lapo_i_eq8", "eval_base",
          "eval_acc_only", "eval_lapo_d", "eval_lapo_i", "eval_lapo_i_eq8", "eval_lapo_i_plan", "eval_lapo_i_eq8_plan",
          "eval_base_plan"]
# lapo_step's timed steps (logs/<step>.seconds): the report's stage-time table
TIMED = ["acc_only", "merge-acc_only", "lapo_d", "merge-lapo_d", "lapo_i", "merge-lapo_i", "lapo_i_eq8",
         "merge-lapo_i_eq8", "evals"]


@pytest.mark.slow
def test_cpu_replica_smoke(tmp_path, asset_cache_dir):
    out, docs = tmp_path / "replica", tmp_path / "docs"
    cmd = ["timeout", "-k", "15", "1500", "bash", str(REPO / "recipes" / "cpu_replica.sh"), "--scale", "smoke",
           "--out", str(out), "--docs", str(docs)]
    env = {**os.environ, "REPLICA_CACHE": os.path.join(asset_cache_dir, "replica")}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for st in STAGES:
        assert (out / "seed1" / ".done" / st).is_file(), f"stage {st} did not finish"
    for step in TIMED:
        assert (out / "seed1" / "logs" / f"{step}.seconds").is_file(), f"step {step} has no wall time"
    res = json.loads((docs / "results-cpu.json").read_text())
    assert set(TIMED) <= set(res["stage_seconds"]["1"])
    models = res["per_seed"]["1"]
    assert set(models) == set(report.MODELS)
    for name, summary in models.items():
        assert set(summary["per_level"]) == {str(lv) for lv in task.LEVELS}, name
        assert summary["seconds"] > 0, name  # each evaluation's own time, inside the one "evals" step
        assert 0 <= summary["accuracy"] <= 100 and summary["mean_tokens"] > 0
    assert "adherence" in models["lapo_i_plan"] and "stated_plan_fraction" in models["lapo_i"]
    assert "adherence" in models["lapo_i_eq8_plan"] and "adherence" in models["base_plan"]
    targets = [t["target"] for t in res["targets"]["1"]]
    assert any("base with the same plans" in t for t in targets)
    # provenance: the base model's and tokenizer's digests, the CPUs, the warm-up's wall time
    prov = res["provenance"]
    assert len(prov["base_weights_sha256"]) == 64 and len(prov["tokenizer_sha256"]) == 64
    assert prov["cpu"] and prov["base_build"]["cpu"] and prov["base_build"]["warmup_s"] > 0
    # the Eq. 8 arm's plans, before and after stage 2, per level
    moved = res["eq8_plans"]["1"]
    assert moved is not None and moved["problems"] == 4 and Path(moved["updated_plans"]).is_file()
    assert [t["target"] for t in res["targets"]["1"]][0].startswith("LAPO-I mean tokens")
    md = (docs / "results-cpu.md").read_text()
    assert "| model | " + " | ".join(f"d={lv}" for lv in task.LEVELS) + " |" in md
    assert md.count("\n| ") >= len(report.MODELS) + 8  # table rows + target rows
    assert "- seed 1 lapo_stage1: " in md and "- seed 1 lapo_stage2: " in md  # training curves from the logs
    assert "- seed 1 lapo_stage2 Eq. 8: " in md and "## Eq. 8 arm" in md
    assert (docs / "results-cpu-frontier.png").is_file() and (docs / "results-cpu-length-by-level.png").is_file()
    # resumable: a second run skips every stage
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert (again.stdout + again.stderr).count("skipped") >= len(STAGES)
    assert "train acc_only: done before" in again.stderr
