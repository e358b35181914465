"""Evaluate a Hugging Face model on the replica's held-out set: batched ``generate`` in float32.

Prompts are rendered as verl renders them (chat template with the generation prompt, which opens
``<think>``); with ``--plans`` the stage-2 plan sentence is inserted exactly as the stage-2 agent loop
inserts it (:func:`lapo_verl.plan_text.prompt_with_plan`). Answers are graded by the project's
grader (:func:`lapo_verl.grading.grade`, reasoning prefilled); plans stated by the model are found by
:func:`lapo_verl.plan_text.find_plan`. Writes ``<out>.jsonl`` (one record per sample) and ``<out>.json``
(the summary of :func:`summarize`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from lapo_verl.prompts import PLAN_TEMPLATE, build_messages, render_plan
from lapo_verl.replica.data import problem_id_of


def ranks(xs: Sequence[float]) -> list[float]:
    """Average ranks (1-based), ties share the mean rank.

    >>> ranks([10, 20, 20, 5])
    [2.0, 3.5, 3.5, 1.0]
    """
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson correlation of average ranks); ``None`` if a side is constant.

    >>> spearman([1, 2, 3, 4], [10, 20, 30, 40])
    1.0
    >>> spearman([1, 2, 3, 4], [4, 3, 2, 1])
    -1.0
    >>> round(spearman([1, 2, 2, 3], [1, 3, 2, 4]), 4)
    0.9487
    """
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs equal lengths, got {len(xs)} and {len(ys)}")
    if len(xs) < 2:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / (sxx * syy) ** 0.5


def quantile(xs: Sequence[float], q: float) -> float | None:
    """Linear-interpolation quantile (numpy's default). ``None`` for an empty list.

    >>> quantile([1, 2, 3, 4], 0.5)
    2.5
    """
    if not xs:
        return None
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy and mean tokens per level and overall, Spearman(length, level), plan statistics.

    >>> recs = [dict(level=1, correct=True, n_tokens=10, plan=None, stated_plan=None),
    ...         dict(level=2, correct=False, n_tokens=30, plan=None, stated_plan=20)]
    >>> s = summarize(recs)
    >>> s["accuracy"], s["mean_tokens"], s["per_level"]["2"]["mean_tokens"], s["spearman_length_level"]
    (50.0, 20.0, 30.0, 1.0)
    >>> s["stated_plan_fraction"], s["stated_plan_rel_error_median"]
    (0.5, 0.5)
    """
    if not records:
        raise ValueError("no records to summarize")
    levels = sorted({int(r["level"]) for r in records})
    per_level = {}
    for lv in levels:
        rs = [r for r in records if int(r["level"]) == lv]
        per_level[str(lv)] = {
            "n": len(rs),
            "accuracy": 100.0 * sum(bool(r["correct"]) for r in rs) / len(rs),
            "mean_tokens": sum(r["n_tokens"] for r in rs) / len(rs),
        }
    out: dict[str, Any] = {
        "n": len(records),
        "accuracy": 100.0 * sum(bool(r["correct"]) for r in records) / len(records),
        "mean_tokens": sum(r["n_tokens"] for r in records) / len(records),
        "per_level": per_level,
        "spearman_length_level": spearman([r["n_tokens"] for r in records], [int(r["level"]) for r in records]),
        "truncated_fraction": sum(bool(r.get("truncated")) for r in records) / len(records),
    }
    given = [r for r in records if r.get("plan")]
    if given:
        rel = [abs(r["n_tokens"] - r["plan"]) / r["plan"] for r in given]
        out["adherence"] = {
            "n": len(rel),
            "median": statistics.median(rel),
            "p25": quantile(rel, 0.25),
            "p75": quantile(rel, 0.75),
            "p90": quantile(rel, 0.9),
            "within_10pct": sum(x <= 0.10 for x in rel) / len(rel),
            "within_25pct": sum(x <= 0.25 for x in rel) / len(rel),
        }
    stated = [r for r in records if r.get("stated_plan") is not None and not r.get("plan")]
    no_plan = [r for r in records if not r.get("plan")]
    if no_plan:
        out["stated_plan_fraction"] = len(stated) / len(no_plan)
        out["stated_plan_rel_error_median"] = (
            statistics.median(abs(r["n_tokens"] - r["stated_plan"]) / r["stated_plan"] for r in stated)
            if stated else None
        )
    return out


def level_plans(plans_path: str | Path, train_jsonl: str | Path, unsolved_length: int) -> dict[int, int]:
    """Plan per difficulty level for held-out problems (which stage 1 never saw): the median of the plans
    stage 2 trained with for the training problems of that level (rounded half up); a problem stage 1 never
    solved counts with ``unsolved_length``, as stage 2 gives it (``unsolved_policy=max_length``)."""
    from lapo_verl.plans import read_plans

    plans, unsolved, _doc = read_plans(str(plans_path))
    plans = {**plans, **{pid: int(unsolved_length) for pid in unsolved}}
    level_of = {}
    with open(train_jsonl, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            level_of[problem_id_of(row)] = int(row["level"])
    by_level: dict[int, list[int]] = {}
    for pid, n in plans.items():
        if pid in level_of:
            by_level.setdefault(level_of[pid], []).append(int(n))
    return {lv: int(statistics.median(ns) + 0.5) for lv, ns in sorted(by_level.items())}


def render(tok, problem: str, plan: int | None) -> list[int]:
    from lapo_verl.plan_text import prompt_with_plan
    from lapo_verl.verl_ext.agent_loop import retokenize

    text = tok.apply_chat_template(build_messages(problem), add_generation_prompt=True, tokenize=False)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if plan is not None:  # exactly as the stage-2 agent loop (lapo_plan_agent) builds its prompt ids
        ids = retokenize(tok, ids, prompt_with_plan(text, render_plan(plan, PLAN_TEMPLATE), "in_think"))
    return ids


def sample(model, tok, prompts: list[list[int]], *, max_new_tokens: int, temperature: float = 0.6,
           top_p: float = 0.95, seed: int = 0) -> list[list[int]]:
    """One sampled continuation per prompt (left-padded batch, float32, seeded): the generated ids, up to
    ``max_new_tokens`` (EOS included when reached; padding after it left as generated)."""
    import torch

    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, pr in enumerate(prompts):
        ids[i, width - len(pr):] = torch.tensor(pr)
        mask[i, width - len(pr):] = 1
    torch.manual_seed(seed)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=True,
                             temperature=temperature, top_p=top_p, top_k=0, eos_token_id=[tok.eos_token_id],
                             pad_token_id=tok.pad_token_id)
    return out[:, width:].tolist()


def evaluate(model_dir: str | Path, problems: list[dict], *, plans: dict[int, int] | None = None,
             max_new_tokens: int = 192, temperature: float = 0.6, top_p: float = 0.95, seed: int = 0,
             batch_size: int = 200, log=print) -> list[dict[str, Any]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lapo_verl.plan_text import find_plan
    from lapo_verl.grading import grade

    torch.set_num_threads(1)  # a shared 2-core box: extra threads spin against other jobs
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    eos = tok.eos_token_id
    records: list[dict[str, Any]] = []
    t0 = time.time()
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        prompts = [render(tok, p["problem"], plans.get(int(p["level"])) if plans else None) for p in chunk]
        rows = sample(model, tok, prompts, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                      seed=seed * 1_000_003 + start)
        for p, pr, row in zip(chunk, prompts, rows):
            n, truncated = len(row), True
            if eos in row:
                n, truncated = row.index(eos) + 1, False
            gen = row[:n]
            text = tok.decode(gen, skip_special_tokens=False)
            g = grade(text, p["answer"], truncated=truncated, reasoning_prefilled=True)
            stated, _ = find_plan(text)
            plan = plans.get(int(p["level"])) if plans else None
            records.append({"problem_id": problem_id_of(p), "level": int(p["level"]), "answer": p["answer"],
                            "extracted": g.extracted, "correct": bool(g.correct), "n_tokens": n,
                            "truncated": truncated, "plan": plan, "stated_plan": stated, "response": text})
        log(f"[eval] {Path(model_dir).name}: {len(records)}/{len(problems)} samples ({time.time() - t0:.0f} s)")
    return records


def parse_job(spec: str) -> tuple[str, str, str | None]:
    """``NAME=MODEL`` or ``NAME=MODEL,PLANS`` (one ``--job``) -> (name, model, plans or None).

    >>> parse_job("lapo_i_plan=runs/m,runs/plans.json"), parse_job("base=runs/base")
    (('lapo_i_plan', 'runs/m', 'runs/plans.json'), ('base', 'runs/base', None))
    """
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"--job {spec!r}: expected NAME=MODEL or NAME=MODEL,PLANS")
    model, _, plans = rest.partition(",")
    return name, model, plans or None


def evaluate_to(out: Path, model: str, problems: list[dict], *, data: Path, plans_path: str | None,
                max_new_tokens: int, seed: int) -> dict[str, Any]:
    """One model on the held-out problems -> ``<out>.jsonl`` (samples) and ``<out>.json`` (summary)."""
    t0 = time.time()
    plans = level_plans(plans_path, data / "train.jsonl", max_new_tokens) if plans_path else None
    records = evaluate(model, problems, plans=plans, max_new_tokens=max_new_tokens, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".jsonl"), "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    summary = summarize(records)
    summary["model"] = str(model)
    summary["level_plans"] = plans
    summary["seconds"] = round(time.time() - t0, 1)
    # the summary last: its presence means this evaluation finished (recipes/cpu_replica.sh marks it done)
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1))
    print(f"[eval] {out.name}: accuracy {summary['accuracy']:.1f}%  mean tokens {summary['mean_tokens']:.1f}  "
          f"spearman {summary['spearman_length_level']}  ({summary['seconds']} s)", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    from lapo_verl.replica.data import load_eval

    ap = argparse.ArgumentParser(
        prog="python -m lapo_verl.replica.evaluate",
        description="evaluate models on the replica's held-out set: one (--model, --out) or several in one "
                    "process (--job ..., --out-dir), which pays the imports once")
    ap.add_argument("--model")
    ap.add_argument("--out", help="output stem: <out>.jsonl and <out>.json")
    ap.add_argument("--plans", help="stage-1 plans file: give each problem its level's plan in the prompt")
    ap.add_argument("--job", action="append", default=[], metavar="NAME=MODEL[,PLANS]",
                    help="a model to evaluate (repeatable), written to <out-dir>/NAME.json(l); PLANS as --plans")
    ap.add_argument("--out-dir", help="where --job results go")
    ap.add_argument("--data", required=True, help="directory written by lapo_verl.replica.data (eval.jsonl)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if bool(args.job) == bool(args.model):
        ap.error("give either --model (with --out) or one or more --job (with --out-dir)")
    if args.model and not args.out:
        ap.error("--model needs --out")
    if args.job and (not args.out_dir or args.plans):
        ap.error("--job needs --out-dir, and takes its plans file inside the job (NAME=MODEL,PLANS), not --plans")
    try:
        jobs = [parse_job(j) for j in args.job] if args.job else [(None, args.model, args.plans)]
    except ValueError as err:
        ap.error(str(err))
    data = Path(args.data)
    problems = load_eval(data / "eval.jsonl")
    if args.limit:
        # keep every level: take the first problems in order (levels cycle 2..7)
        problems = problems[: args.limit]
    for name, model, plans_path in jobs:
        out = Path(args.out) if name is None else Path(args.out_dir) / name
        evaluate_to(out, model, problems, data=data, plans_path=plans_path, max_new_tokens=args.max_new_tokens,
                    seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
