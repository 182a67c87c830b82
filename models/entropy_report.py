#!/usr/bin/python3
"""Measure the range coder on Kodak with the real tok1d binary: bits per token per k against
the raw log2(prod levels), whole-file sizes (header and chunk framing included), and the
framing of format 1.1 (one LAYR chunk per layer) against 1.2 (LAYS layer spans).

  /usr/bin/python3 models/entropy_report.py --model models/tok1d-default.safetensors \\
      [--tok1d build/cli/tok1d] [--kodak ../shared/data/kodak] [--json out.json]

Each image is encoded once at all K tokens with the range coder and trimmed with `tok1d trim`
to every reported k; the 1.2 sizes are those real files (`tok1d info --json`). Trimming copies
token layers byte for byte (container/FORMAT.md), so the layers' coded bytes at k are the first
k of the full file's, and the other sizes follow from them: a 1.1 file is the same header, one
LAYR chunk (14 bytes of framing) per layer and DONE; a raw-coder file has layers of
ceil(n_j * ceil(log2 N) / 8) bytes, framed in spans by the writer's rule (span_framing). The
first image is also encoded with --coder raw and trimmed to check these formulas against real
files.

Files are written with --no-refine: this measures how the tokens code; refinement layers are
fixed-width (container/FORMAT.md) and their cost is in models/README.md."""
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
SPAN_BYTES = 1024   # the writer's span threshold (container/t1d.h kDefaultSpanBytes)
STUDY_THRESHOLDS = [0, 256, 512, 1024, 2048, 4096, None]  # None: one span per file


def varint_size(value):
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def span_framing(payloads, threshold=SPAN_BYTES):
    """(framing bytes, span count) of LAYS chunks holding layers of `payloads` bytes, grouped as
    the writer does: a span closes once its coded bytes reach the threshold."""
    spans, current = [], []
    for size in payloads:
        current.append(size)
        if threshold is not None and sum(current) >= threshold:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    framing, first = 0, 0
    for span in spans:
        framing += CHUNK_FRAMING + varint_size(first) + varint_size(len(span))
        framing += sum(varint_size(size) for size in span)
        first += len(span)
    return framing, len(spans)


def read_safetensors_header(path):
    with open(path, "rb") as f:
        return json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))


def run(args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def info(tok1d, path):
    return json.loads(run([tok1d, "info", "--json", path]))


def sizes_at(meta, k, raw, spans=True):
    """(file bytes, coded token bytes, layer framing bytes) of the file trimmed to k tokens per
    tile, as 1.2 (spans) or 1.1 (LAYR chunks) frames it."""
    payload = meta["layer_payload_bytes"][:k]
    if raw:
        bits = math.ceil(math.log2(meta["codebook_size"]))
        payload = [math.ceil(meta["tiles"] * bits / 8) for _ in payload]
    if spans:
        framing = span_framing(payload)[0]
    else:
        framing = len(payload) * (CHUNK_FRAMING + LAYER_INDEX)
    return meta["header_bytes"] + framing + sum(payload) + DONE_CHUNK, sum(payload), framing


def check_formulas(tok1d, model, image, meta, tmp, threads):
    """Encodes `image` raw, trims both files, compares with sizes_at."""
    raw_path = os.path.join(tmp, "raw.t1d")
    run([tok1d, "encode", image, "-o", raw_path, "-f", "--tokens", str(meta["max_tokens"]),
         "--coder", "raw", "--no-refine", "--model", model, "-j", str(threads)])
    raw_meta = info(tok1d, raw_path)
    for k in (1, meta["max_tokens"] // 2, meta["max_tokens"]):
        for path, source, raw in ((raw_path, raw_meta, True), (meta["path"], meta, False)):
            trimmed = os.path.join(tmp, "trimmed.t1d")
            run([tok1d, "trim", path, "-t", str(k), "-o", trimmed, "-f"])
            expected = sizes_at(meta, k, raw)[0]
            if os.path.getsize(trimmed) != expected:
                sys.exit(f"size formula is off for k={k} ({'raw' if raw else 'range'}): "
                         f"{os.path.getsize(trimmed)} bytes, computed {expected}")


def trimmed_info(tok1d, path, k, tmp):
    trimmed = os.path.join(tmp, "trimmed.t1d")
    run([tok1d, "trim", path, "-t", str(k), "-o", trimmed, "-f"])
    return info(tok1d, trimmed)


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
    framing = {}  # k -> {"header", "payload", "framing_11", "framing_12", "file_11", "file_12"}
    study = {}  # (k, threshold) -> [file bytes, spans]
    pixels = tokens_per_layer = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n, image in enumerate(images):
            path = os.path.join(tmp, "range.t1d")
            run([args.tok1d, "encode", image, "-o", path, "-f", "--tokens", str(model_tokens),
                 "--coder", "range", "--no-refine", "--model", args.model, "-j", str(args.threads)])
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
                    file_bytes, token_bytes, _ = sizes_at(meta, k, coder == "raw")
                    entry = totals.setdefault((k, coder), [0, 0])
                    entry[0] += file_bytes
                    entry[1] += token_bytes
                # 1.2: the real trimmed file; 1.1: the same layers in LAYR chunks.
                real = trimmed_info(args.tok1d, path, k, tmp)
                if real["bytes"] != sizes_at(meta, k, False)[0]:
                    sys.exit(f"{image}: the span formula is off at k={k}")
                file_11, payload, framing_11 = sizes_at(meta, k, False, spans=False)
                entry = framing.setdefault(k, dict.fromkeys(
                    ("header", "payload", "framing_11", "framing_12", "file_11", "file_12"), 0))
                entry["header"] += real["header_bytes"]
                entry["payload"] += sum(real["layer_payload_bytes"])
                entry["framing_11"] += framing_11
                entry["framing_12"] += real["layer_framing_bytes"]
                entry["file_11"] += file_11
                entry["file_12"] += real["bytes"]
                for threshold in STUDY_THRESHOLDS:
                    spans_framing, spans = span_framing(meta["layer_payload_bytes"][:k], threshold)
                    entry = study.setdefault((k, threshold), [0, 0])
                    entry[0] += meta["header_bytes"] + payload + spans_framing + DONE_CHUNK
                    entry[1] += spans
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
    n = len(images)
    framing_rows = []
    for k in REPORT_K:
        if k not in framing:
            continue
        e = {key: value / n for key, value in framing[k].items()}
        framing_rows.append({"k": k, **{key: round(value, 1) for key, value in e.items()},
                             "bpp_11": round(8 * e["file_11"] * n / pixels, 4),
                             "bpp_12": round(8 * e["file_12"] * n / pixels, 4),
                             "saving_percent": round(100 * (1 - e["file_12"] / e["file_11"]), 1)})
    print(f"\nMean per image, range coder: format 1.1 (LAYR per layer) against 1.2 (LAYS spans of "
          f"{SPAN_BYTES} bytes); DONE adds {DONE_CHUNK} bytes to both\n")
    print("| k | 1.1 bytes | 1.2 bytes | saving | 1.1 bpp | 1.2 bpp | header | token payload "
          "| 1.1 framing | 1.2 framing |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in framing_rows:
        print(f"| {r['k']} | {r['file_11']:.1f} | {r['file_12']:.1f} | {r['saving_percent']:.1f}% "
              f"| {r['bpp_11']:.4f} | {r['bpp_12']:.4f} | {r['header']:.1f} | {r['payload']:.1f} "
              f"| {r['framing_11']:.1f} ({100 * r['framing_11'] / r['file_11']:.1f}%) "
              f"| {r['framing_12']:.1f} ({100 * r['framing_12'] / r['file_12']:.1f}%) |")

    study_k = [k for k in (8, 32, 128) if (k, None) in study]
    print("\nSpan threshold: mean file bytes (mean spans per file), range coder\n")
    print("| threshold | " + " | ".join(f"k = {k}" for k in study_k) + " |")
    print("|---|" + "---|" * len(study_k))
    study_rows = []
    for threshold in STUDY_THRESHOLDS:
        cells = [(study[(k, threshold)][0] / n, study[(k, threshold)][1] / n) for k in study_k]
        name = "one layer per span" if threshold == 0 else (
            "one span per file" if threshold is None else f"{threshold} bytes")
        print(f"| {name} | " + " | ".join(f"{b:.1f} ({s:.1f})" for b, s in cells) + " |")
        study_rows.append({"threshold": threshold, "k": study_k,
                           "file_bytes": [round(b, 1) for b, _ in cells],
                           "spans": [round(s, 2) for _, s in cells]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model_sha256": meta["model_sha256"], "model_name": meta["model_name"],
                       "images": len(images), "log2_levels": log2_levels, "rows": rows,
                       "framing_rows": framing_rows, "span_thresholds": study_rows}, f, indent=1)


if __name__ == "__main__":
    main()
