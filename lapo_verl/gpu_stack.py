"""verl 0.9.1's tested GPU stack: its pins, what is installed, and what ``pip`` would resolve for ``.[gpu]``.

verl 0.9.1 declares the stack it was released with as extras: ``verl[vllm]`` pins vllm==0.24.0,
torch==2.11.0, transformers==5.9.0 (and torchvision/torchaudio), ``verl[flash-attn-cu130torch211]`` pins
flash-attn==2.8.3. lapo-verl's ``gpu`` extra is ``verl[vllm]``; flash-attn is installed after torch without
build isolation (its setup.py imports torch), as its authors document. The pins are read from the installed
verl's metadata, never copied here, so they follow verl.

``lapo-verl doctor`` prints installed versions against the pins; ``lapo-verl doctor --check-gpu-stack`` asks
pip to resolve ``<project>[gpu]`` with ``--dry-run --ignore-installed --report`` (metadata only: PyPI serves
wheel metadata separately, PEP 658, so no multi-GB wheel is downloaded) and fails when vllm, torch or
transformers would differ from verl's pins.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, requires, version
from pathlib import Path

#: verl extras that define the tested GPU stack (rollout engine + torch/transformers, then flash-attn)
VERL_GPU_EXTRAS = ("vllm", "flash-attn-cu130torch211")
#: the packages whose resolved version must equal verl's pin for the GPU install to be verl's tested stack
CHECKED = ("vllm", "torch", "transformers")
FLASH_ATTN_INSTALL = "pip install flash-attn=={version} --no-build-isolation"


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def verl_pins(extras: tuple[str, ...] = VERL_GPU_EXTRAS, dist: str = "verl") -> dict[str, str]:
    """``{package: version}`` of the ``==`` pins in the given extras of the installed verl."""
    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    for line in requires(dist) or []:
        req = Requirement(line)
        if req.marker is None or not any(req.marker.evaluate({"extra": extra}) for extra in extras):
            continue
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[canonical(req.name)] = exact[0]
    return pins


def installed_versions(names: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@dataclass(frozen=True)
class Mismatch:
    package: str
    expected: str
    found: str | None  # None: not installed / not in the resolution

    def __str__(self) -> str:
        return f"{self.package}: {self.found or 'absent'} (verl 0.9.1 pins {self.expected})"


def compare(found: dict[str, str | None], pins: dict[str, str], packages: tuple[str, ...] = CHECKED) -> list[Mismatch]:
    """Packages of ``packages`` whose version in ``found`` differs from the pin (local build tags such as
    ``+cu130`` are ignored: a CUDA build of the pinned version is the pinned version).

    >>> compare({"torch": "2.11.0+cu130", "vllm": "0.31.0"}, {"torch": "2.11.0", "vllm": "0.24.0"}, ("torch", "vllm"))
    [Mismatch(package='vllm', expected='0.24.0', found='0.31.0')]
    """
    out = []
    for package in packages:
        if package not in pins:
            continue
        got = found.get(package)
        if got is None or got.split("+", 1)[0] != pins[package]:
            out.append(Mismatch(package, pins[package], got))
    return out


def project_dir() -> Path | None:
    """The source checkout lapo_verl runs from (a directory with setup.py), if any."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "setup.py").is_file() else None


def dry_run_resolve(target: str, python: str = sys.executable, timeout_s: int = 900) -> dict[str, str]:
    """``{package: version}`` pip would install for ``target`` into an empty environment (``--dry-run``,
    ``--ignore-installed``, ``--report``): downloads metadata, installs nothing."""
    cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-", target]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}")
    start = proc.stdout.find("{")
    report = json.loads(proc.stdout[start:])
    return {canonical(item["metadata"]["name"]): item["metadata"]["version"] for item in report.get("install", [])}


def installed_report(pins: dict[str, str]) -> list[str]:
    """One line per pinned package: installed version vs verl's pin."""
    lines = []
    for package, pinned in sorted(pins.items()):
        got = installed_versions([package])[package]
        mark = "=" if got is not None and got.split("+", 1)[0] == pinned else "!="
        lines.append(f"{package} {got or 'not installed'} {mark} {pinned}")
    return lines


def check_gpu_stack(target: str | None = None) -> tuple[bool, str]:
    """Resolve ``<project>[gpu]`` with pip (dry run) and compare with verl's pins; ``(ok, message)``."""
    pins = verl_pins()
    if target is None:
        root = project_dir()
        if root is None:
            return False, "no lapo-verl source checkout found (setup.py); pass the target, e.g. /path/to/lapo-verl[gpu]"
        target = f"{root}[gpu]"
    resolved = dry_run_resolve(target)
    mismatches = compare(resolved, pins)
    shown = ", ".join(f"{p}=={resolved.get(p, 'absent')}" for p in CHECKED)
    if mismatches:
        return False, f"pip resolves {target} to {shown}; differs from verl's pins: " + "; ".join(map(str, mismatches))
    return True, f"pip resolves {target} to {shown} = verl 0.9.1's pins"


def main(argv: list[str] | None = None) -> int:
    """``python -m lapo_verl.gpu_stack [TARGET]``: the dry-run check alone (exit 1 on a mismatch)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ok, message = check_gpu_stack(argv[0] if argv else None)
    print(message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
