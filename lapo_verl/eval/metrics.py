"""Metrics computed from per-sample records: Pass@1, mean tokens, self-stated plans.

Everything the report shows is recomputed from ``samples/<benchmark>.jsonl`` by
:func:`summarize_records`, so the table can always be traced back to the per-sample file.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any, Iterable

__all__ = ["plan_regex", "find_plan", "summarize_records", "average_row"]


# the plan-sentence parser lives with the rest of the plan text
from lapo_verl.plan_text import find_plan, plan_regex  # noqa: E402,F401


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarize_records(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Metrics for one benchmark from its per-sample records.

    Pass@1 is the mean over problems of the per-problem mean accuracy over its samples (equal to
    the mean over all samples when every problem has the same number of samples); ``avg_tokens``
    is the mean number of generated tokens per response.
    """
    by_problem: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_problem[str(r["problem_id"])].append(r)
    if not by_problem:
        return {"n_problems": 0, "n_samples": 0, "pass@1": None, "avg_tokens": None}
    per_problem_acc = [sum(bool(r["correct"]) for r in rs) / len(rs) for rs in by_problem.values()]
    all_recs = [r for rs in by_problem.values() for r in rs]
    tokens = [int(r["n_tokens"]) for r in all_recs]
    stated = [r for r in all_recs if r.get("stated_plan") is not None]
    abs_err = [abs(int(r["n_tokens"]) - int(r["stated_plan"])) for r in stated]
    signed = [int(r["n_tokens"]) - int(r["stated_plan"]) for r in stated]
    counts = sorted({len(rs) for rs in by_problem.values()})
    return {
        "n_problems": len(by_problem),
        "n_samples": len(all_recs),
        "samples_per_problem": counts[0] if len(counts) == 1 else counts,
        "pass@1": _mean(per_problem_acc),
        "avg_tokens": _mean([float(t) for t in tokens]),
        "median_tokens": statistics.median(tokens),
        "avg_tokens_correct": _mean([float(r["n_tokens"]) for r in all_recs if r["correct"]]),
        "truncated_frac": _mean([1.0 if r.get("truncated") else 0.0 for r in all_recs]),
        "no_answer_frac": _mean([1.0 if r.get("extracted") in (None, "") else 0.0 for r in all_recs]),
        "plan": {
            "stated_frac": len(stated) / len(all_recs),
            "at_start_frac": sum(bool(r.get("plan_at_start")) for r in all_recs) / len(all_recs),
            "n_stated": len(stated),
            "mean_abs_err": _mean([float(e) for e in abs_err]),
            "median_abs_err": statistics.median(abs_err) if abs_err else None,
            "mean_signed_err": _mean([float(e) for e in signed]),
            "mean_rel_abs_err": _mean(
                [abs(int(r["n_tokens"]) - int(r["stated_plan"])) / max(1, int(r["stated_plan"])) for r in stated]
            ),
        },
    }


def average_row(per_benchmark: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The paper's average column: the unweighted mean of the benchmarks' Pass@1 and #tokens."""
    accs = [m["pass@1"] for m in per_benchmark.values() if m.get("pass@1") is not None]
    toks = [m["avg_tokens"] for m in per_benchmark.values() if m.get("avg_tokens") is not None]
    stated = [m["plan"]["stated_frac"] for m in per_benchmark.values() if m.get("plan")]
    return {
        "pass@1": _mean(accs) if len(accs) == len(per_benchmark) else None,
        "avg_tokens": _mean(toks) if len(toks) == len(per_benchmark) else None,
        "plan_stated_frac": _mean(stated) if stated else None,
    }
