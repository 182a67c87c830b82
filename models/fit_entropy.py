#!/usr/bin/python3
"""Fit the range coder's probability tables on training-image token statistics and store
them inside the model file (so the model's SHA-256 covers them).

  /usr/bin/python3 models/fit_entropy.py --model models/tok1d-default.safetensors \\
      --out models/tok1d-default.safetensors

Runs the model's encoder on random 128x128 crops of the training images (never Kodak),
counts every FSQ digit per (token position j, dimension d, activity context c) and writes
quantised frequency tables as "entropy.*" tensors plus an "entropy" metadata entry. The
coding they drive is specified in container/FORMAT.md (coder 1, "range") and implemented in
codec/entropy_coder.cpp; the context computed here must match it exactly:

  activity(token)  = sum over d of |2 digit_d - (L_d - 1)|           (0 at every centre)
  A(tile, j)       = sum of activity over tokens max(0, j - W) .. j - 1 of the tile
  context(tile, j) = number of thresholds[j][.] <= A(tile, j)

Thresholds are per-position quantiles of A, so each context holds about as many tiles.
Prints the held-out bits per token (ideal code length under the quantised tables, on crops
of the validation images) per k against the raw ceil-free log2(prod levels)."""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import CropSampler, load_dataset  # noqa: E402
from export import load_model, read_safetensors, write_safetensors  # noqa: E402

TABLES_VERSION = 1
REPORT_K = [1, 2, 4, 8, 16, 32, 64, 128]


def token_digits(tokens, levels):
    """tokens[..., K] -> digits[..., K, D], dimension 0 least significant."""
    digits = np.empty(tokens.shape + (len(levels),), np.int64)
    rest = tokens.astype(np.int64)
    for d, level in enumerate(levels):
        digits[..., d] = rest % level
        rest //= level
    return digits


def activity_sums(digits, levels, window):
    """A[..., j]: summed activity of the window of tokens before j (see the module doc)."""
    activity = np.abs(2 * digits - (np.asarray(levels) - 1)).sum(-1)
    csum = np.concatenate([np.zeros(activity.shape[:-1] + (1,), np.int64), np.cumsum(activity, -1)], -1)
    j = np.arange(activity.shape[-1])
    return csum[..., j] - csum[..., np.maximum(j - window, 0)]


def contexts_of(sums, thresholds):
    """context[..., j] = number of thresholds[j] <= sums[..., j]."""
    ctx = np.zeros(sums.shape, np.int64)
    for b in range(thresholds.shape[1]):
        ctx += sums >= thresholds[:, b]
    return ctx


def quantise(probabilities, prob_bits):
    """Rows of probabilities -> integer frequencies, each >= 1, summing to 2^prob_bits."""
    total = 1 << prob_bits
    n = probabilities.shape[-1]
    freq = 1 + np.floor(probabilities * (total - n)).astype(np.int64)
    remainder = total - freq.sum(-1, keepdims=True)
    # hand the remainder (< n) to the most probable symbols, one each
    rank = np.argsort(np.argsort(-probabilities, -1, kind="stable"), -1)
    freq += rank < remainder
    return freq


def fit_tables(digits, levels, contexts, window, prob_bits, prior):
    """Counts digits per (j, d, context) and returns (frequencies[K,D,C,Lmax], thresholds[K,C-1])."""
    n, K, D = digits.shape
    sums = activity_sums(digits, levels, window)
    quantiles = np.arange(1, contexts) / contexts
    thresholds = np.ceil(np.quantile(sums, quantiles, axis=0).T).astype(np.int64) if contexts > 1 \
        else np.zeros((K, 0), np.int64)
    ctx = contexts_of(sums, thresholds)
    lmax = max(levels)
    freqs = np.zeros((K, D, contexts, lmax), np.int64)
    for d, level in enumerate(levels):
        counts = np.zeros((K, contexts, level))
        np.add.at(counts, (np.broadcast_to(np.arange(K), (n, K)), ctx, digits[..., d]), 1)
        # A context with few samples leans on the position's marginal distribution.
        marginal = counts.sum(1, keepdims=True) + 0.5
        marginal /= marginal.sum(-1, keepdims=True)
        p = (counts + prior * level * marginal) / (counts.sum(-1, keepdims=True) + prior * level)
        freqs[:, d, :, :level] = quantise(p, prob_bits)
    return freqs, thresholds


def code_length_bits(digits, levels, freqs, thresholds, window, prob_bits):
    """Ideal code length in bits of every token [n, K] under the tables."""
    n, K, D = digits.shape
    ctx = contexts_of(activity_sums(digits, levels, window), thresholds)
    j = np.broadcast_to(np.arange(K), (n, K))
    bits = np.zeros((n, K))
    for d in range(D):
        bits -= np.log2(freqs[j, d, ctx, digits[..., d]] / (1 << prob_bits))
    return bits


def encode_crops(model, crops, batch=64):
    tokens = []
    start = time.time()
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            tokens.append(model.encode(torch.tensor(crops[i:i + batch]).float() / 255).numpy())
            done = i + len(tokens[-1])
            print(f"\r  encoded {done}/{len(crops)} tiles ({done / (time.time() - start):.1f}/s)",
                  end="", flush=True)
    print()
    return np.concatenate(tokens)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model file (safetensors) to fit tables for")
    ap.add_argument("--out", required=True, help="model file with tables (may be --model)")
    ap.add_argument("--data", nargs="+", default=["../shared/data/train"])
    ap.add_argument("--cache", default="data/cache/train512.npz")
    ap.add_argument("--tiles", type=int, default=16384, help="training crops to count")
    ap.add_argument("--val-tiles", type=int, default=1024, help="held-out crops to report on")
    ap.add_argument("--contexts", type=int, default=8, help="activity contexts per position (1..256)")
    ap.add_argument("--window", type=int, default=16, help="tokens the activity sums over")
    ap.add_argument("--prob-bits", type=int, default=15, help="frequencies sum to 2^this (8..16)")
    ap.add_argument("--prior", type=float, default=0.5,
                    help="pseudo-counts per level drawn towards the position's marginal")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-tokens", help="also save the sampled tokens (npz) for analysis")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not 1 <= args.contexts <= 256 or not 8 <= args.prob_bits <= 16:
        sys.exit("--contexts must be 1..256 and --prob-bits 8..16")

    model, meta, tensors = load_model(args.model)
    cfg = model.cfg
    levels, K, tile = cfg["fsq_levels"], cfg["tokens"], cfg["tile"]
    window = min(args.window, K)
    train_images, val_images = load_dataset(args.data, cache=args.cache)
    print(f"{args.model}: K={K}, levels={levels}; {len(train_images)} training images")

    train_crops = CropSampler(train_images, tile, seed=args.seed).batch(args.tiles)
    val_crops = CropSampler(val_images, tile, seed=args.seed + 1).batch(args.val_tiles)
    train_tokens = encode_crops(model, train_crops)
    val_tokens = encode_crops(model, val_crops)
    if args.save_tokens:
        np.savez(args.save_tokens, train=train_tokens, val=val_tokens, levels=np.array(levels))

    train_digits = token_digits(train_tokens, levels)
    val_digits = token_digits(val_tokens, levels)
    freqs, thresholds = fit_tables(train_digits, levels, args.contexts, window, args.prob_bits, args.prior)

    raw_bits = math.log2(float(np.prod(levels)))
    per_position = code_length_bits(val_digits, levels, freqs, thresholds, window, args.prob_bits).mean(0)
    train_bits = code_length_bits(train_digits, levels, freqs, thresholds, window, args.prob_bits).mean()
    report = {}
    print(f"held-out bits per token (raw log2 prod levels = {raw_bits:.2f}):")
    for k in REPORT_K:
        if k <= K:
            bits = float(per_position[:k].mean())
            report[str(k)] = round(bits, 3)
            print(f"  k={k:3d}: {bits:6.2f}  ({100 * (1 - bits / raw_bits):4.1f}% saved)")
    print(f"  training crops, k={K}: {train_bits:.2f}")

    out_tensors = {name: array for name, array in tensors.items() if not name.startswith("entropy.")}
    out_tensors["entropy.frequencies"] = freqs.astype(np.uint16)
    out_tensors["entropy.activity_thresholds"] = thresholds.astype(np.int32).reshape(K, args.contexts - 1)
    meta = dict(meta)
    meta["entropy"] = json.dumps({
        "version": TABLES_VERSION, "prob_bits": args.prob_bits, "contexts": args.contexts,
        "activity_window": window,
        "fit": {"tiles": args.tiles, "val_tiles": args.val_tiles, "seed": args.seed, "prior": args.prior,
                "data": args.data, "val_bits_per_token": report,
                "raw_bits_per_token": round(raw_bits, 3)}}, sort_keys=True)
    sha = write_safetensors(args.out, out_tensors, meta)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) sha256 {sha}")


if __name__ == "__main__":
    main()
