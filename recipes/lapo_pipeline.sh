#!/usr/bin/env bash
# LAPO end to end: stage 1 (Discovery) -> HF model -> plans -> stage 2 (Internalization) -> HF model
#                  -> evaluation of base / LAPO-D / LAPO-I -> table + frontier plot.
#
# Re-running skips finished steps (markers in <experiment dir>/.done/) and resumes unfinished training
# from its last checkpoint (verl's trainer.resume_mode=auto). Everything else is Hydra config: extra
# overrides go in STAGE1_ARGS / STAGE2_ARGS / COMMON_ARGS.
#
# Settings (environment variables):
#   MODEL          base model (HF dir or hub id)                        [required]
#   TRAIN, VAL     verl parquet files from `lapo-verl prepare-data`     [required]
#   EXPERIMENT     run-directory knob shared by both stages (lapo.experiment)   [lapo]
#   OUTPUT_ROOT    lapo.output_root                                     [runs/lapo]
#   NGPUS, NNODES  trainer.n_gpus_per_node, trainer.nnodes              [4, 1]
#   COMMON_ARGS, STAGE1_ARGS, STAGE2_ARGS   extra Hydra overrides (space separated)
#   EVAL_ARGS      extra `lapo-verl eval` arguments                     [""]
#   EVAL_MODELS    which models to evaluate                              ["base lapo_d lapo_i"]
#   PUBLISHED      overlay the paper's rows: deepscaler | r1-distill | "" [""]
#   CPU=1          run on lapo_verl's CPU backend (laptops, tests; not for real training)
#   QUIET=1        full logs of every step in <experiment dir>/logs/, one progress line per training step
#                  on the terminal (lapo-verl run); TOTAL_STEPS shows them as step k/N
set -euo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then usage; exit 0; fi
: "${MODEL:?set MODEL (see --help)}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}"
EXPERIMENT=${EXPERIMENT:-lapo}
OUTPUT_ROOT=${OUTPUT_ROOT:-runs/lapo}
NGPUS=${NGPUS:-4}
NNODES=${NNODES:-1}
EVAL_MODELS=${EVAL_MODELS:-"base lapo_d lapo_i"}
PUBLISHED=${PUBLISHED:-}
# shared recipe helpers: lapo_cpu_env, lapo_merge_latest (verl's FSDP -> Hugging Face merger)
# shellcheck source=compare/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/compare/lib.sh"
PY=$PYTHON

read -r -a common <<<"${COMMON_ARGS:-}"
read -r -a stage1_extra <<<"${STAGE1_ARGS:-}"
read -r -a stage2_extra <<<"${STAGE2_ARGS:-}"
read -r -a eval_extra <<<"${EVAL_ARGS:-}"
shared=(
  "data.train_files=$TRAIN" "data.val_files=$VAL"
  "lapo.experiment=$EXPERIMENT" "lapo.output_root=$OUTPUT_ROOT"
  "trainer.n_gpus_per_node=$NGPUS" "trainer.nnodes=$NNODES"
)
if [[ "${CPU:-0}" == "1" ]]; then
  # the CPU backend's environment and overrides (lapo_verl/cpu_backend/overrides.py)
  lapo_cpu_env
  read -r -a cpu <<<"$($PY -c 'from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES as o; print(" ".join(o))')"
  shared=("${cpu[@]}" "${shared[@]}")
fi

exp_dir=$(lapo-verl resolve lapo_stage1 lapo.experiment_dir -- "${shared[@]}" "${common[@]}")
done_dir="$exp_dir/.done"
mkdir -p "$done_dir" "$exp_dir/models" "$exp_dir/results"
log() { printf '\n[lapo-pipeline] %s\n' "$*"; }
log_dir="$exp_dir/logs"
# run NAME LABEL CMD...: in QUIET mode the whole output goes to $log_dir/NAME.log and the terminal gets one line
# per training step (or, on failure, the error and the log path); otherwise the command prints as usual.
run() {
  local name=$1 label=$2
  shift 2
  if [[ "${QUIET:-0}" == "1" ]] && declare -F "$1" >/dev/null; then  # a shell function: log it, show errors
    mkdir -p "$log_dir"
    "$@" >"$log_dir/$name.log" 2>&1 || {
      echo "[$label] FAILED; last lines of $log_dir/$name.log:"; tail -n 30 "$log_dir/$name.log"; return 1; }
  elif [[ "${QUIET:-0}" == "1" ]]; then
    lapo-verl run --log "$log_dir/$name.log" --label "$label" ${TOTAL_STEPS:+--steps "$TOTAL_STEPS"} -- "$@"
  else
    "$@"
  fi
}
finished() { [[ -f "$done_dir/$1" ]]; }
mark() { date -Is >"$done_dir/$1"; }

# ---------------------------------------------------------------- stage 1
s1_args=("+recipe=lapo_stage1" "actor_rollout_ref.model.path=$MODEL" "${shared[@]}" "${common[@]}" "${stage1_extra[@]}")
s1_run=$(lapo-verl resolve lapo_stage1 lapo.run_dir -- "${s1_args[@]:1}")
if ! finished stage1; then
  log "stage 1 (Discovery) -> $s1_run"
  run stage1 "stage 1" $PY -m verl.trainer.main_ppo "${s1_args[@]}" "trainer.save_freq=${SAVE_FREQ:-20}"
  mark stage1
fi
if ! finished merge1; then
  run merge1 "merge stage 1" lapo_merge_latest "$s1_run/checkpoints" "$exp_dir/models/lapo_d"
  mark merge1
fi

# ---------------------------------------------------------------- plans
plans=$(lapo-verl resolve lapo_stage2 lapo.plans_path -- "${shared[@]}" "${common[@]}" "${stage2_extra[@]}")
if ! finished plans; then
  log "plans <- $s1_run/records"
  lapo-verl plans --run "$s1_run" --out "$plans" --hist "$exp_dir/plans_hist.png"
  mark plans
fi

# ---------------------------------------------------------------- stage 2
s2_args=("+recipe=lapo_stage2" "actor_rollout_ref.model.path=$exp_dir/models/lapo_d" "lapo.plans_path=$plans"
         "${shared[@]}" "${common[@]}" "${stage2_extra[@]}")
s2_run=$(lapo-verl resolve lapo_stage2 lapo.run_dir -- "${s2_args[@]:1}")
if ! finished stage2; then
  log "stage 2 (Internalization) -> $s2_run"
  run stage2 "stage 2" $PY -m verl.trainer.main_ppo "${s2_args[@]}" "trainer.save_freq=${SAVE_FREQ:-20}"
  mark stage2
fi
if ! finished merge2; then
  run merge2 "merge stage 2" lapo_merge_latest "$s2_run/checkpoints" "$exp_dir/models/lapo_i"
  mark merge2
fi

# ---------------------------------------------------------------- evaluation
results=()
for name in $EVAL_MODELS; do
  case $name in
    base) model=$MODEL ;;
    *) model="$exp_dir/models/$name" ;;
  esac
  out="$exp_dir/results/$name"
  if ! finished "eval_$name"; then
    log "evaluating $name ($model) -> $out"
    run "eval_$name" "eval $name" lapo-verl eval --model "$model" --out "$out" --name "$name" "${eval_extra[@]}"  # resumes if interrupted
    mark "eval_$name"
  fi
  results+=("$out")
done
report_args=("${results[@]}" --out "$exp_dir/table.md" --plot "$exp_dir/frontier.png")
[[ -n "$PUBLISHED" ]] && report_args+=(--published "$PUBLISHED")
lapo-verl report "${report_args[@]}"

log "done. artifacts:"
cat <<EOF
  stage-1 run (checkpoints, length records)  $s1_run
  plans file                                 $plans
  stage-2 run                                $s2_run
  models (Hugging Face)                      $exp_dir/models/{lapo_d,lapo_i}
  evaluation                                 $exp_dir/results/
  table / plot                               $exp_dir/table.md  $exp_dir/frontier.png
  logs                                       $log_dir/
EOF
