#!/usr/bin/env python
"""Where a CPU-backend step's time went, and what the backend's speed settings buy: one LAPO stage-1 run per
configuration, same data, same batch (4 prompts x 4 responses), same response cap, in one invocation.

Configurations (cumulative):
  before        the quickstart as it was: Qwen2.5 vocabulary (151,665 tokens), requests generated one at a time
                (rollout.max_num_seqs=1), verl's GPU defaults (remove-padding, gradient checkpointing, bf16)
  +backend      the same model with the CPU backend's current overrides (batched generation, fp32, no
                remove-padding, no gradient checkpointing)
  after         the current quickstart model: 1,024-token BPE vocabulary, current overrides

The models are random (not warmed up), so nearly every response runs to the cap and the three runs generate the
same number of tokens. Prints the mean of verl's timing_s/* over steps 2..N (step 1 is warm-up).

Example: python benchmarks/bench_cpu_speed.py --steps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # recipes.dev (test assets, quickstart)

KEYS = ("timing_s/step", "timing_s/gen", "timing_s/old_log_prob", "timing_s/ref", "timing_s/update_actor",
        "response_length/mean")

OLD_BACKEND = [  # verl's defaults, undoing the CPU backend's speed overrides
    "actor_rollout_ref.rollout.max_num_seqs=1",
    "actor_rollout_ref.model.use_remove_padding=True",
    "actor_rollout_ref.model.enable_gradient_checkpointing=True",
    "+actor_rollout_ref.actor.fsdp_config.mixed_precision={param_dtype:bf16,reduce_dtype:fp32,buffer_dtype:fp32}",
    "+actor_rollout_ref.ref.fsdp_config.mixed_precision={param_dtype:bf16,reduce_dtype:fp32,buffer_dtype:fp32}",
    "actor_rollout_ref.rollout.dtype=bfloat16",
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--work", default=None, help="work directory (default: a temp dir)")
    parser.add_argument("--only", default=None, help="comma-separated subset of: before,+backend,after")
    args = parser.parse_args(argv)

    from lapo_test_utils.cpu_run import run_main_ppo

    from recipes.dev.assets import build_tiny_model_dir
    from recipes.dev.quickstart import build_data

    work = Path(args.work or tempfile.mkdtemp(prefix="lapo_speed_"))
    train, val = build_data(work / "data", 32, 8)
    qwen = build_tiny_model_dir(work / "qwen_model", tokenizer="qwen2.5", hidden=32)
    small = build_tiny_model_dir(work / "bpe_model", tokenizer="tiny-bpe", hidden=64)
    common = [
        f"data.train_files={train}", f"data.val_files={val}", "data.train_batch_size=4", "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4", "data.max_prompt_length=512",
        "data.max_response_length=64", "data.filter_overlong_prompts_workers=1",
        f"trainer.total_training_steps={args.steps}", "trainer.save_freq=-1", "trainer.test_freq=-1",
        "trainer.val_before_train=False", "trainer.logger=[console]", "data.seed=1", "+recipe=lapo_stage1",
    ]
    configs = {
        "before": [f"actor_rollout_ref.model.path={qwen}", *OLD_BACKEND],
        "+backend": [f"actor_rollout_ref.model.path={qwen}"],
        "after": [f"actor_rollout_ref.model.path={small}"],
    }
    if args.only:
        configs = {k: v for k, v in configs.items() if k in args.only.split(",")}
    results = {}
    for name, extra in configs.items():
        print(f"running {name} ...", flush=True)
        overrides = [*common, *extra, f"lapo.output_root={work / 'runs' / name}", f"lapo.tag={name}"]
        result = run_main_ppo(overrides, work, work / f"{name}.log", timeout_s=3000)
        if result.rc != 0:
            print(result.log[-3000:])
            return 1
        results[name] = result
    print(f"\nCPU backend, LAPO stage 1, 4 prompts x 4 responses (cap 64 tokens); means over steps 2..{args.steps}")
    labels = ("step", "gen", "old_log_prob", "ref", "update", "resp_len")
    print(f"{'config':<10}" + "".join(f"{k:>14}" for k in labels) + f"{'speed-up':>10}")
    base = None
    for name, result in results.items():
        steps = result.steps()
        row = [statistics.mean([steps[s][k] for s in sorted(steps) if s > 1 and k in steps[s]] or [float("nan")])
               for k in KEYS]
        base = base or row[0]
        print(f"{name:<10}" + "".join(f"{v:14.2f}" for v in row) + f"{base / row[0]:10.1f}")
    print("(seconds; resp_len in tokens. The machine's other load is not controlled: compare rows of one run.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
