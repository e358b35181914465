"""Run ``python -m verl.trainer.main_ppo`` on lapo_verl's CPU backend from a test: own process group,
hard timeout, short Ray temp dir, peak memory of the process tree."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunResult:
    rc: int
    log: str
    wall_s: float
    peak_gb: float

    def steps(self) -> dict[int, dict[str, float]]:
        """``step:N - key:value - ...`` console lines -> {step: {key: value}}."""
        out: dict[int, dict[str, float]] = {}
        for match in re.finditer(r"step:(\d+) - (.*)", self.log):
            for item in match.group(2).split(" - "):
                key, _, value = item.rpartition(":")
                try:
                    out.setdefault(int(match.group(1)), {})[key.strip()] = float(value)
                except ValueError:
                    continue
        return out


def _tree_pss_gb(pid: int) -> float:
    try:
        import psutil

        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
        total = 0
        for p in procs:
            try:
                info = p.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        return total / 2**30
    except Exception:
        return 0.0


#: Ray gives its local node a fixed 30 s to register with the GCS (ray/_private/node.py, not configurable); on a
#: busy 2-core machine running two test workers it can time out before verl started anything.
RAY_START_TIMEOUT = "The current node timed out during startup"


def run_main_ppo(args: list[str], cwd: Path, log_path: Path, timeout_s: int = 420, module: str = "verl.trainer.main_ppo",
                 env_extra: dict[str, str] | None = None) -> RunResult:
    """Run ``module`` on the CPU backend; started once more (and said so in the log) if Ray's own node start-up
    timed out, since nothing ran then."""
    result = _run_once(args, cwd, log_path, timeout_s, module, env_extra)
    if result.rc != 0 and RAY_START_TIMEOUT in result.log:
        first = result.log
        result = _run_once(args, cwd, log_path, timeout_s, module, env_extra)
        result.log = f"{first}\n[cpu_run] Ray's node start-up timed out; started once more\n{result.log}"
    return result


def _run_once(args: list[str], cwd: Path, log_path: Path, timeout_s: int, module: str,
              env_extra: dict[str, str] | None) -> RunResult:
    from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES, cpu_env

    env = cpu_env()
    env.update(env_extra or {})
    env["PYTHONUNBUFFERED"] = "1"
    ray_tmp = tempfile.mkdtemp(prefix="lapo_ray_", dir="/tmp")  # AF_UNIX paths are limited to 107 bytes
    env["RAY_TMPDIR"] = ray_tmp
    cmd = ["timeout", "-k", "15", str(timeout_s), sys.executable, "-m", module, *CPU_TRAINER_OVERRIDES, *args]
    start, peak = time.time(), 0.0
    with open(log_path, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while proc.poll() is None:
                peak = max(peak, _tree_pss_gb(proc.pid))
                time.sleep(1.0)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # raylet/gcs and workers of this run
            except ProcessLookupError:
                pass
            shutil.rmtree(ray_tmp, ignore_errors=True)
    return RunResult(proc.returncode, log_path.read_text(errors="replace"), time.time() - start, peak)
