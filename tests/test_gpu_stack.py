"""The gpu extra follows verl 0.9.1's tested stack (verl[vllm]); doctor reports installed versions against it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lapo_verl import gpu_stack
from lapo_verl.gpu_stack import Mismatch, compare, verl_pins

ROOT = Path(__file__).resolve().parents[1]


def test_verl_pins_come_from_the_installed_verl():
    pins = verl_pins()
    assert pins["vllm"] == "0.24.0" and pins["torch"] == "2.11.0" and pins["transformers"] == "5.9.0"
    assert pins["flash-attn"] == "2.8.3"


def test_compare_ignores_local_build_tags_and_reports_absent():
    pins = {"torch": "2.11.0", "vllm": "0.24.0", "transformers": "5.9.0"}
    assert compare({"torch": "2.11.0+cu130", "vllm": "0.24.0", "transformers": "5.9.0"}, pins) == []
    assert compare({"torch": "2.13.0", "vllm": None}, pins) == [
        Mismatch("vllm", "0.24.0", None), Mismatch("torch", "2.11.0", "2.13.0"), Mismatch("transformers", "5.9.0", None)]


def test_gpu_extra_is_verls_vllm_extra_and_flash_attn_is_not_in_it():
    proc = subprocess.run([sys.executable, "-c", "import runpy,setuptools,json,sys;"
                           "setuptools.setup=lambda **kw: print(json.dumps(kw['extras_require']));"
                           "runpy.run_path('setup.py')"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    import json

    extras = json.loads(proc.stdout.strip().splitlines()[-1])
    assert extras["gpu"] == ["verl[vllm]>=0.9.1,<0.9.2"]
    assert not any("flash" in req for req in extras["gpu"])  # built after torch, without build isolation


def test_doctor_reports_installed_versions_against_the_pins():
    from lapo_verl.doctor import check_gpu_versions

    info = check_gpu_versions(strict=False)
    assert info.info and info.ok and "vllm" in info.detail and "0.24.0" in info.detail
    strict = check_gpu_versions(strict=True)
    installed = {p: gpu_stack.installed_versions([p])[p] for p in ("torch", "vllm", "transformers", "flash-attn")}
    expected_ok = not compare(installed, verl_pins(), packages=("vllm", "torch", "transformers", "flash-attn"))
    assert strict.ok == expected_ok
    if not strict.ok:
        assert "flash-attn==2.8.3 --no-build-isolation" in strict.fix


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("LAPO_CHECK_GPU_STACK") != "1",
                    reason="opt-in (LAPO_CHECK_GPU_STACK=1): resolves ~265 packages on PyPI, 4-5 min; the same check "
                           "as `lapo-verl doctor --check-gpu-stack`")
@pytest.mark.skipif(not _pypi_reachable(), reason="needs PyPI (pip install --dry-run resolves metadata online)")
def test_pip_resolves_the_gpu_extra_to_verls_pins():
    """`pip install --dry-run --ignore-installed --report` of `.[gpu]`: metadata only, ~4 min on a slow link."""
    ok, message = gpu_stack.check_gpu_stack(f"{ROOT}[gpu]")
    print(message)
    assert ok, message
