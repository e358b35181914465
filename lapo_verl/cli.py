"""``lapo-verl`` command line: one entry point, one sub-command per task.

Sub-commands are imported lazily so that ``lapo-verl --help`` is instant and a broken optional
dependency only affects the sub-command that needs it.
"""

from __future__ import annotations

import importlib
import sys

# name -> ("module:function", one-line help). Each function takes argv (list[str]) and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("lapo_verl.doctor:main", "check the install (plugin, recipes, verl); --estimate-memory: a run's GPU memory"),
    "prepare-data": ("lapo_verl.data.prepare:main", "math problems (jsonl/parquet/HF) -> verl parquet with stable ids"),
    "plans": ("lapo_verl.plans:main", "stage-1 length records -> plans file (problem id -> planned tokens)"),
    "stats": ("lapo_verl.stats:main", "per-step reward components (accuracy, bonus, lengths) from a run's records"),
    "eval": ("lapo_verl.eval.cli:eval_main", "generate on benchmarks, grade, count tokens (vLLM or transformers)"),
    "report": ("lapo_verl.eval.report:main", "results dirs -> the paper's table (Markdown/CSV) and a frontier plot"),
    "run": ("lapo_verl.runlog:main", "run a training command: full log to a file, one progress line per step"),
    "steps": ("lapo_verl.runlog:steps_main", "per-step wall time and peak GPU memory from training logs"),
    "overrides": ("lapo_verl.cpu_backend.overrides:main", "print the CPU backend's / a tiny run's Hydra overrides for scripts"),
    "resolve": ("lapo_verl.resolve:main", "print resolved config values of a recipe (e.g. lapo.run_dir) for scripts"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: lapo-verl <command> [options]   (lapo-verl <command> --help for details)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] in {"-V", "--version"}:
        from lapo_verl import __version__

        print(f"lapo-verl {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lapo-verl: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
