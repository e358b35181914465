#!/usr/bin/env bash
# GPU smoke test of the LAPO chain on one GPU machine without internet: both stages for a few steps, then a
# small evaluation, printing verl's per-step times.
#
#   bash tests/gpu/gpu_smoke.sh [OUT_DIR]             (default: runs/gpu_smoke)
#
# Needs lapo-verl installed with verl 0.9.1 and ray (pip install -e ".[gpu]" where wheels are reachable).
# Rollout: vLLM when it imports and a GPU is visible (actor FSDP on the GPU); otherwise the whole chain runs on
# lapo_verl's CPU backend (transformers rollout), which checks the plumbing on that machine, not GPU speed.
# MODEL=<HF dir> uses a real local model instead of the tiny quickstart model. STEPS (per stage) [3].
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
OUT=${1:-runs/gpu_smoke}
STEPS=${STEPS:-3}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python - <<'PY' || { echo "gpu_smoke: verl/ray/lapo-verl are not importable here: pip install -e '.[gpu]'"; exit 2; }
import verl, ray, lapo_verl.plugin  # noqa: F401
PY
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python "$here/recipes/dev/quickstart.py" --out "$OUT/assets" >/dev/null
MODEL=${MODEL:-$OUT/assets/model}
if python -c "import vllm, torch; assert torch.cuda.is_available()" 2>/dev/null; then
  echo "[gpu_smoke] rollout: vLLM on $(python -c 'import torch; print(torch.cuda.get_device_name(0))')"
  # the recipes' own GPU settings (vLLM rollout, TP 1, FSDP): nothing forced here, so this tests what users run
  backend=(CPU=0 NGPUS=1 COMMON_ARGS="")
else
  echo "[gpu_smoke] vLLM or a GPU is missing: running the chain on the CPU backend"
  backend=(CPU=1 NGPUS=1 COMMON_ARGS="")
fi
# tiny run of 8 prompts x 8 responses, 128-token answers (lapo-verl overrides --tiny), on either backend
env "${backend[@]}" TINY=1 TINY_BATCH=8 TINY_N=8 TINY_PROMPT_LEN=512 TINY_RESPONSE_LEN=128 TINY_STEPS="$STEPS" \
  MODEL="$MODEL" TRAIN="$OUT/assets/data/train.parquet" VAL="$OUT/assets/data/val.parquet" \
  EXPERIMENT=gpu_smoke OUTPUT_ROOT="$OUT/runs" EVAL_MODELS="lapo_i" \
  EVAL_ARGS="--data fixtures --samples 2 --max-new-tokens 128 --no-progress" \
  bash "$here/recipes/lapo_pipeline.sh" 2>&1 | tee "$OUT/gpu_smoke.log"
echo "[gpu_smoke] per-step times (s):"
python - "$OUT/gpu_smoke.log" <<'PY'
import re, sys
for line in open(sys.argv[1], errors="replace"):
    step = re.search(r"\bstep:(\d+) - ", line)
    total, gen = re.search(r"timing_s/step:([0-9.]+)", line), re.search(r"timing_s/gen:([0-9.]+)", line)
    if step and total:
        print(f"  step {step.group(1)}: {float(total.group(1)):.2f} s (generation {float(gen.group(1)) if gen else float('nan'):.2f} s)")
PY
