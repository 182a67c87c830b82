#!/usr/bin/python3
"""Encode-time token optimisation (issue 17), the PyTorch prototype: per tile, start from the
encoder's bounded FSQ values and descend on the decoded tile's squared error through the fixed
decoder, with rounding handled by straight-through (optionally annealed from noise), keeping
the best rounded iterate per tile; then a discrete polish that moves single digits one level
up or down where the squared error (plus lambda * bits) falls.

It measures what each variant gains on held-out training photos (never Kodak: the codec's
Kodak numbers come from `tok1d sweep`), to choose the algorithm the C++ encoder implements.

  /opt/tok1d-venv/bin/python models/optimize_tokens.py --images 6 --k 8,32 --steps 40
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import list_images, load_rgb, split_train_val, tile_image  # noqa: E402
from export import load_model, refinement_plan  # noqa: E402
from fit_entropy import activity_sums, code_length_bits, contexts_of  # noqa: E402


class TokenBits:
    """Code length in bits of each tile's first k tokens under the model's entropy tables."""

    def __init__(self, tensors, meta, model):
        info = json.loads(meta["entropy"])
        self.freqs = tensors["entropy.frequencies"].astype(np.int64)
        self.thresholds = tensors["entropy.activity_thresholds"].astype(np.int64)
        self.window, self.prob_bits = info["activity_window"], info["prob_bits"]
        self.levels = [int(v) for v in model.cfg["fsq_levels"]]
        self.half_width = model.fsq.half_width.numpy()

        probs = self.freqs / float(1 << self.prob_bits)
        self.costs = torch.tensor(-np.log2(np.maximum(probs, 1e-9)), dtype=torch.float32)

    def __call__(self, b, k):
        digits = (np.rint(b.detach().numpy()) + self.half_width).astype(np.int64)
        bits = code_length_bits(digits, self.levels, self.freqs, self.thresholds, self.window,
                                self.prob_bits)
        return bits[:, :k].sum(1)

    def soft(self, v, k):
        """Bits of the first k tokens [B] as a function of continuous values v [B, K, D]: the
        digits' code lengths interpolated linearly between levels (contexts from the rounded
        values, held fixed), so a gradient says which way is cheaper."""
        digits = (np.rint(v.detach().numpy()) + self.half_width).astype(np.int64)
        ctx = torch.tensor(contexts_of(activity_sums(digits, self.levels, self.window), self.thresholds))
        B, K, D = v.shape
        x = (v[:, :k] + torch.tensor(self.half_width)).clamp(0, max(self.levels) - 1)
        lo = torch.floor(x).clamp(max=max(self.levels) - 2)
        frac = x - lo
        j = torch.arange(k).view(1, k, 1).expand(B, k, D)
        d = torch.arange(D).view(1, 1, D).expand(B, k, D)
        c = ctx[:, :k, None].expand(B, k, D)
        table = self.costs[j, d, c]  # [B, k, D, Lmax]
        c_lo = table.gather(-1, lo.long().unsqueeze(-1)).squeeze(-1)
        c_hi = table.gather(-1, lo.long().unsqueeze(-1) + 1).squeeze(-1)
        return (c_lo + frac * (c_hi - c_lo)).sum(dim=(1, 2))


class Quantizer:
    """Rounds bounded FSQ values to what the decoder gets: integer levels, or for refined
    tokens (the first R, once keep > after[r]) the centre of one of 2^bits parts of the cell."""

    def __init__(self, model, plan):
        self.half = model.fsq.half_l
        self.half_width = model.fsq.half_width
        self.plan = plan

    def __call__(self, b, keep):
        q = torch.round(b)
        if self.plan:
            bits, after = self.plan["bits"], torch.tensor(self.plan["after"])
            R = len(after)
            n = 2 ** bits
            part = torch.clamp(torch.floor((b[:, :R] - q[:, :R] + 0.5) * n), 0, n - 1)
            on = (keep > after).view(1, R, 1).to(b.dtype)
            q = torch.cat([q[:, :R] + ((part + 0.5) / n - 0.5) * on, q[:, R:]], 1)
        return q

    def clamp(self, b):
        return torch.maximum(torch.minimum(b, self.half), -self.half)


def tile_sse(model, values, keep, target):
    """Squared error per tile (pixel values in [0, 1], output clamped as the codec clamps)."""
    K = values.shape[1]
    keep_t = torch.full((values.shape[0],), keep)
    out = model.decode_codes(values / model.fsq.half_width, keep_t)
    del K
    return ((out - target) ** 2).sum(dim=(1, 2, 3)), out


def optimise(model, quant, b0, target, keeps, weights, steps, lr, anneal, lam=0.0, rate=None):
    """Adam on the bounded values through the rounding (straight-through), the loss a weighted
    sum over the prefixes `keeps`; returns the best rounded iterate per tile (by that loss)."""
    u = b0.clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    K = b0.shape[1]
    mask = [(torch.arange(K) < k).view(1, K, 1).float() for k in keeps]

    def loss_of(bq):
        total = 0
        for k, w in zip(keeps, weights):
            sse, _ = tile_sse(model, bq * mask[keeps.index(k)], k, target)
            total = total + w * sse
        return total

    def exact_loss(bq):
        return loss_of(bq) + (lam * torch.tensor(rate(bq, keeps[0]), dtype=torch.float32) if lam else 0)

    with torch.no_grad():
        best_loss = exact_loss(quant(b0, keeps[0]))
    best = b0.clone()
    for step in range(steps):
        t = step / max(steps - 1, 1)
        v = quant.clamp(u)
        hard = quant(v, keeps[0])
        if anneal:  # uniform noise in place of the rounding error, fading to hard rounding
            noise = torch.rand_like(v) - 0.5
            bq = v + ((hard - v) * t + noise * (1 - t)).detach()
        else:
            bq = v + (hard - v).detach()
        loss = loss_of(bq)
        if lam:
            soft = rate.soft(v, keeps[0])
            loss = loss + lam * (soft + (rate.soft(hard, keeps[0]) - soft).detach())
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        with torch.no_grad():
            cand = quant.clamp(u)
            lq = exact_loss(quant(cand, keeps[0]))
            better = lq < best_loss
            best[better] = cand[better]
            best_loss = torch.where(better, lq, best_loss)
    return best, best_loss


def polish(model, quant, b, target, keeps, weights, rounds, per_round, lam=0.0, rate=None, multi=True):
    """Greedy single-step moves of the bounded values: one level, or one refinement part for a
    refined token. Every move of the kept values is ranked by the first-order change of the
    objective (weighted squared error over the prefixes `keeps`, plus lam * bits); the
    `per_round` best are tried exactly and the best that helps is applied."""
    keep = keeps[0]
    B, K, C = b.shape
    masks = [(torch.arange(K) < kk).view(1, K, 1) for kk in keeps]
    step = torch.ones(1, K, 1)
    if quant.plan:
        after = torch.tensor(quant.plan["after"])
        step[0, : len(after), 0] = torch.where(keep > after, 1.0 / 2 ** quant.plan["bits"], 1.0)

    def objective(v, soft):
        total = lam * (rate.soft(v, keep) if soft else torch.tensor(rate(v, keep), dtype=torch.float32)) \
            if lam else 0
        for kk, w, m in zip(keeps, weights, masks):
            vv = v if kk == keep else quant(v, kk)
            total = total + w * tile_sse(model, vv * m, kk, target)[0]
        return total

    # Move from the centre of the current cell, so a step lands on the next cell's centre.
    b = quant(b, keep)
    ar = torch.arange(B)
    for _ in range(rounds):
        v = b.clone().requires_grad_(True)
        obj = objective(v, True)
        obj.sum().backward()
        g = (v.grad * step)[:, :keep]  # first-order change of a +1 step
        with torch.no_grad():
            base = objective(b, False)
        order = torch.argsort(torch.stack([g, -g], -1).reshape(B, -1), dim=1)[:, :per_round]
        best_gain = torch.zeros(B)
        best_trial = b.clone()
        combined = b.clone()  # every move that helps on its own, together
        for m in range(per_round):
            idx = order[:, m]
            pos, rest = idx // (C * 2), idx % (C * 2)
            dim, sign = rest // 2, 1 - 2 * (rest % 2)
            trial = b.clone()
            newv = trial[ar, pos, dim] + sign.float() * step[0, pos, 0]
            ok = newv.abs() <= quant.half[dim]
            trial[ar, pos, dim] = torch.where(ok, newv, trial[ar, pos, dim])
            with torch.no_grad():
                s = objective(trial, False)
            helps = ok & (base - s > 0)
            unmoved = combined[ar, pos, dim] == b[ar, pos, dim]
            combined[ar, pos, dim] = torch.where(helps & unmoved, newv, combined[ar, pos, dim])
            better = helps & (base - s > best_gain)
            best_gain = torch.where(better, base - s, best_gain)
            best_trial[better] = trial[better]
        if not (best_gain > 0).any():
            break
        if multi:
            with torch.no_grad():
                s = objective(combined, False)
            use = base - s > best_gain
            best_trial[use] = combined[use]
        b = best_trial
    return b


def psnr_of(sse, pixels):
    return 10 * math.log10(pixels / max(float(sse), 1e-12))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(HERE, "tok1d-default.safetensors"))
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data", "train"))
    ap.add_argument("--images", type=int, default=6, help="held-out training images used")
    ap.add_argument("--tiles", type=int, default=8, help="tiles taken from each image")
    ap.add_argument("--k", default="8,32")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--variants", default="ste,anneal,ste+polish,prefix")
    ap.add_argument("--polish-rounds", type=int, default=8)
    ap.add_argument("--polish-tries", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prefix-weight", type=float, default=0.5,
                    help="weight of the prefixes k/2, k/4, k/8 together (k has weight 1)")
    ap.add_argument("--lambda-scale", type=float, default=0.0,
                    help="rate weight as a multiple of the slope -dSSE/dbits between k/2 and k tokens")
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model, meta, tensors = load_model(args.model)
    token_bits = TokenBits(tensors, meta, model)
    for p in model.parameters():
        p.requires_grad_(False)
    plan = refinement_plan(meta)
    quant = Quantizer(model, plan)
    _, val = split_train_val(list_images(args.data))
    rng = np.random.default_rng(0)
    tiles = []
    for path in val[: args.images]:
        t, _, _ = tile_image(load_rgb(path), model.cfg["tile"])
        pick = rng.choice(len(t), size=min(args.tiles, len(t)), replace=False)
        tiles.append(t[pick])
    x = torch.tensor(np.concatenate(tiles)).float() / 255
    npix = x[0].numel()
    with torch.no_grad():
        b0 = model.fsq.bound(model.encode_latent(x))
    results = {}
    for k in [int(s) for s in args.k.split(",")]:
        with torch.no_grad():
            base, _ = tile_sse(model, quant(b0, k) * (torch.arange(b0.shape[1]) < k).view(1, -1, 1), k, x)
            half, _ = tile_sse(model, quant(b0, k // 2) * (torch.arange(b0.shape[1]) < k // 2).view(1, -1, 1), k // 2, x)
        bits_k, bits_half = token_bits(b0, k), token_bits(b0, k // 2)
        lam = args.lambda_scale * float((half - base).sum()) / float(bits_k.sum() - bits_half.sum())
        pooled = lambda sse: 10 * math.log10(npix * len(sse) / float(sse.sum()))  # noqa: E731
        # dB per doubling of the token bits, from k/2 to k: turns a dB gain into a rate change
        slope = (pooled(base) - pooled(half)) / math.log2(bits_k.sum() / bits_half.sum())
        row = {"base_psnr": float(np.mean([psnr_of(s, npix) for s in base])), "lambda": lam,
               "db_per_doubling": slope}
        prefixes = [k] + [k >> i for i in range(1, 4) if k >> i >= 1]
        for variant in args.variants.split(","):
            t0 = time.process_time()
            keeps, w = [k], [1.0]
            if "prefix" in variant and len(prefixes) > 1:  # half the weight on k's prefixes
                keeps = prefixes
                w = [1.0] + [args.prefix_weight / (len(prefixes) - 1)] * (len(prefixes) - 1)
            best = b0
            if args.steps:
                best, _ = optimise(model, quant, b0, x, keeps, w, args.steps, args.lr,
                                   "anneal" in variant, lam, token_bits)
            if "polish" in variant:
                best = polish(model, quant, best, x, keeps, w, args.polish_rounds, args.polish_tries,
                              lam, token_bits, "single" not in variant)
            q = quant(best, k)
            with torch.no_grad():
                s, _ = tile_sse(model, q * (torch.arange(q.shape[1]) < k).view(1, -1, 1), k, x)
                pref = {}
                for kk in prefixes[1:]:
                    s0, _ = tile_sse(model, quant(b0, kk) * (torch.arange(q.shape[1]) < kk).view(1, -1, 1), kk, x)
                    s1, _ = tile_sse(model, quant(best, kk) * (torch.arange(q.shape[1]) < kk).view(1, -1, 1), kk, x)
                    pref[kk] = float(np.mean([psnr_of(a, npix) - psnr_of(c, npix) for a, c in zip(s1, s0)]))
            gain = float(np.mean([psnr_of(a, npix) - psnr_of(c, npix) for a, c in zip(s, base)]))
            bits_change = float(token_bits(best, k).sum() / token_bits(b0, k).sum() - 1)
            # the same quality at this rate change (pooled PSNR, the local slope)
            equivalent = (1 + bits_change) * 2 ** (-(pooled(s) - pooled(base)) / slope) - 1
            secs = time.process_time() - t0
            row[variant] = {"gain_db": round(gain, 3), "bits_change": round(bits_change, 4),
                            "equivalent_rate_change": round(equivalent, 4), "prefix_gain_db": {str(a): round(b, 3) for a, b in pref.items()},
                            "cpu_s_per_tile": round(secs / len(x), 2)}
            print(f"k={k} {variant}: {gain:+.3f} dB, token bits {100 * bits_change:+.1f} %, equivalent rate {100 * equivalent:+.1f} % (prefixes {row[variant]['prefix_gain_db']}), "
                  f"{secs / len(x):.2f} CPU-s/tile", flush=True)
        results[str(k)] = row
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
