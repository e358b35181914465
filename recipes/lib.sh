# Shared helpers of the recipes/ scripts (compare, thinkprune, sweeps) (sourced, not run). Bash, set -euo pipefail in the caller.
#
#   lapo_cpu_overrides      CPU backend overrides (lapo_verl.cpu_backend.overrides) + tiny-run settings
#   lapo_train NAME MODEL RECIPE [OVERRIDE...]
#                           python -m verl.trainer.main_ppo +recipe=RECIPE ... into $OUT/ckpt/NAME, then merge
#                           the last checkpoint into the Hugging Face model $OUT/models/NAME (skipped when it
#                           already exists: rerunning a script resumes where it stopped)
#   lapo_eval NAME MODEL    lapo-verl eval into $OUT/results/NAME
#
# Reads: OUT, TRAIN, VAL, NGPUS, NNODES, CPU, EVAL_ARGS (array), EXTRA (array), PYTHON.

PYTHON=${PYTHON:-python}

lapo_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

lapo_cpu_overrides() {
  "$PYTHON" -c "from lapo_verl.cpu_backend.overrides import CPU_TRAINER_OVERRIDES; print('\n'.join(CPU_TRAINER_OVERRIDES))"
  # tiny run: 2 steps, 4 prompts x 2 responses, short caps
  printf '%s\n' \
    actor_rollout_ref.rollout.calculate_log_probs=True \
    data.train_batch_size=4 actor_rollout_ref.rollout.n=2 \
    actor_rollout_ref.actor.ppo_mini_batch_size=4 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4 \
    data.max_prompt_length="${CPU_PROMPT_LEN:-192}" \
    data.max_response_length="${CPU_RESPONSE_LEN:-16}" \
    trainer.total_training_steps="${CPU_STEPS:-2}" \
    trainer.val_before_train=False trainer.test_freq=-1 \
    trainer.save_freq="${CPU_STEPS:-2}"
}

lapo_cpu_env() {
  eval "$("$PYTHON" -c "from lapo_verl.cpu_backend.overrides import CPU_ENV; print('\n'.join(f'export {k}={v!r}' for k, v in CPU_ENV.items()))")"
}

# Overrides every training run gets (data, hardware, logging), before the per-run ones.
lapo_run_overrides() {
  if [[ "${CPU:-0}" == 1 ]]; then
    lapo_cpu_overrides
  else
    printf '%s\n' trainer.n_gpus_per_node="${NGPUS:-4}" trainer.nnodes="${NNODES:-1}"
  fi
  printf '%s\n' data.train_files="$TRAIN" data.val_files="${VAL:-$TRAIN}"
}

lapo_merge_latest() {  # CKPT_DIR HF_DIR
  local ckpt=$1 hf=$2 step
  step=$(cat "$ckpt/latest_checkpointed_iteration.txt")
  lapo_log "merge $ckpt/global_step_$step/actor -> $hf"
  "$PYTHON" -m verl.model_merger merge --backend fsdp --local_dir "$ckpt/global_step_$step/actor" --target_dir "$hf"
  # the merger writes weights + config; make sure the tokenizer travels with them
  if [[ ! -f "$hf/tokenizer_config.json" && -d "$ckpt/global_step_$step/actor/huggingface" ]]; then
    cp -n "$ckpt/global_step_$step/actor/huggingface"/*token* "$hf"/ 2>/dev/null || true
  fi
}

lapo_train() {  # NAME MODEL RECIPE [OVERRIDE...]
  local name=$1 model=$2 recipe=$3
  shift 3
  local hf="$OUT/models/$name" ckpt="$OUT/ckpt/$name"
  if [[ -f "$hf/config.json" ]]; then
    lapo_log "train $name: $hf exists, skipped"
    return 0
  fi
  local overrides=()
  mapfile -t overrides < <(lapo_run_overrides)
  mkdir -p "$OUT/logs"
  lapo_log "train $name: +recipe=$recipe from $model (log: $OUT/logs/$name.log)"
  "$PYTHON" -m verl.trainer.main_ppo "+recipe=$recipe" "${overrides[@]}" \
    actor_rollout_ref.model.path="$model" \
    lapo.output_root="$OUT/runs" lapo.experiment="$name" \
    trainer.default_local_dir="$ckpt" trainer.experiment_name="$name" \
    "$@" ${EXTRA[@]+"${EXTRA[@]}"} >"$OUT/logs/$name.log" 2>&1 || {
      lapo_log "train $name FAILED; last lines of $OUT/logs/$name.log:"
      tail -n 40 "$OUT/logs/$name.log" >&2
      return 1
    }
  lapo_merge_latest "$ckpt" "$hf" >>"$OUT/logs/$name.log" 2>&1
}

lapo_eval() {  # NAME MODEL
  local name=$1 model=$2
  lapo_log "eval $name ($model)"
  lapo-verl eval --model "$model" --out "$OUT/results/$name" --name "$name" --no-progress \
    ${EVAL_ARGS[@]+"${EVAL_ARGS[@]}"} >"$OUT/logs/eval-$name.log" 2>&1 || {
      tail -n 40 "$OUT/logs/eval-$name.log" >&2
      return 1
    }
}
