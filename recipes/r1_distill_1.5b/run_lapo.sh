#!/usr/bin/env bash
# LAPO on DeepSeek-R1-Distill-Qwen-1.5B (the paper's Table 1, lower half).
#
#   NGPUS=4 bash recipes/r1_distill_1.5b/run_lapo.sh
#
# Data (paper): 6,000 DeepScaleR-Preview problems + 4,000 MATH problems of levels 3-5, the same set in both
# stages. Built once with `lapo-verl prepare-data` unless TRAIN/VAL point to existing parquet files.
# Hyper-parameters are the recipes' defaults (hydra_conf/recipe/paper_grpo.yaml): GRPO, 8 responses,
# 128 prompts/step, lr 1e-6 cosine, KL loss 1e-4 (k3), 4,096-token responses, 3 epochs per stage.
# Override anything: COMMON_ARGS="trainer.total_epochs=1 ..." (Hydra syntax). Re-running skips finished steps.
#   MODEL       [deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B]   NGPUS [4]   NNODES [1]
#   DATA_DIR    [data/lapo_deepscaler]                    EXPERIMENT [r1_distill_1.5b]
#   EVAL_ARGS   [paper protocol: 4 benchmarks, T=0.6, top-p 0.95, 32,768 tokens, 4/32 samples]
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MODEL=${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}
export EXPERIMENT=${EXPERIMENT:-r1_distill_1.5b}
export NGPUS=${NGPUS:-4} NNODES=${NNODES:-1}
export PUBLISHED=${PUBLISHED:-r1-distill}
DATA_DIR=${DATA_DIR:-data/lapo_deepscaler}
if [[ -z "${TRAIN:-}" ]]; then
  if [[ ! -f "$DATA_DIR/train.parquet" ]]; then
    # --limit-per-input takes the first N rows of each source; pass pre-sampled files for a random subset
    lapo-verl prepare-data hf:agentica-org/DeepScaleR-Preview-Dataset:train hf:EleutherAI/hendrycks_math:train \
      --math-levels 3,4,5 --limit-per-input 6000 --dedupe --skip-bad-rows --val-fraction 0.02 --seed 0 \
      --out "$DATA_DIR"
  fi
  export TRAIN="$DATA_DIR/train.parquet" VAL="$DATA_DIR/val.parquet"
fi
exec bash "$here/lapo_pipeline.sh"
