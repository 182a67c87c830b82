#!/usr/bin/python3
"""Measure the range coder on Kodak with the real tok1d binary: bits per token per k against
the raw log2(prod levels), and whole-file sizes (header and chunk framing included).

  /usr/bin/python3 models/entropy_report.py --model models/tok1d-default.safetensors \\
      [--tok1d build/cli/tok1d] [--kodak ../shared/data/kodak] [--json out.json]

Each image is encoded once at all K tokens with the range coder. Trimming copies token layers
byte for byte (container/FORMAT.md), so the file at k tokens per tile is the header, the first
k LAYR chunks and DONE: every k is read off `tok1d info --json` of one file. The raw coder's
file differs only in its layers, ceil(n_j * ceil(log2 N) / 8) bytes each; the first image is
also encoded with --coder raw and trimmed to check both size formulas against real files."""
import argparse
import glob
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

REPORT_K = [1, 2, 4, 8, 16, 32, 64, 128]
CHUNK_FRAMING = 12  # type, length, checksum
LAYER_INDEX = 2     # u16 at the start of LAYR data
DONE_CHUNK = CHUNK_FRAMING + 4


def read_safetensors_header(path):
    with open(path, "rb") as f:
        return json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))


def run(args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def info(tok1d, path):
    return json.loads(run([tok1d, "info", "--json", path]))


def sizes_at(meta, k, raw):
    """(file bytes, coded token bytes) of the file trimmed to k tokens per tile."""
    layers = meta["layer_bytes"][:k]
    if raw:
        bits = math.ceil(math.log2(meta["codebook_size"]))
        payload = [math.ceil(meta["tiles"] * bits / 8) for _ in layers]
    else:
        payload = [size - CHUNK_FRAMING - LAYER_INDEX for size in layers]
    framing = len(layers) * (CHUNK_FRAMING + LAYER_INDEX)
    return meta["header_bytes"] + framing + sum(payload) + DONE_CHUNK, sum(payload)


def check_formulas(tok1d, model, image, meta, tmp, threads):
    """Encodes `image` raw, trims both files, compares with sizes_at."""
    raw_path = os.path.join(tmp, "raw.t1d")
    run([tok1d, "encode", image, "-o", raw_path, "-f", "--tokens", str(meta["max_tokens"]),
         "--coder", "raw", "--model", model, "-j", str(threads)])
    raw_meta = info(tok1d, raw_path)
    for k in (1, meta["max_tokens"] // 2, meta["max_tokens"]):
        for path, source, raw in ((raw_path, raw_meta, True), (meta["path"], meta, False)):
            trimmed = os.path.join(tmp, "trimmed.t1d")
            run([tok1d, "trim", path, "-t", str(k), "-o", trimmed, "-f"])
            expected = sizes_at(meta, k, raw)[0]
            if os.path.getsize(trimmed) != expected:
                sys.exit(f"size formula is off for k={k} ({'raw' if raw else 'range'}): "
                         f"{os.path.getsize(trimmed)} bytes, computed {expected}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tok1d", default="build/cli/tok1d")
    ap.add_argument("--kodak", default="../shared/data/kodak")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the numbers here")
    args = ap.parse_args()

    model_tokens = json.loads(read_safetensors_header(args.model)["__metadata__"]["config"])["tokens"]
    images = sorted(glob.glob(os.path.join(args.kodak, "kodim*.png")))
    if not images:
        sys.exit(f"no kodim*.png under {args.kodak}")
    totals = {}  # (k, coder) -> [file bytes, token bytes]
    pixels = tokens_per_layer = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n, image in enumerate(images):
            path = os.path.join(tmp, "range.t1d")
            run([args.tok1d, "encode", image, "-o", path, "-f", "--tokens", str(model_tokens),
                 "--coder", "range", "--model", args.model, "-j", str(args.threads)])
            meta = info(args.tok1d, path)
            meta["path"] = path
            if n == 0:
                check_formulas(args.tok1d, args.model, image, meta, tmp, args.threads)
            pixels += meta["width"] * meta["height"]
            tokens_per_layer += meta["tiles"]
            for k in REPORT_K:
                if k > meta["max_tokens"]:
                    continue
                for coder in ("raw", "range"):
                    file_bytes, token_bytes = sizes_at(meta, k, coder == "raw")
                    entry = totals.setdefault((k, coder), [0, 0])
                    entry[0] += file_bytes
                    entry[1] += token_bytes
            print(f"\r{n + 1}/{len(images)} images", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    log2_levels = math.log2(meta["codebook_size"])
    rows = []
    for k in REPORT_K:
        if (k, "range") not in totals:
            continue
        tokens = tokens_per_layer * k
        raw_file, raw_tokens = totals[(k, "raw")]
        range_file, range_tokens = totals[(k, "range")]
        bits = 8 * range_tokens / tokens
        rows.append({"k": k, "bits_per_token": round(bits, 3),
                     "saving_vs_log2_levels_percent": round(100 * (1 - bits / log2_levels), 1),
                     "raw_coder_bits_per_token": round(8 * raw_tokens / tokens, 3),
                     "raw_file_bpp": round(8 * raw_file / pixels, 4),
                     "range_file_bpp": round(8 * range_file / pixels, 4),
                     "file_saving_percent": round(100 * (1 - range_file / raw_file), 1),
                     "range_framing_percent": round(100 * (range_file - range_tokens) / range_file, 1)})

    print(f"Kodak, {len(images)} images, model {meta['model_name']} "
          f"(sha256 {meta['model_sha256'][:16]}…), FSQ {meta['fsq_levels']}: "
          f"log2(prod levels) = {log2_levels:.2f} bits/token, raw coder "
          f"{math.ceil(log2_levels)} bits/token\n")
    print("| k | range bits/token | saving vs log2 levels | raw file bpp | range file bpp "
          "| whole-file saving | header+framing share of range file |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['k']} | {r['bits_per_token']:.2f} | {r['saving_vs_log2_levels_percent']:.1f}% "
              f"| {r['raw_file_bpp']:.4f} | {r['range_file_bpp']:.4f} | {r['file_saving_percent']:.1f}% "
              f"| {r['range_framing_percent']:.1f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model_sha256": meta["model_sha256"], "model_name": meta["model_name"],
                       "images": len(images), "log2_levels": log2_levels, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
