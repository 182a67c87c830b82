#!/usr/bin/python3
"""Evaluate an exported tok1d model on whole Kodak images, tiled as the codec
tiles them (128x128, edge-padded border tiles, cropped after decoding).

  /usr/bin/python3 models/evaluate.py --model models/tok1d-default.safetensors \
      [--tok1d build/cli/tok1d] [--update-model]

For every k: mean PSNR (RGB, per image then averaged), mean MS-SSIM (5-scale,
Gaussian 11/1.5, per RGB channel then averaged; tests/eval/reference_metrics.py), and bits
per pixel: the raw packing cost and, if a tok1d binary is given, the real
.t1d file size it writes at --tokens k (entropy coded if the model has tables).
--update-model stores the table in the model file's metadata ("evaluation")."""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# PSNR and MS-SSIM come from the project's reference implementation, the one the C++
# metrics (and so tok1d sweep) are checked against, so the two tables agree.
sys.path.insert(0, os.path.join(HERE, "..", "tests", "eval"))
from data import kodak_images, tile_image, untile_image  # noqa: E402
from export import load_model, read_safetensors, write_safetensors  # noqa: E402
from reference_metrics import metrics  # noqa: E402

@torch.no_grad()
def reconstruct(model, im, ks, batch=48):
    """Returns {k: uint8 image} for one image."""
    t = model.cfg["tile"]
    tiles, rows, cols = tile_image(im, t)
    x = torch.tensor(tiles).float() / 255
    idx = torch.cat([model.encode(x[i:i + batch]) for i in range(0, len(x), batch)])
    out = {}
    for k in ks:
        ys = []
        for i in range(0, len(x), batch):
            part = idx[i:i + batch]
            ys.append(model.decode(part, torch.full((len(part),), k)))
        y = torch.cat(ys).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
        out[k] = untile_image(y, rows, cols, im.shape[0], im.shape[1])
    return out


def file_bytes(tok1d, model_path, image_path, k):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "x.t1d")
        subprocess.run([tok1d, "encode", image_path, "-o", out, "--tokens", str(k), "--model", model_path, "-q"],
                       check=True)
        return os.path.getsize(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--tokens", default="1,2,4,8,16,32,48,64,96,128")
    ap.add_argument("--tok1d", help="tok1d binary: measure real file sizes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--update-model", action="store_true")
    ap.add_argument("--json", help="write the table as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, meta, _ = load_model(args.model)
    K = model.cfg["tokens"]
    ks = [k for k in (int(s) for s in args.tokens.split(",")) if 1 <= k <= K]
    levels = model.cfg["fsq_levels"]
    raw_bits = math.ceil(sum(math.log2(l) for l in levels))
    names = sorted(f for f in os.listdir(args.kodak) if f.startswith("kodim") and f.endswith(".png"))
    images = kodak_images(args.kodak)
    acc = {k: {"psnr": [], "msssim": [], "bpp_raw": [], "bpp_file": []} for k in ks}
    for name, im in zip(names, images):
        h, w, _ = im.shape
        t = model.cfg["tile"]
        tiles = (-(-h // t)) * (-(-w // t))
        recs = reconstruct(model, im, ks)
        for k in ks:
            scores = metrics(im, recs[k])
            acc[k]["psnr"].append(scores["psnr"])
            acc[k]["msssim"].append(scores["msssim"])
            acc[k]["bpp_raw"].append(tiles * k * raw_bits / (h * w))
            if args.tok1d:
                acc[k]["bpp_file"].append(8 * file_bytes(args.tok1d, args.model, os.path.join(args.kodak, name), k) / (h * w))
        print(name, " ".join(f"k{k}:{acc[k]['psnr'][-1]:.2f}" for k in ks), flush=True)
    rows = []
    for k in ks:
        r = {"k": k, "psnr": round(float(np.mean(acc[k]["psnr"])), 3),
             "msssim": round(float(np.mean(acc[k]["msssim"])), 4),
             "bpp_raw_tokens": round(float(np.mean(acc[k]["bpp_raw"])), 4)}
        if acc[k]["bpp_file"]:
            r["bpp_file"] = round(float(np.mean(acc[k]["bpp_file"])), 4)
        rows.append(r)
    cols = list(rows[0].keys())
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.update_model:
        tensors, meta = read_safetensors(args.model)
        meta["evaluation"] = json.dumps({"dataset": "kodak24", "tiles": "128 edge-padded", "rows": rows})
        sha = write_safetensors(args.model, tensors, meta)
        print(f"updated {args.model}: sha256 {sha}")


if __name__ == "__main__":
    main()
