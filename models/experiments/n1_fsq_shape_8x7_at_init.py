# Issue 16, FSQ shape at equal bits per token (models/README.md, "Round 11"): the issue's
# 8 x 7 levels (22.5 raw bits a token) and 10 x 5 (23.2) against today's 6 x 15 (23.4), the
# linear path at its PCA init, for the quantiser scale (pca_scale_sd) each shape starts a run
# from. Chosen on held-out crops only (not Kodak): PSNR at k = 1 ... 128 against the codes'
# empirical entropy (per position and dimension, Miller-Madow corrected), and the BD-rate of
# that curve against 6 x 15 at its default scale 4. Output in n1-fsq-shape-8x7-at-init.txt.
# Run from the repository root (CACHE: the crop cache train.py --cache wrote):
#   /usr/bin/python3 models/experiments/n1_fsq_shape_8x7_at_init.py CACHE
import os, sys, numpy as np, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
torch.set_num_threads(1)
from tok1d_model import Tok1d, pca_init
from data import CropSampler, load_dataset, fixed_crops
from train import evaluate
from compare_sweeps import bd_rate
from eval_run import token_entropy
KS = [1, 2, 4, 8, 16, 32, 64, 128]


def entropy_bits(m, tiles):
    """Bits of each (position, dimension) level, Miller-Madow corrected: [tokens, dims]."""
    return token_entropy(m, tiles, miller_madow=True)


def rescaled_curve(m, saved, f, val):
    """The linear path with its PCA codes divided by f (one divisor per component), scored on
    val: PSNR at KS, the cumulative entropy bits of the first k tokens, and the (bpp, PSNR) curve.
    saved: the shortcut's (encoder weight, encoder bias, decoder weight) at pca_scale_sd 1."""
    We, be, Wd = saved
    with torch.no_grad():
        m.shortcut_enc.weight.copy_(We / f[:, None]); m.shortcut_enc.bias.copy_(be / f); m.shortcut_dec.weight.copy_(Wd * f)
    q = evaluate(m, val, 'cpu', KS)
    bits = np.cumsum(entropy_bits(m, val).sum(1))
    return q, bits, [(bits[k - 1] / 16384, q[k]) for k in KS]


def main():
    tr, va = load_dataset(None, cache=sys.argv[1])
    crops = CropSampler(tr, 128, seed=999).batch(8000)
    val = fixed_crops(va, 128, per_image=4)
    reference = None
    print(f"{len(val)} held-out crops; bpp = entropy of the first k tokens / 16,384 pixels")
    for levels, scales in (([15] * 6, [4.0]), ([7] * 8, [2.0, 3.0, 4.0]), ([5] * 10, [2.0])):
        m = Tok1d({"enc_depth": 2, "dec_depth": 4, "fsq_levels": levels, "pca_scale_sd": 1.0})
        pca_init(m, crops)
        saved = m.shortcut_enc.weight.clone(), m.shortcut_enc.bias.clone(), m.shortcut_dec.weight.clone()
        for s in scales:
            q, bits, curve = rescaled_curve(m, saved, torch.full((len(saved[1]),), s), val)
            if reference is None:
                reference = curve
            print(f"{len(levels)}x{levels[0]} scale_sd {s}: PSNR k=2/8/32/128 " +
                  " / ".join(f"{q[k]:.2f}" for k in (2, 8, 32, 128)) +
                  f" | bits/token k=128 {bits[-1] / 128:.2f} | bpp k=128 {curve[-1][0]:.4f}" +
                  f" | BD-rate against 6x15 {bd_rate(reference, curve):+.1f} %", flush=True)


if __name__ == "__main__":
    main()
