#!/usr/bin/env bash
# The GPU check (one GPU, under 5 minutes): a 2-trial tiny sweep through the real stage runner
# on CUDA, then ViT-B/16 16x224x224 MATS vs VideoMAE pre-training and MATS vs full fine-tuning
# steps in bf16 (clips/s, peak memory, ratios next to the MAC ratios); one table plus JSON.
#   benchmarks/gpu_check.sh [OUT_DIR]        (default: work_dirs/gpu_check)
#   benchmarks/gpu_check.sh OUT --cpu-dry-run (the same code paths, tiny, on the CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-work_dirs/gpu_check}"
shift || true
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
echo "uptime: $(uptime)"
# The 290 s limit guards a lent GPU's minutes; the CPU dry run (CI, tests) takes no wall-clock
# limit: a loaded or slower CI machine must not turn it into a failure.
case " $* " in
  *" --cpu-dry-run "*) exec "$python" -m mats_lab.trial.bench.gpu_check --out "$out" "$@" ;;
esac
exec timeout 290 "$python" -m mats_lab.trial.bench.gpu_check --out "$out" "$@"
