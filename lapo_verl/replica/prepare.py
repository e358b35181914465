"""The replica's inputs for ``bash recipes/cpu_replica.sh``: the data, the warmed-up base model and the run sizes.

The training chain itself is not here: ``recipes/cpu_replica.sh`` runs accuracy-only GRPO and LAPO stage 1 ->
``lapo-verl plans`` -> stage 2 through ``recipes/lib.sh`` (``lapo_train`` / ``lapo_chain``), the one pipeline the
paper scripts, the comparison and the quickstart use. This module writes what that script reads::

    python -m lapo_verl.replica.prepare --out runs/replica --scale full
    # -> runs/replica/data/ (train/val parquet, held-out eval.jsonl), runs/replica/cache/base-<digest>/ (base
    #    model, cached across runs), runs/replica/base_check.json, runs/replica/settings.sh (shell variables)
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lapo_verl import rewards
from lapo_verl.replica import task


@dataclass(frozen=True)
class Scale:
    """Training size (same for every arm). ``full`` is the frozen setting of docs/replica-design.md."""

    steps: int = 24                # per training run (acc-only, stage 1, both stage-2 arms)
    batch: int = 12                # prompts per step
    epochs: int = 2                # over the training set per run: plans from a second visit; Eq. 8 can act
    n: int = 8                     # responses per prompt (the paper's G)
    lr: float = 2e-4
    max_response: int = 160
    max_prompt: int = 96
    eval_n: int = task.EVAL_SIZE
    warmup_steps: int = 1500
    warmup_problems: int = 40000   # warm-up traces drawn from (the smoke draws 10 x 32 = 320 of them)
    check_per_level: int = 40      # base check (warm-up seed problems), per level

    @property
    def train_n(self) -> int:
        return self.steps * self.batch // self.epochs


SCALES = {
    "full": Scale(),
    # CI's smoke: one step per run (every stage still runs through verl's trainer; issue 21: CI time)
    "smoke": Scale(steps=1, batch=4, n=4, epochs=1, eval_n=24, warmup_steps=10, warmup_problems=1000, check_per_level=2),
}

# The paper's length knobs are for a 4,096-token cap (fall-off 100, sigma 120); scaled by cap ratio.
PAPER_CAP = 4096


def scaled(value: float, cap: int) -> int:
    """``value`` tokens at the paper's 4,096 cap, scaled to ``cap`` (at least 1).

    >>> scaled(100, 160), scaled(120, 160)
    (4, 5)
    """
    return max(1, round(value * cap / PAPER_CAP))


def log(msg: str) -> None:
    print(f"[replica {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def shell_settings(scale: Scale, data: Path, base: Path) -> dict[str, str]:
    """The variables ``recipes/cpu_replica.sh`` reads: recipes/lib.sh's tiny-run sizes (``TINY_*``; one PPO
    mini-batch and one micro-batch per step) and the replica's own knobs (``REPLICA_*``).

    >>> s = shell_settings(SCALES["full"], Path("d"), Path("b"))
    >>> s["TINY_MICRO"], s["REPLICA_FALLOFF"], s["REPLICA_SIGMA"]
    ('96', '4', '5')
    """
    return {
        "REPLICA_DATA": str(data), "REPLICA_BASE": str(base),
        "TINY_BATCH": str(scale.batch), "TINY_N": str(scale.n), "TINY_STEPS": str(scale.steps),
        "TINY_PROMPT_LEN": str(scale.max_prompt), "TINY_RESPONSE_LEN": str(scale.max_response),
        "TINY_MICRO": str(scale.batch * scale.n),
        "REPLICA_LR": str(scale.lr), "REPLICA_EVAL_N": str(scale.eval_n),
        "REPLICA_FALLOFF": str(scaled(rewards.FALLOFF, scale.max_response)),
        "REPLICA_SIGMA": str(scaled(rewards.SIGMA, scale.max_response)),
    }


def prepare(out: Path, scale: Scale, cache: Path | None = None) -> Path:
    """Write the data and the base model (both reused when present; the base model in ``cache``, default
    ``out/cache``) and ``out/settings.sh``; returns that file."""
    from lapo_verl.replica.data import build_data
    from lapo_verl.replica.warmup import WarmupSettings, build_base_model

    out.mkdir(parents=True, exist_ok=True)
    data = (out / "data").resolve()
    if not (data / "digests.json").is_file():
        log("data: writing train/val parquet (lapo-verl prepare-data) and the held-out set")
        build_data(data, n_train=scale.train_n)
    warmup = WarmupSettings(steps=scale.warmup_steps, n_problems=scale.warmup_problems)
    base = build_base_model((cache or out / "cache").resolve(), warmup, log=log, check_per_level=scale.check_per_level)
    if (base / "base_check.json").is_file():
        (out / "base_check.json").write_bytes((base / "base_check.json").read_bytes())
    settings = out / "settings.sh"
    lines = [f"# written by python -m lapo_verl.replica.prepare: {shlex.quote(str(asdict(scale)))}"]
    lines += [f"{k}={shlex.quote(v)}" for k, v in shell_settings(scale, data, base).items()]
    settings.write_text("\n".join(lines) + "\n")
    return settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m lapo_verl.replica.prepare",
        description="LAPO CPU replica, inputs: data, warmed-up base model (cached) and <out>/settings.sh for "
                    "recipes/cpu_replica.sh")
    ap.add_argument("--out", default="runs/replica")
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--cache", default=None,
                    help="where warmed-up base models are cached, keyed by their settings (default: <out>/cache)")
    args = ap.parse_args(argv)
    scale = SCALES[args.scale]
    log(f"scale={args.scale} {asdict(scale)}")
    settings = prepare(Path(args.out), scale, Path(args.cache) if args.cache else None)
    log(f"inputs ready: {settings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
