#!/usr/bin/env bash
# LAPO on DeepSeek-R1-Distill-Qwen-1.5B (the paper's Table 1, lower half).
#
#   NGPUS=4 bash recipes/r1_distill_1.5b/run_lapo.sh
#
# Data: the paper's 6,000 DeepScaleR + 4,000 MATH (levels 3-5) problems, built once by recipes/paper_setting.sh
# unless TRAIN/VAL point to existing parquet files.
# Hyper-parameters are the recipes' defaults (hydra_conf/recipe/paper_grpo.yaml): GRPO, 8 responses,
# 128 prompts/step, lr 1e-6 cosine, KL loss 1e-4 (k3), 4,096-token responses, 3 epochs per stage.
# Override anything: COMMON_ARGS="trainer.total_epochs=1 ..." (Hydra syntax). Re-running skips finished steps.
#   MODEL       [deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B]   NGPUS [4]   NNODES [1]
#   DATA_DIR    [data/lapo_paper]                       EXPERIMENT [r1_distill_1.5b]
#   EVAL_ARGS   [paper protocol: 4 benchmarks, T=0.6, top-p 0.95, 32,768 tokens, 4/32 samples]
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0; fi
export MODEL=${MODEL:-deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B}
export EXPERIMENT=${EXPERIMENT:-r1_distill_1.5b}
export PUBLISHED=${PUBLISHED:-r1-distill}
exec bash "$(dirname "${BASH_SOURCE[0]}")/../paper_setting.sh"
