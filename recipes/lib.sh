# shellcheck shell=bash
# The one pipeline of the recipes/ scripts (sourced, not run; the caller has set -euo pipefail). The paper
# scripts (lapo_pipeline.sh), the comparison, ThinkPrune chain, sweeps and the CPU quickstart train, merge,
# make plans, evaluate and report through these functions only.
#
#   lapo_train NAME MODEL RECIPE [OVERRIDE...]
#       python -m verl.trainer.main_ppo +recipe=RECIPE ..., then verl's merger: last checkpoint -> the Hugging
#       Face model $OUT/models/NAME. The run lives in lapo.run_dir (lapo.output_root/lapo.experiment/
#       stage<S>-<settings digest>: checkpoints, length records), so runs with other settings never resume each
#       other's checkpoints. Sets LAPO_RUN_DIR.
#   lapo_plans STAGE1_NAME FILE [lapo-verl plans OPTION...]
#       lapo-verl plans --run <stage-1 run dir> --out FILE (+ a histogram): the documented defaults (median of
#       the correct lengths of the latest visit, complete visits only) unless options say otherwise.
#   lapo_chain D_NAME I_NAME MODEL PLANS_FILE
#       LAPO: lapo_train D_NAME MODEL lapo_stage1 "${LAPO_STAGE1_ARGS[@]}" -> lapo_plans -> lapo_train I_NAME
#       <D model> lapo_stage2 lapo.plans_path=PLANS_FILE "${LAPO_STAGE2_ARGS[@]}".
#   lapo_row NAME MODEL [LABEL]   lapo-verl eval into $OUT/results/NAME and add it to the table's rows
#   lapo_report [lapo-verl report OPTION...]   the rows -> $OUT/table.md (+ .csv) and $OUT/frontier.png
#
# Resuming: every finished step leaves a marker in $OUT/.done/ (train_NAME holds the run dir); rerunning a
# script skips them, and unfinished training resumes from its last checkpoint (trainer.resume_mode=auto).
# Logs: $OUT/logs/<step>.log, and $OUT/logs/<step>.seconds (wall time) once the step succeeded. QUIET=1: the
# terminal gets one line per training step (lapo-verl run); otherwise each step's whole output goes there too.
#
# Reads: OUT, TRAIN, VAL (default TRAIN), NGPUS (GPUS: old name, warns), NNODES, CPU (=1: CPU backend),
#   TINY (=1: tiny runs; default CPU) with TINY_BATCH, TINY_N, TINY_STEPS, TINY_PROMPT_LEN, TINY_RESPONSE_LEN,
#   TINY_MICRO (defaults: `lapo-verl overrides --help`), SAVE_FREQ, QUIET, TOTAL_STEPS, LAPO_OUTPUT_ROOT (default
#   $OUT/runs), LAPO_EXPERIMENT (default: NAME), PUBLISHED, EVAL_ARGS (array), EXTRA (array: overrides added
#   to every training run), PYTHON. Overrides themselves come from lapo_verl/cpu_backend/overrides.py.

PYTHON=${PYTHON:-python}

lapo_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# NGPUS is the name; GPUS (older scripts) is still read, with one warning per run.
if [[ -z "${NGPUS:-}" && -n "${GPUS:-}" ]]; then
  [[ -n "${LAPO_GPUS_WARNED:-}" ]] || lapo_log "warning: GPUS is deprecated, use NGPUS (reading NGPUS=$GPUS)"
  export LAPO_GPUS_WARNED=1 NGPUS=$GPUS
fi

lapo_cpu_env() { eval "$(lapo-verl overrides --env)"; }

# Overrides every training run gets before its own: backend / hardware, tiny-run sizes, data.
lapo_run_overrides() {
  local flags=()
  [[ "${CPU:-0}" == 1 ]] && flags+=(--cpu)
  if [[ "${TINY:-${CPU:-0}}" == 1 ]]; then
    flags+=(--tiny --batch "${TINY_BATCH:-4}" --n "${TINY_N:-2}" --steps "${TINY_STEPS:-2}"
            --prompt-len "${TINY_PROMPT_LEN:-192}" --response-len "${TINY_RESPONSE_LEN:-16}"
            ${TINY_MICRO:+--micro "$TINY_MICRO"})
  elif [[ -n "${SAVE_FREQ:-}" ]]; then
    printf '%s\n' trainer.save_freq="$SAVE_FREQ"
  fi
  [[ ${#flags[@]} -gt 0 ]] && lapo-verl overrides "${flags[@]}"
  [[ "${CPU:-0}" == 1 ]] || printf '%s\n' trainer.n_gpus_per_node="${NGPUS:-4}" trainer.nnodes="${NNODES:-1}"
  printf '%s\n' data.train_files="$TRAIN" data.val_files="${VAL:-$TRAIN}"
}

lapo_done() { [[ -f "$OUT/.done/$1" ]]; }
lapo_mark() { mkdir -p "$OUT/.done"; printf '%s\n' "${2:-$(date -Is)}" >"$OUT/.done/$1"; }

# lapo_step LOG LABEL CMD...: run CMD with its whole output in $OUT/logs/LOG.log (QUIET=1: one line per
# training step on the terminal, or the error and the log's path on failure; otherwise everything is shown too).
lapo_step() {
  # called as `... || return` below and by callers: errexit is off in here, so every failure is returned by hand
  local name=$1 start=$SECONDS
  _lapo_step_run "$@" || return
  printf '%s\n' "$((SECONDS - start))" >"$OUT/logs/$name.seconds"
}
_lapo_step_run() {
  local log="$OUT/logs/$1.log" label=$2
  shift 2
  mkdir -p "$OUT/logs"
  if [[ "${QUIET:-0}" == 1 ]] && ! declare -F "$1" >/dev/null; then
    local steps=""  # training runs show step k/N
    if [[ " $* " == *" verl.trainer.main_ppo "* ]]; then
      steps=${TOTAL_STEPS:-}
      [[ -z "$steps" && "${TINY:-${CPU:-0}}" == 1 ]] && steps=${TINY_STEPS:-2}
    fi
    lapo-verl run --log "$log" --label "$label" ${steps:+--steps "$steps"} -- "$@"
  elif [[ "${QUIET:-0}" == 1 ]]; then
    "$@" >"$log" 2>&1 || { lapo_log "$label FAILED; last lines of $log:"; tail -n 40 "$log" >&2; return 1; }
  else
    "$@" 2>&1 | tee "$log"
  fi
}

lapo_merge_latest() {  # CKPT_DIR HF_DIR
  local ckpt=$1 hf=$2 step
  step=$(cat "$ckpt/latest_checkpointed_iteration.txt") || return
  lapo_log "merge $ckpt/global_step_$step/actor -> $hf"
  "$PYTHON" -m verl.model_merger merge --backend fsdp --local_dir "$ckpt/global_step_$step/actor" --target_dir "$hf" \
    || return
  # the merger writes weights + config; make sure the tokenizer travels with them
  if [[ ! -f "$hf/tokenizer_config.json" && -d "$ckpt/global_step_$step/actor/huggingface" ]]; then
    cp -n "$ckpt/global_step_$step/actor/huggingface"/*token* "$hf"/ 2>/dev/null || true
  fi
}

lapo_train() {  # NAME MODEL RECIPE [OVERRIDE...]
  local name=$1 model=$2 recipe=$3
  shift 3
  if lapo_done "train_$name"; then
    LAPO_RUN_DIR=$(<"$OUT/.done/train_$name")
    lapo_log "train $name: done before ($OUT/models/$name), skipped"
    return 0
  fi
  local args=() paths=()
  mapfile -t args < <(lapo_run_overrides)
  args+=(actor_rollout_ref.model.path="$model" lapo.output_root="${LAPO_OUTPUT_ROOT:-$OUT/runs}"
         lapo.experiment="${LAPO_EXPERIMENT:-$name}" "$@" ${EXTRA[@]+"${EXTRA[@]}"})
  mapfile -t paths < <(lapo-verl resolve "$recipe" lapo.run_dir trainer.default_local_dir -- "${args[@]}")
  [[ ${#paths[@]} == 2 ]] || { lapo_log "train $name: cannot resolve the run directory of +recipe=$recipe"; return 1; }
  LAPO_RUN_DIR=${paths[0]}
  lapo_log "train $name: +recipe=$recipe from $model -> $LAPO_RUN_DIR (log: $OUT/logs/$name.log)"
  if ! lapo_step "$name" "train $name" "$PYTHON" -m verl.trainer.main_ppo "+recipe=$recipe" "${args[@]}"; then
    # Ray gives its local node a fixed 30 s to register (ray/_private/node.py, no setting): on a busy machine it
    # can time out before anything ran. Nothing was trained then, so one more start is safe (resume_mode=auto).
    grep -q "The current node timed out during startup" "$OUT/logs/$name.log" 2>/dev/null || return 1
    lapo_log "train $name: Ray's node start-up timed out (busy machine); starting once more"
    lapo_step "$name" "train $name" "$PYTHON" -m verl.trainer.main_ppo "+recipe=$recipe" "${args[@]}" || return
  fi
  lapo_step "merge-$name" "merge $name" lapo_merge_latest "${paths[1]}" "$OUT/models/$name" || return
  lapo_mark "train_$name" "$LAPO_RUN_DIR"
}

lapo_plans() {  # STAGE1_NAME FILE [lapo-verl plans OPTION...]
  local s1=$1 file=$2
  shift 2
  local marker
  marker="plans_$(basename "$file" .json)"
  lapo_done "$marker" && { lapo_log "plans $file: done before, skipped"; return 0; }
  lapo_done "train_$s1" || { lapo_log "plans: stage-1 run $s1 has not finished"; return 1; }
  lapo_log "plans <- $(<"$OUT/.done/train_$s1")/records"
  lapo-verl plans --run "$(<"$OUT/.done/train_$s1")" --out "$file" --hist "${file%.json}_hist.png" "$@" || return
  lapo_mark "$marker"
}

lapo_chain() {  # D_NAME I_NAME MODEL PLANS_FILE
  local d=$1 i=$2 model=$3 plans=$4
  lapo_train "$d" "$model" lapo_stage1 ${LAPO_STAGE1_ARGS[@]+"${LAPO_STAGE1_ARGS[@]}"} || return
  lapo_plans "$d" "$plans" || return
  lapo_train "$i" "$OUT/models/$d" lapo_stage2 lapo.plans_path="$plans" \
    ${LAPO_STAGE2_ARGS[@]+"${LAPO_STAGE2_ARGS[@]}"}
}

LAPO_ROWS=() LAPO_NAMES=()
lapo_eval() {  # NAME MODEL
  local name=$1 model=$2
  if lapo_done "eval_$name"; then lapo_log "eval $name: done before, skipped"; return 0; fi
  local progress=()
  [[ "${QUIET:-0}" == 1 ]] && progress=(--no-progress)
  lapo_log "eval $name ($model) -> $OUT/results/$name"
  # lapo-verl eval resumes an interrupted evaluation
  lapo_step "eval-$name" "eval $name" lapo-verl eval --model "$model" --out "$OUT/results/$name" --name "$name" \
    ${progress[@]+"${progress[@]}"} ${EVAL_ARGS[@]+"${EVAL_ARGS[@]}"} || return
  lapo_mark "eval_$name"
}
lapo_row() { lapo_eval "$1" "$2" || return; LAPO_ROWS+=("$OUT/results/$1"); LAPO_NAMES+=("${3:-$1}"); }

lapo_report() {  # [lapo-verl report OPTION...]
  [[ ${#LAPO_ROWS[@]} -gt 0 ]] || { lapo_log "no rows to report"; return 2; }
  local cmd=(lapo-verl report "${LAPO_ROWS[@]}" --names "$(IFS=,; echo "${LAPO_NAMES[*]}")"
             --out "$OUT/table.md" --plot "$OUT/frontier.png" "$@")
  [[ -n "${PUBLISHED:-}" && "${PUBLISHED:-}" != none ]] && cmd+=(--published "$PUBLISHED")
  lapo_log "report: ${cmd[*]}"
  "${cmd[@]}"
}
