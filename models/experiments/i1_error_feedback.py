#!/usr/bin/python3
"""Issue 17, a start for the token search tried and dropped: the encoder run on the image with
its own decoder's error added back, encode(x + alpha * (x - decode(encode(x)))), against the
plain encode, on 48 held-out training tiles (6 from each of the first 8 photos of the
validation split; never Kodak), default model, k = 8 and 32: pooled PSNR, the tokens' bits,
and how many tiles it improves. Output: i1-error-feedback-d7509d95.txt.

  /usr/bin/python3 models/experiments/i1_error_feedback.py
"""
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from data import list_images, load_rgb, split_train_val, tile_image  # noqa: E402
from export import load_model, refinement_plan  # noqa: E402
from optimize_tokens import Quantizer, TokenBits, tile_sse  # noqa: E402


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, meta, tensors = load_model(os.path.join(HERE, "..", "tok1d-default.safetensors"))
    token_bits = TokenBits(tensors, meta, model)
    quant = Quantizer(model, refinement_plan(meta))
    _, val = split_train_val(list_images(os.path.join(HERE, "..", "..", "..", "shared", "data", "train")))
    rng = np.random.default_rng(0)
    tiles = []
    for path in val[:8]:
        t, _, _ = tile_image(load_rgb(path), model.cfg["tile"])
        tiles.append(t[rng.choice(len(t), size=min(6, len(t)), replace=False)])
    x = torch.tensor(np.concatenate(tiles)).float() / 255
    npix = x[0].numel()

    def encode(image):
        with torch.no_grad():
            return model.fsq.bound(model.encode_latent(image))

    def evaluate(b, k):
        with torch.no_grad():
            q = quant(b, k) * (torch.arange(b.shape[1]) < k).view(1, -1, 1)
            sse, out = tile_sse(model, q, k, x)
        return sse, out, token_bits(b, k)

    def psnr(sse):
        return 10 * math.log10(npix * len(sse) / float(sse.sum()))

    print(f"{len(x)} tiles of {model.cfg['tile']} px")
    for k in [8, 32]:
        b0 = encode(x)
        sse0, out0, bits0 = evaluate(b0, k)
        print(f"k={k} plain encode: {psnr(sse0):.3f} dB, {bits0.sum():.0f} bits")
        for alpha in [0.25, 0.5, 1.0, 2.0]:
            sse1, _, bits1 = evaluate(encode((x + alpha * (x - out0)).clamp(-0.5, 1.5)), k)
            print(f"  alpha {alpha}: {psnr(sse1):.3f} dB, {bits1.sum():.0f} bits; the better of the "
                  f"two per tile {psnr(torch.minimum(sse0, sse1)):.3f} dB; tiles improved "
                  f"{(sse1 < sse0).sum().item()}/{len(sse0)}")


if __name__ == "__main__":
    main()
