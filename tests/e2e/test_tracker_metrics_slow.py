"""LAPO's metrics reach the tracker the user configured (``trainer.logger``), at the same step as verl's own.

Two real 2-step ``main_ppo`` runs on the CPU backend, from the recipes alone for batching (their token-balanced
dynamic batches, no micro-batch override): stage 1 logging to verl's file logger and TensorBoard, stage 2 to the
file logger. The values are read back from those backends and checked against verl's own metrics of the same
step (stage 1: accuracy = ``critic/score/mean``, mean length = ``response_length/mean``) and against LAPO's
length records (stage 2: |length - plan| quantiles per step).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from lapo_test_utils.cpu_run import run_main_ppo
from lapo_test_utils.verl_config import compose_recipe
from lapo_verl.records import load_records

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TIMEOUT_S = 600


def _common(toy, model, root):
    return [
        f"data.train_files={toy / 'train.parquet'}", f"data.val_files={toy / 'val.parquet'}",
        "data.train_batch_size=4", "data.max_prompt_length=128", "data.max_response_length=24",
        "data.filter_overlong_prompts_workers=1", f"actor_rollout_ref.model.path={model}",
        "actor_rollout_ref.model.use_remove_padding=False", "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4", "actor_rollout_ref.actor.optim.lr=1e-3",
        f"reward.custom_reward_function.path={HERE / 'toy_parity_reward.py'}",
        "reward.custom_reward_function.name=compute_score",
        "trainer.total_training_steps=2", "trainer.val_before_train=False", "trainer.test_freq=-1",
        "trainer.save_freq=-1", "trainer.project_name=lapo_tracker", f"lapo.output_root={root}",
    ]


def _file_log(path: Path) -> dict[int, dict[str, float]]:
    steps: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        steps.setdefault(int(row["step"]), {}).update(row["data"])
    return steps


def _run(recipe, args, tmp_path, name, env_extra):
    result = run_main_ppo([f"+recipe={recipe}", *args], tmp_path, tmp_path / f"{name}.log", timeout_s=TIMEOUT_S,
                          env_extra=env_extra)
    print(f"\n{name}: rc={result.rc} wall={result.wall_s:.1f}s peak_pss_tree={result.peak_gb:.2f}GB")
    assert result.rc == 0, f"{name} failed (rc={result.rc}):\n{result.log[-6000:]}"
    return result


def test_lapo_metrics_reach_file_and_tensorboard_loggers(toy, tiny_bpe_dir, tmp_path):
    root = tmp_path / "runs"
    common = _common(toy, tiny_bpe_dir, root)

    # ---------------- stage 1: file logger + TensorBoard
    s1_file, tb_dir = tmp_path / "stage1_metrics.jsonl", tmp_path / "tb"
    s1 = [*common, "trainer.logger=[console,file,tensorboard]", "trainer.experiment_name=s1"]
    result = _run("lapo_stage1", s1, tmp_path, "stage1",
                  {"VERL_FILE_LOGGER_PATH": str(s1_file), "TENSORBOARD_DIR": str(tb_dir)})
    assert "lapo/stage1/bonus_mean_correct:" in result.log  # console backend too
    logged = _file_log(s1_file)
    assert sorted(logged) == [1, 2]
    for step, m in logged.items():
        for key in ("lapo/accuracy", "lapo/length/mean", "lapo/grading/match_fast_frac", "lapo/grading/timeout_frac",
                    "lapo/grading/no_answer_frac", "lapo/grading/truncated_frac", "lapo/stage1/bonus_mean_correct",
                    "lapo/stage1/in_band_frac_correct", "lapo/stage1/band_width/mean", "lapo/stage1/reward/mean"):
            assert key in m, (step, key, sorted(k for k in m if k.startswith("lapo/")))
        # the same step as verl's own numbers: stage-1 reward = acc, lengths = verl's response lengths
        assert m["lapo/accuracy"] == pytest.approx(m["critic/score/mean"]), step
        assert m["lapo/length/mean"] == pytest.approx(m["response_length/mean"]), step
        assert m["lapo/stage1/groups"] == 4
        assert m["lapo/grading/match_fast_frac"] + m["lapo/grading/mismatch_frac"] == pytest.approx(1.0)
    assert any(0 < m["lapo/accuracy"] < 1 and m["lapo/stage1/bonus_mean_correct"] > 0 for m in logged.values())

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in ("lapo/accuracy", "lapo/stage1/bonus_mean_correct", "lapo/grading/timeout_frac"):
        assert tag in tags, sorted(t for t in tags if t.startswith("lapo"))
        events = {e.step: e.value for e in acc.Scalars(tag)}
        assert sorted(events) == [1, 2]
        for step in (1, 2):
            assert events[step] == pytest.approx(logged[step][tag], rel=1e-5, abs=1e-6), (tag, step)

    # ---------------- stage 2: file logger; plan error against the length records
    plans = {f"toy-train-{i}": 4 + i for i in range(16)}
    (tmp_path / "plans.json").write_text(json.dumps({"format": "lapo-plans/1", "plans": plans, "unsolved": []}))
    s2_file = tmp_path / "stage2_metrics.jsonl"
    s2 = [*common, f"lapo.plans_path={tmp_path / 'plans.json'}", "trainer.logger=[console,file]",
          "trainer.experiment_name=s2"]
    _run("lapo_stage2", s2, tmp_path, "stage2", {"VERL_FILE_LOGGER_PATH": str(s2_file)})
    logged = _file_log(s2_file)
    assert sorted(logged) == [1, 2]
    cfg = compose_recipe("lapo_stage2", *s2, minimal=False)
    OmegaConf.resolve(cfg)
    records, _ = load_records(cfg.lapo.records.dir)
    by_step = defaultdict(list)
    for rec in records:
        by_step[rec.step].append(abs(rec.response_length - rec.plan))
    for step, m in logged.items():
        err = np.array(by_step[step], dtype=float)
        assert err.size == 16, (step, err.size)
        assert m["lapo/stage2/plan_abs_error/mean"] == pytest.approx(err.mean())
        assert m["lapo/stage2/plan_abs_error/median"] == pytest.approx(np.median(err))
        assert m["lapo/stage2/plan_abs_error/p90"] == pytest.approx(np.quantile(err, 0.9))
        assert m["lapo/stage2/planned_frac"] == 1.0
        assert "lapo/stage2/closeness/mean_correct" in m and "lapo/accuracy" in m
        assert not any(k.startswith("lapo/stage1/") for k in m)
