#!/usr/bin/python3
"""Render the project's own sample images (no photos: everything is synthetic).

  /usr/bin/python3 samples/make_samples.py samples/

chart.png      512x384  colour bars, gradients, a zone plate, fine lines
landscape.png  640x448  a procedural scene: sky, sun, fractal mountains, lake, meadow
odd.png        301x67   an odd size that leaves partial border tiles"""
import os
import sys

import numpy as np
from PIL import Image


def fractal_noise(h, w, rng, octaves=6, persistence=0.55):
    """Sum of bilinearly upsampled random grids (value noise), in [0, 1]."""
    out = np.zeros((h, w))
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = 2 + 2 ** o, 2 + 2 ** o
        grid = rng.random((gh, gw))
        ys = np.linspace(0, gh - 1.001, h)
        xs = np.linspace(0, gw - 1.001, w)
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
        g = grid
        v = (g[y0][:, x0] * (1 - fy) * (1 - fx) + g[y0 + 1][:, x0] * fy * (1 - fx)
             + g[y0][:, x0 + 1] * (1 - fy) * fx + g[y0 + 1][:, x0 + 1] * fy * fx)
        out += amp * v
        total += amp
        amp *= persistence
    return out / total


def chart(h=384, w=512):
    img = np.zeros((h, w, 3))
    bars = [(1, 1, 1), (1, 1, 0), (0, 1, 1), (0, 1, 0), (1, 0, 1), (1, 0, 0), (0, 0, 1), (0, 0, 0)]
    bw = w // len(bars)
    for i, c in enumerate(bars):
        img[:128, i * bw:(i + 1) * bw] = np.array(c) * 0.75 + 0.1
    x = np.linspace(0, 1, w)
    img[128:192] = np.stack([x, x ** 2, 1 - x], -1)[None]
    img[192:224] = x[None, :, None]
    yy, xx = np.mgrid[0:160, 0:256]
    r2 = ((xx - 128) ** 2 + (yy - 80) ** 2) / 256.0
    img[224:384, :256] = (0.5 + 0.5 * np.cos(r2 * 0.35))[..., None]
    lines = np.zeros((160, 256))
    for i, p in enumerate((2, 3, 4, 6, 8)):
        col = i * 51
        lines[:, col:col + 48] = (np.arange(48) % p < p // 2)[None, :]
    img[224:384, 256:] = np.stack([lines, lines * 0.8, 0.2 + 0.6 * lines], -1)
    return img


def landscape(h=448, w=640, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    sky = np.stack([0.35 + 0.4 * yy, 0.55 + 0.3 * yy, 0.95 - 0.1 * yy], -1)
    sun = np.exp(-(((xx - 0.72) * 1.4) ** 2 + (yy - 0.22) ** 2) / 0.003)[..., None]
    img = np.clip(sky + sun * np.array([1.0, 0.9, 0.6]), 0, 1)
    clouds = np.clip(2.5 * (fractal_noise(h, w, rng, octaves=7, persistence=0.6) - 0.45), 0, 1)[..., None]
    img = img * (1 - 0.8 * clouds) + 0.8 * clouds
    ridge = fractal_noise(1, w, rng, octaves=9, persistence=0.7)[0]
    horizon = 0.62 - 0.9 * (ridge - ridge.min()) / (np.ptp(ridge) + 1e-9) * 0.4
    rock = fractal_noise(h, w, rng, octaves=9, persistence=0.7)
    rock = (rock - rock.min()) / np.ptp(rock)
    mountain = yy > horizon[None, :]
    mcol = np.stack([0.35 + 0.3 * rock, 0.33 + 0.25 * rock, 0.38 + 0.2 * rock], -1)
    snow = (yy < horizon[None, :] + 0.05) & mountain
    mcol[snow] = 0.92
    img[mountain] = mcol[mountain]
    lake_top = 0.66
    lake = yy > lake_top
    mirror_y = np.clip((2 * lake_top - yy) * h, 0, h - 1).astype(int)
    reflect = img[mirror_y, np.arange(w)[None, :]]
    ripple = 0.08 * np.sin(yy * 180 + 6 * fractal_noise(h, w, rng, octaves=5))[..., None]
    img[lake] = (0.6 * reflect + 0.4 * np.array([0.1, 0.25, 0.4]) + ripple)[lake]
    meadow = yy > 0.82 + 0.04 * np.sin(xx * 9)
    grass = fractal_noise(h, w, rng, octaves=8)
    blades = rng.random((h, w)) * 0.25
    gcol = np.stack([0.25 + 0.3 * grass + blades, 0.45 + 0.35 * grass + blades, 0.1 + 0.1 * grass], -1)
    img[meadow] = gcol[meadow]
    return np.clip(img, 0, 1)


def odd(h=67, w=301):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([0.5 + 0.5 * np.sin(xx / 9.0), yy / (h - 1), 0.5 + 0.5 * np.cos((xx + yy) / 13.0)], -1)


def save(img, path):
    Image.fromarray(np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)).save(path, optimize=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    save(chart(), os.path.join(out, "chart.png"))
    save(landscape(), os.path.join(out, "landscape.png"))
    save(odd(), os.path.join(out, "odd.png"))


if __name__ == "__main__":
    main()
