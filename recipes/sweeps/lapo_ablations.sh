#!/usr/bin/env bash
# The LAPO ablations as Hydra multiruns of verl's main_ppo (one process, jobs one after another; each job's
# run directory is named by the settings digest of its knobs, so jobs never resume each other's checkpoints).
#
#   recipes/sweeps/lapo_ablations.sh [--dry-run] ABLATION [-- EXTRA_OVERRIDES...]
#
# ABLATION:
#   band        stage 1 with band percentiles P20-P80, P30-P70 (paper), P40-P60  (lapo.stage1.band)
#   alpha       stage 1 with length-bonus weight 0.3, 0.7 (paper), 1.0            (lapo.stage1.alpha)
#   statistic   plans from one stage-1 run with median (paper) | mean | min, then one stage-2 job per plans file
#               (lapo-verl plans --statistic; the plans file is not a settings-tag key, so lapo.tag names the job)
#   position    stage 2 with the plan inside <think> (paper) vs before it       (lapo.stage2.plan_position)
#   implicit    stage 2 with vs without the plan sentence (reward only)         (lapo.stage2.plan_in_prompt)
#   range       stage 2 with a range plan of width 0.05, 0.1, 0.2               (+recipe=lapo_stage2_range)
#   beta_sigma  stage 2 reward weight x width: beta 0.7, 0.8 x sigma 60, 120, 240
#
# Variables: MODEL (stage-1 start / stage-2 start = the LAPO-D model for stage-2 sweeps), TRAIN, VAL, NGPUS,
# OUT (lapo.output_root, default runs/sweeps), STAGE1_RECORDS (statistic: the stage-1 records dir),
# CPU=1 (CPU backend, tiny 2-step jobs: recipes/lib.sh). Plans: lapo-verl plans' defaults but --statistic.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

DRY=0
[[ "${1:-}" == "--dry-run" ]] && { DRY=1; shift; }
case "${1:-}" in -h|--help|"") usage; [[ -n "${1:-}" ]] && exit 0 || exit 2 ;; esac
ABLATION=$1; shift
[[ "${1:-}" == "--" ]] && shift
EXTRA=("$@")

MODEL=${MODEL:-}
TRAIN=${TRAIN:-}
VAL=${VAL:-${TRAIN}}
NGPUS=${NGPUS:-4}
OUT=${OUT:-runs/sweeps}
CPU=${CPU:-0}
if [[ $DRY == 0 ]]; then
  [[ -n "$MODEL" && -n "$TRAIN" ]] || { echo "set MODEL and TRAIN (see --help)" >&2; exit 2; }
fi
[[ "$CPU" == 1 && $DRY == 0 ]] && lapo_cpu_env

common() {
  local overrides=()
  mapfile -t overrides < <(lapo_run_overrides)
  printf '%s\n' "${overrides[@]}" actor_rollout_ref.model.path="$MODEL" lapo.output_root="$OUT" \
    lapo.experiment="sweep_$ABLATION"
}

multirun() {  # RECIPE SWEEP_OVERRIDE...
  local recipe=$1; shift
  local base=()
  mapfile -t base < <(common)
  local cmd=("$PYTHON" -m verl.trainer.main_ppo -m "+recipe=$recipe" "${base[@]}" "$@" ${EXTRA[@]+"${EXTRA[@]}"})
  if [[ $DRY == 1 ]]; then printf '%q ' "${cmd[@]}"; echo; else "${cmd[@]}"; fi
}

case $ABLATION in
  band) multirun lapo_stage1 "lapo.stage1.band=[0.2,0.8],[0.3,0.7],[0.4,0.6]" ;;
  alpha) multirun lapo_stage1 lapo.stage1.alpha=0.3,0.7,1.0 ;;
  position) multirun lapo_stage2 lapo.stage2.plan_position=in_think,before_think ;;
  implicit) multirun lapo_stage2 lapo.stage2.plan_in_prompt=true,false ;;
  range) multirun lapo_stage2_range lapo.stage2.plan_range_width=0.05,0.1,0.2 ;;
  beta_sigma) multirun lapo_stage2 lapo.stage2.beta=0.7,0.8 lapo.stage2.sigma=60,120,240 ;;
  statistic)
    records=${STAGE1_RECORDS:-}
    [[ -n "$records" || $DRY == 1 ]] || { echo "set STAGE1_RECORDS to the stage-1 run's records dir" >&2; exit 2; }
    [[ $DRY == 1 ]] || mkdir -p "$OUT/plans"
    for stat in median mean min; do
      plans="$OUT/plans/plans-$stat.json"
      if [[ $DRY == 1 ]]; then
        echo "lapo-verl plans --records ${records:-<STAGE1_RECORDS>} --out $plans --statistic $stat"
      else
        lapo-verl plans --records "$records" --out "$plans" --statistic "$stat"
      fi
    done
    # one Hydra job per plans file; lapo.tag keeps their run dirs apart
    multirun lapo_stage2 \
      "lapo.plans_path=$OUT/plans/plans-median.json,$OUT/plans/plans-mean.json,$OUT/plans/plans-min.json" \
      "lapo.tag=plans-\${lapo.plans_path}"
    ;;
  *) echo "unknown ablation: $ABLATION (see --help)" >&2; exit 2 ;;
esac
