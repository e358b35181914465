"""The replica's smoke mode end to end (what CI runs): every stage runs through verl's real trainer and the
report has its shape. Never checks the thresholds (a 2-step run proves plumbing, not LAPO)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from lapo_verl.replica import task

REPO = Path(__file__).resolve().parents[2]
STAGES = ["train_acc_only", "merge_acc_only", "train_lapo_stage1", "merge_lapo_d", "plans", "train_lapo_stage2",
          "merge_lapo_i", "eval_base", "eval_acc_only", "eval_lapo_d", "eval_lapo_i", "eval_lapo_i_plan", "eval_base_plan"]


@pytest.mark.slow
def test_cpu_replica_smoke(tmp_path):
    out, docs = tmp_path / "replica", tmp_path / "docs"
    cmd = ["timeout", "-k", "15", "1500", "bash", str(REPO / "recipes" / "cpu_replica.sh"), "--scale", "smoke",
           "--out", str(out), "--docs", str(docs)]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for st in STAGES:
        assert (out / "seed1" / ".done" / st).is_file(), f"stage {st} did not finish"
    res = json.loads((docs / "results-cpu.json").read_text())
    models = res["per_seed"]["1"]
    assert set(models) == {"base", "acc_only", "lapo_d", "lapo_i", "lapo_i_plan", "base_plan"}
    for name, summary in models.items():
        assert set(summary["per_level"]) == {str(lv) for lv in task.LEVELS}, name
        assert 0 <= summary["accuracy"] <= 100 and summary["mean_tokens"] > 0
    assert "adherence" in models["lapo_i_plan"] and "stated_plan_fraction" in models["lapo_i"]
    assert [t["target"] for t in res["targets"]["1"]][0].startswith("LAPO-I mean tokens")
    md = (docs / "results-cpu.md").read_text()
    assert "| model | " + " | ".join(f"d={lv}" for lv in task.LEVELS) + " |" in md
    assert md.count("\n| ") >= 6 + 7  # table rows + target rows
    assert (docs / "results-cpu-frontier.png").is_file() and (docs / "results-cpu-length-by-level.png").is_file()
    # resumable: a second run skips every stage
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count("skipped") >= len(STAGES)
