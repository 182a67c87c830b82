#!/usr/bin/python3
"""Golden gradients of the decoder (issue 17): PyTorch autograd of the reference model, for
tests/codec/gradient_parity_test.cpp, which checks Tokenizer::DecodeValues and
DecodeValuesBackward against them.

  /usr/bin/python3 models/golden_gradients.py          # or /opt/tok1d-venv/bin/python
      [--model models/tok1d-default.safetensors] [--golden tests/data/golden/golden.safetensors]
      [--out tests/data/golden/gradients.safetensors]

Three tiles of the golden inputs (the gradient-and-disc tile and the two photo tiles) with the
model's own tokens from golden.safetensors, kept to k = 8, 32 and 128 tokens, and
deterministic offsets within each quantization cell (|o| < 0.45 levels), so the decoder's
input values are (digit - floor(L/2) + offset) / floor(L/2), computed in float32 as the C++
runtime computes them. The target is the input tile (u8 / 255, float32) and
loss = sum over pixels of (pixels - target)^2. The reference runs in float64 (the model's
float32 weights converted exactly), so the C++ float32 results are compared with the exact
gradient; the float32 autograd's own error is printed for comparison.

Written (safetensors, fp32 unless noted): tokens I32 [3,K], offsets [3,K,C], values [3,K,C],
keep I32 [3], target U8 [3,t,t,3], pixels_rows [3,t/8,t,3] (every 8th row of the decoded
pixels: the whole would be too big), loss [3] (per tile), grad_values [3,K,C]."""
import argparse
import hashlib
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model, read_safetensors, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TILES = [0, 2, 3]
KEEP = [8, 32, 128]
ROW_STEP = 8


def decoder_values(fsq_levels, tokens, offsets):
    """(digit - half + offset) / half in float32, in the C++ runtime's order of operations."""
    levels = np.array(fsq_levels, dtype=np.int64)
    basis = np.cumprod(np.concatenate([[1], levels[:-1]]))
    digits = (tokens[..., None].astype(np.int64) // basis) % levels
    half = (levels // 2).astype(np.float32)
    return ((digits.astype(np.float32) - half) + offsets) / half


def loss_and_gradient(model, values, keep, target, dtype):
    model = model.to(dtype)
    v = torch.tensor(values, dtype=dtype, requires_grad=True)
    pixels = model.decode_codes(v, torch.tensor(keep))
    per_tile = ((pixels - torch.tensor(target, dtype=dtype)) ** 2).sum(dim=(1, 2, 3))
    per_tile.sum().backward()
    return pixels.detach().numpy(), per_tile.detach().numpy(), v.grad.numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(HERE, "tok1d-default.safetensors"))
    ap.add_argument("--golden", default=os.path.join(HERE, "..", "tests", "data", "golden",
                                                     "golden.safetensors"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "golden",
                                                  "gradients.safetensors"))
    ap.add_argument("--keep", default=",".join(map(str, KEEP)),
                    help="tokens kept in each of the three tiles (at most the model's K)")
    args = ap.parse_args()
    keep_list = [int(s) for s in args.keep.split(",")]
    if len(keep_list) != len(TILES):
        ap.error(f"--keep needs {len(TILES)} values")

    model, meta, _ = load_model(args.model)
    with open(args.model, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    golden, golden_meta = read_safetensors(args.golden)
    if golden_meta.get("model_sha256") != sha:
        sys.exit(f"{args.golden} was made with another model than {args.model}")
    cfg = model.cfg
    tokens = golden["tokens"][TILES].astype(np.int32)
    inputs = golden["input"][TILES]
    rng = np.random.default_rng(17)
    offsets = rng.uniform(-0.45, 0.45, size=tokens.shape + (len(cfg["fsq_levels"]),)).astype(np.float32)
    values = decoder_values(cfg["fsq_levels"], tokens, offsets)
    keep = np.array(keep_list, dtype=np.int32)
    target = inputs.astype(np.float32) / np.float32(255)

    pixels, loss, grad = loss_and_gradient(model, values, keep, target, torch.float64)
    _, loss32, grad32 = loss_and_gradient(model, values, keep, target, torch.float32)
    scale = np.abs(grad).max()
    print(f"loss per tile {loss}; max |grad| {scale:.4g}")
    print(f"float32 autograd vs float64: max |grad diff| {np.abs(grad32 - grad).max():.3g} "
          f"({np.abs(grad32 - grad).max() / scale:.3g} of max |grad|), "
          f"max |loss diff| {np.abs(loss32 - loss).max():.3g}")
    for t, k in enumerate(keep_list):
        assert np.all(grad[t, k:] == 0), "dropped tokens must have no gradient"

    out = {
        "tokens": tokens,
        "offsets": offsets,
        "values": values.astype(np.float32),
        "keep": keep,
        "target": inputs,
        "pixels_rows": pixels[:, ::ROW_STEP].astype(np.float32),
        "loss": loss.astype(np.float32),
        "grad_values": grad.astype(np.float32),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    gsha = write_safetensors(args.out, out, {
        "model_sha256": sha, "model_name": meta.get("name", ""), "reference": "float64 autograd",
        "row_step": str(ROW_STEP), "torch": torch.__version__,
        "note": "loss = sum((decode_codes(values, keep) - target/255)^2); grad_values = dloss/dvalues"})
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) sha256 {gsha}")


if __name__ == "__main__":
    main()
