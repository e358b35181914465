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
    incomplete = incomplete_all = total_visits = 0
    for problem_id, visits in sorted(group_visits(records).items()):
        usable = [v for v in visits if include_incomplete or v.complete]
        incomplete += len(visits) - len(usable)
        incomplete_all += sum(1 for v in visits if not v.complete)
        total_visits += len(visits)
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
        "summary": {**summarize(plans, unsolved, records, incomplete), "visits": total_visits,
                    "incomplete_visits": incomplete_all},
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
    """A plans file that cannot be used; the message names the file and the offending entries."""


#: bad entries named in one :class:`PlansFileError`
MAX_REPORTED = 10


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
    bad: list[str] = []  # every bad entry, so one run of the preflight names them all
    for problem_id, value in doc["plans"].items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            bad.append(f"plans[{problem_id!r}] = {value!r} is not an integer token count")
        elif float(value) != int(value) or int(value) <= 0:
            bad.append(f"plans[{problem_id!r}] = {value!r} must be a positive integer")
        else:
            plans[str(problem_id)] = int(value)
    raw_unsolved = doc.get("unsolved", [])
    if not isinstance(raw_unsolved, list):
        bad.append(f"'unsolved' = {raw_unsolved!r} is not a list of problem ids")
        raw_unsolved = []
    unsolved = {str(u) for u in raw_unsolved}
    both = unsolved & plans.keys()
    if both:
        bad.append(f"ids both planned and unsolved: {sorted(both)[:5]}")
    if bad:
        more = f" (and {len(bad) - MAX_REPORTED} more)" if len(bad) > MAX_REPORTED else ""
        raise PlansFileError(f"{path}: {len(bad)} bad entr{'y' if len(bad) == 1 else 'ies'}: "
                             + "; ".join(bad[:MAX_REPORTED]) + more + "; rebuild it with `lapo-verl plans`")
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


#: ``lapo-verl plans`` fails when more than this fraction of visits is incomplete or of records is missing
MAX_INCOMPLETE_FRAC = 0.02


def expected_records(records_dir: str, max_step: int | None = None) -> dict[int, int] | None:
    """Records the trainer wrote per step (``{"event": "step", ...}`` lines of ``events.jsonl``, the latest per
    step, so a redone step counts once); None for directories written before the trainer logged them."""
    from lapo_verl.records import read_events

    per_step: dict[int, int] = {}
    for event in read_events(records_dir):
        if event.get("event") == "step" and (max_step is None or int(event["step"]) <= max_step):
            per_step[int(event["step"])] = int(event.get("expected", event.get("records", 0)))
    return per_step or None


def completeness_failure(summary: dict, n_records: int, expected: dict[int, int] | None, max_frac: float) -> str | None:
    """Why the records are too incomplete to plan from (cause and counts), or None.

    >>> completeness_failure({"visits": 100, "incomplete_visits": 40}, 700, None, 0.02)[:36]
    'incomplete visits: 40 of 100 (40.0%)'
    """
    problems = []
    visits, incomplete = int(summary.get("visits", 0)), int(summary.get("incomplete_visits", 0))
    if visits and incomplete / visits > max_frac:
        problems.append(f"incomplete visits: {incomplete} of {visits} ({100 * incomplete / visits:.1f}%) GRPO groups "
                        "have fewer records than their group size (records written on several nodes without a "
                        "shared disk, or by an older lapo-verl whose reward workers wrote them?)")
    if expected:
        want = sum(expected.values())
        missing = max(0, want - n_records)
        if want and missing / want > max_frac:
            problems.append(f"missing records: {n_records} read, the trainer logged {want} for steps "
                            f"{min(expected)}..{max(expected)} ({missing} missing, {100 * missing / want:.1f}%)")
    return "; ".join(problems) or None


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
    parser.add_argument("--max-incomplete-frac", type=float, default=MAX_INCOMPLETE_FRAC,
                        help="fail (exit 3, no plans file) when more than this fraction of the visits are incomplete "
                             "or of the records the trainer logged per step are missing (default: "
                             f"{MAX_INCOMPLETE_FRAC}); 1 accepts anything")
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
    s = doc["summary"]
    expected = None if os.path.isfile(source) else expected_records(source, args.max_step)
    failure = completeness_failure(s, len(records), expected, args.max_incomplete_frac)
    if failure:
        print(f"lapo-verl plans: {failure}\n  no plans file written (--max-incomplete-frac "
              f"{args.max_incomplete_frac:g}; --max-incomplete-frac 1 accepts these records)", file=sys.stderr)
        return 3
    write_plans(doc, args.out)
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

