"""Would tok1d do better at low rates by encoding the image at half size, as the sweep's "best
scale" lets JPEG and WebP do (and cjxl's resampling does at low qualities)? Not a model
experiment: it runs the codec. Each image is shrunk by 2 (area average, PIL BOX), encoded with
`tok1d encode -t k`, decoded, enlarged back (PIL bicubic) and scored against the original; its
PSNR is compared with the full-size curve of the same image at the same bpp (linear in log bpp
between the full-size points that bracket it).

  /usr/bin/python3 models/experiments/m0_encode_at_half_scale.py TOK1D FOLDER [FOLDER ...]
"""
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compare_sweeps import at_rate  # noqa: E402

FULL = [1, 2, 4, 8, 16, 32, 48, 64]
HALF = [4, 8, 16, 32, 48, 64, 96, 128]


def psnr(a, b):
    return 10 * math.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def run(tok1d, src, k, work, size):
    t1d, png = os.path.join(work, "x.t1d"), os.path.join(work, "x.png")
    subprocess.run([tok1d, "encode", src, "-t", str(k), "-o", t1d, "-f", "-j", "1"], check=True, capture_output=True)
    subprocess.run([tok1d, "decode", t1d, "-o", png, "-f", "-j", "1"], check=True, capture_output=True)
    out = Image.open(png).convert("RGB")
    if out.size != size:
        out = out.resize(size, Image.BICUBIC)
    return os.path.getsize(t1d) * 8 / (size[0] * size[1]), np.asarray(out)


def main():
    tok1d, folders = sys.argv[1], sys.argv[2:]
    for folder in folders:
        names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".jpg", ".jpeg")))
        rows = {("full", k): [] for k in FULL} | {("half", k): [] for k in HALF}
        with tempfile.TemporaryDirectory() as work:
            for name in names:
                im = Image.open(os.path.join(folder, name)).convert("RGB")
                ref = np.asarray(im)
                small = os.path.join(work, "small.png")
                im.resize((im.size[0] // 2, im.size[1] // 2), Image.BOX).save(small)
                full = []
                for k in FULL:
                    bpp, out = run(tok1d, os.path.join(folder, name), k, work, im.size)
                    full.append((bpp, psnr(ref, out)))
                    rows["full", k].append((bpp, full[-1][1], None))
                for k in HALF:
                    bpp, out = run(tok1d, small, k, work, im.size)
                    q = psnr(ref, out)
                    ref_q = at_rate(full, bpp)
                    rows["half", k].append((bpp, q, None if ref_q is None else q - ref_q))
        print(f"{folder}: {len(names)} images (mean bpp, mean PSNR; half size: mean PSNR difference "
              "against the full-size curve at the same bpp, over the images where it reaches that bpp)")
        for (scale, k), v in rows.items():
            d = [x[2] for x in v if x[2] is not None]
            diff = f"  {np.mean(d):+.2f} dB against full size ({len(d)} images)" if d else ""
            print(f"  {scale:4} k = {k:3}: {np.mean([x[0] for x in v]):.4f} bpp, "
                  f"{np.mean([x[1] for x in v]):.2f} dB{diff}")


if __name__ == "__main__":
    main()
