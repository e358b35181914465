"""``lapo-verl run``: run a training command with its full output in a log file and one short line per step.

verl prints every metric of a step on one console line (``step:3 - actor/pg_loss:... - ...``, 80+ keys) and
Ray adds worker warnings around it. For a person watching a run that is noise; for someone debugging it is
exactly what they need. This wrapper keeps both: everything goes to ``--log``, the terminal gets

    [stage 1] step 3/4  acc 0.38  len 41.2  band bonus 0.45  (12.3 s)

and, at the end, either ``done`` with the wall time, or the error (the last traceback of the log) and the log's
path. The exit code is the command's.

Usage::

    lapo-verl run --label "stage 1" --steps 4 --log runs/x/stage1.log -- python -m verl.trainer.main_ppo ...
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# One column of the progress line: the first metric key present wins (LAPO's own keys first, verl's as fallback).
@dataclass(frozen=True)
class Column:
    label: str
    keys: tuple[str, ...]
    fmt: str = "{:.2f}"


# The lapo/... keys come from lapo_verl.step_metrics (logged by verl with its own metrics at the same step).
COLUMNS: tuple[Column, ...] = (
    Column("acc", ("lapo/accuracy",)),
    Column("len", ("response_length/mean",), "{:.1f}"),
    Column("band bonus", ("lapo/stage1/bonus_mean_correct",)),
    Column("|len-plan|", ("lapo/stage2/plan_abs_error/mean",), "{:.1f}"),
    Column("score", ("critic/score/mean",)),  # runs without the LAPO metrics sampler
)

STEP_LINE = re.compile(r"(?:^|\s)step:(\d+) - (.*)$")
_FIELD = re.compile(r"([\w/@.\-]+):([-+0-9.eE]+|nan|inf)(?= - |$)")


def parse_step_line(line: str) -> tuple[int, dict[str, float]] | None:
    """``(step, metrics)`` from verl's console logger line, or None for any other line.

    >>> parse_step_line("step:2 - critic/score/mean:0.5 - response_length/mean:12.0")
    (2, {'critic/score/mean': 0.5, 'response_length/mean': 12.0})
    """
    match = STEP_LINE.search(line.rstrip("\n"))
    if not match:
        return None
    metrics: dict[str, float] = {}
    for key, value in _FIELD.findall(match.group(2)):
        try:
            metrics[key] = float(value)
        except ValueError:
            continue
    return int(match.group(1)), metrics


def progress_line(label: str, step: int, total: int | None, metrics: dict[str, float], seconds: float) -> str:
    """The one-line summary of a training step (columns whose metrics are absent are left out)."""
    parts = [f"[{label}] step {step}/{total}" if total else f"[{label}] step {step}"]
    for column in COLUMNS:
        if column.label == "score" and "lapo/accuracy" in metrics:
            continue  # accuracy is shown; verl's score adds nothing for a reader
        for key in column.keys:
            if key in metrics:
                parts.append(f"{column.label} {column.fmt.format(metrics[key])}")
                break
    parts.append(f"({seconds:.1f} s)")
    return "  ".join(parts)


def last_error(log_text: str, max_lines: int = 40) -> str:
    """The last traceback (or error line) in a log, trimmed to ``max_lines``: what a failed run should show."""
    lines = log_text.splitlines()
    start = None
    for i in range(len(lines) - 1, -1, -1):
        if "Traceback (most recent call last)" in lines[i]:
            start = i
            break
    if start is None:
        errors = [i for i, line in enumerate(lines) if re.search(r"\b(\w+Error|Exception)\b", line)]
        start = errors[-1] if errors else max(0, len(lines) - 15)
    tail = lines[start:]
    if len(tail) > max_lines:
        tail = tail[:5] + ["  ..."] + tail[-(max_lines - 6):]
    return "\n".join(tail)


def run(cmd: list[str], log_path: str | os.PathLike, label: str, total_steps: int | None = None,
        echo=print) -> int:
    """Run ``cmd``; all output to ``log_path``; a progress line per step through ``echo``. Returns the exit code."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = last = time.time()
    echo(f"[{label}] running; full log: {log_path}")
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                bufsize=1)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                log.write(line)
                parsed = parse_step_line(line)
                if parsed and "timing_s/step" in parsed[1]:  # training steps (a validation-only line has no timing)
                    now = time.time()
                    echo(progress_line(label, parsed[0], total_steps, parsed[1], now - last))
                    last = now
        except KeyboardInterrupt:
            proc.terminate()
            raise
        code = proc.wait()
    elapsed = time.time() - start
    if code == 0:
        echo(f"[{label}] done in {elapsed:.0f} s")
    else:
        echo(f"[{label}] FAILED (exit code {code}) after {elapsed:.0f} s. The error:")
        echo(last_error(log_path.read_text(encoding="utf-8", errors="replace")))
        echo(f"[{label}] full log: {log_path}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lapo-verl run",
        description="Run a command (e.g. python -m verl.trainer.main_ppo ...) with its full output in a log file "
                    "and one short progress line per training step on the terminal; on failure print the error "
                    "and the log path. Exit code: the command's.",
    )
    parser.add_argument("--log", required=True, help="file that receives the command's whole output")
    parser.add_argument("--label", default="run", help="prefix of the progress lines (default: run)")
    parser.add_argument("--steps", type=int, default=None, help="total training steps, shown as step k/N")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        parser.error("give the command after --")
    return run(cmd, args.log, args.label, args.steps, echo=lambda s: print(s, flush=True))


if __name__ == "__main__":
    sys.exit(main())


# ------------------------------------------------------------------------------------------- lapo-verl steps

#: (label, verl metric key, format) of the step table: wall time and peak accelerator memory per step.
STEP_TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("step s", "timing_s/step", "{:.1f}"),
    ("gen s", "timing_s/gen", "{:.1f}"),
    ("update s", "timing_s/update_actor", "{:.1f}"),
    ("peak alloc GB", "perf/max_memory_allocated_gb", "{:.1f}"),
    ("peak reserved GB", "perf/max_memory_reserved_gb", "{:.1f}"),
    ("resp len", "response_length/mean", "{:.0f}"),
)


def step_table(logs: list[str | os.PathLike]) -> str:
    """One row per training step of each log: verl's step time, generation and update times and the peak
    accelerator memory its workers report (``perf/max_memory_*_gb``, the largest over the ranks), then the peak
    over all steps. A log without step lines gets a row saying so.

    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "stage1.log"
    >>> _ = log.write_text("step:1 - timing_s/step:12.5 - perf/max_memory_allocated_gb:30.25\\n")
    >>> print(step_table([log]).splitlines()[2])
    stage1  1     12.5    -      -         30.2           -                 -
    """
    header = ["run", "step", *(label for label, _, _ in STEP_TABLE_COLUMNS)]
    rows: list[list[str]] = []
    peak = 0.0
    for path in logs:
        name = Path(path).stem
        steps = [parsed for line in Path(path).read_text(errors="replace").splitlines()
                 if (parsed := parse_step_line(line)) is not None]
        if not steps:
            rows.append([name, "-", "no training step in this log", *[""] * (len(STEP_TABLE_COLUMNS) - 1)])
        for step, metrics in steps:
            rows.append([name, str(step), *(fmt.format(metrics[key]) if key in metrics else "-"
                                             for _, key, fmt in STEP_TABLE_COLUMNS)])
            peak = max(peak, metrics.get("perf/max_memory_reserved_gb", metrics.get("perf/max_memory_allocated_gb", 0.0)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append(f"peak accelerator memory over all steps: {peak:.1f} GB (verl's perf/max_memory_*; 0 on the CPU backend)")
    return "\n".join(lines)


def steps_main(argv: list[str] | None = None) -> int:
    """``lapo-verl steps LOG...``: the step table of training logs (the console output of main_ppo)."""
    ap = argparse.ArgumentParser(prog="lapo-verl steps",
                                 description="Per-step wall time and peak accelerator memory from verl training logs.",
                                 epilog="example: lapo-verl steps runs/rehearsal/rehearsal/logs/lapo_d.log")
    ap.add_argument("logs", nargs="+", help="training logs (verl's console logger output)")
    args = ap.parse_args(argv)
    missing = [p for p in args.logs if not Path(p).is_file()]
    if missing:
        ap.error(f"no such log: {', '.join(missing)}")
    print(step_table(args.logs))
    return 0
