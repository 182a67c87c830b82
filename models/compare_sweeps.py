#!/usr/bin/python3
"""BD-rate of one model's `tok1d sweep` against another's, on the same images.

  python3 models/compare_sweeps.py REFERENCE/sweep.csv TEST/sweep.csv [--codec tok1d]

`tok1d sweep` runs one model; comparing two models (a training experiment against its
control) means two sweeps. This reads both sweep.csv files and prints, per metric, the
BD-rate of TEST against REFERENCE for each image and their mean, computed as tok1d sweep
computes it (eval/bd_rate.cpp: Pareto fronts, monotone cubic log-rate of quality, integral
over the overlapping quality range), and the mean quality at each token count."""
import argparse
import collections
import csv
import math

import numpy as np


# numpy 2 renamed trapz to trapezoid; Debian 12 has numpy 1.24.
_trapezoid = getattr(np, "trapezoid", None) or np.trapz

def pareto(points):
    pts = sorted((p for p in points if p[0] > 0 and math.isfinite(p[1])), key=lambda p: (p[0], -p[1]))
    front = []
    for p in pts:
        if not front or p[1] > front[-1][1]:
            front.append(p)
    return front


def end_slope(h0, h1, m0, m1):
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if d * m0 <= 0:
        return 0.0
    if m0 * m1 <= 0 and abs(d) > 3 * abs(m0):
        return 3 * m0
    return d


def pchip(x, y):
    """Monotone piecewise-cubic Hermite interpolant (as eval/bd_rate.cpp's Pchip)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    h, s = np.diff(x), np.diff(y) / np.diff(x)
    d = np.full(len(x), s[0])
    if len(x) > 2:
        for i in range(1, len(x) - 1):
            if s[i - 1] * s[i] <= 0:
                d[i] = 0
            else:
                w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
                d[i] = (w1 + w2) / (w1 / s[i - 1] + w2 / s[i])
        d[0] = end_slope(h[0], h[1], s[0], s[1])
        d[-1] = end_slope(h[-1], h[-2], s[-1], s[-2])

    def f(q):
        i = np.clip(np.searchsorted(x, q, side="right") - 1, 0, len(x) - 2)
        hh = x[i + 1] - x[i]
        t = (q - x[i]) / hh
        return ((2 * t**3 - 3 * t**2 + 1) * y[i] + (t**3 - 2 * t**2 + t) * hh * d[i]
                + (-2 * t**3 + 3 * t**2) * y[i + 1] + (t**3 - t**2) * hh * d[i + 1])
    return f


def bd_rate(reference, test):
    a, b = pareto(reference), pareto(test)
    if len(a) < 2 or len(b) < 2:
        return None
    low, high = max(a[0][1], b[0][1]), min(a[-1][1], b[-1][1])
    if not low < high:
        return None
    fa = pchip([p[1] for p in a], [math.log(p[0]) for p in a])
    fb = pchip([p[1] for p in b], [math.log(p[0]) for p in b])
    q = np.linspace(low, high, 4001)
    diff = np.array([fb(v) - fa(v) for v in q])
    return (math.exp(_trapezoid(diff, q) / (high - low)) - 1) * 100


def at_rate(curve, bpp):
    """The quality of curve [(bpp, quality), ...] (sorted by bpp) at bpp, linear in log bpp
    between the two points that bracket it; None outside the curve."""
    for (b0, q0), (b1, q1) in zip(curve, curve[1:]):
        if b0 <= bpp <= b1:
            return q0 + (q1 - q0) * math.log(bpp / b0) / math.log(b1 / b0)
    return None


def read(path, codec, every_scale=False):
    """The rows of one codec per image: scale 1 only, or every scale (their Pareto front is the
    codec at its best scale per image, as tok1d sweep's "best scale" curves)."""
    rows = collections.defaultdict(list)
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["codec"] == codec and (every_scale or r["scale"] == "1"):
                rows[r["image"].rsplit("/", 1)[-1]].append(r)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reference")
    ap.add_argument("test")
    ap.add_argument("--codec", default="tok1d")
    ap.add_argument("--test-codec", help="the test file's codec, if not --codec")
    ap.add_argument("--best-scale", action="store_true",
                    help="the reference codec at its best scale per image (every scale in the file)")
    ap.add_argument("--metrics", default="psnr,msssim")
    ap.add_argument("--per-image", action="store_true")
    args = ap.parse_args()
    ref = read(args.reference, args.codec, args.best_scale)
    test = read(args.test, args.test_codec or args.codec)
    images = sorted(set(ref) & set(test))
    print(f"{len(images)} images in both")
    for metric in args.metrics.split(","):
        values = []
        for im in images:
            # a metric the sweep left empty (MS-SSIM of an image too small for it) has no BD-rate
            bd = bd_rate([(float(r["bpp"]), float(r[metric])) for r in ref[im] if r[metric]],
                         [(float(r["bpp"]), float(r[metric])) for r in test[im] if r[metric]])
            if args.per_image:
                print(f"  {im} {metric}: {bd if bd is None else round(bd, 2)}")
            if bd is not None:
                values.append(bd)
        mean = f"{np.mean(values):+.2f} %" if values else "none"
        print(f"BD-rate {metric}: mean over {len(values)} images {mean}")
    settings = sorted({r["setting"] for im in images for r in ref[im]}, key=lambda s: float(s))
    print("setting | reference bpp, PSNR, MS-SSIM | test bpp, PSNR, MS-SSIM")
    for s in settings:
        cols = []
        for rows in (ref, test):
            sel = [r for im in images for r in rows[im] if r["setting"] == s and r["scale"] == "1"]
            if not sel:
                cols.append("-")
                continue
            # a metric the sweep did not measure is an empty column: shown as "-"
            cols.append(" ".join(f"{np.mean([float(r[m]) for r in sel]):.4f}" if all(r.get(m) for r in sel)
                                 else "-" for m in ("bpp", "psnr", "msssim")))
        print(f"{s} | {cols[0]} | {cols[1]}")


if __name__ == "__main__":
    main()
