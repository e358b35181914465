"""The whole LAPO chain with verl's real trainer on CPU: stage 1 -> plans -> stage 2 -> eval.

Asserts on real artifacts, not on logs alone:
* stage-1 records exist for every problem seen, one visit per (problem, step), and each checkpoint carries a
  snapshot of them up to its step. A crash and resume (a lost checkpoint, verl redoing the step: nothing lost or
  counted twice, the resumed run logging only the redone step) is tests/e2e/test_two_node_cluster_slow.py's stage 2:
  the same records writer (the trainer's metrics sampler) serves both stages, and this test's own resume run was
  one trainer start more in CI;
* the CPU backend under the recipe: KL to the reference grows, rollout log-probs match the actor's after each
  weight sync, a final validation runs, the checkpoint is durable (once a plain-GRPO run of its own);
* LAPO's rewards vary inside groups (some group mixes correct and wrong answers of different lengths);
* the plans file maps ids to positive lengths, by the method note's rule, recomputed here from the records;
* the prompts that reached the rollout server in stage 2 carry each row's plan sentence right after
  ``<think>`` (verl's own rollout dump), and the stage-2 rewards used those plans;
* the evaluation table is produced from the stage-2 model;
* LAPO's metrics reach the tracker the user configured (``trainer.logger``), at the same step as verl's own: stage 1
  logs to verl's file logger and TensorBoard (checked against verl's ``critic/score/mean`` and
  ``response_length/mean`` of the same step), stage 2 to the file logger (|length - plan| quantiles per step
  checked against the length records). These were a separate test with two runs of their own
  (test_tracker_metrics_slow.py); they share this chain's runs, which log through the same hooks and, like those,
  take their batching from the recipes alone (token-balanced dynamic batches, no micro-batch override).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from lapo_test_utils.cpu_run import run_main_ppo
from lapo_test_utils.verl_config import compose_recipe
from lapo_verl import rewards as R
from lapo_verl.plans import build_plans, read_plans
from lapo_verl.records import load_records, read_events

pytestmark = pytest.mark.slow

BATCH, N, RESPONSE = 4, 4, 64
SMALL = [
    # no micro-batch sizes: the recipes' token-balanced dynamic batches, as users run them
    f"data.train_batch_size={BATCH}", f"actor_rollout_ref.rollout.n={N}", f"actor_rollout_ref.actor.ppo_mini_batch_size={BATCH}",
    "data.max_prompt_length=512",  # the quickstart BPE: ~230-token prompts
    f"data.max_response_length={RESPONSE}", "data.filter_overlong_prompts_workers=1", "actor_rollout_ref.actor.optim.lr=1e-3",
    "trainer.test_freq=-1", "trainer.val_before_train=False", "trainer.n_gpus_per_node=1",
    "lapo.stage1.falloff=10", "lapo.stage2.sigma=10", "lapo.experiment=chain",
]


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "lapo_verl", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    from recipes.dev.quickstart import build_quickstart

    return build_quickstart(tmp_path_factory.mktemp("quickstart"), n_train=32, n_val=8, progress=False)


def file_log(path: Path) -> dict[int, dict[str, float]]:
    """verl's file logger (``trainer.logger`` file, ``VERL_FILE_LOGGER_PATH``): step -> metrics."""
    steps: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        steps.setdefault(int(row["step"]), {}).update(row["data"])
    return steps


def resolved(recipe, overrides):
    cfg = compose_recipe(recipe, *overrides, minimal=False)
    OmegaConf.resolve(cfg)
    return cfg


def test_lapo_chain_on_cpu(quickstart, tmp_path):
    root = tmp_path / "runs"
    common = [*SMALL, f"data.train_files={quickstart['train']}", f"data.val_files={quickstart['val']}",
              f"lapo.output_root={root}"]
    s1 = [f"actor_rollout_ref.model.path={quickstart['model']}", *common, "trainer.logger=[console,file,tensorboard]"]
    s1_cfg = resolved("lapo_stage1", s1)
    run_dir, ckpt_root = Path(s1_cfg.lapo.run_dir), Path(s1_cfg.trainer.default_local_dir)
    timings = {}

    # ---------------- stage 1, 3 steps, checkpoint every step
    s1_file, tb_dir = tmp_path / "stage1_metrics.jsonl", tmp_path / "tb"
    # + the CPU backend's own checks under the recipe (they were a plain-GRPO run of their own,
    # test_cpu_grpo_slow.py): rollout log-probs for the weight-sync check, a final validation
    first = run_main_ppo(["+recipe=lapo_stage1", *s1, "trainer.total_training_steps=3", "trainer.save_freq=1",
                          "actor_rollout_ref.rollout.calculate_log_probs=True", "trainer.test_freq=3"],
                         tmp_path, tmp_path / "stage1.log",
                         env_extra={"VERL_FILE_LOGGER_PATH": str(s1_file), "TENSORBOARD_DIR": str(tb_dir)})
    timings["stage1"] = (first.wall_s, first.peak_gb)
    assert first.rc == 0, first.log[-4000:]
    steps = first.steps()
    assert sorted(steps) == [1, 2, 3]
    # the CPU backend trains for real: the policy moved away from the reference (KL loss; 0 at step 1 by
    # construction), the hf rollout's log-probs match the actor's recomputation (~1e-5), which at steps 2-3 only
    # holds if the rollout received the weights trained before, greedy validation ran through the same rollout,
    # and the last checkpoint is durable
    assert max(steps[s].get("actor/kl_loss", 0.0) for s in (2, 3)) > 0, steps
    for s in (2, 3):
        assert steps[s]["training/rollout_probs_diff_max"] < 5e-3, steps[s]
    assert "Final validation metrics" in first.log and "val-core/" in first.log, first.log[-3000:]
    assert (ckpt_root / "latest_checkpointed_iteration.txt").read_text().strip() == "3"
    records, report = load_records(str(run_dir / "records"))
    starts = [e for e in read_events(str(run_dir / "records")) if e.get("event") == "start"]
    assert [e["resume_step"] for e in starts] == [0]
    assert report.corrupt == 0
    per_visit = defaultdict(int)
    for r in records:
        per_visit[(r.problem_id, r.step)] += 1
    assert sorted({s for _, s in per_visit}) == [1, 2, 3]
    assert set(per_visit.values()) == {N}  # every visit complete, none doubled
    assert len(per_visit) == 3 * BATCH
    train_ids = set(pd.read_parquet(quickstart["train"])["lapo_problem_id"])
    assert {pid for pid, _ in per_visit} <= train_ids
    # the checkpoint carries its own snapshot of the records up to its step
    snap = [json.loads(x) for x in open(ckpt_root / "global_step_2" / "lapo_records.jsonl")]
    assert len(snap) == 2 * BATCH * N and {r["step"] for r in snap} == {1, 2}

    # LAPO's stage-1 reward varies inside groups: some group has correct and wrong answers / distinct R_D
    groups = defaultdict(list)
    for r in records:
        groups[(r.problem_id, r.step)].append(r)
    varied = [g for g in groups.values()
              if len({round(x, 6) for x in R.stage1_group_rewards([r.response_length for r in g], [r.correct for r in g],
                                                                 falloff=10)}) > 1]
    assert varied, "no group with varying stage-1 reward: the chain would train on zero advantages"
    assert max(first.steps()[s].get("actor/grad_norm", 0) for s in (1, 2, 3)) > 0

    # ---------------- stage 1's LAPO metrics in the trackers: file logger + TensorBoard (+ console)
    assert "lapo/stage1/bonus_mean_correct:" in first.log
    logged = file_log(s1_file)
    assert sorted(logged) == [1, 2, 3]
    for step, m in logged.items():
        for key in ("lapo/accuracy", "lapo/length/mean", "lapo/grading/match_fast_frac", "lapo/grading/timeout_frac",
                    "lapo/grading/no_answer_frac", "lapo/grading/truncated_frac", "lapo/stage1/bonus_mean_correct",
                    "lapo/stage1/in_band_frac_correct", "lapo/stage1/band_width/mean", "lapo/stage1/reward/mean"):
            assert key in m, (step, key, sorted(k for k in m if k.startswith("lapo/")))
        # the same step as verl's own numbers: stage-1 reward = acc, lengths = verl's response lengths
        assert m["lapo/accuracy"] == pytest.approx(m["critic/score/mean"]), step
        assert m["lapo/length/mean"] == pytest.approx(m["response_length/mean"]), step
        assert m["lapo/stage1/groups"] == BATCH
        # every response has exactly one grading outcome
        assert sum(v for k, v in m.items() if k.startswith("lapo/grading/") and k.endswith("_frac")) == pytest.approx(1.0)
    assert any(0 < m["lapo/accuracy"] < 1 and m["lapo/stage1/bonus_mean_correct"] > 0 for m in logged.values())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("lapo/accuracy", "lapo/stage1/bonus_mean_correct", "lapo/grading/timeout_frac"):
        assert tag in tags, sorted(t for t in tags if t.startswith("lapo"))
        events = {e.step: e.value for e in acc.Scalars(tag)}
        assert sorted(events) == [1, 2, 3]
        for step in (1, 2, 3):
            assert events[step] == pytest.approx(logged[step][tag], rel=1e-5, abs=1e-6), (tag, step)

    # ---------------- plans
    plans_path = tmp_path / "plans.json"
    out = cli("plans", "--run", str(run_dir), "--out", str(plans_path))
    assert "solved" in out
    plans, unsolved, _ = read_plans(str(plans_path))
    assert plans and all(isinstance(v, int) and v > 0 for v in plans.values())
    assert set(plans) | unsolved == {pid for pid, _ in per_visit}
    assert plans == build_plans(records)["plans"]

    # ---------------- stage-1 model -> Hugging Face
    lapo_d = tmp_path / "lapo_d"
    merge = subprocess.run([sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir",
                            str(ckpt_root / "global_step_3" / "actor"), "--target_dir", str(lapo_d)],
                           capture_output=True, text=True, timeout=300)
    assert merge.returncode == 0, merge.stderr[-3000:]

    # ---------------- stage 2, 2 steps, dumping what the rollout produced
    dump = tmp_path / "rollouts"
    s2_file = tmp_path / "stage2_metrics.jsonl"
    s2 = [f"actor_rollout_ref.model.path={lapo_d}", *common, f"lapo.plans_path={plans_path}",
          "trainer.total_training_steps=2", "trainer.save_freq=2", f"trainer.rollout_data_dir={dump}",
          "trainer.logger=[console,file]"]
    second = run_main_ppo(["+recipe=lapo_stage2", *s2], tmp_path, tmp_path / "stage2.log",
                          env_extra={"VERL_FILE_LOGGER_PATH": str(s2_file)})
    timings["stage2"] = (second.wall_s, second.peak_gb)
    assert second.rc == 0, second.log[-4000:]
    assert re.search(r"\[lapo\] train plans from .*: \d+/32 rows planned", second.log)

    problems = {row["prompt"][-1]["content"]: row["lapo_problem_id"]
                for _, row in pd.read_parquet(quickstart["train"]).iterrows()}
    fallback = RESPONSE  # unsolved_length defaults to data.max_response_length
    dumped = [json.loads(x) for f in sorted(dump.glob("*.jsonl")) for x in open(f)]
    assert len(dumped) == 2 * BATCH * N
    for sample in dumped:
        pid = next(p for text, p in problems.items() if text in sample["input"])
        plan = plans.get(pid, fallback)
        # Qwen2.5's template does not open <think>: the loop opens it and states the plan right after it
        assert sample["input"].endswith(f"assistant\n<think>\nI will answer the question with {plan} tokens.\n"), sample["input"][-200:]
    s2_cfg = resolved("lapo_stage2", s2)
    s2_records, _ = load_records(str(Path(s2_cfg.lapo.run_dir) / "records"))
    assert len(s2_records) == 2 * BATCH * N
    for r in s2_records:
        assert r.plan == plans.get(r.problem_id, fallback)
        assert r.reward == pytest.approx(R.stage2_reward(r.correct, r.response_length, r.plan, beta=0.8, sigma=10))

    # ---------------- stage 2's plan error in the file logger, against the length records of the same step
    logged = file_log(s2_file)
    assert sorted(logged) == [1, 2]
    by_step = defaultdict(list)
    for r in s2_records:
        by_step[r.step].append(abs(r.response_length - r.plan))
    for step, m in logged.items():
        err = np.array(by_step[step], dtype=float)
        assert err.size == BATCH * N, (step, err.size)
        assert m["lapo/stage2/plan_abs_error/mean"] == pytest.approx(err.mean())
        assert m["lapo/stage2/plan_abs_error/median"] == pytest.approx(np.median(err))
        assert m["lapo/stage2/plan_abs_error/p90"] == pytest.approx(np.quantile(err, 0.9))
        assert m["lapo/stage2/planned_frac"] == 1.0  # unsolved problems are planned too (the maximum length)
        assert "lapo/stage2/closeness/mean_correct" in m and "lapo/accuracy" in m
        assert 0.0 <= m["lapo/stage2/closeness/frac_gt_0p1"] <= 1.0
        assert not any(k.startswith("lapo/stage1/") for k in m)

    # ---------------- evaluation + report of the stage-2 model
    lapo_i = tmp_path / "lapo_i"
    s2_ckpt = Path(s2_cfg.trainer.default_local_dir) / "global_step_2" / "actor"
    merge = subprocess.run([sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir",
                            str(s2_ckpt), "--target_dir", str(lapo_i)], capture_output=True, text=True, timeout=300)
    assert merge.returncode == 0, merge.stderr[-3000:]
    results = tmp_path / "results" / "lapo_i"
    cli("eval", "--model", str(lapo_i), "--out", str(results), "--data", "fixtures", "--benchmarks", "math500,amc23",
        "--samples", "2", "--max-new-tokens", "48", "--limit", "4", "--no-progress")
    table = tmp_path / "table.md"
    cli("report", str(results), "--out", str(table), "--plot", str(tmp_path / "frontier.png"))
    assert "lapo_i" in table.read_text() and (tmp_path / "frontier.png").stat().st_size > 1000
    print("timings (wall s, peak GB):", json.dumps(timings))
    with open(os.environ.get("LAPO_E2E_TIMINGS", os.devnull), "a") as fh:
        fh.write(json.dumps(timings) + "\n")
