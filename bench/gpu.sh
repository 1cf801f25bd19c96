#!/usr/bin/env bash
# End-to-end timings on a device, process start -> verdict, one `verify` process per instance (issue 16):
# the 38 ACAS Xu instances (bench/acas38.py), 20 mnist_fc and 10 oval21 instances spread over their networks.
# Each section has a wall budget (caps are cut to what is left of it), so the whole script ends within
# ~8.5 minutes whatever the verdicts; per-instance CSVs go to $OUT_DIR as each instance ends.
#
#   bench/gpu.sh                      # --device cuda
#   DEVICE=cpu SCALE=0.05 bench/gpu.sh  # the CPU fallback, with short caps (a smoke test)
#
# Environment: DEVICE (cuda), PYTHON (python3: the interpreter with torch), OUT_DIR (bench-gpu-out),
# SCALE (1: multiplies every cap and budget), BENCHMARKS (../shared/benchmarks next to the checkout).
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
PYTHON="${PYTHON:-python3}"
OUT_DIR="${OUT_DIR:-bench-gpu-out}"
SCALE="${SCALE:-1}"
BENCHMARKS="${BENCHMARKS:-$(cd .. && pwd)/shared/benchmarks}"
mkdir -p "$OUT_DIR"
scaled() { "$PYTHON" -c "import sys; print(max(1.0, float(sys.argv[1]) * float(sys.argv[2])))" "$1" "$SCALE"; }

"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda available:', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu.sh: no CUDA device here; rerun with DEVICE=cpu for the CPU fallback" >&2
    exit 2
fi
START=$(date +%s)
status=0

echo "== ACAS Xu, 38 instances (cap 60 s, section budget 240 s) on $DEVICE"
"$PYTHON" bench/acas38.py --bench "$BENCHMARKS/acasxu" --device "$DEVICE" --timeout "$(scaled 60)" \
    --budget "$(scaled 240)" --out "$OUT_DIR/acas38.csv" || status=1

echo "== mnist_fc, 20 instances over 256x2/4/6 (cap 30 s, section budget 150 s) on $DEVICE"
"$PYTHON" bench/per_process.py "$BENCHMARKS/mnist_fc" --limit 20 --spread --engine "relu split" \
    --device "$DEVICE" --timeout "$(scaled 30)" --budget "$(scaled 150)" --out "$OUT_DIR/mnist_fc.csv" || status=1

echo "== oval21, 10 instances over base/deep/wide (cap 60 s, section budget 100 s) on $DEVICE"
"$PYTHON" bench/per_process.py "$BENCHMARKS/oval21" --limit 10 --spread --engine "relu split" \
    --device "$DEVICE" --timeout "$(scaled 60)" --budget "$(scaled 100)" --out "$OUT_DIR/oval21.csv" || status=1

echo "== gpu.sh: $(( $(date +%s) - START )) s in all; exit $status (1: a wrong verdict)"
exit $status
