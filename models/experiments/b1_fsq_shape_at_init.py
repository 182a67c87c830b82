# Issue 16, FSQ shape at equal raw bits (models/README.md, "Equal-budget experiments, round 1"):
# the linear path at PCA init (what every run starts from), FSQ 6x15 against 10x5 at several
# pca_scale_sd; output in b1-fsq-shape-at-init.txt. Run from the repository root:
#   /usr/bin/python3 models/experiments/b1_fsq_shape_at_init.py   (reads the crop cache /tmp/tok1d-train/train512.npz that train.py --cache wrote)
import os, sys, math, numpy as np, torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
torch.set_num_threads(1)
from tok1d_model import Tok1d, pca_init
from data import CropSampler, load_dataset, fixed_crops, kodak_images, tile_image
from train import evaluate
tr, va = load_dataset(None, cache='/tmp/tok1d-train/train512.npz')
crops = CropSampler(tr, 128, seed=999).batch(20000)
val = fixed_crops(va, 128, per_image=1)[:64]
kod = np.concatenate([tile_image(im, 128)[0] for im in kodak_images('/work/shared/data/kodak')])
def ent(m, tiles):
    with torch.no_grad():
        codes = torch.cat([m.encode_codes(torch.tensor(tiles[i:i+96]).float()/255) for i in range(0, len(tiles), 96)])
    d = torch.round(codes * m.fsq.half_width + m.fsq.half_width).long().numpy()
    e = np.zeros(d.shape[1:])
    for i in range(d.shape[1]):
        for c in range(d.shape[2]):
            p = np.bincount(d[:, i, c]) / len(d); p = p[p > 0]; e[i, c] = -(p*np.log2(p)).sum()
    return e
for levels, scales in (([15]*6, [4.0]), ([5]*10, [1.5, 2.0, 3.0, 4.0])):
    m = Tok1d({"enc_depth": 2, "dec_depth": 4, "fsq_levels": levels, "pca_scale_sd": 1.0})
    pca_init(m, crops)
    We, be, Wd = m.shortcut_enc.weight.clone(), m.shortcut_enc.bias.clone(), m.shortcut_dec.weight.clone()
    for s in scales:
        with torch.no_grad():
            m.shortcut_enc.weight.copy_(We / s); m.shortcut_enc.bias.copy_(be / s); m.shortcut_dec.weight.copy_(Wd * s)
        v = evaluate(m, val, 'cpu', [2, 8, 32, 128]); k = evaluate(m, kod[::12], 'cpu', [2, 8, 32, 128])
        e = ent(m, kod[::4])
        print(f"levels {len(levels)}x{levels[0]} scale_sd {s}: val " + " ".join(f"{v[x]:.2f}" for x in v) +
              " | kodak " + " ".join(f"{k[x]:.2f}" for x in k) +
              f" | entropy bits/token k8 {e[:8].sum()/8:.2f} k32 {e[:32].sum()/32:.2f} k128 {e.sum()/128:.2f}", flush=True)
