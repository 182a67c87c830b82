#!/bin/bash
# Turn a training run into a model file with its entropy tables and refinement plan:
#   1. export the checkpoint and fit its entropy tables, to measure what a token costs,
#   2. fit the refinement plan at that cost (refinement pays where its bits beat the next
#      tokens') and store it in the file (the tables do not depend on the plan).
# Used by release.sh (the default model) and candidate.sh (experiments).
#
#   bash models/build_model.sh RUN_DIR MODEL NAME REFINEMENT_LOG
# Environment: PY (python with PyTorch), CACHE (training-image cache), THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=$1
MODEL=$2
NAME=$3
REFINEMENT_LOG=$4
PY=${PY:-/usr/bin/python3}
CACHE=${CACHE:-data/cache/train512.npz}
THREADS=${THREADS:-2}

$PY models/export.py --run "$RUN" --out "$MODEL" --name "$NAME"
FIT=$($PY models/fit_entropy.py --model "$MODEL" --out "$MODEL" --cache "$CACHE" | grep -v encoded)
echo "$FIT"   # bits per token at each k, held-out crops
BITS=$(echo "$FIT" | awk '/training crops/ {print $NF}')
echo "bits per token (training crops, k = K): $BITS"
PLAN=$($PY models/fit_refinement.py --model "$MODEL" --cache "$CACHE" --threads "$THREADS" \
       --token-bits "$BITS" | tee "$REFINEMENT_LOG" | tail -n 1)
echo "refinement plan: $PLAN"
$PY models/export.py --set-refinement "$MODEL" --refinement "$PLAN"
