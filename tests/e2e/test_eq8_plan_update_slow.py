"""Paper Eq. 8 with verl's real trainer on CPU (lapo.stage2.update_plans=true), issue 11 item 6.

Stage 2 from the tiny random model on 4 problems (one GRPO group each per step, so every problem is visited at
every step), every response counted correct (``always_correct.py``: a random model solves nothing), 3 steps with a
checkpoint each, then a simulated crash that loses step 3 and a resume (``resume_mode=auto``) that redoes it. Checked in verl's own rollout dump and in the records:
* step 1 prompts state the plans file's numbers; each later step's prompt states Eq. 8 folded over the earlier
  steps' correct lengths, identical for the 4 rollouts of a group, and some plan visibly shrinks;
* the stage-2 reward used the same plan as the prompt;
* the redone step 3 states the same plans as the lost one (the crashed attempt's records are rolled back);
* the plans are exported as a plans file per checkpoint and in the run directory.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from lapo_test_utils.cpu_run import run_main_ppo
from lapo_test_utils.verl_config import compose_recipe
from lapo_verl import rewards as R
from lapo_verl.plan_updates import fold_plan
from lapo_verl.plans import read_plans
from lapo_verl.records import load_records

pytestmark = pytest.mark.slow

BATCH, N, RESPONSE, INITIAL = 4, 4, 64, 100  # planned above the response cap: the first update must shrink it
HERE = Path(__file__).resolve().parent
SMALL = [
    f"data.train_batch_size={BATCH}", f"actor_rollout_ref.rollout.n={N}", f"actor_rollout_ref.actor.ppo_mini_batch_size={BATCH}",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4", "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4", "data.max_prompt_length=1024",
    f"data.max_response_length={RESPONSE}", "data.filter_overlong_prompts_workers=1", "actor_rollout_ref.actor.optim.lr=1e-5",
    "trainer.test_freq=-1", "trainer.val_before_train=False", "trainer.logger=[console]", "trainer.n_gpus_per_node=1",
    "lapo.stage2.sigma=10", "lapo.experiment=eq8", "lapo.stage2.update_plans=true", "data.shuffle=false",
]
PLAN_RE = re.compile(r"I will answer the question with (\d+) tokens\.\n$")


def test_eq8_plans_shrink_between_visits_and_survive_resume(tiny_bpe_dir, tmp_path):
    from recipes.dev.quickstart import build_data

    train_all, val = build_data(tmp_path / "data", 8, 4)
    qs = {"train": train_all, "val": val, "model": str(tiny_bpe_dir)}
    frame = pd.read_parquet(qs["train"]).head(BATCH)
    train = tmp_path / "train4.parquet"
    frame.to_parquet(train)
    ids = list(frame["lapo_problem_id"])
    plans_path = tmp_path / "plans.json"  # three planned problems, one unsolved (-> max length, then the median)
    plans_path.write_text(json.dumps({"format": "lapo-plans/1", "plans": {p: INITIAL for p in ids[:3]},
                                      "unsolved": ids[3:]}))
    dump = tmp_path / "rollouts"
    args = [*SMALL, f"data.train_files={train}", f"data.val_files={qs['val']}", f"lapo.output_root={tmp_path / 'runs'}",
            f"actor_rollout_ref.model.path={qs['model']}", f"lapo.plans_path={plans_path}",
            "trainer.total_training_steps=3", "trainer.save_freq=1", f"trainer.rollout_data_dir={dump}",
            f"reward.custom_reward_function.path={HERE / 'always_correct.py'}",
            "reward.custom_reward_function.name=compute_score"]
    cfg = compose_recipe("lapo_stage2", *args, minimal=False)
    OmegaConf.resolve(cfg)
    run_dir, ckpt_root = Path(cfg.lapo.run_dir), Path(cfg.trainer.default_local_dir)

    first = run_main_ppo(["+recipe=lapo_stage2", *args], tmp_path, tmp_path / "stage2.log", timeout_s=900)
    assert first.rc == 0, first.log[-4000:]
    lost = [json.loads(x) for x in open(dump / "3.jsonl")]
    # crash: step 3's checkpoint never became durable; resume_mode=auto redoes step 3
    shutil.rmtree(ckpt_root / "global_step_3")
    (ckpt_root / "latest_checkpointed_iteration.txt").write_text("2")
    (dump / "3.jsonl").unlink()
    resumed = run_main_ppo(["+recipe=lapo_stage2", *args], tmp_path, tmp_path / "stage2_resume.log", timeout_s=900)
    assert resumed.rc == 0, resumed.log[-4000:]

    records, report = load_records(str(run_dir / "records"))
    assert report.rolled_back == BATCH * N
    correct = defaultdict(dict)  # pid -> step -> correct lengths
    for r in records:
        correct[r.problem_id].setdefault(r.step, [])
        if r.correct:
            correct[r.problem_id][r.step].append(r.response_length)

    def expected(pid: str, step: int) -> int:
        visits = [correct[pid].get(s, []) for s in range(1, step)]
        plan = fold_plan(None if pid in ids[3:] else INITIAL, visits)
        return RESPONSE if plan is None else plan  # unsolved: the maximum length (unsolved_length)

    problems = {row["prompt"][-1]["content"]: row["lapo_problem_id"] for _, row in frame.iterrows()}
    stated = defaultdict(set)  # (pid, step) -> plans stated in the prompts
    for step in (1, 2, 3):
        for sample in (json.loads(x) for x in open(dump / f"{step}.jsonl")):
            pid = next(p for text, p in problems.items() if text in sample["input"])
            stated[(pid, step)].add(int(PLAN_RE.search(sample["input"]).group(1)))
    for (pid, step), values in stated.items():
        assert values == {expected(pid, step)}, (pid, step, values, correct[pid])  # one plan per group
    shrunk = [(pid, s) for (pid, s) in stated if s > 1 and min(stated[(pid, s)]) < min(stated[(pid, s - 1)])]
    assert shrunk, f"no plan shrank between visits: {dict(correct)}"
    # the reward centred on the stated plan
    for r in records:
        assert r.plan == expected(r.problem_id, r.step)
        assert r.reward == pytest.approx(R.stage2_reward(r.correct, r.response_length, r.plan, beta=0.8, sigma=10))
    # the lost attempt of step 3 stated the same plans as the redone one (both fold steps 1-2 only)
    for sample in lost:
        pid = next(p for text, p in problems.items() if text in sample["input"])
        assert int(PLAN_RE.search(sample["input"]).group(1)) == expected(pid, 3)
    # exported: per checkpoint and in the run directory (after the last step)
    plans, unsolved, doc = read_plans(str(run_dir / "plans_updated.json"))
    assert doc["visit_rule"] == "eq8" and doc["summary"]["step"] == 3
    for pid in ids:
        final = fold_plan(None if pid in ids[3:] else INITIAL, [correct[pid].get(s, []) for s in (1, 2, 3)])
        assert (plans.get(pid) == final) if final is not None else (pid in unsolved)
    assert read_plans(str(ckpt_root / "global_step_2" / "lapo_plans.json"))[2]["summary"]["step"] == 2
