"""docs/results-cpu.md + docs/results-cpu.json + two plots from the replica's evaluation summaries."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODELS = ("base", "acc_only", "lapo_d", "lapo_i", "lapo_i_eq8", "lapo_i_plan", "lapo_i_eq8_plan", "base_plan")
LABELS = {"base": "base (warm-up)", "acc_only": "accuracy-only GRPO", "lapo_d": "LAPO-D (stage 1)",
          "lapo_i": "LAPO-I (stage 2, no plan)", "lapo_i_eq8": "LAPO-I Eq. 8 (no plan)",
          "lapo_i_plan": "LAPO-I, plans given", "lapo_i_eq8_plan": "LAPO-I Eq. 8, plans given",
          "base_plan": "base, same plans given (control)"}
# the base given plans must miss them by at least this (median |len - plan| / plan) for LAPO-I's adherence to
# count as stage 2's (docs/replica-design.md)
CONTROL_MIN_ERROR = 0.25


def mean_spread(xs: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and half the range (max - min) / 2 over seeds; ``None`` values are ignored.

    >>> mean_spread([1.0, 3.0])
    (2.0, 1.0)
    >>> mean_spread([None, 4.0])
    (4.0, 0.0)
    """
    ys = [x for x in xs if x is not None]
    if not ys:
        return None, None
    return sum(ys) / len(ys), (max(ys) - min(ys)) / 2


def fmt(m: float | None, s: float | None, digits: int = 1, seeds: int = 1) -> str:
    if m is None:
        return "-"
    return f"{m:.{digits}f}" + (f" ± {s:.{digits}f}" if seeds > 1 and s is not None else "")


def load(out: Path, seeds: list[int]) -> dict[int, dict[str, dict[str, Any]]]:
    res: dict[int, dict[str, dict[str, Any]]] = {}
    for seed in seeds:
        for m in MODELS:
            p = out / f"seed{seed}" / "eval" / f"{m}.json"
            if p.is_file():
                res.setdefault(seed, {})[m] = json.loads(p.read_text())
    return res


def targets(r: dict[str, dict[str, Any]]) -> list[tuple[str, bool | None, str]]:
    """The issue's targets for one seed: (target, met, numbers)."""
    out = []
    b, a, i, ip = (r.get(k) for k in ("base", "acc_only", "lapo_i", "lapo_i_plan"))
    if b and a and i:
        rb, ra = i["mean_tokens"] / b["mean_tokens"], i["mean_tokens"] / a["mean_tokens"]
        out.append(("LAPO-I mean tokens <= 0.6 x base", rb <= 0.6, f"ratio {rb:.2f}"))
        out.append(("LAPO-I mean tokens <= 0.8 x accuracy-only", ra <= 0.8, f"ratio {ra:.2f}"))
        db, da = i["accuracy"] - b["accuracy"], i["accuracy"] - a["accuracy"]
        out.append(("LAPO-I accuracy >= base - 2 points", db >= -2, f"{db:+.1f} points"))
        out.append(("LAPO-I accuracy >= accuracy-only - 2 points", da >= -2, f"{da:+.1f} points"))
        si, sb = i["spearman_length_level"], b["spearman_length_level"]
        ok = si is not None and si >= 0.8
        out.append(("Spearman(length, difficulty) of LAPO-I >= 0.8", ok, f"{si if si is None else round(si, 3)}"))
        ok2 = si is not None and sb is not None and si > sb
        out.append(("... and above the base model's", ok2,
                    f"{'-' if si is None else round(si, 3)} vs {'-' if sb is None else round(sb, 3)}"))
    if ip and "adherence" in ip:
        med = ip["adherence"]["median"]
        out.append(("plans given: median |len - plan| / plan <= 10%", med <= 0.10, f"{100 * med:.1f}%"))
    bp = r.get("base_plan")
    if bp and "adherence" in bp:
        med = bp["adherence"]["median"]
        out.append((f"... while the base with the same plans is >= {100 * CONTROL_MIN_ERROR:.0f}%",
                    med >= CONTROL_MIN_ERROR, f"{100 * med:.1f}%"))
    return out


# training log (recipes/lib.sh: <seed dir>/logs/<run name>.log) -> what it trained
TRAINING_RUNS = {"acc_only": "acc_only", "lapo_d": "lapo_stage1", "lapo_i": "lapo_stage2",
                 "lapo_i_eq8": "lapo_stage2 Eq. 8"}
CURVE_KEYS = {"score": "critic/score/mean", "length": "response_length/mean",
              "close": "lapo/stage2/closeness/frac_gt_0p1", "plan_err": "lapo/stage2/plan_abs_error/median"}


def training_curves(logs: Path) -> dict[str, list[dict[str, float]]]:
    """Per training run (:data:`TRAINING_RUNS`' labels): one dict per step with ``step`` and the
    :data:`CURVE_KEYS` found on that step's verl console line in ``logs/<run name>.log`` (a resumed run
    appends; a step seen twice keeps its last line)."""
    import re

    out: dict[str, list[dict[str, float]]] = {}
    for name, label in TRAINING_RUNS.items():
        log = logs / f"{name}.log"
        if not log.is_file():
            continue
        steps: dict[int, dict[str, float]] = {}
        for line in log.read_text(errors="replace").splitlines():
            m = re.search(r"step:(\d+) - ", line)
            if not m:
                continue
            row: dict[str, float] = {"step": int(m.group(1))}
            for key, metric in CURVE_KEYS.items():
                v = re.search(re.escape(metric) + r":([-\d.e]+)", line)
                if v:
                    row[key] = float(v.group(1))
            if "score" in row and "length" in row:
                steps[int(m.group(1))] = row
        if steps:
            out[label] = [steps[k] for k in sorted(steps)]
    return out


def step_seconds(logs: Path) -> dict[str, float]:
    """Seconds per finished pipeline step: recipes/lib.sh's ``lapo_step`` writes ``logs/<step>.seconds``."""
    times = {}
    for p in sorted(logs.glob("*.seconds")):
        try:
            times[p.stem] = float(p.read_text().strip())
        except ValueError:
            continue
    return times


def settings_value(out: Path, name: str) -> str | None:
    """A variable of ``<out>/settings.sh`` (written by :mod:`lapo_verl.replica.prepare`), or None."""
    import shlex

    path = out / "settings.sh"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.startswith(name + "="):
            return shlex.split(line.split("=", 1)[1])[0]
    return None


def sha256_file(path: Path) -> str | None:
    import hashlib

    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def provenance(out: Path) -> dict[str, Any]:
    """Where the results come from: the base model's and tokenizer's sha256, the CPU that built the base and
    the CPU that wrote this report, and the warm-up's wall time (a base built elsewhere is recognisable)."""
    import os

    from lapo_verl.replica.warmup import cpu_model

    base = settings_value(out, "REPLICA_BASE")
    doc: dict[str, Any] = {"cpu": cpu_model(), "cores": len(os.sched_getaffinity(0)), "base": base}
    if base:
        b = Path(base)
        doc["base_weights_sha256"] = sha256_file(b / "model.safetensors")
        doc["tokenizer_sha256"] = sha256_file(b / "tokenizer.json")
        build = b / "build.json"
        if build.is_file():
            doc["base_build"] = json.loads(build.read_text())
    return doc


def plan_movement(out: Path, seed: int) -> dict[str, Any] | None:
    """How the Eq. 8 arm moved the plans: per level, the median plan before stage 2 (unsolved = the cap, as
    stage 2 plans them) and after (``plans_updated.json`` of the run), the problems whose plan changed and the
    mean change over them. None when the arm has not run."""
    import statistics

    from lapo_verl.plans import read_plans
    from lapo_verl.replica.data import problem_id_of

    marker = out / f"seed{seed}" / ".done" / "train_lapo_i_eq8"
    initial_path = out / f"seed{seed}" / "plans.json"
    if not marker.is_file() or not initial_path.is_file():
        return None
    updated_path = Path(marker.read_text().strip()) / "plans_updated.json"
    data = settings_value(out, "REPLICA_DATA")
    cap = int(settings_value(out, "TINY_RESPONSE_LEN") or 0)
    if not updated_path.is_file() or not data:
        return None
    levels = {}
    with open(Path(data) / "train.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                levels[problem_id_of(row)] = int(row["level"])

    def planned(path: Path) -> dict[str, int]:
        plans, unsolved, _ = read_plans(str(path))
        return {**{pid: cap for pid in unsolved}, **plans}

    before, after = planned(initial_path), planned(updated_path)
    per_level: dict[str, dict[str, Any]] = {}
    for lv in sorted(set(levels.values())):
        ids = [pid for pid, level in levels.items() if level == lv and pid in before]
        changed = [pid for pid in ids if after.get(pid, before[pid]) != before[pid]]
        per_level[str(lv)] = {
            "median_before": statistics.median(before[pid] for pid in ids) if ids else None,
            "median_after": statistics.median(after.get(pid, before[pid]) for pid in ids) if ids else None,
            "changed": len(changed), "problems": len(ids),
            "mean_change": round(statistics.fmean(after[pid] - before[pid] for pid in changed), 1) if changed else 0.0,
        }
    return {"per_level": per_level, "changed": sum(v["changed"] for v in per_level.values()),
            "problems": sum(v["problems"] for v in per_level.values()), "updated_plans": str(updated_path)}


def eq8_section(out: Path, seeds: list[int]) -> list[str]:
    lines = ["", "## Eq. 8 arm: how the plans moved during stage 2", "",
             "Per level: median plan before -> after stage 2 (unsolved problems count as the cap, as stage 2 plans "
             "them), problems whose plan changed / problems, mean change of those.", ""]
    for s in seeds:
        mv = plan_movement(out, s)
        if mv is None:
            lines.append(f"- seed {s}: no Eq. 8 plans found")
            continue
        cells = [f"d={lv}: {v['median_before']} -> {v['median_after']} ({v['changed']}/{v['problems']}, "
                 f"{v['mean_change']:+.1f})" for lv, v in mv["per_level"].items()]
        lines.append(f"- seed {s}: {mv['changed']} of {mv['problems']} plans changed; " + "; ".join(cells))
    return lines


def git_commit() -> str:
    try:
        repo = Path(__file__).resolve().parent
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=repo).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=repo).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def plots(res: dict[int, dict[str, dict[str, Any]]], docs: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(res)
    names = []
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m in MODELS:
        acc = [res[s][m]["accuracy"] for s in seeds if m in res[s]]
        tok = [res[s][m]["mean_tokens"] for s in seeds if m in res[s]]
        if not acc:
            continue
        (am, asp), (tm, tsp) = mean_spread(acc), mean_spread(tok)
        ax.errorbar([tm], [am], xerr=[tsp], yerr=[asp], fmt="o", capsize=3, label=LABELS[m])
    ax.set_xlabel("mean tokens per response (held-out)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"accuracy vs length ({len(seeds)} seed{'s' if len(seeds) > 1 else ''})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(docs / "results-cpu-frontier.png", dpi=120)
    plt.close(fig)
    names.append("results-cpu-frontier.png")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for m in MODELS:
        per = [res[s][m]["per_level"] for s in seeds if m in res[s]]
        if not per:
            continue
        levels = sorted(per[0], key=int)
        ys = [mean_spread([p[lv]["mean_tokens"] for p in per])[0] for lv in levels]
        ax.plot([int(lv) for lv in levels], ys, marker="o", label=LABELS[m])
    ax.set_xlabel("difficulty (operations in the chain)")
    ax.set_ylabel("mean tokens per response")
    ax.set_title("length vs difficulty")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(docs / "results-cpu-length-by-level.png", dpi=120)
    plt.close(fig)
    names.append("results-cpu-length-by-level.png")
    return names


def write_report(out: Path, seeds: list[int], docs: Path, *, scale: str, wall_s: float, command: str) -> None:
    docs.mkdir(parents=True, exist_ok=True)
    res = load(out, seeds)
    incomplete = [s for s in seeds if s in res and set(res[s]) != set(MODELS)]
    seeds = [s for s in seeds if s in res and s not in incomplete]
    for s in incomplete:
        del res[s]
    ns = len(seeds)
    times = {}
    for s in seeds:
        times[s] = step_seconds(out / f"seed{s}" / "logs")
    commit = git_commit()
    lines = [
        "# LAPO CPU replica: results",
        "",
        "Generated by `lapo_verl/replica/report.py` (do not edit by hand). Design, frozen before training:",
        "[replica-design.md](replica-design.md).",
        "",
        f"- command: `{command}`",
        f"- commit: `{commit}`; scale: `{scale}`; seeds: {', '.join(map(str, seeds)) or 'none'}",
        f"- wall time of this invocation: {wall_s / 60:.1f} min (finished stages are skipped on re-runs; per-stage "
        "times below); written " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    ]
    prov = provenance(out)
    build = prov.get("base_build") or {}
    lines += [
        f"- machine of this report: {prov['cpu']}, {prov['cores']} cores",
        f"- base model: `{prov.get('base')}`; weights sha256 `{prov.get('base_weights_sha256')}`; tokenizer "
        f"sha256 `{prov.get('tokenizer_sha256')}`; built on {build.get('cpu', 'an unrecorded CPU')} "
        f"(warm-up {build.get('warmup_s', '-')} s, base check {build.get('check_s', '-')} s). A base model built on "
        "another CPU has other weights (floating point differs): compare these digests before comparing results.",
        "",
    ]
    if incomplete:
        lines += [f"Seeds left out because not every model was evaluated yet: {', '.join(map(str, incomplete))} "
                  "(re-run the same command to finish them).", ""]
    if not res:
        lines += ["No evaluation results yet."]
    else:
        lines += ["## Held-out accuracy and mean tokens",
                  "",
                  f"Mean over {ns} seed{'s' if ns > 1 else ''}" + (" ± half the range" if ns > 1 else "") +
                  "; cells are `accuracy % / mean tokens`; Spearman = rank correlation of length with difficulty "
                  "over all samples.", ""]
        levels = sorted(next(iter(res[seeds[0]].values()))["per_level"], key=int)
        lines.append("| model | " + " | ".join(f"d={lv}" for lv in levels) + " | overall acc % | mean tokens | Spearman |")
        lines.append("|---" * (len(levels) + 4) + "|")
        for m in MODELS:
            rs = [res[s][m] for s in seeds if m in res[s]]
            if not rs:
                continue
            cells = []
            for lv in levels:
                am, _ = mean_spread([r["per_level"][lv]["accuracy"] for r in rs])
                tm, _ = mean_spread([r["per_level"][lv]["mean_tokens"] for r in rs])
                cells.append(f"{am:.0f} / {tm:.0f}")
            acc = fmt(*mean_spread([r["accuracy"] for r in rs]), seeds=ns)
            tok = fmt(*mean_spread([r["mean_tokens"] for r in rs]), seeds=ns)
            sp = fmt(*mean_spread([r["spearman_length_level"] for r in rs]), digits=3, seeds=ns)
            lines.append(f"| {LABELS[m]} | " + " | ".join(cells) + f" | {acc} | {tok} | {sp} |")
        lines += ["", "![accuracy vs tokens](results-cpu-frontier.png) ![tokens vs difficulty](results-cpu-length-by-level.png)", ""]
        plots(res, docs)
        lines += ["## Plans", ""]
        for s in seeds:
            i = res[s].get("lapo_i")
            for key, who in (("lapo_i_plan", "LAPO-I"), ("lapo_i_eq8_plan", "LAPO-I Eq. 8"),
                             ("base_plan", "base (control: what the warm-up alone does)")):
                r = res[s].get(key)
                if r and "adherence" in r:
                    a = r["adherence"]
                    lines.append(f"- seed {s}, {who} with plans given (level plans {r.get('level_plans')}): "
                                 f"|len - plan| / plan median {100 * a['median']:.1f}%, p25 {100 * a['p25']:.1f}%, "
                                 f"p75 {100 * a['p75']:.1f}%, p90 {100 * a['p90']:.1f}%; within 10%: "
                                 f"{100 * a['within_10pct']:.0f}%, within 25%: {100 * a['within_25pct']:.0f}%")
            if i is not None:
                err = i.get("stated_plan_rel_error_median")
                lines.append(f"- seed {s}, LAPO-I without a plan states one itself in {100 * i.get('stated_plan_fraction', 0):.1f}% "
                             f"of outputs" + (f" (median |len - stated| / stated {100 * err:.1f}%)" if err is not None else ""))
        lines += ["", "## Targets (issues 13 and 22)", "", "| target | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---" * (ns + 1) + "|"]
        per_seed = {s: targets(res[s]) for s in seeds}
        names = [t[0] for t in per_seed[seeds[0]]]
        for k, name in enumerate(names):
            cells = []
            for s in seeds:
                t = per_seed[s][k] if k < len(per_seed[s]) else None
                cells.append("-" if t is None else f"{'met' if t[1] else 'MISSED'} ({t[2]})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "## Training curves (rollouts at T = 1.0, training problems)", "",
                  "Per step: mean score (accuracy-only and stage 1: accuracy; stage 2: accuracy + beta x R2, as verl "
                  "logs `critic/score/mean`) / mean response tokens.", ""]
        for s in seeds:
            curves = training_curves(out / f"seed{s}" / "logs")
            for arm in TRAINING_RUNS.values():
                cur = curves.get(arm)
                if cur:
                    lines.append(f"- seed {s} {arm}: " + ", ".join(f"{c['score']:.2f}/{c['length']:.0f}" for c in cur))
        lines += ["", "Stage 2, per step: the share of rollouts whose closeness term R2 is above 0.1 (the rollouts "
                  "that carry a plan signal; R2 = 0 for wrong answers) / median |len - plan| in tokens.", ""]
        for s in seeds:
            curves = training_curves(out / f"seed{s}" / "logs")
            for arm in ("lapo_stage2", "lapo_stage2 Eq. 8"):
                cur = [c for c in curves.get(arm, []) if "close" in c]
                if cur:
                    lines.append(f"- seed {s} {arm}: " + ", ".join(
                        f"{c['close']:.2f}/{c.get('plan_err', float('nan')):.0f}" for c in cur))
        lines += eq8_section(out, seeds)
        lines += ["", "## Stage times (s)", "", "| stage | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---" * (ns + 1) + "|"]
        stages = sorted({k for s in seeds for k in times[s]})
        for st in stages:
            lines.append(f"| {st} | " + " | ".join(str(times[s].get(st, "-")) for s in seeds) + " |")
        lines.append("| **sum (one seed, warm-up and data excluded)** | " +
                     " | ".join(f"{sum(times[s].values()) / 60:.1f} min" for s in seeds) + " |")
    check = out / "base_check.json"
    if check.is_file():
        bc = json.loads(check.read_text())
        lines += ["", "## Base model check (warm-up seed problems, never the held-out set; T = 0.6)", "",
                  "| d | accuracy % | first pass exact % | re-check pass exact % | mean re-checks | mean tokens | "
                  "true-length plan given: median rel. error | ... and accuracy % |", "|---" * 8 + "|"]
        for lv, r in sorted(bc["per_level"].items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {lv} | {r['accuracy']} | {r['first_pass_exact']} | {r['recheck_exact']} | "
                         f"{r['mean_rechecks']} | {r['mean_tokens']} | {r['plan_rel_error_median']} | "
                         f"{r.get('plan_accuracy', '-')} |")
    notes = docs / "results-cpu-notes.md"
    if notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    (docs / "results-cpu.md").write_text("\n".join(lines) + "\n")
    machine = {
        "command": command, "commit": commit, "scale": scale, "wall_s": round(wall_s, 1), "seeds": seeds,
        "per_seed": {str(s): {m: {k: v for k, v in r.items() if k != "model"} for m, r in res[s].items()} for s in seeds},
        "mean": {m: {k: mean_spread([res[s][m][k] for s in seeds if m in res[s]])
                     for k in ("accuracy", "mean_tokens", "spearman_length_level")}
                 for m in MODELS if any(m in res[s] for s in seeds)},
        "targets": {str(s): [{"target": t[0], "met": t[1], "value": t[2]} for t in targets(res[s])] for s in seeds},
        "stage_seconds": {str(s): times[s] for s in seeds},
        "provenance": prov,
        "eq8_plans": {str(s): plan_movement(out, s) for s in seeds},
    }
    (docs / "results-cpu.json").write_text(json.dumps(machine, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lapo_verl.replica.report",
        description="results-cpu.md / .json and two plots from the evaluations of recipes/cpu_replica.sh")
    ap.add_argument("--out", required=True, help="the replica's output directory (seed<S>/eval/*.json)")
    ap.add_argument("--seeds", required=True, help="comma-separated seeds to report")
    ap.add_argument("--docs", required=True, help="where results-cpu.md/.json and the plots go")
    ap.add_argument("--scale", required=True, help="the scale the runs used (for the record)")
    ap.add_argument("--wall-s", type=float, default=0.0, help="wall time of the invocation (for the record)")
    ap.add_argument("--command", default="bash recipes/cpu_replica.sh", help="the command (for the record)")
    args = ap.parse_args(argv)
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    write_report(Path(args.out), seeds, Path(args.docs), scale=args.scale, wall_s=args.wall_s, command=args.command)
    print(f"[replica] report: {Path(args.docs) / 'results-cpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
