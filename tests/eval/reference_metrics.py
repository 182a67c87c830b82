#!/usr/bin/env python3
"""Independent reference for tok1d's quality metrics (codec/metrics.h), in PyTorch.

SSIM and MS-SSIM follow pytorch_msssim's formula (separable Gaussian window 11, sigma 1.5,
valid convolution, K1 0.01, K2 0.03, per-channel values averaged over R, G, B; MS-SSIM weights
0.0448 0.2856 0.3001 0.2363 0.1333, contrast-structure clamped at 0 at scales 1-4, SSIM at
scale 5), with tf.image's handling of odd sizes before 2x2 average pooling (repeat the last row
or column). Written from the published definitions, sharing no code with the C++.

  reference_metrics.py expected OUT.json
      Writes the metrics of the synthetic image pairs that tests/eval/metrics_test.cpp
      rebuilds bit for bit (same integer pattern and generator), so the C++ is checked
      against this script's values.
  reference_metrics.py compare TOOL ORIGINAL DECODED [DECODED ...]
      Runs TOOL (tok1d_image_metrics) on each pair and prints both results and the largest
      differences (docs/sweep.md reports this on Kodak images).

Needs numpy and torch (Debian's /usr/bin/python3 in this project's environment).
"""
import json
import subprocess
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

WEIGHTS = torch.tensor([0.0448, 0.2856, 0.3001, 0.2363, 0.1333], dtype=torch.float64)
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def gaussian_window(size=11, sigma=1.5):
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    window = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    return window / window.sum()


def blur(x, window):
    """Separable valid filtering of an N x C x H x W tensor, channel by channel."""
    channels = x.shape[1]
    horizontal = window.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = window.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    return F.conv2d(F.conv2d(x, horizontal, groups=channels), vertical, groups=channels)


def ssim_terms(x, y):
    """Per-channel means of the SSIM map and of the contrast-structure map."""
    window = gaussian_window()
    mu_x, mu_y = blur(x, window), blur(y, window)
    var_x = blur(x * x, window) - mu_x ** 2
    var_y = blur(y * y, window) - mu_y ** 2
    cov = blur(x * y, window) - mu_x * mu_y
    cs_map = (2 * cov + C2) / (var_x + var_y + C2)
    ssim_map = (2 * mu_x * mu_y + C1) / (mu_x ** 2 + mu_y ** 2 + C1) * cs_map
    return ssim_map.flatten(2).mean(-1), cs_map.flatten(2).mean(-1)


def halve(x):
    height, width = x.shape[-2:]
    x = F.pad(x, (0, width % 2, 0, height % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def to_tensor(rgb):
    return torch.from_numpy(rgb.astype(np.float64)).permute(2, 0, 1).unsqueeze(0)


def metrics(original, decoded):
    """original, decoded: H x W x 3 uint8 arrays."""
    a, b = original.astype(np.float64), decoded.astype(np.float64)
    mse = np.mean((a - b) ** 2)
    luma = np.array([0.299, 0.587, 0.114])
    mse_y = np.mean((a @ luma - b @ luma) ** 2)
    psnr = lambda m: float("inf") if m == 0 else 10 * np.log10(255.0 ** 2 / m)
    x, y = to_tensor(original), to_tensor(decoded)
    ssim, _ = ssim_terms(x, y)
    terms = []
    for scale in range(5):
        ssim_per_channel, cs = ssim_terms(x, y)
        if scale < 4:
            terms.append(torch.relu(cs))
            x, y = halve(x), halve(y)
    terms.append(torch.relu(ssim_per_channel))
    msssim = torch.prod(torch.stack(terms) ** WEIGHTS.view(-1, 1, 1), dim=0).mean()
    return {"psnr": psnr(mse), "psnr_y": psnr(mse_y), "ssim": float(ssim.mean()),
            "msssim": float(msssim)}


# --- the synthetic pairs (mirrored in metrics_test.cpp) ---

class Lcg:
    """64-bit LCG (Knuth's MMIX constants); uniform integers from the high 32 bits."""

    def __init__(self, seed):
        self.state = seed

    def uniform(self, low, high):  # inclusive
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
        return low + (self.state >> 32) % (high - low + 1)


def pattern(width, height):
    """Gradients per channel plus a checkerboard of 24-pixel squares, integers only."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    for y in range(height):
        for x in range(width):
            for c in range(3):
                value = 20 + x * (100 + 40 * c) // width + y * (150 - 30 * c) // height
                value += 40 if (x // 24 + y // 24) % 2 else 0
                image[y, x, c] = min(value, 255)
    return image


def noisy(image, amplitude, seed):
    generator = Lcg(seed)
    out = image.astype(np.int64)
    height, width, _ = image.shape
    for y in range(height):
        for x in range(width):
            for c in range(3):
                out[y, x, c] += generator.uniform(-amplitude, amplitude)
    return np.clip(out, 0, 255).astype(np.uint8)


# (name, width, height, noise amplitude, seed): even and odd sizes, mild and strong noise.
CASES = [("even-192x176-noise20", 192, 176, 20, 1),
         ("odd-181x177-noise6", 181, 177, 6, 2),
         ("odd-203x190-noise60", 203, 190, 60, 3)]


def expected(path):
    results = []
    for name, width, height, amplitude, seed in CASES:
        original = pattern(width, height)
        results.append({"name": name, "width": width, "height": height,
                        "amplitude": amplitude, "seed": seed,
                        **metrics(original, noisy(original, amplitude, seed))})
    with open(path, "w") as out:
        json.dump({"generator": "tests/eval/reference_metrics.py expected",
                   "cases": results}, out, indent=1)
        out.write("\n")


def read_rgb(path):
    """Binary PPM (maxval 255) or 8-bit RGB/RGBA/gray PNG (no interlace): enough for tok1d
    decode's PNGs and djpeg/dwebp's PPMs without an imaging library."""
    data = open(path, "rb").read()
    if data[:2] == b"P6":
        fields = data.split(maxsplit=4)
        width, height, maxval = int(fields[1]), int(fields[2]), int(fields[3])
        assert maxval == 255, path
        pixels = np.frombuffer(data[len(data) - width * height * 3:], dtype=np.uint8)
        return pixels.reshape(height, width, 3)
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    position, idat = 8, b""
    while position < len(data):
        length = int.from_bytes(data[position:position + 4], "big")
        kind = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            depth, color, interlace = body[8], body[9], body[12]
            assert depth == 8 and interlace == 0 and color in (0, 2, 6), (path, depth, color)
            channels = {0: 1, 2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.int64)
    previous = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, row = line[0], np.frombuffer(line[1:], dtype=np.uint8).astype(np.int64)
        out = np.zeros(stride, dtype=np.int64)
        for i in range(stride):
            left = out[i - channels] if i >= channels else 0
            up, up_left = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 0:
                predictor = 0
            elif kind == 1:
                predictor = left
            elif kind == 2:
                predictor = up
            elif kind == 3:
                predictor = (left + up) // 2
            else:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
            out[i] = (row[i] + predictor) & 255
        rows[y], previous = out, out
    image = rows.reshape(height, width, channels).astype(np.uint8)
    return np.repeat(image, 3, axis=2) if channels == 1 else image[:, :, :3]


def compare(tool, original_path, decoded_paths):
    original = read_rgb(original_path)
    worst = {}
    for decoded_path in decoded_paths:
        ours = json.loads(subprocess.run([tool, original_path, decoded_path], check=True,
                                         capture_output=True, text=True).stdout)
        reference = metrics(original, read_rgb(decoded_path))
        print(decoded_path)
        for key, value in reference.items():
            difference = abs(ours[key] - value) if np.isfinite(value) else 0.0
            worst[key] = max(worst.get(key, 0.0), difference)
            print(f"  {key:7s} tok1d {ours[key]:.8f}  reference {value:.8f}  |diff| {difference:.2e}")
    print("largest |diff|: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "expected":
        expected(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3], sys.argv[4:])
    else:
        sys.exit(__doc__)
