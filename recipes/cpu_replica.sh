#!/usr/bin/env bash
# LAPO CPU replica (issues 13, 22): does LAPO make a model shorter at the same accuracy, with length following
# difficulty, and does stage 2 teach it to keep stated plans? Procedural arithmetic chains, a tiny over-thinking
# Qwen2 that never saw a plan sentence, verl's real trainer on the CPU backend: accuracy-only GRPO
#   (+recipe=acc_only); LAPO stage 1 (+recipe=lapo_stage1) -> lapo-verl plans -> stage 2 (+recipe=lapo_stage2),
#   and stage 2 with Eq. 8 plan updates; held-out evaluation of base / acc-only / LAPO-D / LAPO-I / LAPO-I Eq. 8
#   (+ both LAPO-I arms and the base with plans given); docs/results-cpu.md + .json + plots.
#
#   bash recipes/cpu_replica.sh [--seeds 1,2] [--out runs/replica] [--scale full|smoke] [--docs docs] [--jobs 2]
#
# --jobs 2 (default) trains the independent arms two at a time: accuracy-only next to LAPO stage 1, then the two
# stage-2 arms; the held-out evaluations run in two processes. A CPU training run keeps about one core busy (its
# Ray actors take turns: rollout, log-probs, update), so on 2 cores a pair takes less time than two runs in a row.
# Each run keeps its seeds, settings and thread counts; --jobs 1 runs one at a time. (A CPU run is not bitwise
# repeatable either way: the agent loop hands samples back in the order they finish, so two runs of one seed
# differ in the last digits.)
#
# Training, merging and plans go through recipes/lib.sh (lapo_train, lapo_chain), the pipeline of every recipe
# script; the data, the base model and the run sizes come from python -m lapo_verl.replica.prepare.
# Resumable: re-running skips finished steps (markers in <out>/seed<S>/.done/). Design: docs/replica-design.md.
# SMOKE=1 is --scale smoke --out runs/replica-smoke --docs runs/replica-smoke/docs (CI: one step per run, every stage).
# REPLICA_CACHE=DIR keeps the warmed-up base models there (keyed by their settings) instead of <out>/cache.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0; fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

seeds=1 out=runs/replica scale=full docs=docs arm_jobs=2
if [[ "${SMOKE:-0}" == "1" ]]; then scale=smoke out=runs/replica-smoke docs=runs/replica-smoke/docs; fi
command="bash recipes/cpu_replica.sh $*"
while [[ $# -gt 0 ]]; do
  case $1 in
    --seeds) seeds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --docs) docs=$2; shift 2 ;;  # '' = the output directory (resolved after parsing)
    --jobs) arm_jobs=$2; shift 2 ;;
    *) echo "cpu_replica.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$arm_jobs" =~ ^[12]$ ]] || { echo "cpu_replica.sh: --jobs must be 1 or 2 (the arms come in pairs), got '$arm_jobs'" >&2; exit 2; }
start=$SECONDS

# data, base model (cached in $out/cache) and $out/settings.sh: REPLICA_* and lib.sh's TINY_* sizes
"$PYTHON" -m lapo_verl.replica.prepare --out "$out" --scale "$scale" ${REPLICA_CACHE:+--cache "$REPLICA_CACHE"}
# shellcheck source=/dev/null
source "$out/settings.sh"
lapo_cpu_env
# read by lib.sh
# shellcheck disable=SC2034
CPU=1 TINY=1 QUIET=1 TRAIN=$REPLICA_DATA/train.parquet VAL=$REPLICA_DATA/val.parquet

replica_evals() {  # NAME=MODEL[,PLANS]...: the held-out set (lapo_verl.replica.evaluate) -> $OUT/eval/NAME.json
  # every model not evaluated before; each is marked done when its summary is written, so a failed or interrupted
  # step keeps the evaluations that finished
  local job name jobs=() rc=0
  for job in "$@"; do
    name=${job%%=*}
    if lapo_done "eval_$name"; then lapo_log "eval $name: done before, skipped"; else jobs+=("$job"); fi
  done
  [[ ${#jobs[@]} == 0 ]] && return 0
  lapo_step evals "eval ${#jobs[@]} models" replica_evaluate "${jobs[@]}" || rc=$?
  for job in "$@"; do
    name=${job%%=*}
    if ! lapo_done "eval_$name" && [[ -f "$OUT/eval/$name.json" ]]; then lapo_mark "eval_$name"; fi
  done
  return $rc
}

replica_evaluate() {  # NAME=MODEL[,PLANS]...: dealt round-robin to --jobs evaluation processes side by side, each
  # paying the imports once. Every evaluation is single-threaded and seeded on its own (lapo_verl.replica.evaluate),
  # so how the models are split changes no number (per-sample records byte-identical to one process: seed 1 of the
  # full scale, 2026-12-04). One full seed: 131 s -> 105 s (two processes on 2 cores run at ~0.7x speed each).
  local p i pids=() args rc=0
  for ((p = 0; p < arm_jobs && p < $#; p++)); do
    args=()
    for ((i = p + 1; i <= $#; i += arm_jobs)); do args+=(--job "${!i}"); done
    "$PYTHON" -m lapo_verl.replica.evaluate "${args[@]}" --out-dir "$OUT/eval" --data "$REPLICA_DATA" \
      --limit "$REPLICA_EVAL_N" --seed "$seed" --max-new-tokens "$TINY_RESPONSE_LEN" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  return $rc
}

# the arms of one seed ($OUT, $EXTRA); lapo_d -> plans -> lapo_i is lapo_chain's pipeline, split so that the
# stage-2 arms can run side by side
arm_acc_only() { LAPO_EXPERIMENT=acc_only lapo_train acc_only "$REPLICA_BASE" acc_only; }
arm_lapo_d() { LAPO_EXPERIMENT=lapo lapo_train lapo_d "$REPLICA_BASE" lapo_stage1 && lapo_plans lapo_d "$OUT/plans.json"; }
arm_lapo_i() { LAPO_EXPERIMENT=lapo lapo_train lapo_i "$OUT/models/lapo_d" lapo_stage2 lapo.plans_path="$OUT/plans.json"; }
# paper Eq. 8: the same stage 2 from the same model and plans, the plans following stage 2's correct lengths
arm_lapo_i_eq8() {
  LAPO_EXPERIMENT=lapo_eq8 lapo_train lapo_i_eq8 "$OUT/models/lapo_d" lapo_stage2 lapo.plans_path="$OUT/plans.json" \
    lapo.stage2.update_plans=true
}

replica_pair() {  # ARM_A ARM_B: one after the other (--jobs 1), or side by side, each with its own Ray
  # (a separate RAY_TMPDIR, so that neither's ray.init() finds the other's cluster); both always finish, so a
  # failure in one keeps the other's finished run (resumable), and then the script stops
  if [[ "$arm_jobs" == 1 ]]; then "$1" && "$2"; return; fi
  local arm i pids=() rc=0 ray_dirs=() arms=("$1" "$2")
  for arm in "${arms[@]}"; do
    ray_dirs+=("$(mktemp -d /tmp/lapo_ray_XXXX)")  # short: Ray's AF_UNIX socket paths
    ( RAY_TMPDIR=${ray_dirs[-1]}; export RAY_TMPDIR; "$arm" ) &
    pids+=($!)
  done
  for i in 0 1; do wait "${pids[$i]}" || { rc=$?; lapo_log "${arms[$i]} failed (exit status $rc)"; }; done
  rm -rf "${ray_dirs[@]}"
  return $rc
}

IFS=, read -r -a seed_list <<<"$seeds"
for seed in "${seed_list[@]}"; do
  OUT=$out/seed$seed
  # shellcheck disable=SC2034  # read by lib.sh: added to every training run of this seed
  EXTRA=(actor_rollout_ref.actor.optim.lr="$REPLICA_LR" data.seed="$seed" actor_rollout_ref.rollout.seed="$seed"
         lapo.stage1.falloff="$REPLICA_FALLOFF" lapo.stage2.sigma="$REPLICA_SIGMA")
  lapo_log "seed $seed -> $OUT"
  replica_pair arm_acc_only arm_lapo_d
  replica_pair arm_lapo_i arm_lapo_i_eq8
  replica_evals base="$REPLICA_BASE" acc_only="$OUT/models/acc_only" lapo_d="$OUT/models/lapo_d" \
    lapo_i="$OUT/models/lapo_i" lapo_i_eq8="$OUT/models/lapo_i_eq8" \
    lapo_i_plan="$OUT/models/lapo_i,$OUT/plans.json" lapo_i_eq8_plan="$OUT/models/lapo_i_eq8,$OUT/plans.json" \
    base_plan="$REPLICA_BASE,$OUT/plans.json"
done

"$PYTHON" -m lapo_verl.replica.report --out "$out" --seeds "$seeds" --docs "${docs:-$out}" --scale "$scale" \
  --wall-s "$((SECONDS - start))" --command "$command"
lapo_log "all done in $((SECONDS - start)) s"
