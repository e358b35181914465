#!/usr/bin/env bash
# Shared body of recipes/<paper setting>/run_lapo.sh: build the paper's training set once (unless TRAIN/VAL
# are given), then run recipes/lapo_pipeline.sh. The caller sets MODEL, EXPERIMENT, PUBLISHED defaults.
#
# Data (paper): 6,000 DeepScaleR-Preview problems + 4,000 MATH problems of levels 3-5, each a seeded random
# sample (--sample-per-input, --seed), the same set (one train.parquet) in both stages; prepare-data prints
# the counts per source. Validation rows (2%) are drawn from the problems not sampled.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DATA_DIR=${DATA_DIR:-data/lapo_paper}
if [[ -z "${TRAIN:-}" ]]; then
  if [[ ! -f "$DATA_DIR/train.parquet" ]]; then
    lapo-verl prepare-data hf:agentica-org/DeepScaleR-Preview-Dataset:train hf:DigitalLearningGmbH/MATH-lighteval:train \
      --math-levels 3,4,5 --sample-per-input 6000,4000 --dedupe --skip-bad-rows --val-fraction 0.02 --seed 0 \
      --out "$DATA_DIR"
  fi
  export TRAIN="$DATA_DIR/train.parquet" VAL="$DATA_DIR/val.parquet"
fi
exec bash "$here/lapo_pipeline.sh"
