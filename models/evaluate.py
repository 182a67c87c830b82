#!/usr/bin/python3
"""Evaluate an exported tok1d model on whole Kodak images, tiled as the codec
tiles them (128x128, edge-padded border tiles, cropped after decoding).

  /usr/bin/python3 models/evaluate.py --model models/tok1d-default.safetensors \
      [--tok1d build/cli/tok1d] [--update-model]

For every k: mean PSNR (RGB, per image then averaged), mean MS-SSIM (5-scale,
Gaussian 11/1.5, per RGB channel then averaged; tests/eval/reference_metrics.py), and bits
per pixel: the raw packing cost and, if a tok1d binary is given, the real
.t1d file size (the image encoded once at K tokens, then `tok1d trim` to k: entropy coded
if the model has tables, header included).
With --tok1d it also decodes every file with the C++ tool, as a user gets it (with the
default deblocking of tile seams: psnr_tok1d, msssim_tok1d) and without deblocking, which
must equal this script's PyTorch decode: the largest per-image PSNR difference is printed and
stored (parity_max_abs_db), and the run fails if it exceeds --parity-db.
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
from data import kodak_images, load_rgb, tile_image, untile_image  # noqa: E402
from tok1d_model import refined_codes  # noqa: E402
from export import load_model, read_safetensors, refinement_plan, write_safetensors  # noqa: E402
from reference_metrics import metrics  # noqa: E402

@torch.no_grad()
def reconstruct_tiles(model, tiles, ks, plan=None, batch=48):
    """Returns {k: uint8 tiles}: each tile decoded from its first k tokens and, with a
    refinement plan, the refinements that come with them (as tok1d encodes by default)."""
    x = torch.tensor(tiles).float() / 255
    bounded = torch.cat([model.fsq.bound(model.encode_latent(x[i:i + batch])) for i in range(0, len(x), batch)])
    out = {}
    for k in ks:
        ys = []
        for i in range(0, len(x), batch):
            part = bounded[i:i + batch]
            keep = torch.full((len(part),), k)
            ys.append(model.decode_codes(refined_codes(model.fsq, part, keep, plan), keep))
        out[k] = torch.cat(ys).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    return out


def reconstruct(model, im, ks, plan=None, batch=48):
    """Returns {k: uint8 image} for one image (reconstruct_tiles on its tiles)."""
    tiles, rows, cols = tile_image(im, model.cfg["tile"])
    return {k: untile_image(y, rows, cols, im.shape[0], im.shape[1])
            for k, y in reconstruct_tiles(model, tiles, ks, plan, batch).items()}


class Tok1dRun:
    """The C++ tool on one image: encoded once at K tokens, trimmed and decoded per k."""

    def __init__(self, tok1d, model_path, image_path, K, workdir):
        self.tok1d, self.model_path, self.dir = tok1d, model_path, workdir
        self.full = os.path.join(workdir, "full.t1d")
        self.run("encode", image_path, "-o", self.full, "--tokens", str(K), "--model", model_path)

    def run(self, *argv):
        subprocess.run([self.tok1d, *argv, "-q", "-f"], check=True)

    def file_bytes(self, k):
        out = os.path.join(self.dir, f"k{k}.t1d")
        self.run("trim", self.full, "-o", out, "--tokens", str(k))
        return os.path.getsize(out)

    def decode(self, k, deblock):
        out = os.path.join(self.dir, f"k{k}-{int(deblock)}.png")
        self.run("decode", self.full, "-o", out, "--tokens", str(k), "--model", self.model_path,
                 "--device", "cpu", *([] if deblock else ["--no-deblock"]))
        return load_rgb(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--tokens", default="1,2,4,8,16,32,48,64,96,128")
    ap.add_argument("--tok1d", help="tok1d binary: measure real file sizes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--update-model", action="store_true")
    ap.add_argument("--json", help="write the table as JSON here")
    ap.add_argument("--parity-db", type=float, default=0.05,
                    help="largest allowed PSNR gap between PyTorch and tok1d --no-deblock")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, meta, _ = load_model(args.model)
    K = model.cfg["tokens"]
    ks = [k for k in (int(s) for s in args.tokens.split(",")) if 1 <= k <= K]
    levels = model.cfg["fsq_levels"]
    raw_bits = math.ceil(sum(math.log2(l) for l in levels))
    plan = refinement_plan(meta)

    def refinement_bits(k):  # the refinements k tokens bring, in raw bits a tile
        return 0 if not plan else sum(a < k for a in plan["after"]) * plan["bits"] * len(levels)
    names = sorted(f for f in os.listdir(args.kodak) if f.startswith("kodim") and f.endswith(".png"))
    images = kodak_images(args.kodak)
    acc = {k: {"psnr": [], "msssim": [], "bpp_raw": [], "bpp_file": [], "psnr_tok1d": [],
               "msssim_tok1d": []} for k in ks}
    parity = 0.0  # largest |PSNR(PyTorch) - PSNR(tok1d --no-deblock)| over images and k
    for name, im in zip(names, images):
        h, w, _ = im.shape
        t = model.cfg["tile"]
        tiles = (-(-h // t)) * (-(-w // t))
        recs = reconstruct(model, im, ks, plan)
        with tempfile.TemporaryDirectory() as workdir:
            run = Tok1dRun(args.tok1d, args.model, os.path.join(args.kodak, name), K, workdir) if args.tok1d else None
            for k in ks:
                scores = metrics(im, recs[k])
                acc[k]["psnr"].append(scores["psnr"])
                acc[k]["msssim"].append(scores["msssim"])
                acc[k]["bpp_raw"].append(tiles * (k * raw_bits + refinement_bits(k)) / (h * w))
                if run:
                    acc[k]["bpp_file"].append(8 * run.file_bytes(k) / (h * w))
                    plain = metrics(im, run.decode(k, deblock=False))
                    parity = max(parity, abs(plain["psnr"] - scores["psnr"]))
                    user = metrics(im, run.decode(k, deblock=True))
                    acc[k]["psnr_tok1d"].append(user["psnr"])
                    acc[k]["msssim_tok1d"].append(user["msssim"])
        print(name, " ".join(f"k{k}:{acc[k]['psnr'][-1]:.2f}" for k in ks), flush=True)
    rows = []
    for k in ks:
        r = {"k": k, "psnr": round(float(np.mean(acc[k]["psnr"])), 3),
             "msssim": round(float(np.mean(acc[k]["msssim"])), 4),
             "bpp_raw_tokens": round(float(np.mean(acc[k]["bpp_raw"])), 4)}
        if acc[k]["bpp_file"]:
            r["bpp_file"] = round(float(np.mean(acc[k]["bpp_file"])), 4)
            r["psnr_tok1d"] = round(float(np.mean(acc[k]["psnr_tok1d"])), 3)
            r["msssim_tok1d"] = round(float(np.mean(acc[k]["msssim_tok1d"])), 4)
        rows.append(r)
    cols = list(rows[0].keys())
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if args.tok1d:
        print(f"parity: largest |PSNR(PyTorch) - PSNR(tok1d --no-deblock)| = {parity:.4f} dB "
              f"(limit {args.parity_db} dB)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.update_model:
        tensors, meta = read_safetensors(args.model)
        evaluation = {"dataset": "kodak24", "tiles": "128 edge-padded", "rows": rows}
        if args.tok1d:
            evaluation["parity_max_abs_db"] = round(parity, 4)
        meta["evaluation"] = json.dumps(evaluation)
        sha = write_safetensors(args.model, tensors, meta)
        print(f"updated {args.model}: sha256 {sha}")
    if args.tok1d and parity > args.parity_db:
        sys.exit(f"evaluate.py: tok1d --no-deblock differs from PyTorch by {parity:.4f} dB PSNR "
                 f"(more than {args.parity_db} dB)")


if __name__ == "__main__":
    main()
