#!/bin/bash
# Turn a training run into a candidate model file and sweep it on Kodak with the C++ codec,
# so that experiments are compared on real file sizes (entropy coder, refinement) rather
# than on a rate estimate. The steps of release.sh without evaluate.py and golden vectors:
#   1. export the checkpoint and fit its entropy tables (to measure its bits per token),
#   2. fit the refinement plan at that token cost, export again with it, fit the tables,
#   3. tok1d sweep (tok1d only, PSNR and MS-SSIM) on the 24 Kodak images.
# Compare two candidates with models/compare_sweeps.py OUT_A/sweep/sweep.csv OUT_B/sweep/sweep.csv.
#
#   bash models/candidate.sh RUN_DIR OUT_DIR [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1
OUT=$2
BUILD=${3:-build}
PY=${PY:-/usr/bin/python3}
CACHE=${CACHE:-data/cache/train512.npz}
THREADS=${THREADS:-2}
mkdir -p "$OUT"
MODEL=$OUT/model.safetensors

$PY models/export.py --run "$RUN" --out "$MODEL" --name "$(basename "$RUN")"
BITS=$($PY models/fit_entropy.py --model "$MODEL" --out "$MODEL" --cache "$CACHE" |
       tee "$OUT/entropy-1.txt" | awk '/training crops/ {print $NF}')
echo "bits per token (training crops, k = K): $BITS"
PLAN=$($PY models/fit_refinement.py --model "$MODEL" --cache "$CACHE" --threads "$THREADS" \
       --token-bits "$BITS" | tee "$OUT/refinement-fit.txt" | tail -n 1)
echo "refinement plan: $PLAN"
$PY models/export.py --run "$RUN" --out "$MODEL" --name "$(basename "$RUN")" --refinement "$PLAN"
$PY models/fit_entropy.py --model "$MODEL" --out "$MODEL" --cache "$CACHE" > "$OUT/entropy.txt"
"$BUILD/cli/tok1d" sweep ../shared/data/kodak -o "$OUT/sweep" -f --model "$MODEL" \
    --codecs tok1d --no-adaptive --metrics psnr,msssim -j "$THREADS"
