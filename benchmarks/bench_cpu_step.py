#!/usr/bin/env python
"""Per-step cost of LAPO inside verl's real trainer: plain verl GRPO vs LAPO stage 1 vs stage 2, one run each,
identical settings, on lapo_verl's CPU backend (tiny quickstart model), in one invocation.

Plain GRPO uses verl's own ``grpo`` estimator and ``naive`` reward manager with the same grader
(``pkg://lapo_verl.grading:compute_score``), so the difference is what LAPO adds: records, the band bonus,
the plan sentence and its reward. Prints the mean of verl's ``timing_s/*`` over the steady-state steps
(step 1 is warm-up) and the ratios to plain GRPO (target <= 1.05).

Example: python benchmarks/bench_cpu_step.py --steps 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # recipes.dev (test assets, quickstart)

KEYS = ("timing_s/step", "timing_s/gen", "timing_s/adv", "timing_s/old_log_prob", "timing_s/update_actor",
        "response_length/mean", "prompt_length/mean")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--work", default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--from-logs", action="store_true", help="only re-print the table from the logs in --work")
    args = parser.parse_args(argv)

    from lapo_test_utils.cpu_run import run_main_ppo

    from recipes.dev.quickstart import build_quickstart

    work = Path(args.work or tempfile.mkdtemp(prefix="lapo_bench_"))
    names = ("plain verl GRPO", "LAPO stage 1", "LAPO stage 2")
    if args.from_logs:
        from lapo_test_utils.cpu_run import RunResult

        logs = {n: (work / f"{n.replace(' ', '_')}.log").read_text(errors="replace") for n in names}
        report({n: RunResult(0, log, 0.0, 0.0) for n, log in logs.items()}, args.steps)
        return 0
    assets = build_quickstart(work / "assets", progress=False)
    common = [
        f"data.train_files={assets['train']}", f"data.val_files={assets['val']}",
        f"actor_rollout_ref.model.path={assets['model']}", "data.train_batch_size=4", "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4", "data.max_prompt_length=512",
        "data.max_response_length=64", "data.filter_overlong_prompts_workers=1", "actor_rollout_ref.actor.optim.lr=1e-3",
        f"trainer.total_training_steps={args.steps}", "trainer.save_freq=-1", "trainer.test_freq=-1",
        "trainer.val_before_train=False", "trainer.logger=[console]", f"lapo.output_root={work / 'runs'}",
        "lapo.stage1.falloff=10", "lapo.stage2.sigma=10",
        # same seed for every run: the same prompts in the same order
        "data.seed=1",
    ]
    plain = ["+recipe=paper_grpo", "algorithm.adv_estimator=grpo", "reward.reward_manager.name=naive",
             "reward.custom_reward_function.path=pkg://lapo_verl.grading", "reward.custom_reward_function.name=compute_score",
             "lapo.records.enable=false", "trainer.checkpoint_callback_class=null", "lapo.tag=plain", *common]
    runs = {"plain verl GRPO": plain, "LAPO stage 1": ["+recipe=lapo_stage1", *common]}
    results = {}
    for name, overrides in runs.items():
        print(f"running {name} ...", flush=True)
        results[name] = run_main_ppo(overrides, work, work / f"{name.replace(' ', '_')}.log", timeout_s=900)
        if results[name].rc != 0:
            print(results[name].log[-3000:])
            return 1
    from lapo_verl.resolve import resolve_keys

    run_dir = resolve_keys("lapo_stage1", ["lapo.run_dir"], ["+recipe=lapo_stage1", *common][1:])[0]
    plans = work / "plans.json"
    subprocess.run([sys.executable, "-m", "lapo_verl", "plans", "--run", run_dir, "--out", str(plans)], check=True)
    print("running LAPO stage 2 ...", flush=True)
    results["LAPO stage 2"] = run_main_ppo(["+recipe=lapo_stage2", *common, f"lapo.plans_path={plans}"], work,
                                           work / "LAPO_stage_2.log", timeout_s=900)
    if results["LAPO stage 2"].rc != 0:
        print(results["LAPO stage 2"].log[-3000:])
        return 1

    report(results, args.steps)
    return 0


def steady(result, key):
    steps = result.steps()
    values = [steps[s][key] for s in sorted(steps) if s > 1 and key in steps[s]]
    return statistics.mean(values) if values else float("nan")


def report(results, n_steps: int) -> None:
    base = results["plain verl GRPO"]
    print(f"\nsteady-state means over steps 2..{n_steps}, CPU backend, tiny model, 4 prompts x 4 responses")
    labels = ("step", "gen", "adv", "old_log_prob", "update_actor", "resp_len", "prompt_len")
    print(f"{'run':<17}" + "".join(f"{k:>13}" for k in labels) + f"{'step ratio':>11}{'non-gen':>9}")
    base_rest = steady(base, KEYS[0]) - steady(base, KEYS[1])
    for name, result in results.items():
        row = [steady(result, k) for k in KEYS]
        ratio = row[0] / steady(base, KEYS[0])
        rest = (row[0] - row[1]) / base_rest  # everything but generation, whose cost follows response lengths
        print(f"{name:<17}" + "".join(f"{v:13.3f}" for v in row) + f"{ratio:11.3f}{rest:9.3f}")
    print("(seconds, except the two length columns in tokens. Target: LAPO / plain <= 1.05. The policies diverge after "
          "step 1, so generation time follows each run's response lengths; 'non-gen' compares the rest of the step)")


if __name__ == "__main__":
    sys.exit(main())
