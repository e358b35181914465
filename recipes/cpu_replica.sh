#!/usr/bin/env bash
# LAPO CPU replica (issue 13): does LAPO make a model shorter at the same accuracy, with length following
# difficulty? Procedural arithmetic chains, a tiny over-thinking Qwen2, verl's real trainer on the CPU backend:
#   accuracy-only GRPO (+recipe=acc_only); LAPO stage 1 (+recipe=lapo_stage1) -> lapo-verl plans -> stage 2
#   (+recipe=lapo_stage2); held-out evaluation of base / acc-only / LAPO-D / LAPO-I (+ LAPO-I with plans given);
#   docs/results-cpu.md + .json + plots.
#
#   bash recipes/cpu_replica.sh [--seeds 1,2] [--out runs/replica] [--scale full|smoke] [--docs docs]
#
# Resumable: re-running skips finished stages (markers in <out>/seed<S>/.done/). Design: docs/replica-design.md.
# SMOKE=1 is --scale smoke --out runs/replica-smoke --docs runs/replica-smoke/docs (CI: a few steps, every stage).
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
PYTHON=${PYTHON:-python}
if [[ "${SMOKE:-0}" == "1" ]]; then
  set -- --scale smoke --out runs/replica-smoke --docs runs/replica-smoke/docs "$@"
fi
exec "$PYTHON" -m lapo_verl.replica.pipeline "$@"
