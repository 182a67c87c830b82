"""Issue 16's "tok1d's PSNR above JPEG's on every Kodak image wherever JPEG reaches a rate <= 0.15
bpp": per image, every JPEG point (scale 1, as the issue's libjpeg-turbo -optimize) at or below
0.15 bpp against tok1d's curve at that rate (linear in log bpp; above tok1d's top rate, its top
file: that is the best tok1d can give there). Prints the images where JPEG is ahead somewhere,
with the rate and the margin of the largest lead; output for d7509d95 in
m3-jpeg-ahead-per-image-d7509d95.txt.

  python3 models/experiments/m3_jpeg_ahead_per_image.py docs/sweep-kodak/sweep.csv
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compare_sweeps import at_rate, read  # noqa: E402


def curves(codec):
    return {im: sorted((float(r["bpp"]), float(r["psnr"])) for r in rows)
            for im, rows in read(sys.argv[1], codec).items()}


tok1d, jpeg = curves("tok1d"), curves("jpeg")
fails = 0
for im in sorted(tok1d):
    curve, worst = tok1d[im], None  # worst: (bpp, JPEG's lead in dB) of the largest lead
    for bpp, q in jpeg[im]:
        if bpp > 0.15 or bpp < curve[0][0]:  # above the range, or below tok1d's smallest file
            continue
        # above tok1d's top rate, its top file is the best it can give there
        tq = curve[-1][1] if bpp > curve[-1][0] else at_rate(curve, bpp)
        if tq <= q and (worst is None or q - tq > worst[1]):
            worst = (bpp, round(q - tq, 2))
    if worst:
        fails += 1
        print(im, ("jpeg ahead",) + worst)
print("images where JPEG is ahead somewhere <= 0.15 bpp:", fails)
