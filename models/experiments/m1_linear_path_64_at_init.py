# Issue 16, "a linear path at 64x64 instead of 32x32" (models/README.md, "The candidates at a
# glance"): the linear path alone at its PCA init (what every run starts from), the tile pooled
# to 32x32 (today) against 64x64, on the same crops; output in m1-linear-path-64-at-init.txt.
# Both PCAs from the same 8,000 crops with pca_init's randomized SVD (lowrank=True, which a
# 64x64 pool gets by default: the full eigendecomposition of 12,288 dimensions takes hours).
# Run from the repository root (CACHE: the crop cache train.py --cache wrote):
#   /usr/bin/python3 models/experiments/m1_linear_path_64_at_init.py CACHE
import os, sys, numpy as np, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
torch.set_num_threads(1)
torch.manual_seed(0)
from tok1d_model import Tok1d, pca_init
from data import CropSampler, load_dataset, fixed_crops, kodak_images, tile_image
from train import evaluate
tr, va = load_dataset(None, cache=sys.argv[1])
crops = CropSampler(tr, 128, seed=999).batch(8000)
val = fixed_crops(va, 128, per_image=1)[:148]
kod = np.concatenate([tile_image(im, 128)[0] for im in kodak_images('/work/shared/data/kodak')])


for pool in (32, 64):
    m = Tok1d({"enc_depth": 2, "dec_depth": 4, "pool": pool})
    pca_init(m, crops, lowrank=True)
    v = evaluate(m, val, 'cpu', [2, 8, 32, 128])
    k = evaluate(m, kod, 'cpu', [2, 8, 32, 128])
    print(f"pool {pool}x{pool}: held-out crops " + " ".join(f"{v[x]:.2f}" for x in v) +
          " | kodak tiles " + " ".join(f"{k[x]:.2f}" for x in k) +
          f" | shortcut parameters {sum(p.numel() for p in (m.shortcut_enc.weight, m.shortcut_dec.weight))/1e6:.2f} M",
          flush=True)
