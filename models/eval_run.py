#!/usr/bin/python3
"""Score a training run's checkpoint (any architecture option of tok1d_model.py) for the
equal-budget experiments of issue 16, in PyTorch, rounded FSQ values, no refinement:

- held-out training images (every 20th training file, as train.py holds them out): PSNR pooled
  over 2 fixed 128x128 crops an image; PSNR and MS-SSIM (tests/eval/reference_metrics.py) per
  256x256 crop (2x2 tiles; MS-SSIM's 5 scales need more than 128 pixels) of every 3rd image;
- the 24 Kodak images, whole, tiled as the codec tiles them: PSNR and MS-SSIM per image, averaged;
- rate estimate: empirical entropy of each (position, dim) FSQ level over the Kodak tiles, and
  over 8 held-out crops an image;
- samples/chart.png: PSNR, and the largest error of a flat bar's mean colour (levels of 255);
- decode cost: parameters, multiply-adds of one tile's decode (decode_codes, k = 128) and
  its PyTorch CPU time per tile (1 thread, batches of 24 tiles).

  /usr/bin/python3 models/eval_run.py --run /tmp/tok1d-train/exp/control --json OUT.json"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "eval"))
from data import fixed_crops, kodak_images, load_dataset, load_rgb, tile_image, untile_image  # noqa: E402
from tok1d_model import Tok1d  # noqa: E402
from reference_metrics import metrics  # noqa: E402


@torch.no_grad()
def token_entropy(model, tiles, batch=64, miller_madow=False):
    """Rate estimate: empirical entropy (bits) of each (position, dim) FSQ level over tiles;
    miller_madow adds the (levels seen - 1) / 2N bias correction of a small sample."""
    codes = torch.cat([model.encode_codes(torch.tensor(tiles[i:i + batch]).float() / 255)
                       for i in range(0, len(tiles), batch)])
    digits = torch.round(codes * model.fsq.half_width + model.fsq.half_width).long().numpy()
    ent = np.zeros(digits.shape[1:])
    for i in range(digits.shape[1]):
        for c in range(digits.shape[2]):
            p = np.bincount(digits[:, i, c]) / len(digits)
            p = p[p > 0]
            ent[i, c] = -(p * np.log2(p)).sum()
            if miller_madow:
                ent[i, c] += (len(p) - 1) / (2 * len(digits) * np.log(2))
    return ent


@torch.no_grad()
def reconstruct_tiles(model, tiles, ks, batch=48):
    x = torch.tensor(tiles).float() / 255
    codes = torch.cat([model.encode_codes(x[i:i + batch]) for i in range(0, len(x), batch)])
    out = {}
    for k in ks:
        ys = []
        for i in range(0, len(x), batch):
            part = codes[i:i + batch]
            ys.append(model.decode_codes(part, torch.full((len(part),), k)))
        out[k] = torch.cat(ys).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    return out


def reconstruct_image(model, im, ks):
    t = model.cfg["tile"]
    tiles, rows, cols = tile_image(im, t)
    return {k: untile_image(y, rows, cols, im.shape[0], im.shape[1])
            for k, y in reconstruct_tiles(model, tiles, ks).items()}


def chart_bars(im, min_pixels=2000):
    """The chart's flat colour bars: for each exact colour covering at least min_pixels after
    an erosion by 3 pixels (edges, where any codec blurs, do not count), its mask."""
    key = im.astype(np.int64) @ np.array([65536, 256, 1])
    masks = []
    for colour in np.unique(key):
        m = key == colour
        if m.sum() < min_pixels:
            continue
        # erode by 3 pixels so the edges (where any codec blurs) do not count
        e = m.copy()
        for _ in range(3):
            e[1:-1, 1:-1] = e[1:-1, 1:-1] & e[:-2, 1:-1] & e[2:, 1:-1] & e[1:-1, :-2] & e[1:-1, 2:]
            e[0, :] = e[-1, :] = False
            e[:, 0] = e[:, -1] = False
        if e.sum() >= min_pixels:
            masks.append(e)
    return masks


def bar_errors(chart, decoded, masks):
    """For each bar mask, the largest error of the decoded bar's mean colour in any channel."""
    return [np.abs(decoded[m].astype(float).mean(0) - chart[m].astype(float).mean(0)).max() for m in masks]


def decode_cost(model, threads=1, reps=3):
    torch.set_num_threads(threads)
    b, K, C = 24, model.cfg["tokens"], model.code_dim
    codes = model.fsq.from_index(torch.randint(0, 2 ** 20, (b, K)))
    keep = torch.full((b,), K)
    with torch.no_grad():
        model.decode_codes(codes, keep)
        best = 1e9
        for _ in range(reps):
            t0 = time.perf_counter()
            model.decode_codes(codes, keep)
            best = min(best, time.perf_counter() - t0)
    macs = None
    try:
        from torch.utils.flop_counter import FlopCounterMode
        with torch.no_grad(), FlopCounterMode(display=False) as fc:
            model.decode_codes(codes[:1], keep[:1])
        macs = fc.get_total_flops() / 2
    except ImportError:  # PyTorch 1.13
        pass
    n_dec = sum(p.numel() for n, p in model.named_parameters()
                if not n.startswith(("patch_embed", "stem.", "enc_", "latents", "to_code", "shortcut_enc", "code_in_embed")))
    return {"params": sum(p.numel() for p in model.parameters()), "decoder_params": n_dec,
            "decode_macs_per_tile": macs, "decode_ms_per_tile": round(1000 * best / b, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run folder with checkpoint.pt")
    ap.add_argument("--model", help="or an exported .safetensors model (e.g. the default model)")
    ap.add_argument("--data", nargs="+", default=["../shared/data/train"])
    ap.add_argument("--cache", default="data/cache/train512.npz")
    ap.add_argument("--kodak", default="../shared/data/kodak", help="evaluation only")
    ap.add_argument("--chart", default=os.path.join(HERE, "..", "samples", "chart.png"))
    ap.add_argument("--ks", default="2,8,32,128")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model:
        from export import load_model
        model = load_model(args.model)[0]
        ck = {"step": None, "elapsed": 0.0, "config": model.cfg}
    else:
        ck = torch.load(os.path.join(args.run, "checkpoint.pt"), map_location="cpu")
        model = Tok1d(ck["config"])
        model.load_state_dict(ck["model"])
    model.eval()
    ks = [int(k) for k in args.ks.split(",")]
    res = {"run": args.run or args.model, "step": ck["step"], "minutes": round(ck["elapsed"] / 60, 2), "config": ck["config"]}

    _, val_imgs = load_dataset(args.data, cache=args.cache)
    crops = fixed_crops(val_imgs, model.cfg["tile"], per_image=2)
    rec = reconstruct_tiles(model, crops, ks)
    for k in ks:
        mse = np.mean((rec[k].astype(np.float64) - crops) ** 2)
        res[f"val_psnr_k{k}"] = round(float(10 * np.log10(255 ** 2 / mse)), 3)
    res["val_crops"] = len(crops)
    # MS-SSIM needs more than 128 pixels (5 scales): 256x256 held-out crops (2x2 tiles)
    big = fixed_crops(val_imgs[::3], 2 * model.cfg["tile"], per_image=1)
    acc = {k: ([], []) for k in ks}
    for im in big:
        for k, y in reconstruct_image(model, im, ks).items():
            s = metrics(im, y)
            acc[k][0].append(s["psnr"])
            acc[k][1].append(s["msssim"])
    for k in ks:
        res[f"val256_psnr_k{k}"] = round(float(np.mean(acc[k][0])), 3)
        res[f"val256_msssim_k{k}"] = round(float(np.mean(acc[k][1])), 4)
    res["val256_crops"] = len(big)

    # the same rate estimate on held-out crops (8 an image, about as many tiles as Kodak's 576)
    ent = token_entropy(model, fixed_crops(val_imgs, model.cfg["tile"], per_image=8))
    for k in ks:
        res[f"val_entropy_bits_per_token_k{k}"] = round(float(ent[:k].sum() / k), 2)

    acc = {k: ([], []) for k in ks}
    kodak = kodak_images(args.kodak)
    ent = token_entropy(model, np.concatenate([tile_image(im, model.cfg["tile"])[0] for im in kodak]))
    for k in ks:
        res[f"kodak_entropy_bits_per_token_k{k}"] = round(float(ent[:k].sum() / k), 2)
    for im in kodak:
        for k, y in reconstruct_image(model, im, ks).items():
            s = metrics(im, y)
            acc[k][0].append(s["psnr"])
            acc[k][1].append(s["msssim"])
    for k in ks:
        res[f"kodak_psnr_k{k}"] = round(float(np.mean(acc[k][0])), 3)
        res[f"kodak_msssim_k{k}"] = round(float(np.mean(acc[k][1])), 4)

    if os.path.exists(args.chart):
        chart = load_rgb(args.chart)
        masks = chart_bars(chart)
        for k, y in reconstruct_image(model, chart, [32, 128]).items():
            res[f"chart_psnr_k{k}"] = round(metrics(chart, y)["psnr"], 3)
            err = bar_errors(chart, y, masks)
            res[f"chart_bar_maxerr_k{k}"] = round(float(max(err)), 1) if err else None
            res[f"chart_bars_within6_k{k}"] = f"{sum(e <= 6 for e in err)}/{len(err)}"
    res.update(decode_cost(model))
    print(json.dumps(res, indent=1), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
