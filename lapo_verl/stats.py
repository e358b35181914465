"""``lapo-verl stats``: per-step reward components of a run, from its length records.

During training the recipes log these numbers to verl's tracker (``lapo/...``, see
:mod:`lapo_verl.step_metrics`); after the fact, the per-response parts (correctness, length, the stage-2 plan
and its bonus, grading outcomes) are in LAPO's records, and the stage-1 band bonus (computed per group in the
advantage step) is in ``<run>/lapo_metrics.jsonl``. This command puts them side by side, one row per step.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

import numpy as np

from lapo_verl.plans import records_dir_of_run
from lapo_verl.records import LengthRecord, load_records


def step_table(records: list[LengthRecord]) -> list[dict]:
    by_step: dict[int, list[LengthRecord]] = defaultdict(list)
    for rec in records:
        by_step[rec.step].append(rec)
    rows = []
    for step in sorted(by_step):
        recs = by_step[step]
        lengths = np.array([r.response_length for r in recs], dtype=float)
        ok = np.array([r.correct for r in recs])
        why = [r.grade_reason or "" for r in recs]
        row = {
            "step": step,
            "responses": len(recs),
            "accuracy": float(ok.mean()),
            "length_mean": float(lengths.mean()),
            "length_mean_correct": float(lengths[ok].mean()) if ok.any() else float("nan"),
            "no_answer_rate": float(np.mean([w in ("no_answer", "truncated") for w in why])),
            "timeout_rate": float(np.mean([w == "timeout" for w in why])),
        }
        planned = [r for r in recs if r.plan is not None]
        plans = np.array([r.plan for r in planned], dtype=float)
        if plans.size:
            err = np.abs(np.array([r.response_length for r in planned], dtype=float) - plans)
            row["plan_abs_error_p50"] = float(np.median(err))
            row["plan_abs_error_p90"] = float(np.quantile(err, 0.9))
            row["plan_bonus_mean_correct"] = float(np.mean([r.plan_closeness or 0.0 for r in planned if r.correct]
                                                           or [0.0]))
        rows.append(row)
    return rows


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lapo-verl stats",
        description="Per-step accuracy, lengths, plan errors and grading outcomes of a LAPO run (from its records).",
        epilog="example: lapo-verl stats --run runs/lapo/lapo/stage1-1a2b3c4d",
    )
    parser.add_argument("--run", required=True, help="a run directory (lapo.run_dir) or its records/ folder")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    args = parser.parse_args(argv)
    try:
        records, report = load_records(records_dir_of_run(args.run))
    except FileNotFoundError as exc:
        print(f"lapo-verl stats: {exc}", file=sys.stderr)
        return 2
    rows = step_table(records)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        print("  ".join(keys))
        for row in rows:
            print("  ".join(_fmt(row.get(k, "")) for k in keys))
    bonus_path = os.path.join(args.run, "lapo_metrics.jsonl")
    if os.path.exists(bonus_path) and not args.json:
        # written by the lapo_stage1 advantage estimator, once per advantage call (= training step)
        print(f"\nstage-1 band bonus per advantage call ({bonus_path}):")
        for line in open(bonus_path, encoding="utf-8"):
            entry = json.loads(line)
            print(f"  call {entry['call']}: bonus_mean_correct={entry['lapo/stage1/bonus_mean_correct']:.3f} "
                  f"in_band_frac_correct={entry['lapo/stage1/in_band_frac_correct']:.3f} "
                  f"groups_with_correct={entry['lapo/stage1/groups_with_correct']}/{entry['lapo/stage1/groups']}")
    if report.corrupt or report.rolled_back:
        print(f"({report.corrupt} corrupt lines skipped, {report.rolled_back} records of redone steps ignored)")
    return 0
