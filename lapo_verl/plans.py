"""Plans: stage-1 records -> ``{problem id: planned tokens}``, and the plans file format.

Rule (paper Sec. 3.2, and the authors' code): M(q) is updated at every visit, and a problem whose
**latest visit** had no correct response gets the maximum length. So by default (``--visit-rule latest``)
a problem's plan is the plan statistic (median by default) of the correct lengths of its latest visit, and
a problem whose latest visit had no correct response is listed as ``unsolved`` (stage 2 applies
``lapo.stage2.unsolved_policy`` to it: the paper's maximum length by default). ``--visit-rule
latest_solved`` is a documented deviation: the latest visit with at least one correct response counts, so
a problem keeps its plan when a later visit failed.

Plans file (JSON)::

    {"format": "lapo-plans/1", "statistic": "median", "visit_rule": "latest",
     "plans": {"<problem id>": 734, ...}, "unsolved": ["<problem id>", ...],
     "summary": {...}, "source": {...}}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from lapo_verl.jsonl import atomic_write_json
from lapo_verl.records import LengthRecord, load_records, load_snapshot
from lapo_verl.rewards import PLAN_STATISTICS, plan_statistic

PLANS_FORMAT = "lapo-plans/1"
VISIT_RULES = ("latest", "latest_solved")  # the first is the default (paper)


@dataclass(frozen=True)
class Visit:
    """One GRPO group of one problem at one step."""

    step: int
    time: float
    lengths: tuple[int, ...]
    correct: tuple[bool, ...]
    expected: int | None

    @property
    def correct_lengths(self) -> list[int]:
        return [n for n, ok in zip(self.lengths, self.correct, strict=True) if ok]

    @property
    def complete(self) -> bool:
        return self.expected is None or len(self.lengths) >= self.expected


def group_visits(records: list[LengthRecord]) -> dict[str, list[Visit]]:
    """Group records into visits keyed by problem id, ordered by step then time.

    A visit is identified by (problem id, step, uid); records without a uid fall back to (problem, step).
    """
    buckets: dict[tuple[str, int, str], list[LengthRecord]] = defaultdict(list)
    for rec in records:
        buckets[(rec.problem_id, rec.step, rec.group_uid)].append(rec)
    visits: dict[str, list[Visit]] = defaultdict(list)
    for (problem_id, step, _), recs in buckets.items():
        visits[problem_id].append(
            Visit(
                step=step,
                time=max(r.time for r in recs),
                lengths=tuple(r.response_length for r in recs),
                correct=tuple(r.correct for r in recs),
                expected=recs[0].group_size,
            )
        )
    for problem_id in visits:
        visits[problem_id].sort(key=lambda v: (v.step, v.time))
    return visits


def build_plans(
    records: list[LengthRecord],
    *,
    statistic: str = "median",
    visit_rule: str = "latest",
    include_incomplete: bool = False,
) -> dict:
    """Compute the plans dict (the file's content without ``source``) from committed records."""
    if statistic not in PLAN_STATISTICS:
        raise ValueError(f"statistic must be one of {PLAN_STATISTICS}, got {statistic!r}")
    if visit_rule not in VISIT_RULES:
        raise ValueError(f"visit_rule must be one of {VISIT_RULES}, got {visit_rule!r}")
    plans: dict[str, int] = {}
    unsolved: list[str] = []
    incomplete = 0
    for problem_id, visits in sorted(group_visits(records).items()):
        usable = [v for v in visits if include_incomplete or v.complete]
        incomplete += len(visits) - len(usable)
        if visit_rule == "latest":
            chosen = usable[-1:] if usable else []
            chosen = [v for v in chosen if v.correct_lengths]
        else:
            chosen = [v for v in usable if v.correct_lengths][-1:]
        if chosen:
            plans[problem_id] = plan_statistic(chosen[0].correct_lengths, statistic)
        else:
            unsolved.append(problem_id)
    return {
        "format": PLANS_FORMAT,
        "statistic": statistic,
        "visit_rule": visit_rule,
        "plans": plans,
        "unsolved": unsolved,
        "summary": summarize(plans, unsolved, records, incomplete),
    }


def summarize(plans: dict[str, int], unsolved: list[str], records: list[LengthRecord], incomplete_visits: int) -> dict:
    values = np.asarray(list(plans.values()), dtype=np.float64)
    quantiles = {}
    if values.size:
        for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
            quantiles[f"p{int(q * 100)}"] = float(np.quantile(values, q))
    steps = [r.step for r in records]
    return {
        "problems": len(plans) + len(unsolved),
        "solved": len(plans),
        "unsolved": len(unsolved),
        "records": len(records),
        "steps": [min(steps), max(steps)] if steps else [],
        "incomplete_visits_skipped": incomplete_visits,
        "plan_quantiles": quantiles,
        "plan_mean": float(values.mean()) if values.size else None,
    }


# --------------------------------------------------------------------------------------------
# Plans file I/O (shared with the stage-2 dataset)
# --------------------------------------------------------------------------------------------
class PlansFileError(ValueError):
    """A plans file that cannot be used; the message names the file and the offending entry."""


def _no_duplicate_keys(path: str):
    def hook(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise PlansFileError(f"{path}: duplicate problem id {key!r}; rebuild it with `lapo-verl plans`")
            seen.add(key)
        return dict(pairs)

    return hook


def read_plans(path: str) -> tuple[dict[str, int], set[str], dict]:
    """Load and validate a plans file. Returns ``(plans, unsolved, full document)``.

    Errors name the file and the problem id: not found, not JSON, wrong format, duplicate ids,
    a non-integer / non-positive length, an id both planned and unsolved.
    """
    if not os.path.isfile(path):
        raise PlansFileError(
            f"plans file {path!r} not found: build it from the stage-1 run with "
            "`lapo-verl plans --run <lapo.run_dir of stage 1> --out plans.json`, or set lapo.plans_path"
        )
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh, object_pairs_hook=_no_duplicate_keys(path))
    except PlansFileError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PlansFileError(f"{path}: not a readable JSON plans file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != PLANS_FORMAT or not isinstance(doc.get("plans"), dict):
        raise PlansFileError(f"{path}: not a {PLANS_FORMAT} file (missing 'format' or 'plans'); use `lapo-verl plans`")
    plans: dict[str, int] = {}
    for problem_id, value in doc["plans"].items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise PlansFileError(f"{path}: plans[{problem_id!r}] = {value!r} is not an integer token count")
        if float(value) != int(value) or int(value) <= 0:
            raise PlansFileError(f"{path}: plans[{problem_id!r}] = {value!r} must be a positive integer")
        plans[str(problem_id)] = int(value)
    unsolved = {str(u) for u in doc.get("unsolved", [])}
    both = unsolved & plans.keys()
    if both:
        raise PlansFileError(f"{path}: ids both planned and unsolved: {sorted(both)[:5]}")
    return plans, unsolved, doc


def write_plans(doc: dict, path: str) -> None:
    atomic_write_json(path, doc, indent=1)


def records_dir_of_run(run_dir: str) -> str:
    """``<run>/records`` if it exists, else ``run`` itself when it holds records files."""
    candidate = os.path.join(run_dir, "records")
    return candidate if os.path.isdir(candidate) else run_dir


def plot_histogram(plans: dict[str, int], path: str, title: str = "LAPO plans (stage-1 lengths)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(list(plans.values()), bins=min(50, max(5, len(plans) // 5)), color="#3b6ea8")
    ax.set_xlabel("planned tokens (per problem)")
    ax.set_ylabel("problems")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lapo-verl plans",
        description="Turn stage-1 length records into a plans file (problem id -> planned tokens).",
        epilog="example: lapo-verl plans --run runs/lapo/deepscaler_stage1 --out runs/lapo/plans.json --hist plans.png",
    )
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="stage-1 run directory (lapo.run_dir); its records/ folder is read")
    src.add_argument("--records", help="a records directory, or a checkpoint's lapo_records.jsonl snapshot")
    parser.add_argument("--out", required=True, help="where to write the plans JSON")
    parser.add_argument("--statistic", choices=PLAN_STATISTICS, default="median", help="plan statistic (default: median)")
    parser.add_argument("--visit-rule", choices=VISIT_RULES, default="latest",
                        help="latest (default, paper Sec. 3.2 and the authors' code: a problem whose latest visit "
                             "had no correct answer is unsolved -> maximum length in stage 2) or latest_solved "
                             "(the latest visit with a correct answer: keeps a plan when a later visit failed)")
    parser.add_argument("--max-step", type=int, default=None, help="ignore records after this global step")
    parser.add_argument("--include-incomplete", action="store_true",
                        help="use visits with fewer responses than the group size (e.g. cut by a crash)")
    parser.add_argument("--hist", default=None, help="also draw a histogram of the plans (PNG)")
    args = parser.parse_args(argv)

    if args.records and os.path.isfile(args.records):
        records, report = load_snapshot(args.records)
        source = os.path.abspath(args.records)
    else:
        source = os.path.abspath(args.records or records_dir_of_run(args.run))
        try:
            records, report = load_records(source, max_step=args.max_step)
        except FileNotFoundError as exc:
            print(f"lapo-verl plans: {exc}", file=sys.stderr)
            return 2
    if not records:
        print(f"lapo-verl plans: no records in {source}; did stage 1 run with lapo.records.enable=true?", file=sys.stderr)
        return 2
    doc = build_plans(records, statistic=args.statistic, visit_rule=args.visit_rule,
                      include_incomplete=args.include_incomplete)
    doc["source"] = {"records": source, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "load": report.as_dict()}
    write_plans(doc, args.out)
    s = doc["summary"]
    print(f"plans -> {args.out}")
    print(f"  problems {s['problems']}: solved {s['solved']}, unsolved {s['unsolved']} "
          f"(records {s['records']}, steps {s['steps']}, incomplete visits skipped {s['incomplete_visits_skipped']})")
    if report.corrupt or report.rolled_back:
        print(f"  skipped: {report.corrupt} corrupt lines, {report.rolled_back} records of redone steps (resume)")
        for example in report.corrupt_examples:
            print(f"    {example}")
    if s["plan_quantiles"]:
        q = s["plan_quantiles"]
        print("  plan tokens: " + ", ".join(f"{k}={v:.0f}" for k, v in q.items()))
    if args.hist:
        plot_histogram(doc["plans"], args.hist)
        print(f"  histogram -> {args.hist}")
    return 0

