#!/bin/bash
# Turn a training run into a candidate model file and sweep it on Kodak with the C++ codec,
# so that experiments are compared on real file sizes (entropy coder, refinement) rather
# than on a rate estimate: the model file as release.sh makes it (build_model.sh), then
# tok1d sweep (tok1d only, PSNR and MS-SSIM) on the 24 Kodak images.
# Compare two candidates with models/compare_sweeps.py OUT_A/sweep/sweep.csv OUT_B/sweep/sweep.csv.
#
#   bash models/candidate.sh RUN_DIR OUT_DIR [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1
OUT=$2
BUILD=${3:-build}
export THREADS=${THREADS:-2}
mkdir -p "$OUT"
MODEL=$OUT/model.safetensors

bash models/build_model.sh "$RUN" "$MODEL" "$(basename "$RUN")" "$OUT/refinement-fit.txt" |
    tee "$OUT/build.txt"
"$BUILD/cli/tok1d" sweep ../shared/data/kodak -o "$OUT/sweep" -f --model "$MODEL" \
    --codecs tok1d --no-adaptive --metrics psnr,msssim -j "$THREADS"
