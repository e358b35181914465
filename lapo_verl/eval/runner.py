"""Resumable evaluation runs: generate, grade, count, write per-sample JSONL, summarise.

Results directory layout::

    <out>/run.json                 what was run (model, benchmarks, samples, sampling, prompt style,
                                   data origin, problem-set fingerprints, versions)
    <out>/problems/<bench>.jsonl   the problems used: {id, problem, answer, source, prompt, prompt_tokens}
    <out>/samples/<bench>.jsonl    one line per sample (see SAMPLE_FIELDS); all samples of one
                                   problem are appended in one write + flush + fsync
    <out>/summary.json             metrics recomputed from samples/ (written at the end of the run)

Resuming: a problem is finished when its ``n`` samples are in ``samples/<bench>.jsonl``; finished
problems are skipped. A torn last line (run killed mid-write) and samples of unfinished problems
are dropped before appending. A directory made with a different model, benchmark set, samples,
sampling, prompt style or problem set is refused unless ``force=True`` (then the old files are
moved to ``<out>/replaced-<timestamp>/``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lapo_verl.eval import benchmarks as bm
from lapo_verl.eval.generate import Completion, SamplingConfig, derive_seed, render_prompt
from lapo_verl.eval.metrics import average_row, summarize_records
from lapo_verl.grading import GRADING_TIMEOUT_S  # math-verify deadline per answer (training's default too)
from lapo_verl.jsonl import atomic_write_json, atomic_write_jsonl
from lapo_verl.plan_text import find_plan

__all__ = [
    "EvalError",
    "RunConfig",
    "SAMPLE_FIELDS",
    "FORMAT",
    "run_eval",
    "read_samples",
    "summarize_dir",
    "load_manifest",
]

FORMAT = "lapo-verl-eval/1"
SAMPLE_FIELDS = (
    "benchmark",  # benchmark name
    "problem_id",  # the problem's id in the benchmark
    "sample",  # 0..n-1
    "seed",  # per-problem sampling seed
    "answer",  # ground truth
    "response",  # decoded generated text (special tokens removed)
    "extracted",  # the grader's extracted final answer (None: no answer found)
    "correct",  # grader verdict
    "grade_reason",  # grader's reason string
    "n_tokens",  # generated token ids, counted with the model's tokenizer ids (incl. final EOS)
    "finish_reason",  # "stop" | "length"
    "truncated",  # finish_reason == "length"
    "stated_plan",  # tokens the response says it will use (plan sentence), or None
    "plan_at_start",  # the plan sentence opens the response
    "plan_abs_err",  # |n_tokens - stated_plan| or None
)
# Fields of run.json that must match to resume into an existing directory.
_IDENTITY_KEYS = ("model", "benchmarks", "samples", "sampling", "prompt_style", "problems")


class EvalError(RuntimeError):
    """A user-facing error (bad input or an incompatible results directory)."""


@dataclass
class RunConfig:
    model: str
    out: str
    benchmarks: list[str] = field(default_factory=lambda: list(bm.DEFAULT_BENCHMARKS))
    samples: int | dict[str, int] | None = None  # None: each benchmark's paper default
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    prompt_style: str = "chat"
    data: str = "hub"
    limit: int | None = None
    backend: str = "auto"
    batch_size: int = 16
    chunk_problems: int | None = None  # problems per generate call (None: backend default)
    name: str | None = None
    force: bool = False
    backend_kwargs: dict[str, Any] = field(default_factory=dict)
    progress: bool = True

    def samples_for(self, name: str) -> int:
        if isinstance(self.samples, dict):
            n = self.samples.get(name, bm.get_spec(name).default_samples)
        elif self.samples is None:
            n = bm.get_spec(name).default_samples
        else:
            n = int(self.samples)
        if n <= 0:
            raise EvalError(f"samples per problem must be positive, got {n} for {name}")
        return n


# ----------------------------------------------------------------------------- files


def _atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_json(path, obj, indent=2)


def load_manifest(out: str | os.PathLike) -> dict[str, Any]:
    path = Path(out) / "run.json"
    if not path.is_file():
        raise EvalError(f"{out} is not a lapo-verl eval results directory (no run.json)")
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("format") != FORMAT:
        raise EvalError(f"{path}: unknown format {manifest.get('format')!r} (expected {FORMAT})")
    return manifest


def read_samples(path: str | os.PathLike, *, repair: bool = False) -> list[dict[str, Any]]:
    """Records of a samples file. A torn last line (no trailing newline / invalid JSON) is
    ignored; with ``repair=True`` it is cut off the file so that appends start on a clean line."""
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good_end = 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # torn last line
        line = data[pos:nl]
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if data.find(b"\n", nl + 1) >= 0 or data[nl + 1 :].strip():
                    raise EvalError(f"{path}: corrupt line at byte {pos} (not the last line)") from None
                break
        pos = nl + 1
        good_end = pos
    if repair and good_end != len(data):
        with open(path, "r+b") as f:
            f.truncate(good_end)
    return records


def _finished_problems(records: list[dict[str, Any]], n: int) -> tuple[set[str], list[dict[str, Any]]]:
    """(ids with all n samples, the records of those problems only)."""
    by: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in records:
        by[str(r["problem_id"])][int(r["sample"])] = r
    done = {pid for pid, s in by.items() if set(s) == set(range(n))}
    kept = [by[pid][k] for pid in by if pid in done for k in range(n)]
    return done, kept


def _rewrite_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_jsonl(path, records)


# ----------------------------------------------------------------------------- grading



def _grade(response: str, answer: str, truncated: bool, prompt_tail: str | None) -> tuple[bool, str | None, str]:
    """The training reward managers' grading call (``grade_completion``): same extraction rules, same
    prefilled-reasoning rule (from the prompt's tail). Ctrl-C propagates: no verdict is stored."""
    from lapo_verl.grading import grade_completion

    res = grade_completion(response, answer, prompt_tail=prompt_tail, truncated=truncated,
                           timeout_s=GRADING_TIMEOUT_S)
    return bool(res.correct), res.extracted, str(res.reason)


def make_records(
    benchmark: str, problem: dict[str, str], seed: int, completions: list[Completion],
    prompt_tail: str | None = None,
) -> list[dict[str, Any]]:
    """Sample records of one problem. ``prompt_tail``: the prompt's last tokens as text
    (``lapo_verl.grading.prompt_tail_text``), which tells whether the prompt opened ``<think>``."""
    out = []
    for k, c in enumerate(completions):
        correct, extracted, reason = _grade(c.text, problem["answer"], c.truncated, prompt_tail)
        stated, at_start = find_plan(c.text)
        out.append(
            {
                "benchmark": benchmark,
                "problem_id": problem["id"],
                "sample": k,
                "seed": seed,
                "answer": problem["answer"],
                "response": c.text,
                "extracted": extracted,
                "correct": correct,
                "grade_reason": reason,
                "n_tokens": c.n_tokens,
                "finish_reason": c.finish_reason,
                "truncated": c.truncated,
                "stated_plan": stated,
                "plan_at_start": at_start,
                "plan_abs_err": abs(c.n_tokens - stated) if stated is not None else None,
            }
        )
    return out


# ----------------------------------------------------------------------------- manifest


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("lapo_verl", "torch", "transformers", "vllm", "verl"):
        m = sys.modules.get(mod)
        if m is None and mod in ("lapo_verl", "torch", "transformers"):
            try:
                m = __import__(mod)
            except ImportError:
                m = None
        if m is not None:
            out[mod] = str(getattr(m, "__version__", "?"))
    return out


def _check_compatible(out: Path, new: dict[str, Any], force: bool) -> None:
    path = out / "run.json"
    if not path.is_file():
        leftovers = [str(p.relative_to(out)) for p in sorted((out / "samples").glob("*.jsonl")) if p.stat().st_size]
        leftovers += ["summary.json"] if (out / "summary.json").exists() else []
        if leftovers and not force:
            raise EvalError(f"{out} holds eval files ({', '.join(leftovers)}) but no run.json; use --force to replace them")
        return
    old = load_manifest(out)
    diffs = [k for k in _IDENTITY_KEYS if old.get(k) != new.get(k)]
    if not diffs:
        return
    if not force:
        detail = "; ".join(f"{k}: existing {old.get(k)!r} vs requested {new.get(k)!r}" for k in diffs)
        if len(detail) > 1500:
            detail = detail[:1500] + " ..."
        raise EvalError(
            f"{out} was made with a different {', '.join(diffs)} ({detail}). Use another --out, or --force "
            f"to move the old results aside and start again."
        )
    backup = out / time.strftime("replaced-%Y%m%dT%H%M%S")
    backup.mkdir()
    for name in ("run.json", "summary.json", "samples", "problems"):
        if (out / name).exists():
            shutil.move(str(out / name), str(backup / name))


# ----------------------------------------------------------------------------- run


def run_eval(
    cfg: RunConfig,
    *,
    backend_factory: Callable[[Any], Any] | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
) -> dict[str, Any]:
    """Run (or resume) an evaluation; returns the summary (also written to ``summary.json``).

    ``backend_factory(tokenizer) -> backend`` replaces the vLLM/transformers choice (tests).
    """
    from lapo_verl.eval.generate import load_tokenizer, make_backend
    from lapo_verl.grading import prompt_tail_text

    names = bm.parse_benchmarks(cfg.benchmarks)
    if cfg.prompt_style not in ("chat", "paper"):
        raise EvalError(f"prompt style must be 'chat' or 'paper', got {cfg.prompt_style!r}")
    out = Path(cfg.out)
    model_path = str(Path(cfg.model).resolve()) if Path(cfg.model).exists() else str(cfg.model)

    tokenizer = load_tokenizer(cfg.model)

    # Problems (and their rendered prompts) first: cheap, and needed to check the directory.
    problems: dict[str, list[dict[str, str]]] = {}
    prompts: dict[str, list[tuple[str, list[int]]]] = {}
    sources = bm.resolve_sources(cfg.data, names)
    for name in names:
        try:
            problems[name] = bm.load_benchmark(name, sources[name], limit=cfg.limit)
        except (bm.BenchmarkLoadError, ValueError) as e:
            raise EvalError(str(e)) from e
        prompts[name] = [render_prompt(tokenizer, p["problem"], cfg.prompt_style) for p in problems[name]]

    samples = {name: cfg.samples_for(name) for name in names}
    manifest = {
        "format": FORMAT,
        "name": cfg.name or out.name,
        "model": model_path,
        "benchmarks": names,
        "samples": samples,
        "sampling": cfg.sampling.to_dict(),
        "prompt_style": cfg.prompt_style,
        "problems": {n: {"count": len(problems[n]), "fingerprint": bm.problems_fingerprint(problems[n])} for n in names},
        "data": sources,
        "limit": cfg.limit,
        "backend": None,
        "token_count": "generated token ids incl. the final EOS (model's tokenizer ids)",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
    }
    out.mkdir(parents=True, exist_ok=True)
    _check_compatible(out, manifest, cfg.force)
    if (out / "run.json").is_file():
        old = load_manifest(out)
        manifest["created"] = old.get("created", manifest["created"])
        manifest["resumed"] = old.get("resumed", 0) + 1
    # What is left to do.
    todo: dict[str, list[int]] = {}
    for name in names:
        path = out / "samples" / f"{name}.jsonl"
        records = read_samples(path)
        done, kept = _finished_problems(records, samples[name])
        valid_ids = {p["id"] for p in problems[name]}
        todo[name] = [i for i, p in enumerate(problems[name]) if p["id"] not in done]
        if done - valid_ids:
            raise EvalError(f"{path} has problems not in the benchmark ({sorted(done - valid_ids)[:5]}...)")
        if done:
            log(f"[{name}] resuming: {len(done)}/{len(problems[name])} problems already finished")

    # Backend before any file is written: a failed start leaves nothing behind.
    backend = None
    if any(todo.values()):
        if backend_factory is not None:
            backend = backend_factory(tokenizer)
        else:
            backend = make_backend(
                cfg.backend, cfg.model, tokenizer, batch_size=cfg.batch_size, seed=cfg.sampling.seed, **cfg.backend_kwargs
            )
        manifest["backend"] = getattr(backend, "name", type(backend).__name__)
    else:
        old_backend = load_manifest(out).get("backend") if (out / "run.json").is_file() else None
        manifest["backend"] = old_backend
    (out / "samples").mkdir(exist_ok=True)
    (out / "problems").mkdir(exist_ok=True)
    for name in names:
        _rewrite_jsonl(
            out / "problems" / f"{name}.jsonl",
            [dict(p, prompt=t, prompt_tokens=len(ids)) for p, (t, ids) in zip(problems[name], prompts[name])],
        )

    for name in names:  # cut a torn last line; drop samples of unfinished problems
        path = out / "samples" / f"{name}.jsonl"
        records = read_samples(path, repair=True)
        _, kept = _finished_problems(records, samples[name])
        if len(kept) != len(records):
            _rewrite_jsonl(path, kept)
    _atomic_write_json(out / "run.json", manifest)

    from tqdm.auto import tqdm

    t0 = time.time()
    for name in names:
        idxs = todo[name]
        if not idxs:
            continue
        n = samples[name]
        if cfg.chunk_problems:
            chunk = int(cfg.chunk_problems)
        elif getattr(backend, "name", "") == "vllm":
            chunk = 256
        else:
            chunk = max(1, cfg.batch_size // n)
        path = out / "samples" / f"{name}.jsonl"
        bar = tqdm(
            total=len(problems[name]),
            initial=len(problems[name]) - len(idxs),
            desc=f"{name} ({n}/problem)",
            unit="problem",
            disable=not cfg.progress,
            file=sys.stderr,
        )
        with open(path, "a", encoding="utf-8") as f:
            for start in range(0, len(idxs), chunk):
                batch = idxs[start : start + chunk]
                seeds = [derive_seed(cfg.sampling.seed, name, problems[name][i]["id"]) for i in batch]
                outs = backend.generate([prompts[name][i][1] for i in batch], n, cfg.sampling, seeds)
                for i, seed, comps in zip(batch, seeds, outs):
                    if len(comps) != n:
                        raise EvalError(f"backend returned {len(comps)} samples for one problem, expected {n}")
                    tail = prompt_tail_text(tokenizer, prompts[name][i][1])
                    recs = make_records(name, problems[name][i], seed, comps, prompt_tail=tail)
                    f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs))
                    f.flush()
                    os.fsync(f.fileno())
                    bar.update(1)
        bar.close()
    elapsed = time.time() - t0
    summary = summarize_dir(out)
    summary["generation_seconds_this_invocation"] = round(elapsed, 3)
    _atomic_write_json(out / "summary.json", summary)
    return summary


def summarize_dir(out: str | os.PathLike) -> dict[str, Any]:
    """Metrics for a results directory, recomputed from its samples files."""
    out = Path(out)
    manifest = load_manifest(out)
    per: dict[str, dict[str, Any]] = {}
    complete = True
    for name in manifest["benchmarks"]:
        records = read_samples(out / "samples" / f"{name}.jsonl")
        n = int(manifest["samples"][name])
        done, kept = _finished_problems(records, n)
        m = summarize_records(kept)
        m["display"] = bm.get_spec(name).display
        m["expected_problems"] = manifest["problems"][name]["count"]
        m["complete"] = len(done) == manifest["problems"][name]["count"]
        complete &= m["complete"]
        per[name] = m
    return {
        "name": manifest.get("name", out.name),
        "model": manifest["model"],
        "benchmarks": per,
        "average": average_row(per),
        "complete": complete,
        "samples": manifest["samples"],
        "sampling": manifest["sampling"],
        "prompt_style": manifest["prompt_style"],
        "backend": manifest.get("backend"),
    }
