"""Several ``python -m verl.trainer.main_ppo ...`` commands that stop before Ray, run in ONE fresh process.

Each command is what a user types: verl's real ``main_ppo`` module under Hydra, with its own argv, working
directory and captured output (file descriptors 1 and 2, so loggers and prints are both caught). Only the first one
pays for importing verl, torch and transformers (~15 s of CPU on 2 cores); each later one takes ~3 s. Meant for
commands that end at lapo-verl's preflight (exit status 2): a command that started Ray would leave it running in
this process for the next one.

    results = run_commands([(["+recipe=l1_max"], "/tmp/a"), (["+recipe=thinkprune"], "/tmp/b")])
    rc, output = results[0]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_commands(commands: list[tuple[list[str], str | Path]], env: dict[str, str] | None = None,
                 timeout_s: int = 300) -> list[tuple[int, str]]:
    """(main_ppo arguments, working directory) -> (exit status, output) each, in order."""
    spec = [([str(a) for a in args], str(cwd)) for args, cwd in commands]
    proc = subprocess.run([sys.executable, "-m", "lapo_test_utils.main_ppo_commands", json.dumps(spec)],
                          capture_output=True, text=True, timeout=timeout_s, env=env,
                          cwd=str(Path(__file__).resolve().parents[1]))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and len(lines) == len(spec), (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    rows = [json.loads(line) for line in lines]
    return [(row["rc"], row["output"]) for row in rows]


def _main(spec: list[tuple[list[str], str]]) -> None:
    import runpy
    import tempfile

    from hydra.core.global_hydra import GlobalHydra

    report = os.dup(1)  # this process's own stdout: one JSON line per command
    for args, cwd in spec:
        os.chdir(cwd)
        GlobalHydra.instance().clear()  # Hydra refuses a second initialisation in one process
        sys.argv = ["verl.trainer.main_ppo", *args]
        with tempfile.TemporaryFile() as capture:
            saved = os.dup(1), os.dup(2)
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(capture.fileno(), 1)
            os.dup2(capture.fileno(), 2)
            try:
                runpy.run_module("verl.trainer.main_ppo", run_name="__main__", alter_sys=True)
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException as exc:  # noqa: BLE001 - reported like a crashed command
                import traceback

                traceback.print_exc()
                rc = f"{type(exc).__name__}"
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                for fd in saved:
                    os.close(fd)
            capture.seek(0)
            output = capture.read().decode("utf-8", errors="replace")
        os.write(report, (json.dumps({"rc": rc, "output": output}) + "\n").encode())


if __name__ == "__main__":
    _main(json.loads(sys.argv[1]))
