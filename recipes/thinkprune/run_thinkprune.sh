#!/usr/bin/env bash
# ThinkPrune's iterative pruning (arXiv 2504.01296) as chained verl runs: one +recipe=thinkprune run per length
# limit L (default 4096 -> 3072 -> 2048), each starting from the previous round's merged Hugging Face model
# (python -m verl.model_merger merge --backend fsdp ...). In each round the generation cap, the hard limit of the
# reward and the limit stated in the prompt are all L. Optionally evaluates every round with lapo-verl eval.
#
#   recipes/thinkprune/run_thinkprune.sh --model deepscaler/DeepScaleR-1.5B-Preview --gpus 4 \
#       --train data/train.parquet --out runs/thinkprune
#   recipes/thinkprune/run_thinkprune.sh --cpu --model /tmp/tiny --train toy/train.parquet --out /tmp/tp
#
# Outputs: $OUT/models/thinkprune-<L> (one HF model per round), $OUT/ckpt, $OUT/logs, and with --eval
# $OUT/results/thinkprune-<L> plus $OUT/table.md / frontier.png.
set -euo pipefail
# shellcheck disable=SC2034  # EXTRA, EVAL_ARGS: read by lib.sh

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
source "$HERE/../lib.sh"

usage() {
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
  cat <<USAGE

Options (environment variables in brackets):
  --model PATH     starting model (HF dir or hub id)            [MODEL] (required)
  --train FILE     training parquet                             [TRAIN] (required)
  --val FILE       validation parquet (default: --train)        [VAL]
  --out DIR        output root                                  [OUT] (default: runs/thinkprune)
  --gpus N         GPUs per node                                [NGPUS] (default: 4)
  --nnodes N       nodes                                        [NNODES] (default: 1)
  --limits "L..."  limits in order                              [LIMITS] (default: "4096 3072 2048"; --cpu: "24 20 16")
  --eval           evaluate the start model and every round, then write the table and plot  [EVAL=1]
  --cpu            CPU backend, 2-step rounds, tiny evaluation  [CPU=1]
  -- OVERRIDES...  Hydra overrides added to every round
  -h, --help       this text
USAGE
}

MODEL=${MODEL:-}
TRAIN=${TRAIN:-}
VAL=${VAL:-}
OUT=${OUT:-runs/thinkprune}
NGPUS=${NGPUS:-4}
NNODES=${NNODES:-1}
LIMITS=${LIMITS:-}
EVAL=${EVAL:-0}
CPU=${CPU:-0}
QUIET=${QUIET:-1}  # one line per training step; full logs in $OUT/logs/
EXTRA=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --model) MODEL=$2; shift 2 ;;
    --train) TRAIN=$2; shift 2 ;;
    --val) VAL=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --gpus) NGPUS=$2; shift 2 ;;
    --nnodes) NNODES=$2; shift 2 ;;
    --limits) LIMITS=$2; shift 2 ;;
    --eval) EVAL=1; shift ;;
    --cpu) CPU=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$MODEL" && -n "$TRAIN" ]] || { echo "--model and --train are required (see --help)" >&2; exit 2; }
[[ -f "$TRAIN" ]] || { echo "training file not found: $TRAIN" >&2; exit 2; }
VAL=${VAL:-$TRAIN}
mkdir -p "$OUT"/{logs,models,results}
OUT=$(cd "$OUT" && pwd)
EVAL_ARGS=()
if [[ "$CPU" == 1 ]]; then
  LIMITS=${LIMITS:-"24 20 16"}
  lapo_cpu_env
  export RAY_TMPDIR=${RAY_TMPDIR:-$(mktemp -d /tmp/lapo_ray_XXXX)}
  EVAL_ARGS=(--data fixtures --limit 2 --samples 1 --max-new-tokens 24 --backend transformers --device cpu)
fi
LIMITS=${LIMITS:-"4096 3072 2048"}

start=$MODEL
rows=() names=()
if [[ "$EVAL" == 1 ]]; then
  lapo_eval start "$MODEL"; rows+=("$OUT/results/start"); names+=("start")
fi
for L in $LIMITS; do
  name="thinkprune-$L"
  # the round's cap L: through the tiny-run sizes in --cpu mode (they set the same key)
  cap=()
  [[ "$CPU" == 1 ]] || cap=(data.max_response_length="$L")
  TINY_RESPONSE_LEN=$L lapo_train "$name" "$start" thinkprune ${cap[@]+"${cap[@]}"}
  start="$OUT/models/$name"
  if [[ "$EVAL" == 1 ]]; then
    lapo_eval "$name" "$start"; rows+=("$OUT/results/$name"); names+=("ThinkPrune-$L")
  fi
  lapo_log "round L=$L done: $start"
done
if [[ "$EVAL" == 1 ]]; then
  lapo-verl report "${rows[@]}" --names "$(IFS=,; echo "${names[*]}")" --base start \
    --out "$OUT/table.md" --plot "$OUT/frontier.png" --title "ThinkPrune rounds: $LIMITS"
fi
lapo_log "done: final model $start"
