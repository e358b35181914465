"""The recipes/ scripts are one pipeline (recipes/lib.sh): the paper pipeline and the comparison script run the
same steps, with one plans rule, one set of tiny-run overrides and resumable markers. Fast: ``lapo-verl`` and
``python`` are replaced by stubs that log their arguments and write the files the next step reads, so the
scripts' orchestration is checked without verl (the slow tests in tests/baselines and the quickstart train)."""

from __future__ import annotations

import itertools
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Paths as the recipes' config builds them: <output_root>/<experiment>/stage<S>-<tag>, checkpoints inside.
_STUB_COMMON = r"""
arg() { local k=$1; shift; for a in "$@"; do [[ $a == "$k="* ]] && { echo "${a#*=}"; return; }; done; echo "$2"; }
opt() { local k=$1; shift; while [[ $# -gt 0 ]]; do [[ $1 == "$k" ]] && { echo "$2"; return; }; shift; done; }
run_dir() {  # RECIPE ARGS...
  local recipe=$1; shift
  local stage=1; [[ $recipe == lapo_stage2* ]] && stage=2
  echo "$(arg lapo.output_root runs/lapo "$@")/$(arg lapo.experiment lapo "$@")/stage$stage-tag"
}
echo "$(basename "$0") $*" >>"$STUB_CALLS"
"""

_LAPO_VERL = _STUB_COMMON + r"""
case $1 in
  overrides) exec "$REAL_PYTHON" -m lapo_verl.cli "$@" ;;
  resolve)
    shift; recipe=$1; shift; keys=(); while [[ $1 != -- ]]; do keys+=("$1"); shift; done; shift
    for k in "${keys[@]}"; do
      case $k in
        lapo.run_dir) run_dir "$recipe" "$@" ;;
        trainer.default_local_dir) echo "$(run_dir "$recipe" "$@")/checkpoints" ;;
        lapo.experiment_dir) echo "$(arg lapo.output_root runs/lapo "$@")/$(arg lapo.experiment lapo "$@")" ;;
        lapo.plans_path) echo "$(arg lapo.output_root runs/lapo "$@")/$(arg lapo.experiment lapo "$@")/plans.json" ;;
      esac
    done ;;
  plans) out=$(opt --out "$@"); mkdir -p "$(dirname "$out")"; echo '{}' >"$out" ;;
  eval) mkdir -p "$(opt --out "$@")" ;;
  report) out=$(opt --out "$@"); mkdir -p "$(dirname "$out")"; echo "| table |" >"$out"; cat "$out" ;;
  run) shift; while [[ $1 != -- ]]; do shift; done; shift; exec "$@" ;;
esac
"""

_PYTHON = _STUB_COMMON + r"""
if [[ $1 == */quickstart.py ]]; then out=$(opt --out "$@"); mkdir -p "$out/model" "$out/data"; exit 0; fi
[[ $1 == -m ]] || exit 3
case $2 in
  verl.trainer.main_ppo)
    shift 2; recipe=${1#+recipe=}; shift
    [[ $recipe == "${STUB_FAIL_RECIPE:-}" ]] && { echo "Traceback: stub failure"; exit 1; }
    me=$recipe; [[ " $* " == *" lapo.stage2.update_plans=true "* ]] && me=${recipe}_eq8
    [[ -n "${STUB_RAY_LOG:-}" ]] && echo "$me ${RAY_TMPDIR:-unset}" >>"$STUB_RAY_LOG"
    if [[ -n "${STUB_MEET:-}" ]]; then  # side by side: an arm waits (10 s at most) until its pair's other arm started
      touch "$STUB_MEET/$me"
      case $me in acc_only) other=lapo_stage1 ;; lapo_stage2_eq8) other=lapo_stage2 ;; *) other="" ;; esac
      for _ in $(seq 100); do [[ -z $other || -e $STUB_MEET/$other ]] && break; sleep 0.1; done
      [[ -z $other || -e $STUB_MEET/$other ]] || { echo "stub: $me ran without $other beside it"; exit 1; }
    fi
    ck="$(run_dir "$recipe" "$@")/checkpoints"; mkdir -p "$ck/global_step_2/actor"; echo 2 >"$ck/latest_checkpointed_iteration.txt"
    echo "step:2 - x:1" ;;
  verl.model_merger) t=$(opt --target_dir "$@"); mkdir -p "$t"; echo '{}' >"$t/config.json" ;;
  lapo_verl.replica.prepare)  # the replica's inputs: settings.sh as the real module writes it (tiny sizes)
    out=$(opt --out "$@"); mkdir -p "$out/data" "$out/base"
    printf '%s\n' "REPLICA_DATA=$out/data" "REPLICA_BASE=$out/base" TINY_BATCH=4 TINY_N=4 TINY_STEPS=2 \
      TINY_PROMPT_LEN=96 TINY_RESPONSE_LEN=160 TINY_MICRO=16 REPLICA_LR=0.0002 REPLICA_EVAL_N=24 \
      REPLICA_FALLOFF=4 REPLICA_SIGMA=5 >"$out/settings.sh" ;;
  lapo_verl.replica.evaluate)  # one summary per --job NAME=MODEL[,PLANS], in --out-dir
    dir=$(opt --out-dir "$@"); mkdir -p "$dir"
    while [[ $# -gt 0 ]]; do [[ $1 == --job ]] && { j=$2; echo '{}' >"$dir/${j%%=*}.json"; }; shift; done ;;
  lapo_verl.replica.report) docs=$(opt --docs "$@"); mkdir -p "$docs"; echo report >"$docs/results-cpu.md" ;;
  *) exit 4 ;;
esac
"""


def _stubs(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("lapo-verl", _LAPO_VERL), ("python", _PYTHON)):
        path = bin_dir / name
        path.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in os.environ.items() if k not in ("GPUS", "NGPUS", "CPU", "QUIET", "COMMON_ARGS")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHON=str(bin_dir / "python"), REAL_PYTHON=sys.executable,
               STUB_CALLS=str(tmp_path / "calls.log"), PYTHONPATH=str(ROOT))
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    calls = Path(env["STUB_CALLS"])
    calls.write_text("")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, calls.read_text().splitlines()


def _trainings(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("python -m verl.trainer.main_ppo")]


def test_paper_pipeline_chain_markers_and_resume(tmp_path):
    env = _stubs(tmp_path)
    env.update(MODEL="base-model", TRAIN="t.parquet", VAL="v.parquet", EXPERIMENT="exp", OUTPUT_ROOT="out",
               GPUS="2", COMMON_ARGS="trainer.total_epochs=1", STAGE2_ARGS="lapo.stage2.beta=0.7",
               EVAL_ARGS="--samples 2", PUBLISHED="deepscaler")
    proc, calls = _run(["bash", str(ROOT / "recipes/lapo_pipeline.sh")], env, tmp_path)
    assert "GPUS is deprecated" in proc.stderr and proc.stderr.count("GPUS is deprecated") == 1
    s1, s2 = _trainings(calls)
    assert "+recipe=lapo_stage1" in s1 and "actor_rollout_ref.model.path=base-model" in s1
    assert "trainer.n_gpus_per_node=2" in s1 and "trainer.total_epochs=1" in s1 and "beta" not in s1
    assert "lapo.output_root=out" in s1 and "lapo.experiment=exp" in s1
    assert "+recipe=lapo_stage2" in s2 and "actor_rollout_ref.model.path=out/exp/models/lapo_d" in s2
    assert "lapo.plans_path=out/exp/plans.json" in s2 and "lapo.stage2.beta=0.7" in s2
    # the one plans rule: lapo-verl plans' defaults on the stage-1 run directory
    plans = [c for c in calls if c.startswith("lapo-verl plans")]
    assert plans == ["lapo-verl plans --run out/exp/stage1-tag --out out/exp/plans.json --hist out/exp/plans_hist.png"]
    evals = [c for c in calls if c.startswith("lapo-verl eval")]
    assert [e.split("--name ")[1].split()[0] for e in evals] == ["base", "lapo_d", "lapo_i"]
    assert all("--samples 2" in e for e in evals)
    report = [c for c in calls if c.startswith("lapo-verl report")][0]
    assert "--published deepscaler" in report and "--names base,lapo_d,lapo_i" in report
    for name in ("train_lapo_d", "plans_plans", "train_lapo_i", "eval_base", "eval_lapo_d", "eval_lapo_i"):
        assert (tmp_path / "out/exp/.done" / name).is_file(), name
    assert (tmp_path / "out/exp/logs/lapo_d.log").read_text().count("step:2 -") == 1
    for step in ("lapo_d", "merge-lapo_d", "lapo_i", "merge-lapo_i", "eval-base"):  # each step's wall time
        assert int((tmp_path / "out/exp/logs" / f"{step}.seconds").read_text()) >= 0, step
    # rerun: every step is skipped, the report is written again
    _, again = _run(["bash", str(ROOT / "recipes/lapo_pipeline.sh")], env, tmp_path)
    assert not _trainings(again) and not [c for c in again if c.startswith(("lapo-verl plans", "lapo-verl eval"))]


def test_compare_uses_the_same_chain_and_plans_rule(tmp_path):
    env = _stubs(tmp_path)
    (tmp_path / "t.parquet").write_text("")
    env["RAY_TMPDIR"] = str(tmp_path / "ray")
    proc, calls = _run(["bash", str(ROOT / "recipes/compare/run_compare.sh"), "--cpu", "--model", "m",
                        "--train", "t.parquet", "--out", "cmp", "--methods", "base,lapo,stat_mean,acc_only",
                        "--published", "none"], env, tmp_path)
    trainings = _trainings(calls)
    recipes = [t.split()[3] for t in trainings]
    assert recipes == ["+recipe=acc_only", "+recipe=lapo_stage1", "+recipe=lapo_stage2", "+recipe=lapo_stage2"]
    out = tmp_path / "cmp"
    plans = [c for c in calls if c.startswith("lapo-verl plans")]
    run1 = f"{out}/runs/lapo_d/stage1-tag"
    assert plans == [
        f"lapo-verl plans --run {run1} --out {out}/plans/lapo_d-median.json --hist {out}/plans/lapo_d-median_hist.png",
        f"lapo-verl plans --run {run1} --out {out}/plans/lapo_d-mean.json --hist {out}/plans/lapo_d-mean_hist.png "
        "--statistic mean",
    ]
    assert f"lapo.plans_path={out}/plans/lapo_d-mean.json" in trainings[3]
    assert f"actor_rollout_ref.model.path={out}/models/lapo_d" in trainings[3]
    # --cpu: the CPU backend's overrides and the one tiny run, each key once
    keys = [o.split("=", 1)[0] for o in trainings[0].split()[4:]]
    assert "trainer.device" in keys and "data.train_batch_size" in keys and len(keys) == len(set(keys))
    from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES, tiny_run_overrides

    assert all(o in trainings[0].split() for o in [*CPU_TRAINER_OVERRIDES, *tiny_run_overrides()])
    report = [c for c in calls if c.startswith("lapo-verl report")][0]
    assert "--names base,accuracy-only GRPO,LAPO-D,LAPO-I,LAPO-I (plan statistic mean)" in report
    assert "--published" not in report
    # QUIET by default: one line per training step through lapo-verl run, full log in $OUT/logs
    assert f"lapo-verl run --log {out}/logs/acc_only.log --label train acc_only --steps 2 --" in "\n".join(calls)
    assert f"lapo-verl run --log {out}/logs/eval-base.log --label eval base -- lapo-verl eval" in "\n".join(calls)


def test_only_lib_sh_builds_training_and_plans_commands():
    """One owner: no recipe script runs main_ppo (except the sweeps' Hydra multiruns) or lapo-verl plans itself."""
    for script in (ROOT / "recipes").rglob("*.sh"):
        if script.name == "lib.sh":
            continue
        text = "\n".join(line for line in script.read_text().splitlines() if not line.lstrip().startswith("#"))
        if script.name != "lapo_ablations.sh":
            assert "verl.trainer.main_ppo" not in text, script
            assert "lapo-verl plans" not in text, script
        assert "train_batch_size" not in text and "CPU_TRAINER_OVERRIDES" not in text, script
        assert "${GPUS" not in text, script


def test_a_failed_step_stops_the_chain_without_a_marker(tmp_path):
    """lapo_step's callers return its status by hand (errexit is off inside `... || return`): a failed stage 1
    stops the script before plans and stage 2, and leaves neither a done marker nor a wall time."""
    env = _stubs(tmp_path)
    env.update(MODEL="m", TRAIN="t.parquet", VAL="v.parquet", OUTPUT_ROOT="out", EXPERIMENT="exp",
               STUB_FAIL_RECIPE="lapo_stage1", QUIET="1")
    proc = subprocess.run(["bash", str(ROOT / "recipes/lapo_pipeline.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    calls = Path(env["STUB_CALLS"]).read_text()
    assert "+recipe=lapo_stage1" in calls and "+recipe=lapo_stage2" not in calls and "lapo-verl plans" not in calls
    assert not (tmp_path / "out/exp/.done").exists() and not (tmp_path / "out/exp/logs/lapo_d.seconds").exists()


def _evaluations(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("python -m lapo_verl.replica.evaluate")]


def _job_specs(evaluation: str) -> list[str]:
    """The NAME=MODEL[,PLANS] arguments of one evaluation command."""
    return [a for a in evaluation.split() if "=" in a and not a.startswith("--")]


def _job_names(evaluation: str) -> list[str]:
    return [spec.split("=")[0] for spec in _job_specs(evaluation)]


def test_cpu_replica_trains_through_lib_sh(tmp_path):
    """The CPU replica's runs are lib.sh's: acc-only and the LAPO chain with the replica's sizes and seed, stage 2
    from the merged stage-1 model, plans into the plans-given evaluations; a rerun skips every step."""
    env = _stubs(tmp_path)
    cmd = ["bash", str(ROOT / "recipes/cpu_replica.sh"), "--seeds", "3", "--out", "rep", "--scale", "smoke",
           "--docs", "docs"]
    (tmp_path / "meet").mkdir()
    env.update(STUB_MEET=str(tmp_path / "meet"), STUB_RAY_LOG=str(tmp_path / "ray.log"))
    proc, calls = _run(cmd, env, tmp_path)
    seed = tmp_path / "rep/seed3"
    # --jobs 2 (default): acc-only next to stage 1 (each waited for the other to start), then the stage-2 arms,
    # each with a Ray temp dir of its own
    trainings = sorted(_trainings(calls)[:2]) + sorted(_trainings(calls)[2:], key=lambda t: "update_plans" in t)
    assert [t.split()[3] for t in trainings] == ["+recipe=acc_only", "+recipe=lapo_stage1", "+recipe=lapo_stage2",
                                                  "+recipe=lapo_stage2"]
    ray_dirs = dict(line.split() for line in (tmp_path / "ray.log").read_text().splitlines())
    assert set(ray_dirs) == {"acc_only", "lapo_stage1", "lapo_stage2", "lapo_stage2_eq8"}
    assert len(set(ray_dirs.values())) == 4 and "unset" not in ray_dirs.values()
    assert not any(Path(d).exists() for d in ray_dirs.values())  # removed after each pair
    for t in trainings:
        args = t.split()[4:]
        keys = [a.split("=", 1)[0] for a in args]
        assert len(keys) == len(set(keys)), t
        for want in ("trainer.device=cpu", "data.train_batch_size=4", "actor_rollout_ref.rollout.n=4",
                     "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=16", "data.max_response_length=160",
                     "actor_rollout_ref.actor.optim.lr=0.0002", "data.seed=3", "actor_rollout_ref.rollout.seed=3",
                     "lapo.stage1.falloff=4", "lapo.stage2.sigma=5", f"lapo.output_root={seed.relative_to(tmp_path)}/runs",
                     "data.train_files=rep/data/train.parquet"):
            assert want in args, (want, t)
    assert "lapo.experiment=acc_only" in trainings[0].split() and "lapo.experiment=lapo" in trainings[1].split()
    assert "actor_rollout_ref.model.path=rep/seed3/models/lapo_d" in trainings[2].split()
    assert "lapo.plans_path=rep/seed3/plans.json" in trainings[2].split()
    # the Eq. 8 arm: stage 2 again from the same model and plans, plans updated, in its own run directory
    eq8 = trainings[3].split()
    assert "lapo.stage2.update_plans=true" in eq8 and "lapo.experiment=lapo_eq8" in eq8
    assert "actor_rollout_ref.model.path=rep/seed3/models/lapo_d" in eq8 and "lapo.plans_path=rep/seed3/plans.json" in eq8
    assert "lapo.stage2.update_plans=true" not in trainings[2].split()
    # the evaluations dealt round-robin to two processes side by side; three of them with the stage-1 plans given
    evals = _evaluations(calls)
    assert len(evals) == 2 and all("--seed 3" in e and "--limit 24" in e for e in evals)
    assert sorted(map(_job_names, evals)) == [["acc_only", "lapo_i", "lapo_i_plan", "base_plan"],
                                              ["base", "lapo_d", "lapo_i_eq8", "lapo_i_eq8_plan"]]
    jobs = [spec for e in evals for spec in _job_specs(e)]
    assert sum(j.endswith(",rep/seed3/plans.json") for j in jobs) == 3
    assert all((seed / ".done" / f"eval_{j.split('=')[0]}").is_file() for j in jobs)
    assert (tmp_path / "docs/results-cpu.md").is_file() and (seed / "logs/lapo_i.seconds").is_file()
    _, again = _run(cmd, env, tmp_path)
    assert not _trainings(again) and not [c for c in again if "replica.evaluate" in c or "lapo-verl plans" in c]


def test_cpu_replica_jobs_1_runs_one_arm_at_a_time_and_a_failed_arm_keeps_its_pair(tmp_path):
    """--jobs 1: the four runs in order, in the caller's Ray setting, and one evaluation process. --jobs 2 with a
    failing accuracy-only run: stage 1 beside it still finishes (its marker and plans), nothing after the pair
    starts, and the script fails naming the arm; a bad --jobs value fails before anything runs."""
    env = _stubs(tmp_path)
    env["STUB_RAY_LOG"] = str(tmp_path / "ray.log")
    base = ["bash", str(ROOT / "recipes/cpu_replica.sh"), "--seeds", "1", "--scale", "smoke", "--docs", "docs"]
    _, calls = _run(base + ["--out", "one", "--jobs", "1"], env, tmp_path)
    assert [t.split()[3] for t in _trainings(calls)] == ["+recipe=acc_only", "+recipe=lapo_stage1",
                                                          "+recipe=lapo_stage2", "+recipe=lapo_stage2"]
    assert [line.split()[0] for line in (tmp_path / "ray.log").read_text().splitlines()] == [
        "acc_only", "lapo_stage1", "lapo_stage2", "lapo_stage2_eq8"]
    assert [_job_names(e) for e in _evaluations(calls)] == [["base", "acc_only", "lapo_d", "lapo_i", "lapo_i_eq8",
                                                             "lapo_i_plan", "lapo_i_eq8_plan", "base_plan"]]
    env["STUB_FAIL_RECIPE"] = "acc_only"
    proc = subprocess.run(base + ["--out", "two"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "arm_acc_only failed" in proc.stderr
    done = tmp_path / "two/seed1/.done"
    assert (done / "train_lapo_d").is_file() and (done / "plans_plans").is_file()
    assert not (done / "train_acc_only").exists() and not (done / "train_lapo_i").exists()
    bad = subprocess.run(base + ["--out", "three", "--jobs", "4"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--jobs must be 1 or 2" in bad.stderr and not (tmp_path / "three").exists()


def test_quickstart_outputs_live_in_its_folder_once(tmp_path):
    """bash recipes/quickstart_cpu.sh [OUT]: assets, both stages' runs, plans, models, results and logs all sit directly
    in OUT (runs/quickstart by default), never in a repeated OUT/runs/quickstart/."""
    env = _stubs(tmp_path)
    proc, calls = _run(["bash", str(ROOT / "recipes/quickstart_cpu.sh")], env, tmp_path)
    out = "runs/quickstart"
    s1, s2 = _trainings(calls)
    assert "lapo.output_root=runs" in s1.split() and "lapo.experiment=quickstart" in s1.split()
    assert f"actor_rollout_ref.model.path={out}/model" in s1.split()
    assert f"actor_rollout_ref.model.path={out}/models/lapo_d" in s2.split() and f"lapo.plans_path={out}/plans.json" in s2
    assert f"lapo-verl run --log {out}/logs/lapo_d.log --label train lapo_d --steps 4 --" in "\n".join(calls)
    for path in ("stage1-tag", "stage2-tag", "plans.json", "logs/lapo_d.seconds", "models/lapo_i", "results/base",
                 "table.md", ".done/eval_lapo_i"):
        assert (tmp_path / out / path).exists(), path
    assert not (tmp_path / out / "runs").exists()
    assert f"logs                                       {out}/logs/" in proc.stdout


@pytest.mark.parametrize("script", ["cpu_replica.sh", "quickstart_cpu.sh", "lapo_pipeline.sh", "cluster_rehearsal.sh",
                                    "r1_distill_1.5b/run_lapo.sh", "deepscaler_1.5b/run_lapo.sh"])
def test_script_help_is_its_whole_header(script):
    """--help prints the script's leading comment block, every line of it and no code: the block is found, not
    counted, so a header that grows or shrinks stays whole in --help."""
    path = ROOT / "recipes" / script
    lines = path.read_text().splitlines()[1:]
    header = [re.sub(r"^# ?", "", line) for line in itertools.takewhile(lambda x: x.startswith("#"), lines)]
    proc = subprocess.run(["bash", str(path), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == header
