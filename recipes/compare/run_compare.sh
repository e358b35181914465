#!/usr/bin/env bash
# Train the paper's comparison rows on one verl, one data set, one grader and one evaluation, then write one
# table and one frontier plot with every row next to the paper's published numbers.
#
#   recipes/compare/run_compare.sh --model deepscaler/DeepScaleR-1.5B-Preview --gpus 4 \
#       --train data/train.parquet --val data/val.parquet --out runs/compare --published deepscaler
#   CPU=1 recipes/compare/run_compare.sh --cpu --model /tmp/tiny --train toy/train.parquet --out /tmp/cmp
#
# Rows (--methods, comma-separated; default: base,acc_only,lapo,l1_exact,l1_max,thinkprune,dapo_overlong):
#   base            the model as given (evaluation only)
#   acc_only        +recipe=acc_only                          accuracy-only GRPO
#   lapo            +recipe=lapo_stage1 -> lapo-verl plans -> +recipe=lapo_stage2 (recipes/lib.sh lapo_chain,
#                   as recipes/lapo_pipeline.sh): rows LAPO-D and LAPO-I
#   l1_exact        +recipe=l1_exact                          L1-Exact
#   l1_max          +recipe=l1_max (from the L1-Exact model with --l1-max-from-exact, as L1 did)
#   thinkprune      +recipe=thinkprune, L = 4096 (ThinkPrune-4k; the 4k->3k->2k chain is recipes/thinkprune)
#   dapo_overlong   +recipe=dapo_overlong                     DAPO soft overlong punishment
#   Ablations of LAPO-I (each reuses the lapo stage-1 run and starts stage 2 from LAPO-D):
#   stat_mean, stat_min     plans with --statistic mean | min
#   before_think            +recipe=lapo_stage2_before_think
#   implicit                +recipe=lapo_stage2_implicit (no plan sentence, stage-2 reward only)
#   range                   +recipe=lapo_stage2_range
#   band_20_80, band_40_60  stage 1 with lapo.stage1.band=[0.2,0.8] | [0.4,0.6], then stage 2
#
# Plans: lapo-verl plans' defaults (median; the ablations change only --statistic).
# Rerunning the same command resumes: finished steps (markers in $OUT/.done/) are skipped. The terminal shows one
# line per training step (QUIET=0: everything); every step's full log is in $OUT/logs/.
set -euo pipefail
# shellcheck disable=SC2034  # EXTRA, LAPO_STAGE1_ARGS: read by lib.sh

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  cat <<USAGE

Options (environment variables in brackets):
  --model PATH        base model, Hugging Face dir or hub id            [MODEL] (required)
  --train FILE        training parquet (lapo-verl prepare-data)         [TRAIN] (required)
  --val FILE          validation parquet (default: --train)             [VAL]
  --out DIR           output root: runs/ models/ plans/ results/ logs/  [OUT] (default: runs/compare)
  --gpus N            GPUs per node                                     [NGPUS] (default: 4, the paper's)
  --nnodes N          nodes                                             [NNODES] (default: 1)
  --methods LIST      rows to produce (see above)                       [METHODS]
  --published NAME    deepscaler | r1-distill | none: the paper's rows  [PUBLISHED] (default: deepscaler)
  --l1-max-from-exact train L1-Max from the L1-Exact model (L1's recipe) [L1_MAX_FROM_EXACT=1]
  --cpu               CPU backend, tiny runs (2 steps, 16-token answers) and a tiny evaluation  [CPU=1]
  --eval-args "..."   extra lapo-verl eval options                      [EVAL_ARGS_STR]
  -- OVERRIDES...     Hydra overrides added to every training run (e.g. trainer.total_epochs=1)
  -h, --help          this text

Outputs: \$OUT/table.md (+ .csv), \$OUT/frontier.png, one results dir per row in \$OUT/results/.
USAGE
}

MODEL=${MODEL:-}
TRAIN=${TRAIN:-}
VAL=${VAL:-}
OUT=${OUT:-runs/compare}
NGPUS=${NGPUS:-4}
NNODES=${NNODES:-1}
METHODS=${METHODS:-base,acc_only,lapo,l1_exact,l1_max,thinkprune,dapo_overlong}
PUBLISHED=${PUBLISHED:-deepscaler}
L1_MAX_FROM_EXACT=${L1_MAX_FROM_EXACT:-0}
CPU=${CPU:-0}
EVAL_ARGS_STR=${EVAL_ARGS_STR:-}
QUIET=${QUIET:-1}
EXTRA=()

while [[ $# -gt 0 ]]; do
  case $1 in
    --model) MODEL=$2; shift 2 ;;
    --train) TRAIN=$2; shift 2 ;;
    --val) VAL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --gpus) NGPUS=$2; shift 2 ;;
    --nnodes) NNODES=$2; shift 2 ;;
    --methods) METHODS=$2; shift 2 ;;
    --published) PUBLISHED=$2; shift 2 ;;
    --l1-max-from-exact) L1_MAX_FROM_EXACT=1; shift ;;
    --cpu) CPU=1; shift ;;
    --eval-args) EVAL_ARGS_STR=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$MODEL" && -n "$TRAIN" ]] || { echo "--model and --train are required (see --help)" >&2; exit 2; }
[[ -f "$TRAIN" ]] || { echo "training file not found: $TRAIN" >&2; exit 2; }
VAL=${VAL:-$TRAIN}
mkdir -p "$OUT"/{logs,models,results,plans}
OUT=$(cd "$OUT" && pwd)

EVAL_ARGS=()
if [[ "$CPU" == 1 ]]; then
  lapo_cpu_env
  export RAY_TMPDIR=${RAY_TMPDIR:-$(mktemp -d /tmp/lapo_ray_XXXX)}
  # plumbing only: 2 fixture problems per benchmark, 1 sample, 16 new tokens (the tiny run's cap), transformers on CPU
  EVAL_ARGS=(--data fixtures --limit 2 --samples 1 --max-new-tokens 16 --backend transformers --device cpu)
fi
# shellcheck disable=SC2206
[[ -n "$EVAL_ARGS_STR" ]] && EVAL_ARGS+=($EVAL_ARGS_STR)

has() { [[ ",$METHODS," == *",$1,"* ]]; }
row() { lapo_row "$1" "$2" "$3"; }

lapo_log "compare: methods=$METHODS model=$MODEL out=$OUT cpu=$CPU gpus=$NGPUS"

if has base; then row base "$MODEL" "base"; fi
if has acc_only; then lapo_train acc_only "$MODEL" acc_only; row acc_only "$OUT/models/acc_only" "accuracy-only GRPO"; fi

# LAPO: lapo_chain (stage 1, plans, stage 2). Ablation rows reuse stage 1 (band rows run their own chain).
stage2() {  # NAME PLANS RECIPE LABEL: stage 2 from LAPO-D, then its row
  lapo_train "$1" "$OUT/models/lapo_d" "$3" lapo.plans_path="$2"
  row "$1" "$OUT/models/$1" "$4"
}
LAPO_ABLATIONS=(stat_mean stat_min before_think implicit range)
need_lapo=0
has lapo && need_lapo=1
for a in "${LAPO_ABLATIONS[@]}"; do has "$a" && need_lapo=1; done
if [[ $need_lapo == 1 ]]; then
  median="$OUT/plans/lapo_d-median.json"
  if has lapo; then
    lapo_chain lapo_d lapo_i "$MODEL" "$median"
    row lapo_d "$OUT/models/lapo_d" "LAPO-D"
    row lapo_i "$OUT/models/lapo_i" "LAPO-I"
  else
    lapo_train lapo_d "$MODEL" lapo_stage1
    lapo_plans lapo_d "$median"
  fi
  for stat in mean min; do
    if has "stat_$stat"; then
      lapo_plans lapo_d "$OUT/plans/lapo_d-$stat.json" --statistic "$stat"
      stage2 "lapo_i_$stat" "$OUT/plans/lapo_d-$stat.json" lapo_stage2 "LAPO-I (plan statistic $stat)"
    fi
  done
  if has before_think; then stage2 lapo_i_before_think "$median" lapo_stage2_before_think "LAPO-I (plan outside <think>)"; fi
  if has implicit; then stage2 lapo_i_implicit "$median" lapo_stage2_implicit "LAPO-I (no plan sentence, reward only)"; fi
  if has range; then stage2 lapo_i_range "$median" lapo_stage2_range "LAPO-I (range plan)"; fi
fi
for band in 20_80 40_60; do
  if has "band_$band"; then
    lo=0.${band%_*}; hi=0.${band#*_}
    LAPO_STAGE1_ARGS=("lapo.stage1.band=[$lo,$hi]")
    lapo_chain "lapo_d_band_$band" "lapo_i_band_$band" "$MODEL" "$OUT/plans/lapo_d_band_$band-median.json"
    LAPO_STAGE1_ARGS=()
    row "lapo_d_band_$band" "$OUT/models/lapo_d_band_$band" "LAPO-D (band P${band%_*}-P${band#*_})"
    row "lapo_i_band_$band" "$OUT/models/lapo_i_band_$band" "LAPO-I (band P${band%_*}-P${band#*_})"
  fi
done

if has l1_exact || { has l1_max && [[ $L1_MAX_FROM_EXACT == 1 ]]; }; then
  lapo_train l1_exact "$MODEL" l1_exact
  has l1_exact && row l1_exact "$OUT/models/l1_exact" "L1-Exact"
fi
if has l1_max; then
  start=$MODEL
  [[ $L1_MAX_FROM_EXACT == 1 ]] && start="$OUT/models/l1_exact"
  lapo_train l1_max "$start" l1_max
  row l1_max "$OUT/models/l1_max" "L1-Max"
fi
if has thinkprune; then
  tp=()
  [[ "$CPU" == 1 ]] || tp=(data.max_response_length=4096)
  lapo_train thinkprune "$MODEL" thinkprune ${tp[@]+"${tp[@]}"}
  row thinkprune "$OUT/models/thinkprune" "ThinkPrune-4k"
fi
if has dapo_overlong; then
  dp=()
  [[ "$CPU" == 1 ]] && dp=(lapo.dapo_overlong.buffer=4)  # the CPU cap is 16 tokens
  lapo_train dapo_overlong "$MODEL" dapo_overlong ${dp[@]+"${dp[@]}"}
  row dapo_overlong "$OUT/models/dapo_overlong" "DAPO overlong"
fi

[[ ${#LAPO_ROWS[@]} -gt 0 ]] || { echo "no rows produced: check --methods" >&2; exit 2; }
lapo_report --base "${LAPO_NAMES[0]}" --title "lapo-verl comparison: $(basename "$MODEL")"
lapo_log "done: $OUT/table.md $OUT/frontier.png"
