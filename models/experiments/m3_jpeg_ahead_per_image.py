"""Issue 16's "tok1d's PSNR above JPEG's on every Kodak image wherever JPEG reaches a rate <= 0.15
bpp": per image, every JPEG point (scale 1, as the issue's libjpeg-turbo -optimize) at or below
0.15 bpp against tok1d's curve at that rate (linear in log bpp; above tok1d's top rate, its top
file: that is the best tok1d can give there). Prints the images where JPEG is ahead somewhere,
with the rate and the margin of the largest lead; output for d7509d95 in
m3-jpeg-ahead-per-image-d7509d95.txt.

  python3 models/experiments/m3_jpeg_ahead_per_image.py docs/sweep-kodak/sweep.csv
"""
import csv, collections, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def pts(codec, scale="1"):
    d = collections.defaultdict(list)
    for r in rows:
        if r["codec"] == codec and r["scale"] == scale:
            d[r["image"]].append((float(r["bpp"]), float(r["psnr"])))
    return {k: sorted(v) for k, v in d.items()}
t, j = pts("tok1d"), pts("jpeg")
fails = 0
for im in sorted(t):
    tp = t[im]; worst = None
    for b, q in j[im]:
        if b > 0.15: continue
        if b < tp[0][0]: continue  # below tok1d's smallest file: no comparison there
        if b > tp[-1][0]:
            tq = tp[-1][1]  # tok1d cannot reach this rate: its best
        else:
            for (b0, q0), (b1, q1) in zip(tp, tp[1:]):
                if b0 <= b <= b1:
                    tq = q0 + (q1 - q0) * math.log(b / b0) / math.log(b1 / b0); break
        if tq <= q and (worst is None or q - tq > worst[2]):
            worst = ("jpeg ahead", b, round(q - tq, 2))
    if worst and worst[0] == "jpeg ahead": fails += 1; print(im.split("/")[-1], worst)
print("images where JPEG is ahead somewhere <= 0.15 bpp:", fails)
