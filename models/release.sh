#!/bin/bash
# Turn a finished training run into the default model, in order:
#   1. export the checkpoint as fp16 safetensors with its config and training record, and
#      its refinement plan (fit_refinement.py on held-out training crops),
#   2. fit the entropy coder's tables on training-image tokens (stored in the file),
#   3. evaluate on Kodak (PSNR, MS-SSIM, real .t1d sizes from the C++ encoder) and
#      record the table in the file's metadata,
#   4. make the golden vectors and gradients the C++ parity tests check, from the final file.
# Every step changes the file, so its SHA-256 (the model's identity) is final only
# after step 3; .t1d files made before that name an older identity.
#
#   bash models/release.sh [RUN_DIR] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-models/runs/main}
BUILD=${2:-build}
MODEL=models/tok1d-default.safetensors
export PY=${PY:-/usr/bin/python3}   # Debian's python3 with python3-torch (scripts/install-train) or its venv
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export THREADS=$OMP_NUM_THREADS

bash models/build_model.sh "$RUN" "$MODEL" tok1d-default models/experiments/refinement-fit.txt
# The C++ tool embeds the default model at build time: rebuild so it writes files
# for this model (the evaluation passes --model anyway).
cmake --build "$BUILD" -j2 --target tok1d
$PY models/evaluate.py --model "$MODEL" --tok1d "$BUILD/cli/tok1d" --update-model \
    --json models/eval-kodak.json --threads "$OMP_NUM_THREADS"
$PY models/export.py --golden-from "$MODEL" --golden tests/data/golden/golden.safetensors
$PY models/golden_gradients.py --model "$MODEL"
cmake --build "$BUILD" -j2
sha256sum "$MODEL"
