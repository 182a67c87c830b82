"""Would a signalled per-tile colour correction pay for its bits? (a loop-restoration unit in
the sense of AV1's, one per 128x128 tile, chosen by rate-distortion at encode time)

Decodes every tile (PyTorch, rounded FSQ values, no refinement or deblocking) at k = 1 ... 128
and fits, per tile, against the original:
- offset: x' = y + d, d quantised with step q (levels of 255), 3 values;
- affine: x' = mean(y) + d + M (y - mean(y)), d as above, M - I quantised with step qm, 12 values.
The side information costs the empirical entropy of each quantised value over the set's tiles
plus the entropy of a use/skip flag; a tile uses it where the squared error it saves exceeds
lambda x its bits, lambda the model's own slope -dSSE/dbits between neighbouring k. Token bits
are the empirical entropy of each (position, dim) level over the same tiles (eval_run.py's rate
estimate). Prints the estimated BD-rate (PSNR) against the plain decode, and the chart's worst
flat-bar error at 32 tokens with the affine correction on every chart tile.

The tiles are decoded with the model's refinement plan (as tok1d encode sends it) unless
--no-refine; its bits count with the tokens'.

  /usr/bin/python3 models/experiments/o1_tile_colour_restoration.py MODEL.safetensors [--no-refine]
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from compare_sweeps import bd_rate  # noqa: E402
from data import kodak_images, list_images, load_rgb, split_train_val, tile_image, untile_image  # noqa: E402
from eval_run import bar_errors, chart_bars, token_entropy  # noqa: E402
from export import load_model, refinement_plan  # noqa: E402
from scipy.ndimage import uniform_filter  # noqa: E402
from evaluate import reconstruct_tiles  # noqa: E402

KS = (1, 2, 4, 8, 16, 32, 64, 128)


def fit_offset(x, y, q):
    d = np.round((x - y).mean(axis=(1, 2)) / q)                      # (n, 3) integers
    return d, lambda: y + (d * q)[:, None, None, :]


def sharpen_features(y):
    """Per channel: y - box3(y) and y - box9(y) within the tile (edges replicated)."""
    f = np.empty(y.shape + (2,), dtype=np.float32)
    for i, size in enumerate((3, 9)):
        f[..., i] = y - uniform_filter(y, size=(1, size, size, 1), mode="nearest")
    return f


def fit_linear(x, y, q, qm, sharpen=False):
    """x' = mean(y) + d + M (y - mean(y)) [+ per channel s . (y - box3(y), y - box9(y))]:
    d quantised with step q, M - I and s with step qm; ridge towards the identity."""
    n = len(x)
    ym = y.mean(axis=(1, 2), keepdims=True)
    xm = x.mean(axis=(1, 2), keepdims=True)
    yc = (y - ym).astype(np.float32)
    xc = (x - xm).astype(np.float32)
    extra = sharpen_features(y) if sharpen else None
    f = 3 + (2 if sharpen else 0)
    coefs = np.zeros((n, 3, f))
    ridge = 1e2 * np.eye(f)
    for c in range(3):
        feats = yc if extra is None else np.concatenate([yc, extra[..., c, :]], axis=-1)
        feats = feats.reshape(n, -1, f)
        g = np.einsum("npi,npj->nij", feats, feats) + ridge
        w0 = np.zeros(f)
        w0[c] = 1.0
        h = np.einsum("npi,np->ni", feats, xc[..., c].reshape(n, -1)) + ridge @ w0
        coefs[:, c] = np.round((np.linalg.solve(g, h[..., None])[..., 0] - w0) / qm)
    dq = np.round((xm - ym).reshape(n, 3) / q)

    def apply():
        out = ym + (dq * q)[:, None, None, :]
        out = np.broadcast_to(out, y.shape).copy()
        for c in range(3):
            w = coefs[:, c] * qm
            w[:, c] += 1.0
            feats = yc if extra is None else np.concatenate([yc, extra[..., c, :]], axis=-1)
            out[..., c] += np.einsum("nhwf,nf->nhw", feats, w)
        return out
    return np.concatenate([dq, coefs.reshape(n, -1)], axis=1), apply


def value_bits(v):
    """Bits of each tile's quantised values under per-column empirical tables."""
    bits = np.zeros(len(v))
    for c in range(v.shape[1]):
        vals, inv, counts = np.unique(v[:, c], return_inverse=True, return_counts=True)
        bits += -np.log2(counts / len(v))[inv]
    return bits


def refinement_bits(plan, k):
    """Bits a tile of the refinements sent with the first k tokens (6 values of plan bits each)."""
    return 0 if not plan else 6 * plan["bits"] * sum(1 for a in plan["after"] if k > a)


def run_set(name, model, images, plan):
    t = model.cfg["tile"]
    per = [tile_image(im, t) for im in images]
    tiles = np.concatenate([p[0] for p in per])
    ent = token_entropy(model, tiles)                                 # (K, dims)
    token_bits = {k: ent[:k].sum() + refinement_bits(plan, k) for k in KS}
    rec = reconstruct_tiles(model, tiles, KS, plan)
    x = tiles.astype(np.float64)
    pixels = sum(im.shape[0] * im.shape[1] for im in images)

    def curve(outputs):
        """(bpp, PSNR) per k: PSNR over whole images (tiles clipped to the image), pooled."""
        pts = []
        for k in KS:
            y, side = outputs[k]
            y = np.clip(np.round(y), 0, 255)
            sse, at = 0.0, 0
            for im, (tl, rows, cols) in zip(images, per):
                dec = untile_image(y[at:at + len(tl)].astype(np.uint8), rows, cols, *im.shape[:2])
                sse += ((dec.astype(np.float64) - im) ** 2).sum()
                at += len(tl)
            mse = sse / (pixels * 3)
            bits = token_bits[k] * len(tiles) + side
            pts.append((bits / pixels, 10 * np.log10(255 ** 2 / mse)))
        return pts

    base = curve({k: (rec[k].astype(np.float64), 0.0) for k in KS})
    # lambda at each k: the plain decode's slope, SSE saved per bit between neighbouring k
    sse_k = {k: 255 ** 2 * 10 ** (-p / 10) * pixels * 3 for k, (_, p) in zip(KS, base)}
    lam = {}
    for i, k in enumerate(KS):
        lo, hi = KS[max(i - 1, 0)], KS[min(i + 1, len(KS) - 1)]
        lam[k] = (sse_k[lo] - sse_k[hi]) / ((token_bits[hi] - token_bits[lo]) * len(tiles))
    print(f"{name}: {len(images)} images, {len(tiles)} tiles; plain decode "
          + " ".join(f"k={k}: {b:.4f} bpp {p:.2f} dB" for k, (b, p) in zip(KS, base) if k in (8, 32, 128)))
    variants = [("offset q=1", lambda y: fit_offset(x, y, 1.0)),
                ("offset q=2", lambda y: fit_offset(x, y, 2.0)),
                ("offset q=4", lambda y: fit_offset(x, y, 4.0)),
                ("affine q=2 qm=1/32", lambda y: fit_linear(x, y, 2.0, 1 / 32)),
                ("affine q=4 qm=1/16", lambda y: fit_linear(x, y, 4.0, 1 / 16)),
                ("affine+sharpen 1/32", lambda y: fit_linear(x, y, 2.0, 1 / 32, sharpen=True)),
                ("affine+sharpen 1/16", lambda y: fit_linear(x, y, 4.0, 1 / 16, sharpen=True))]
    for vname, fit in variants:
        outputs, used = {}, {}
        for k in KS:
            y = rec[k].astype(np.float64)
            v, apply = fit(y)
            y2 = np.clip(np.round(apply()), 0, 255)
            saved = ((x - y) ** 2).sum(axis=(1, 2, 3)) - ((x - y2) ** 2).sum(axis=(1, 2, 3))
            use = saved > lam[k] * value_bits(v)
            for _ in range(3):                                        # tables of the used tiles only
                p_use = min(max(use.mean(), 1e-3), 1 - 1e-3)
                flag = np.where(use, -np.log2(p_use), -np.log2(1 - p_use))
                bits = value_bits(v[use]) if use.any() else np.zeros(0)
                full = np.full(len(v), np.inf)
                full[use] = bits
                use = saved > lam[k] * (full + flag - (-np.log2(1 - p_use)))
            p_use = min(max(use.mean(), 1e-3), 1 - 1e-3)
            side = (np.where(use, -np.log2(p_use), -np.log2(1 - p_use)).sum()
                    + (value_bits(v[use]).sum() if use.any() else 0.0))
            outputs[k] = (np.where(use[:, None, None, None], y2, y), side)
            used[k] = use.mean()
        pts = curve(outputs)
        gains = " ".join(f"k={k}: {p - b0[1]:+.3f} dB {100 * (q - b0[0]) / b0[0]:+.1f} % bits used {100 * used[k]:.0f} %"
                         for k, (q, p), b0 in zip(KS, pts, base) if k in (8, 32, 128))
        print(f"  {vname:20s} BD-rate {bd_rate(base, pts):+6.2f} %   {gains}", flush=True)


def main():
    torch.set_num_threads(1)
    model, meta, _ = load_model(sys.argv[1])
    model.eval()
    plan = None if "--no-refine" in sys.argv else refinement_plan(meta)
    print(f"refinement plan: {plan}")
    root = os.path.join(HERE, "..", "..", "..", "shared", "data")
    held = split_train_val(list_images(os.path.join(root, "train")))[1][::3]
    run_set("held-out photos", model, [load_rgb(f) for f in held], plan)
    run_set("Kodak", model, kodak_images(os.path.join(root, "kodak")), plan)

    chart = load_rgb(os.path.join(HERE, "..", "..", "samples", "chart.png"))
    tiles, rows, cols = tile_image(chart, model.cfg["tile"])
    y = reconstruct_tiles(model, tiles, [32], plan)[32].astype(np.float64)
    bars = chart_bars(chart)
    for label, out in (("plain", y), ("affine q=2 qm=1/32", fit_linear(tiles.astype(np.float64), y, 2.0, 1 / 32)[1]())):
        dec = untile_image(np.clip(np.round(out), 0, 255).astype(np.uint8), rows, cols, *chart.shape[:2])
        errors = bar_errors(chart, dec, bars)
        print(f"chart k=32 {label}: worst bar {max(errors):.1f}, bars " + " ".join(f"{e:.0f}" for e in errors))


if __name__ == "__main__":
    main()
