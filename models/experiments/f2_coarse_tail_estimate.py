"""Would coarser digits for the last tokens beat fewer tokens? A first estimate in PyTorch,
before the codec had quantiser steps (FORMAT.md, QSTP); held-out training crops only.

For k kept tokens, tokens at positions >= P = k/2 or k/4 keep only every 2nd or 3rd level;
rate = the per-(position, dimension) empirical entropy of the digits on the same 384 crops
(no refinement, no header), PSNR of the pooled MSE of the PyTorch decode. It overstated what
the codec measures (models/README.md, "Quantiser steps").

  /usr/bin/python3 models/experiments/f2_coarse_tail_estimate.py [MODEL] [--cache CACHE]
"""
import math
import os
import sys
import numpy as np
import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from export import load_model  # noqa
from data import load_dataset, CropSampler  # noqa

torch.set_num_threads(1)
args = sys.argv[1:]
cache = args[args.index("--cache") + 1] if "--cache" in args else "data/cache/train512.npz"
model_path = args[0] if args and args[0] != "--cache" else "models/tok1d-default.safetensors"
model, meta, tensors = load_model(model_path)
model.eval()
_, val = load_dataset(["../shared/data/train"], cache=cache)
crops = CropSampler(val, 128, seed=7).batch(384)
img = torch.tensor(crops).float() / 255
with torch.no_grad():
    bounded = torch.cat([model.fsq.bound(model.encode_latent(img[i:i + 64])) for i in range(0, len(img), 64)])
hw = model.fsq.half_width
K = bounded.shape[1]


def entropy_bits(q):  # q [N, K, D] integer levels -> bits per tile (sum over positions/dims)
    total = 0.0
    for j in range(q.shape[1]):
        for d in range(q.shape[2]):
            _, counts = np.unique(q[:, j, d].numpy(), return_counts=True)
            p = counts / counts.sum()
            total += -(p * np.log2(p)).sum()
    return total


def evaluate(k, P, step):
    q = torch.round(bounded)
    if P < k:
        coarse = torch.clamp(step * torch.round(bounded / step), -hw, hw)
        q[:, P:] = coarse[:, P:]
    q[:, k:] = 0
    keep = torch.full((len(q),), k)
    with torch.no_grad():
        out = torch.cat([model.decode_codes(q[i:i + 64] / hw, keep[i:i + 64]) for i in range(0, len(q), 64)])
    mse = ((out.clamp(0, 1) - img) ** 2).mean().item()
    bits = entropy_bits(q[:, :k].long())
    return bits / (128 * 128), 10 * math.log10(1 / mse)


for k in [8, 16, 32, 64, 128]:
    bpp, psnr = evaluate(k, k, 1)
    print(f"k={k:3d} plain          bpp {bpp:.4f} psnr {psnr:.3f}", flush=True)
    for frac in [0.5, 0.25]:
        P = int(k * frac)
        for step in [2, 3]:
            bpp, psnr = evaluate(k, P, step)
            print(f"k={k:3d} coarse>={P:3d} s{step} bpp {bpp:.4f} psnr {psnr:.3f}", flush=True)
