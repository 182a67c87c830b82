#!/usr/bin/python3
"""Issue 16 candidate: a small convolutional post-filter over the whole decoded image.

Each tile is decoded on its own by the transformer, so tile seams, the 16-pixel patch grid of
the linear pixel head and the colour of flat areas are things no single tile's decoder can
fix; a filter that sees across tile borders can. The tokenizer stays frozen: its decodes of
training crops are computed once (`prepare`), and the filter learns the residual from them to
the original (`train`), which is cheap on a CPU. `score` compares, on held-out crops, no
filter against the filter.

  PY=/opt/tok1d-venv/bin/python
  $PY models/postfilter.py prepare --model models/tok1d-default.safetensors --out PAIRS.npz
  $PY models/postfilter.py train --pairs PAIRS.npz --run RUN_DIR --minutes 20
  $PY models/postfilter.py score --pairs PAIRS.npz --run RUN_DIR

Inputs of the filter: the decoded RGB (uint8, as the codec writes it, scaled to [-0.5, 0.5])
and a fourth plane holding log2(k)/7 of the tile each pixel is in (k = its kept tokens), so
one filter serves every rate. Output: a residual added to the decoded RGB."""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from data import fixed_crops, load_dataset  # noqa: E402

LADDER = [1, 2, 4, 8, 16, 32, 64, 96, 128]


class PostFilter(nn.Module):
    def __init__(self, channels=16, layers=3):
        super().__init__()
        convs = [nn.Conv2d(4, channels, 3, padding=1)]
        convs += [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(layers - 2)]
        convs += [nn.Conv2d(channels, 3, 3, padding=1)]
        self.convs = nn.ModuleList(convs)
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, rgb, kplane):
        """rgb[B,3,H,W] in [-0.5,0.5], kplane[B,1,H,W] -> filtered rgb."""
        h = torch.cat([rgb, kplane], 1)
        for i, c in enumerate(self.convs):
            h = c(h)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return rgb + h


def kplane_of(counts, tile, side):
    """counts[rows, cols] -> [1, side, side] float plane of log2(k)/7."""
    up = np.repeat(np.repeat(np.log2(counts.astype(np.float32)) / 7, tile, 0), tile, 1)
    return up[None, :side, :side]


@torch.no_grad()
def prepare(args):
    from export import load_model
    model = load_model(args.model)[0].eval()
    t = model.cfg["tile"]
    side = args.tiles * t
    train_imgs, val_imgs = load_dataset(args.data, cache=args.cache)
    rng = random.Random(0)

    def crops_from(images, n):
        big = [im for im in images if min(im.shape[:2]) >= side]
        out = np.empty((n, side, side, 3), np.uint8)
        for i in range(n):
            im = big[rng.randrange(len(big))]
            y = rng.randrange(im.shape[0] - side + 1)
            x = rng.randrange(im.shape[1] - side + 1)
            out[i] = im[y:y + side, x:x + side]
        return out

    result = {}
    for name, images, n in (("train", train_imgs, args.train), ("val", val_imgs, args.val)):
        orig = crops_from(images, n)
        dec = np.empty_like(orig)
        counts = np.empty((n, args.tiles, args.tiles), np.int32)
        t0 = time.time()
        for i in range(0, n, args.batch):
            part = orig[i:i + args.batch]
            b = len(part)
            tiles = part.reshape(b, args.tiles, t, args.tiles, t, 3).transpose(0, 1, 3, 2, 4, 5)
            tiles = torch.tensor(tiles.reshape(-1, t, t, 3).copy()).float() / 255
            # half the crops: one k for all tiles (fixed token count); half: per tile
            k = np.empty((b, args.tiles * args.tiles), np.int32)
            for j in range(b):
                if rng.random() < 0.5:
                    k[j] = rng.choice(LADDER)
                else:
                    k[j] = [rng.choice(LADDER) for _ in range(args.tiles * args.tiles)]
            codes = model.fsq(model.encode_latent(tiles))
            y = model.decode_codes(codes, torch.tensor(k.reshape(-1))).clamp(0, 1).mul(255).round()
            y = y.to(torch.uint8).numpy().reshape(b, args.tiles, args.tiles, t, t, 3)
            dec[i:i + b] = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, side, side, 3)
            counts[i:i + b] = k.reshape(b, args.tiles, args.tiles)
            print(f"{name} {i + b}/{n} {time.time() - t0:.0f}s", flush=True)
        result[f"{name}_orig"], result[f"{name}_dec"], result[f"{name}_k"] = orig, dec, counts
    np.savez(args.out, tile=t, **result)


def to_tensors(orig, dec, counts, tile):
    side = orig.shape[1]
    x = torch.tensor(dec).permute(0, 3, 1, 2).float() / 255 - 0.5
    y = torch.tensor(orig).permute(0, 3, 1, 2).float() / 255 - 0.5
    kp = torch.tensor(np.stack([kplane_of(c, tile, side) for c in counts]))
    return x, y, kp


def psnr_by_k(filt, x, y, kp, counts, batch=8):
    """PSNR per k over the tiles that kept k tokens (pooled MSE), unfiltered and filtered."""
    tile = x.shape[2] // counts.shape[1]
    se = {k: [0.0, 0.0, 0] for k in LADDER}
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xi, yi = x[i:i + batch], y[i:i + batch]
            fi = filt(xi, kp[i:i + batch]).clamp(-0.5, 0.5) if filt else xi
            fi = ((fi + 0.5) * 255).round() / 255 - 0.5
            for j in range(len(xi)):
                for r in range(counts.shape[1]):
                    for c in range(counts.shape[2]):
                        sl = (slice(None), slice(r * tile, (r + 1) * tile), slice(c * tile, (c + 1) * tile))
                        k = int(counts[i + j, r, c])
                        se[k][0] += float(((xi[j][sl] - yi[j][sl]) ** 2).mean())
                        se[k][1] += float(((fi[j][sl] - yi[j][sl]) ** 2).mean())
                        se[k][2] += 1
    out = {}
    for k, (a, b, n) in se.items():
        if n:
            out[k] = (10 * np.log10(n / a), 10 * np.log10(n / b), n)
    return out


def train(args):
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    d = np.load(args.pairs)
    tile = int(d["tile"])
    x, y, kp = to_tensors(d["train_orig"], d["train_dec"], d["train_k"], tile)
    vx, vy, vkp = to_tensors(d["val_orig"], d["val_dec"], d["val_k"], tile)
    filt = PostFilter(args.channels, args.layers)
    opt = torch.optim.Adam(filt.parameters(), lr=args.lr)
    os.makedirs(args.run, exist_ok=True)
    log = open(os.path.join(args.run, "log.csv"), "w")
    log.write("step,cpu_minutes,train_mse,val_gain_db\n")
    rng = np.random.default_rng(0)
    side, p = x.shape[2], args.patch
    start = time.process_time()
    step, run_mse = 0, None
    budget = args.minutes * 60
    next_eval = 0.0
    while True:
        elapsed = time.process_time() - start
        if elapsed >= next_eval or elapsed >= budget:
            g = psnr_by_k(filt, vx[:32], vy[:32], vkp[:32], d["val_k"][:32])
            gain = np.mean([b - a for a, b, _ in g.values()])
            log.write(f"{step},{elapsed / 60:.2f},{run_mse or 0:.6g},{gain:.4f}\n")
            log.flush()
            print(f"step {step} cpu {elapsed / 60:.1f} min mse {run_mse or 0:.3g} val gain {gain:+.3f} dB", flush=True)
            next_eval += args.eval_every * 60
            if elapsed >= budget:
                break
        lr = args.lr * 0.5 * (1 + np.cos(np.pi * min(1.0, elapsed / budget)))
        for group in opt.param_groups:
            group["lr"] = lr
        idx = rng.integers(0, len(x), args.batch)
        oy = rng.integers(0, side - p + 1, args.batch)
        ox = rng.integers(0, side - p + 1, args.batch)
        xb = torch.stack([x[i, :, a:a + p, b:b + p] for i, a, b in zip(idx, oy, ox)])
        yb = torch.stack([y[i, :, a:a + p, b:b + p] for i, a, b in zip(idx, oy, ox)])
        kb = torch.stack([kp[i, :, a:a + p, b:b + p] for i, a, b in zip(idx, oy, ox)])
        loss = F.mse_loss(filt(xb, kb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run_mse = float(loss) if run_mse is None else 0.98 * run_mse + 0.02 * float(loss)
        step += 1
    torch.save({"model": filt.state_dict(), "channels": args.channels, "layers": args.layers, "step": step},
               os.path.join(args.run, "postfilter.pt"))


def score(args):
    torch.set_num_threads(args.threads)
    d = np.load(args.pairs)
    tile = int(d["tile"])
    ck = torch.load(os.path.join(args.run, "postfilter.pt"))
    filt = PostFilter(ck["channels"], ck["layers"])
    filt.load_state_dict(ck["model"])
    vx, vy, vkp = to_tensors(d["val_orig"], d["val_dec"], d["val_k"], tile)
    g = psnr_by_k(filt, vx, vy, vkp, d["val_k"])
    rows = {k: {"tiles": n, "psnr": round(a, 3), "filtered": round(b, 3), "gain": round(b - a, 3)}
            for k, (a, b, n) in sorted(g.items())}
    print(json.dumps(rows, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--model", default=os.path.join(HERE, "tok1d-default.safetensors"))
    p.add_argument("--data", nargs="+", default=["../shared/data/train"])
    p.add_argument("--cache", default="data/cache/train512.npz")
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=1024)
    p.add_argument("--val", type=int, default=128)
    p.add_argument("--tiles", type=int, default=2, help="crop side in tiles")
    p.add_argument("--batch", type=int, default=8)
    p = sub.add_parser("train")
    p.add_argument("--pairs", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--eval-every", type=float, default=2)
    p.add_argument("--threads", type=int, default=1)
    p = sub.add_parser("score")
    p.add_argument("--pairs", required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(getattr(args, "threads", 1))
    {"prepare": prepare, "train": train, "score": score}[args.cmd](args)


if __name__ == "__main__":
    main()
