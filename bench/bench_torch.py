#!/usr/bin/python3
"""The PyTorch reference on the same measurements as tok1d_cpu_bench (bench/bench_tokenizer.cpp):
the model of models/tok1d_model.py loaded from the same file (models/export.py load_model),
the image tiled as the codec tiles it, all tiles in one batch, the same thread count.

  /usr/bin/python3 bench/bench_torch.py --model M --image kodim01.png --threads N [--repeat R]
"""
import argparse
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models"))
from data import load_rgb, tile_image, untile_image  # noqa: E402
from export import load_model  # noqa: E402


def best_of(repeat, body):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        body()
        best = min(best, (time.perf_counter() - start) * 1000)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model, _, _ = load_model(args.model)
    load_ms = (time.perf_counter() - start) * 1000
    im = load_rgb(args.image)
    h, w, _ = im.shape
    tile = model.cfg["tile"]
    k = args.tokens or model.cfg["tokens"]
    tiles_u8, rows, cols = tile_image(im, tile)
    count = len(tiles_u8)
    keep = torch.full((count,), k)

    with torch.no_grad():
        x = torch.tensor(tiles_u8).float() / 255
        idx = model.encode(x)
        encode_ms = best_of(args.repeat, lambda: model.encode(x))
        decode_ms = best_of(args.repeat, lambda: model.decode(idx, keep))

        def whole_encode():
            t, _, _ = tile_image(im, tile)
            model.encode(torch.tensor(t).float() / 255)

        def whole_decode():
            y = model.decode(idx, keep).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
            untile_image(y, rows, cols, h, w)

        image_encode_ms = best_of(args.repeat, whole_encode)
        image_decode_ms = best_of(args.repeat, whole_decode)
    megapixels = h * w / 1e6
    print("runtime pytorch")
    core = os.environ.get("OPENBLAS_CORETYPE", "OpenBLAS's own choice")
    print(f"backend torch {torch.__version__} ({torch.get_num_threads()} threads; "
          f"OpenBLAS core {core})")
    print(f"image {w}x{h}\ntiles {count}\ntokens {k}\nthreads {args.threads}")
    print(f"model_load_ms {load_ms:.1f}")
    print(f"encode_ms_per_tile {encode_ms / count:.2f}")
    print(f"decode_ms_per_tile {decode_ms / count:.2f}")
    print(f"image_encode_mpixel_per_s {megapixels / (image_encode_ms / 1000):.3f}")
    print(f"image_decode_mpixel_per_s {megapixels / (image_decode_ms / 1000):.3f}")
    print(f"peak_rss_mib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}")


if __name__ == "__main__":
    main()
