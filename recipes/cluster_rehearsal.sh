#!/usr/bin/env bash
# Cluster rehearsal: run this first on a new GPU machine or cluster, before spending GPU-days on the paper's runs.
#
#   NGPUS=4 bash recipes/cluster_rehearsal.sh [OUT]          (default OUT: runs/rehearsal)
#
# It runs the whole LAPO chain with the recipes as they are (vLLM rollout, FSDP, token budgets, the model's own
# chat template: R1-Distill's by default, through LAPO's agent loops), only shorter: STEPS steps per stage of BATCH
# prompts x 8 responses with RESPONSE_LEN-token responses, on the 40 benchmark problems shipped with lapo-verl
# (offline; a plumbing check, not training): stage 1 -> plans -> stage 2 -> a 2-problem MATH-500 evaluation with
# the vLLM evaluation backend. It ends with each training step's time and peak GPU memory (lapo-verl steps) and
# each stage's wall time. The preflight of every training run checks the config, the GPUs and the memory estimate
# before Ray starts. Re-running skips the finished steps (recipes/lib.sh markers).
#
# Settings (environment variables):
#   MODEL          [deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B]  (hub id or local Hugging Face directory)
#   NGPUS, NNODES  GPUs per node [all visible GPUs], nodes [1] (several nodes: start the Ray cluster first)
#   RESPONSE_LEN   [4096]   BATCH [16] prompts per step   STEPS [2] per stage
#   EVAL_BACKEND   [vllm]   (lapo-verl eval --backend)
#   COMMON_ARGS    extra Hydra overrides for both stages (space separated)
#   CPU=1          lapo_verl's CPU backend instead of GPUs (tests of this script only)
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0; fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REHEARSAL_OUT=${1:-runs/rehearsal}
PYTHON=${PYTHON:-python}
RESPONSE_LEN=${RESPONSE_LEN:-4096} BATCH=${BATCH:-16} STEPS=${STEPS:-2}
export MODEL=${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}
if [[ -z "${NGPUS:-}" && "${CPU:-0}" != 1 ]]; then
  NGPUS=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
  [[ "$NGPUS" -ge 1 ]] || { echo "cluster_rehearsal: no GPU visible here (torch.cuda.device_count() = 0); set NGPUS" >&2; exit 2; }
fi
export NGPUS NNODES=${NNODES:-1}

# data: the benchmark fixtures that ship inside the package (4 x 10 problems), 36 train / 4 validation rows
data="$REHEARSAL_OUT/data"
if [[ ! -f "$data/train.parquet" ]]; then
  fixtures=$("$PYTHON" -c 'from lapo_verl.eval.benchmarks import FIXTURES_DIR; print(FIXTURES_DIR)')
  lapo-verl prepare-data "$fixtures"/{math500,aime24,amc23,olympiadbench}.jsonl --val-fraction 0.1 --no-progress \
    --out "$data"
fi
export TRAIN="$data/train.parquet" VAL="$data/val.parquet"

# the recipes' own settings, shortened by lib.sh's one definition of a short run (lapo-verl overrides --tiny: batch,
# 8 responses, lengths, steps, no validation); no forced strategy, rollout engine or memory setting
export TINY=1 TINY_BATCH=$BATCH TINY_N=8 TINY_STEPS=$STEPS TINY_PROMPT_LEN=1024 TINY_RESPONSE_LEN=$RESPONSE_LEN
export EXPERIMENT=rehearsal OUTPUT_ROOT="$REHEARSAL_OUT" EVAL_MODELS=lapo_i PUBLISHED=""
export EVAL_ARGS="--data fixtures --benchmarks math500 --limit 2 --samples 1 --max-new-tokens $RESPONSE_LEN \
--backend ${EVAL_BACKEND:-vllm} --no-progress"
bash "$here/lapo_pipeline.sh"

logs="$REHEARSAL_OUT/rehearsal/logs"
echo
echo "[rehearsal] training steps (verl's timing_s/* and perf/max_memory_*_gb):"
lapo-verl steps "$logs/lapo_d.log" "$logs/lapo_i.log"
echo "[rehearsal] wall time per pipeline step (s):"
for step in lapo_d merge-lapo_d lapo_i merge-lapo_i eval-lapo_i; do
  [[ -f "$logs/$step.seconds" ]] && printf '  %-14s %s\n' "$step" "$(<"$logs/$step.seconds")"
done
echo "[rehearsal] ok: the recipes start, train, checkpoint, merge, make plans and evaluate on this machine"
