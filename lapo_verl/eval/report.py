"""``lapo-verl report``: results directories -> the paper's table (Markdown + CSV) and a frontier plot.

Every number is recomputed from the runs' ``samples/<bench>.jsonl`` (not read from summary.json),
so the table always matches the audited per-sample files.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from lapo_verl.eval import benchmarks as bm
from lapo_verl.eval.published import published_rows
from lapo_verl.eval.runner import EvalError, load_manifest, summarize_dir

__all__ = ["main", "collect_rows", "render_markdown", "write_csv", "plot_frontier"]


class ReportError(EvalError):
    pass


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _tok(x: float | None) -> str:
    return "–" if x is None else f"{x:.0f}"


def _rel(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1f}%"


def collect_rows(
    dirs: list[str], names: list[str] | None = None, *, allow_mismatch: bool = False, allow_incomplete: bool = False
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """(benchmarks, one row per results dir, warnings). Checks that the runs are comparable."""
    if names is not None and len(names) != len(dirs):
        raise ReportError(f"--names has {len(names)} names for {len(dirs)} results dirs")
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    ref: dict[str, Any] | None = None
    ref_dir = None
    for i, d in enumerate(dirs):
        manifest = load_manifest(d)
        summary = summarize_dir(d)
        if ref is None:
            ref, ref_dir = manifest, d
        else:
            problems: list[str] = []
            if list(manifest["benchmarks"]) != list(ref["benchmarks"]):
                problems.append(f"benchmarks {manifest['benchmarks']} vs {ref['benchmarks']}")
            else:
                diff = [b for b in ref["benchmarks"] if manifest["problems"][b] != ref["problems"][b]]
                if diff:
                    problems.append(f"different problem sets for {', '.join(diff)}")
            if problems:
                msg = f"{d} is not comparable with {ref_dir}: " + "; ".join(problems)
                if not allow_mismatch:
                    raise ReportError(msg + " (use --allow-mismatch to report anyway)")
                warnings.append(msg)
            for key in ("samples", "sampling", "prompt_style"):
                if manifest.get(key) != ref.get(key):
                    warnings.append(f"{d}: {key} differs from {ref_dir}: {manifest.get(key)} vs {ref.get(key)}")
        if not summary["complete"]:
            missing = [
                f"{b} {m['n_problems']}/{m['expected_problems']}"
                for b, m in summary["benchmarks"].items()
                if not m["complete"]
            ]
            msg = f"{d} is an incomplete run ({', '.join(missing)} problems finished); finish it with the same `lapo-verl eval` command"
            if not allow_incomplete:
                raise ReportError(msg + " or pass --allow-incomplete")
            warnings.append(msg)
        per = summary["benchmarks"]
        if allow_mismatch and ref is not manifest:
            per = {b: per.get(b, {"pass@1": None, "avg_tokens": None}) for b in ref["benchmarks"]}
        rows.append(
            {
                "model": names[i] if names else summary["name"],
                "kind": "run",
                "dir": str(d),
                "benchmarks": {b: (m.get("pass@1"), m.get("avg_tokens")) for b, m in per.items()},
                "average": (summary["average"]["pass@1"], summary["average"]["avg_tokens"]),
                "plan": {b: m.get("plan") for b, m in per.items()},
                "samples": manifest["samples"],
                "max_new_tokens": manifest["sampling"]["max_new_tokens"],
                "prompt_style": manifest["prompt_style"],
                "complete": summary["complete"],
            }
        )
    assert ref is not None
    return list(ref["benchmarks"]), rows, warnings


def published_as_rows(table: str, benches: list[str]) -> list[dict[str, Any]]:
    rows = []
    for model, cells in published_rows(table).items():
        per = {b: (cells[b][0] / 100.0, float(cells[b][1])) for b in benches if b in cells}
        if len(per) != len(benches):
            continue
        if benches == list(bm.DEFAULT_BENCHMARKS):
            avg = (cells["average"][0] / 100.0, float(cells["average"][1]))  # as printed in the paper
        else:  # same unweighted mean, over the benchmarks shown
            avg = (sum(v[0] for v in per.values()) / len(per), sum(v[1] for v in per.values()) / len(per))
        rows.append({"model": f"{model} (paper)", "kind": "published", "benchmarks": per, "average": avg, "plan": {}})
    return rows


def _add_relative(rows: list[dict[str, Any]], base_row: dict[str, Any] | None) -> None:
    base_tok = base_row["average"][1] if base_row else None
    for r in rows:
        tok = r["average"][1]
        r["rel_tokens_pct"] = None if (tok is None or not base_tok) else 100.0 * (tok / base_tok - 1.0)


def _find_base(rows: list[dict[str, Any]], base: str | None) -> dict[str, Any]:
    if base is None:
        return rows[0]
    for r in rows:
        if r["model"] == base or (r.get("dir") and Path(r["dir"]).resolve() == Path(base).resolve()):
            return r
    raise ReportError(f"--base {base!r} is not one of the rows: {', '.join(r['model'] for r in rows)}")


def render_markdown(
    benches: list[str],
    rows: list[dict[str, Any]],
    base_name: str,
    published: list[dict[str, Any]] | None = None,
    published_name: str | None = None,
    title: str | None = None,
    warnings: list[str] | None = None,
) -> str:
    disp = [bm.get_spec(b).display for b in benches]
    header = ["Model"]
    for d in disp:
        header += [f"{d} Pass@1", f"{d} #Tok"]
    header += ["Avg Pass@1", "Avg #Tok"]

    def table(rs: list[dict[str, Any]], base_label: str) -> list[str]:
        cols = header + [f"#Tok vs {base_label}"]
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
        for r in rs:
            cells = [r["model"].replace("|", "\\|")]
            for b in benches:
                acc, tok = r["benchmarks"].get(b, (None, None))
                cells += [_pct(acc), _tok(tok)]
            cells += [_pct(r["average"][0]), _tok(r["average"][1]), _rel(r.get("rel_tokens_pct"))]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    out: list[str] = []
    if title:
        out += [f"## {title}", ""]
    out += table(rows, base_name)
    samples = "; ".join(
        sorted({", ".join(f"{bm.get_spec(b).display} x{n}" for b, n in r["samples"].items()) for r in rows})
    )
    out += [
        "",
        f"Pass@1 in %, averaged over samples ({samples} samples per problem); #Tok = mean generated tokens "
        f"per response; averages are unweighted over the {len(benches)} benchmarks; last column: relative change "
        f"of the average #Tok vs `{base_name}`.",
    ]
    plan_rows = [r for r in rows if any(p and p.get("n_stated") for p in r["plan"].values())]
    if plan_rows:
        out += ["", "Self-stated plans (LAPO-I is evaluated with no plan given; the plan sentence found in its output):", ""]
        out += ["| Model | Benchmark | stated | at start | mean abs(actual - stated) | median | mean (actual - stated) |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in plan_rows:
            for b in benches:
                p = r["plan"].get(b) or {}
                if not p:
                    continue
                out.append(
                    f"| {r['model']} | {bm.get_spec(b).display} | {_pct(p.get('stated_frac'))}% | {_pct(p.get('at_start_frac'))}% | "
                    f"{_tok(p.get('mean_abs_err'))} | {_tok(p.get('median_abs_err'))} | {_tok(p.get('mean_signed_err'))} |"
                )
    if published:
        out += ["", f"Published (LAPO paper, {published_name} base; not measured here):", ""]
        out += table(published, "base (paper)")
    if warnings:
        out += ["", "Warnings:", ""] + [f"- {w}" for w in warnings]
    return "\n".join(out) + "\n"


def write_csv(path: str | Path, benches: list[str], rows: list[dict[str, Any]]) -> None:
    fields = ["model", "kind"]
    for b in benches:
        fields += [f"{b}_pass@1", f"{b}_tokens"]
    fields += ["avg_pass@1", "avg_tokens", "rel_tokens_pct", "plan_stated_frac", "plan_mean_abs_err", "results_dir"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            rec: dict[str, Any] = {"model": r["model"], "kind": r["kind"], "results_dir": r.get("dir", "")}
            for b in benches:
                acc, tok = r["benchmarks"].get(b, (None, None))
                rec[f"{b}_pass@1"] = "" if acc is None else round(100 * acc, 4)
                rec[f"{b}_tokens"] = "" if tok is None else round(tok, 2)
            rec["avg_pass@1"] = "" if r["average"][0] is None else round(100 * r["average"][0], 4)
            rec["avg_tokens"] = "" if r["average"][1] is None else round(r["average"][1], 2)
            rec["rel_tokens_pct"] = "" if r.get("rel_tokens_pct") is None else round(r["rel_tokens_pct"], 3)
            plans = [p for p in r.get("plan", {}).values() if p]
            if plans:
                n = sum(p.get("n_stated", 0) for p in plans)
                rec["plan_stated_frac"] = round(sum(p["stated_frac"] for p in plans) / len(plans), 4)
                errs = [p["mean_abs_err"] * p["n_stated"] for p in plans if p.get("mean_abs_err") is not None]
                rec["plan_mean_abs_err"] = round(sum(errs) / n, 2) if n else ""
            w.writerow(rec)


def plot_frontier(
    path: str | Path, rows: list[dict[str, Any]], published: list[dict[str, Any]] | None = None, title: str | None = None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    offsets = [(6, 5), (6, -13), (6, 15), (6, -23)]
    pts = [r for r in rows if r["average"][0] is not None and r["average"][1] is not None]
    for i, r in enumerate(pts):
        x, y = r["average"][1], 100 * r["average"][0]
        ax.scatter([x], [y], s=60, zorder=3, label=r["model"])
        ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=offsets[i % 4], fontsize=8)
    if published:
        xs = [r["average"][1] for r in published]
        ys = [100 * r["average"][0] for r in published]
        ax.scatter(xs, ys, s=50, facecolors="none", edgecolors="grey", marker="s", zorder=2, label="published (paper)")
        for i, (r, x, y) in enumerate(zip(published, xs, ys)):
            ax.annotate(r["model"].replace(" (paper)", ""), (x, y), textcoords="offset points",
                        xytext=offsets[i % 4], fontsize=7, color="grey")
    if pts or published:
        ax.legend(loc="lower right", fontsize=8)
    xs_all = [r["average"][1] for r in pts] + [r["average"][1] for r in (published or [])]
    ys_all = [100 * r["average"][0] for r in pts] + [100 * r["average"][0] for r in (published or [])]
    if xs_all:
        if published:  # tokens from 0 when the paper's rows are shown
            ax.set_xlim(0, max(xs_all) * 1.18 or 1)
        else:  # a window around the runs, at least 10% of the largest value wide
            span = max(max(xs_all) - min(xs_all), 0.1 * max(xs_all), 1.0)
            ax.set_xlim(max(0.0, min(xs_all) - 0.25 * span), max(xs_all) + 0.35 * span)
        lo, hi = max(0.0, min(ys_all) - 5), min(100.0, max(ys_all) + 5)  # Pass@1 in [0, 100], >= 10 points
        if hi - lo < 10:
            lo, hi = (max(0.0, hi - 10), hi) if hi >= 10 else (0.0, 10.0)
        ax.set_ylim(lo - 0.02 * (hi - lo), hi)
    ax.set_xlabel("average #tokens per response")
    ax.set_ylabel("average Pass@1 (%)")
    ax.set_title(title or "Accuracy vs. tokens (up and to the left is better)", fontsize=10)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lapo-verl report",
        description="Results dirs of `lapo-verl eval` -> the paper's table (Markdown + CSV) and an accuracy-vs-tokens plot.",
        epilog="example: lapo-verl report results/base results/lapo_d results/lapo_i --out table.md --plot frontier.png "
        "--base base --published deepscaler",
    )
    p.add_argument("results", nargs="+", help="results directories (one table row each)")
    p.add_argument("--out", required=True, help="Markdown table path")
    p.add_argument("--csv", default=None, help="CSV path (default: --out with .csv)")
    p.add_argument("--plot", default=None, help="frontier plot PNG path (optional)")
    p.add_argument("--base", default=None, help="row name (or results dir) for the relative token change (default: first)")
    p.add_argument("--names", default=None, help="comma-separated row names (default: each run's --name / folder name)")
    p.add_argument("--published", default=None, choices=["deepscaler", "r1-distill"],
                   help="add the paper's published rows for this base model (table section and plot overlay)")
    p.add_argument("--title", default=None)
    p.add_argument("--allow-mismatch", action="store_true", help="report runs made on different benchmark/problem sets")
    p.add_argument("--allow-incomplete", action="store_true", help="report unfinished runs (on the problems finished)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        names = [n.strip() for n in args.names.split(",")] if args.names else None
        benches, rows, warnings = collect_rows(
            args.results, names, allow_mismatch=args.allow_mismatch, allow_incomplete=args.allow_incomplete
        )
        base_row = _find_base(rows, args.base)
        _add_relative(rows, base_row)
        pub = None
        if args.published:
            pub = published_as_rows(args.published, benches)
            _add_relative(pub, next((r for r in pub if r["model"].startswith("base ")), None))
        md = render_markdown(benches, rows, base_row["model"], pub, args.published, args.title, warnings)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md, encoding="utf-8")
        csv_path = args.csv or str(Path(args.out).with_suffix(".csv"))
        write_csv(csv_path, benches, rows + (pub or []))
        if args.plot:
            Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
            plot_frontier(args.plot, rows, pub, args.title)
    except (EvalError, ValueError, KeyError) as e:
        print(f"lapo-verl report: error: {e}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(md, end="")
    print(f"wrote {args.out}, {csv_path}" + (f", {args.plot}" if args.plot else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
