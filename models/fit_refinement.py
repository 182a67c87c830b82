#!/usr/bin/python3
"""Measure where refinement layers pay (container/FORMAT.md, REFN) and print the plan for
export.py --refinement.

Refinement sends token r's FSQ values once more, each to 1/2^bits of its quantization cell,
as a layer of its own after token layer after[r]. On held-out training crops (never Kodak)
this script measures the mean PSNR of the decoder at each token count k of a ladder with
the first m tokens refined, and places refinement r at the first k where its gain per bit
is at least that of the next tokens (their PSNR gain per entropy-coded bit); refinements
that pay nowhere along the ladder but do at k = K go after the last token.

  /usr/bin/python3 models/fit_refinement.py --model models/tok1d-default.safetensors
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import fixed_crops, load_dataset  # noqa: E402
from export import load_model  # noqa: E402
from tok1d_model import refined_codes  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", nargs="+", default=["../shared/data/train"])
    ap.add_argument("--cache", default="data/cache/train512.npz")
    ap.add_argument("--crops", type=int, default=128, help="held-out crops to measure on")
    ap.add_argument("--bits", type=int, default=2, help="refinement bits per FSQ dimension")
    ap.add_argument("--max-refined", type=int, default=16)
    ap.add_argument("--token-bits", type=float, default=17.0,
                    help="entropy-coded bits of a token (docs/entropy.md: 15.3-17.4)")
    ap.add_argument("--ladder", default="1,2,3,4,6,8,12,16,24,32,48,64,96,128")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, _, _ = load_model(args.model)
    K, C = model.cfg["tokens"], len(model.cfg["fsq_levels"])
    _, val = load_dataset(args.data, cache=args.cache)
    x = torch.tensor(fixed_crops(val, model.cfg["tile"], per_image=2)[:args.crops]).float() / 255
    ladder = [k for k in (int(s) for s in args.ladder.split(",")) if k <= K]
    if ladder[-1] != K:
        ladder.append(K)
    ms = list(range(0, min(args.max_refined, K) + 1))
    psnr = {}  # (k, m) -> dB, mean over crops of the batch MSE
    with torch.no_grad():
        b = model.fsq.bound(model.encode_latent(x))
        for k in ladder:
            keep = torch.full((len(x),), k)
            for m in ms:
                if m > k:
                    continue
                # tokens 0..m-1 refined: a plan that places each right after its token (m <= k)
                plan = {"bits": args.bits, "after": list(range(m))} if m else None
                y = model.decode_codes(refined_codes(model.fsq, b, keep, plan), keep).clamp(0, 1)
                psnr[k, m] = float(10 * torch.log10(1 / ((y - x) ** 2).mean()))
            print(f"k={k:3d} " + " ".join(f"m{m}={psnr[k, m]:.3f}" for m in ms if m <= k), flush=True)

    refine_bits = args.bits * C
    after = []
    for r in ms[:-1]:
        placed = None
        for i, k in enumerate(ladder):
            if k <= r or (after and k - 1 < after[-1]):
                continue
            gain = (psnr[k, r + 1] - psnr[k, r]) / refine_bits
            if i + 1 < len(ladder):
                nxt = ladder[i + 1]
                token_gain = (psnr[nxt, 0] - psnr[k, 0]) / ((nxt - k) * args.token_bits)
            else:  # past the last token: refine while it pays half the last tokens' rate
                prev = ladder[i - 1]
                token_gain = 0.5 * (psnr[k, 0] - psnr[prev, 0]) / ((k - prev) * args.token_bits)
            if gain >= token_gain:
                placed = k - 1  # after token layer k-1: present from k tokens on
                break
        if placed is None:
            break
        after.append(placed)
    plan = {"bits": args.bits, "after": after}
    print("gain at K of the plan: %+.3f dB for %d bits a tile" %
          (psnr[K, len(after)] - psnr[K, 0], len(after) * refine_bits))
    print(json.dumps(plan))


if __name__ == "__main__":
    main()
