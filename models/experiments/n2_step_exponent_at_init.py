# Issue 16 (models/README.md, "Round 11"): how the PCA init spreads the quantiser over the
# components. pca_init normalises every principal component by its own standard deviation, so
# every component is quantised to the same relative precision (about 2.7 bits each at
# pca_scale_sd 4). Rate-distortion theory for Gaussian components (reverse water-filling) asks
# for the same *absolute* step instead, so high-variance components get more bits and the
# weak ones fewer. This measures the linear path at its init with component i scaled by
# 1 / (s * sd_i^a * sd_0^(1-a)): a = 1 is today's init, a = 0 one absolute step for all.
# Chosen on held-out crops only: PSNR at k = 1 ... 128 against the codes' empirical entropy
# (per position and dimension, Miller-Madow corrected), BD-rate against today's init.
# Output in n2-step-exponent-at-init.txt. Run from the repository root:
#   /usr/bin/python3 models/experiments/n2_step_exponent_at_init.py CACHE
import os, sys, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
torch.set_num_threads(1)
from tok1d_model import Tok1d, pca_init
from data import CropSampler, load_dataset, fixed_crops
from compare_sweeps import bd_rate
from n1_fsq_shape_8x7_at_init import rescaled_curve
tr, va = load_dataset(None, cache=sys.argv[1])
crops = CropSampler(tr, 128, seed=999).batch(8000)
val = fixed_crops(va, 128, per_image=4)
m = Tok1d({"enc_depth": 2, "dec_depth": 4, "pca_scale_sd": 1.0})
pca_init(m, crops)
saved = m.shortcut_enc.weight.clone(), m.shortcut_enc.bias.clone(), m.shortcut_dec.weight.clone()
sd = saved[2].norm(dim=0)  # shortcut_dec = U * sd: column i's norm is component i's sd
reference = None
print(f"{len(val)} held-out crops; bpp = entropy of the first k tokens / 16,384 pixels")
print("sd of components 0, 5, 47, 191, 767: " + ", ".join(f"{sd[i]:.4f}" for i in (0, 5, 47, 191, 767)))
for a, scales in ((1.0, [4.0]), (0.75, [2.0, 3.0, 4.0]), (0.5, [1.5, 2.0, 3.0]), (0.25, [1.0, 1.5, 2.0]), (0.0, [1.0, 1.5])):
    for s in scales:
        # per-component divisor relative to today's unit-sd codes
        q, bits, curve = rescaled_curve(m, saved, s * (sd / sd[0]) ** (a - 1), val)
        if reference is None:
            reference = curve
        bd = bd_rate(reference, curve)
        print(f"a {a} s {s}: PSNR k=2/8/32/128 " + " / ".join(f"{q[k]:.2f}" for k in (2, 8, 32, 128)) +
              f" | bits/token k=2/32/128 {bits[1] / 2:.2f} / {bits[31] / 32:.2f} / {bits[-1] / 128:.2f} | bpp k=128 {curve[-1][0]:.4f}" +
              " | BD-rate against a=1 " + ("n/a" if bd is None else f"{bd:+.1f} %"), flush=True)
