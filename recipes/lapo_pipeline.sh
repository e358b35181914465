#!/usr/bin/env bash
# LAPO end to end: stage 1 (Discovery) -> HF model -> plans -> stage 2 (Internalization) -> HF model
#                  -> evaluation of base / LAPO-D / LAPO-I -> table + frontier plot.
#
# Re-running skips finished steps (markers in <experiment dir>/.done/) and resumes unfinished training
# from its last checkpoint (verl's trainer.resume_mode=auto). Everything else is Hydra config: extra
# overrides go in STAGE1_ARGS / STAGE2_ARGS / COMMON_ARGS. The steps are recipes/lib.sh's (shared with
# the comparison, ThinkPrune and quickstart scripts).
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
#   CPU=1          run on lapo_verl's CPU backend (laptops, tests; not for real training), as tiny runs:
#                  TINY_BATCH, TINY_N, TINY_STEPS, TINY_PROMPT_LEN, TINY_RESPONSE_LEN (TINY=0: none)
#   SAVE_FREQ      trainer.save_freq of full-size runs                   [recipe: 20]
#   QUIET=1        full logs of every step in <experiment dir>/logs/, one progress line per training step
#                  on the terminal (lapo-verl run); TOTAL_STEPS shows them as step k/N
set -euo pipefail

usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; }
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then usage; exit 0; fi
: "${MODEL:?set MODEL (see --help)}" "${TRAIN:?set TRAIN}" "${VAL:?set VAL}"
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
EXPERIMENT=${EXPERIMENT:-lapo}
OUTPUT_ROOT=${OUTPUT_ROOT:-runs/lapo}
EVAL_MODELS=${EVAL_MODELS:-"base lapo_d lapo_i"}
PUBLISHED=${PUBLISHED:-}
# read by lib.sh
# shellcheck disable=SC2034
LAPO_OUTPUT_ROOT=$OUTPUT_ROOT LAPO_EXPERIMENT=$EXPERIMENT
read -r -a EXTRA <<<"${COMMON_ARGS:-}"
# shellcheck disable=SC2034
read -r -a LAPO_STAGE1_ARGS <<<"${STAGE1_ARGS:-}"
read -r -a LAPO_STAGE2_ARGS <<<"${STAGE2_ARGS:-}"
read -r -a EVAL_ARGS <<<"${EVAL_ARGS:-}"
[[ "${CPU:-0}" == 1 ]] && lapo_cpu_env

# the experiment directory and plans file as stage 2 resolves them (COMMON_ARGS / STAGE2_ARGS may move them)
mapfile -t overrides < <(lapo_run_overrides)
mapfile -t paths < <(lapo-verl resolve lapo_stage2 lapo.experiment_dir lapo.plans_path -- "${overrides[@]}" \
  lapo.output_root="$OUTPUT_ROOT" lapo.experiment="$EXPERIMENT" ${EXTRA[@]+"${EXTRA[@]}"} \
  ${LAPO_STAGE2_ARGS[@]+"${LAPO_STAGE2_ARGS[@]}"})
[[ ${#paths[@]} == 2 ]] || { echo "cannot resolve lapo.experiment_dir (see the error above)" >&2; exit 2; }
OUT=${paths[0]} plans=${paths[1]}
mkdir -p "$OUT/models" "$OUT/results"

lapo_chain lapo_d lapo_i "$MODEL" "$plans"
for name in $EVAL_MODELS; do
  case $name in
    base) lapo_row base "$MODEL" ;;
    *) lapo_row "$name" "$OUT/models/$name" ;;
  esac
done
# shellcheck disable=SC2119
lapo_report

lapo_log "done. artifacts:"
cat <<EOT
  stage-1 run (checkpoints, length records)  $(<"$OUT/.done/train_lapo_d")
  plans file                                 $plans
  stage-2 run                                $(<"$OUT/.done/train_lapo_i")
  models (Hugging Face)                      $OUT/models/{lapo_d,lapo_i}
  evaluation                                 $OUT/results/
  table / plot                               $OUT/table.md  $OUT/frontier.png
  logs                                       $OUT/logs/
EOT
