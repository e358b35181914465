"""The replica end to end (``bash recipes/cpu_replica.sh``): data -> base model -> per seed: accuracy-only
GRPO, LAPO stage 1 -> ``lapo-verl plans`` -> stage 2 (all through ``python -m verl.trainer.main_ppo`` with the
real recipes on the CPU backend) -> verl's model merger -> held-out evaluation -> report.

Resumable: every finished stage leaves a marker in ``<out>/seed<S>/.done/``; unfinished training resumes from
its last checkpoint (verl's ``trainer.resume_mode=auto``). Progress: one short line per stage on stdout; each
subprocess writes its own log under ``<out>/seed<S>/logs/``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lapo_verl import rewards
from lapo_verl.replica import task


@dataclass(frozen=True)
class Scale:
    """Training size (same for every arm). ``full`` is the frozen setting of docs/replica-design.md."""

    steps: int = 24                # per training run (acc-only, stage 1, stage 2)
    batch: int = 16                # prompts per step
    n: int = 8                     # responses per prompt (the paper's G)
    lr: float = 2e-4
    max_response: int = 160
    max_prompt: int = 96
    eval_n: int = task.EVAL_SIZE
    warmup_steps: int = 1500
    check_per_level: int = 40      # base check (warm-up seed problems), per level
    timeout_s: int = 1800          # per training run

    @property
    def train_n(self) -> int:
        return self.steps * self.batch   # one epoch: stage 1 visits every training problem once


SCALES = {
    "full": Scale(),
    "smoke": Scale(steps=2, batch=4, n=4, eval_n=24, warmup_steps=30, check_per_level=2, timeout_s=600),
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


def cpu_overrides() -> list[str]:
    """The CPU backend's overrides (incl. its speed settings: no remove-padding, fp32, no grad checkpointing)."""
    from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES

    return list(CPU_TRAINER_OVERRIDES)


def train_overrides(scale: Scale, seed: int, data: Path) -> list[str]:
    from lapo_verl.cpu_backend.overrides import tiny_run_overrides

    return [
        f"data.train_files={data / 'train.parquet'}", f"data.val_files={data / 'val.parquet'}",
        *tiny_run_overrides(batch=scale.batch, n=scale.n, steps=scale.steps, prompt_len=scale.max_prompt,
                            response_len=scale.max_response, micro=scale.batch * scale.n),
        f"actor_rollout_ref.actor.optim.lr={scale.lr}",
        f"data.seed={seed}", f"actor_rollout_ref.rollout.seed={seed}",
        f"lapo.stage1.falloff={scaled(rewards.FALLOFF, scale.max_response)}",
        f"lapo.stage2.sigma={scaled(rewards.SIGMA, scale.max_response)}",
    ]


@dataclass
class Seed:
    out: Path
    seed: int
    scale: Scale
    data: Path
    base: Path
    times: dict = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.out / f"seed{self.seed}"

    def done(self, name: str) -> bool:
        return (self.root / ".done" / name).is_file()

    def mark(self, name: str, seconds: float) -> None:
        (self.root / ".done").mkdir(parents=True, exist_ok=True)
        (self.root / ".done" / name).write_text(json.dumps({"seconds": round(seconds, 1), "at": time.strftime("%FT%T")}))

    def seconds(self, name: str) -> float | None:
        p = self.root / ".done" / name
        return json.loads(p.read_text())["seconds"] if p.is_file() else None

    def run(self, name: str, cmd: list[str], env: dict | None = None, timeout: int | None = None) -> None:
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"{name}.log"
        full = ["timeout", "-k", "15", str(timeout or self.scale.timeout_s), *cmd]
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"$ {shlex.join(full)}\n")
            fh.flush()
            rc = subprocess.run(full, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True).returncode
        if rc:
            tail = path.read_text(errors="replace").splitlines()[-30:]
            raise SystemExit(f"[replica] {name} failed (rc={rc}); last lines of {path}:\n" + "\n".join(tail))

    def stage(self, name: str, fn) -> None:
        if self.done(name):
            log(f"seed {self.seed}: {name} done before ({self.seconds(name)} s), skipped")
            return
        log(f"seed {self.seed}: {name} ...")
        t0 = time.time()
        fn()
        dt = time.time() - t0
        self.mark(name, dt)
        log(f"seed {self.seed}: {name} finished in {dt:.0f} s")


def trainer_env() -> dict:
    from lapo_verl.cpu_backend.overrides import cpu_env

    return cpu_env()


def train(s: Seed, name: str, recipe: str, model: Path, extra: list[str] = ()) -> None:
    # one checkpoint directory per recipe: with a shared one, stage 2 would resume stage 1's last step
    # (verl's resume_mode=auto) and train nothing
    ckpt = s.root / "ckpt" / recipe
    cmd = [sys.executable, "-m", "verl.trainer.main_ppo", f"+recipe={recipe}", *cpu_overrides(),
           *train_overrides(s.scale, s.seed, s.data), f"actor_rollout_ref.model.path={model}",
           f"lapo.output_root={s.root / 'runs'}", f"lapo.experiment={name}",
           f"trainer.default_local_dir={ckpt}", f"trainer.experiment_name={name}-seed{s.seed}", *extra]
    s.run(f"train_{recipe}", cmd, env=trainer_env())


def merge(s: Seed, recipe: str, name: str) -> None:
    ckpt = s.root / "ckpt" / recipe
    step = (ckpt / "latest_checkpointed_iteration.txt").read_text().strip()
    if int(step) != s.scale.steps:
        raise SystemExit(f"[replica] {ckpt} ends at step {step}, expected {s.scale.steps}: training did not finish")
    actor = ckpt / f"global_step_{step}" / "actor"
    target = s.root / "models" / name
    s.run(f"merge_{name}", [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
                            "--local_dir", str(actor), "--target_dir", str(target)], env=trainer_env(), timeout=600)
    # the merger writes weights + config; the tokenizer and generation config come from the base model
    for f in s.base.iterdir():
        if f.is_file() and ("token" in f.name or f.name in ("generation_config.json", "chat_template.jinja")):
            if not (target / f.name).exists():
                (target / f.name).write_bytes(f.read_bytes())


def stage1_run_dir(s: Seed) -> Path:
    runs = sorted((s.root / "runs" / "lapo").glob("stage1-*"))
    if len(runs) != 1:
        raise SystemExit(f"[replica] expected one stage-1 run under {s.root / 'runs' / 'lapo'}, found {runs}")
    return runs[0]


def evaluate(s: Seed, name: str, model: Path, plans: Path | None = None) -> None:
    cmd = [sys.executable, "-m", "lapo_verl.replica.evaluate", "--model", str(model), "--data", str(s.data),
           "--out", str(s.root / "eval" / name), "--limit", str(s.scale.eval_n), "--seed", str(s.seed),
           "--max-new-tokens", str(s.scale.max_response)]
    if plans is not None:
        cmd += ["--plans", str(plans)]
    s.run(f"eval_{name}", cmd, timeout=1200)


def run_seed(s: Seed) -> None:
    plans = s.root / "runs" / "lapo" / "plans.json"
    models = s.root / "models"
    s.stage("train_acc_only", lambda: train(s, "acc_only", "acc_only", s.base))
    s.stage("merge_acc_only", lambda: merge(s, "acc_only", "acc_only"))
    s.stage("train_lapo_stage1", lambda: train(s, "lapo", "lapo_stage1", s.base))
    s.stage("merge_lapo_d", lambda: merge(s, "lapo_stage1", "lapo_d"))
    s.stage("plans", lambda: s.run("plans", ["lapo-verl", "plans", "--run", str(stage1_run_dir(s)), "--out", str(plans)],
                                   env=trainer_env(), timeout=300))
    s.stage("train_lapo_stage2", lambda: train(s, "lapo", "lapo_stage2", models / "lapo_d",
                                               [f"lapo.plans_path={plans}"]))
    s.stage("merge_lapo_i", lambda: merge(s, "lapo_stage2", "lapo_i"))
    for name, model, p in (("base", s.base, None), ("acc_only", models / "acc_only", None),
                           ("lapo_d", models / "lapo_d", None), ("lapo_i", models / "lapo_i", None),
                           ("lapo_i_plan", models / "lapo_i", plans), ("base_plan", s.base, plans)):
        s.stage(f"eval_{name}", lambda name=name, model=model, p=p: evaluate(s, name, model, p))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="LAPO CPU replica: train every arm, evaluate, write the report")
    ap.add_argument("--out", default="runs/replica")
    ap.add_argument("--seeds", default="1", help="comma-separated training seeds (default: 1)")
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--docs", default="docs", help="where results-cpu.md/.json and plots go ('' = <out>)")
    args = ap.parse_args(argv)
    scale = SCALES[args.scale]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log(f"scale={args.scale} {json.dumps(asdict(scale))}")
    from lapo_verl.replica.data import build_data
    from lapo_verl.replica.warmup import WarmupSettings, build_base_model

    data = out / "data"
    if not (data / "digests.json").is_file():
        log("data: writing train/val parquet (lapo-verl prepare-data) and the held-out set")
        build_data(data, n_train=scale.train_n)
    base = build_base_model(out / "cache", WarmupSettings(steps=scale.warmup_steps), log=log,
                            check_per_level=scale.check_per_level)
    if (base / "base_check.json").is_file():
        (out / "base_check.json").write_bytes((base / "base_check.json").read_bytes())
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    for seed in seeds:
        run_seed(Seed(out, seed, scale, data, base))
    from lapo_verl.replica.report import write_report

    docs = Path(args.docs) if args.docs else out
    write_report(out, seeds, docs, scale=args.scale, wall_s=time.time() - t0,
                 command=" ".join(["bash recipes/cpu_replica.sh", *(argv if argv is not None else sys.argv[1:])]))
    log(f"all done in {time.time() - t0:.0f} s; report: {docs / 'results-cpu.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
