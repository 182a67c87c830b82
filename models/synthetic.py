"""Synthetic graphics tiles for the training mix (issue 16): flat colours, colour bars,
linear and radial gradients, sharp-edged shapes and text-like strokes -- what charts,
screenshots and diagrams are made of, and what photos rarely show a tokenizer.

  /usr/bin/python3 models/synthetic.py --out /tmp/synthetic.png   # a sheet of 32 examples

Used by `train.py --synthetic FRACTION` (that share of every batch is replaced by these)."""
import argparse
import random
import string

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# The corners of the RGB cube and greys: a chart's colours (samples/chart.png's bars are of
# this kind), plus a few common UI colours.
PALETTE = [(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
           (0, 255, 255), (255, 0, 255), (128, 128, 128), (192, 192, 192), (64, 64, 64),
           (255, 128, 0), (128, 0, 128), (0, 128, 0), (0, 0, 128), (128, 0, 0), (0, 128, 128)]


class SyntheticTiles:
    def __init__(self, tile=128, seed=0):
        self.tile = tile
        self.rng = random.Random(seed)
        self.font = ImageFont.load_default()

    def colour(self):
        r = self.rng
        if r.random() < 0.5:
            return PALETTE[r.randrange(len(PALETTE))]
        return (r.randrange(256), r.randrange(256), r.randrange(256))

    def gradient(self):
        """Linear (any direction) or radial gradient between two colours, as float HxWx3."""
        r, t = self.rng, self.tile
        a, b = np.array(self.colour(), np.float32), np.array(self.colour(), np.float32)
        yy, xx = np.mgrid[0:t, 0:t].astype(np.float32) / (t - 1)
        if r.random() < 0.7:
            ang = r.uniform(0, 2 * np.pi)
            s = np.cos(ang) * xx + np.sin(ang) * yy
        else:
            cy, cx = r.random(), r.random()
            s = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        s = (s - s.min()) / max(float(s.max() - s.min()), 1e-6)
        return a + (b - a) * s[..., None]

    def one(self):
        r, t = self.rng, self.tile
        if r.random() < 0.35:
            img = Image.fromarray(np.clip(self.gradient() + 0.5, 0, 255).astype(np.uint8))
        else:
            img = Image.new("RGB", (t, t), self.colour())
        d = ImageDraw.Draw(img)
        kind = r.random()
        if kind < 0.2:  # colour bars, vertical or horizontal (test charts)
            n = r.randint(2, 10)
            w = t / n
            vertical = r.random() < 0.5
            for i in range(n):
                box = (int(i * w), 0, int((i + 1) * w), t) if vertical else (0, int(i * w), t, int((i + 1) * w))
                d.rectangle(box, fill=self.colour())
        for _ in range(r.randint(0, 6)):  # flat shapes with sharp edges
            x0, y0 = r.randrange(-t // 4, t), r.randrange(-t // 4, t)
            x1, y1 = x0 + r.randint(4, t), y0 + r.randint(4, t)
            s = r.random()
            if s < 0.5:
                d.rectangle((x0, y0, x1, y1), fill=self.colour())
            elif s < 0.75:
                d.ellipse((x0, y0, x1, y1), fill=self.colour())
            else:
                pts = [(r.randrange(t), r.randrange(t)) for _ in range(3)]
                d.polygon(pts, fill=self.colour())
        for _ in range(r.randint(0, 4)):  # lines of several widths
            d.line([(r.randrange(t), r.randrange(t)) for _ in range(r.randint(2, 4))],
                   fill=self.colour(), width=r.randint(1, 5))
        if r.random() < 0.5:  # text-like strokes: rows of glyphs of the bitmap font
            ink = self.colour()
            y = r.randrange(-4, t // 2)
            while y < t:
                chars = string.ascii_letters + string.digits + " .,:%-"
                line = "".join(r.choice(chars) for _ in range(r.randint(3, 30)))
                d.text((r.randrange(-8, t // 2), y), line, fill=ink, font=self.font)
                y += r.randint(10, 20)
        a = np.asarray(img, dtype=np.uint8)
        if r.random() < 0.3:  # enlarged (blocky, like upscaled UI / pixel art)
            f = r.choice([2, 4])
            a = np.repeat(np.repeat(a[: t // f, : t // f], f, 0), f, 1)
        return a

    def batch(self, n):
        return np.stack([self.one() for _ in range(n)])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="PNG: a sheet of examples")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tiles = SyntheticTiles(seed=args.seed).batch(args.n)
    cols = 8
    rows = -(-args.n // cols)
    sheet = np.zeros((rows * 128, cols * 128, 3), np.uint8)
    for i, tile in enumerate(tiles):
        sheet[(i // cols) * 128:(i // cols + 1) * 128, (i % cols) * 128:(i % cols + 1) * 128] = tile
    Image.fromarray(sheet).save(args.out)


if __name__ == "__main__":
    main()
