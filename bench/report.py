#!/usr/bin/env python3
"""Merges the JSON lines of tok1d_bench and torch_decode_bench.py into one Markdown table:
tiles per second, achieved GFLOP/s (tok1d's analytic count of the decoder's FLOPs, the same
for every implementation) and the fraction of the GPU's FP32 peak.

  python3 bench/report.py RESULTS.jsonl... > results.md"""
import json
import sys


def main(paths):
    rows, gpu = [], None
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                record = json.loads(line)
                if "gpu" in record:
                    gpu = record
                else:
                    rows.append(record)
    flops = next((r["flops_per_tile"] for r in rows if "flops_per_tile" in r), None)
    peak = gpu.get("peak_fp32_gflops") if gpu else None

    print("# Decoder benchmark\n")
    if gpu:
        print(f"GPU: {gpu['gpu']} (compute capability {gpu['compute_capability']}, "
              f"{gpu['multiprocessors']} multiprocessors, max SM clock {gpu['max_sm_clock_mhz']} MHz); "
              f"FP32 peak {peak:.0f} GFLOP/s" if peak else f"GPU: {gpu['gpu']} (FP32 peak unknown)")
        print(f"PyTorch {gpu['torch']}, CUDA {gpu['cuda']}.\n")
    if flops:
        print(f"FLOPs per decoded tile (matrix products, counted analytically): {flops / 1e9:.3f} GFLOP.\n")
    print("| implementation | backend | device | batch (tiles) | tiles/s | GFLOP/s | of FP32 peak |")
    print("|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        gflops = r["tiles_per_second"] * flops / 1e9 if flops else None
        on_gpu = r["backend"] in ("cuda", "hip")
        share = f"{100 * gflops / peak:.1f}%" if gflops and peak and on_gpu else ""
        print(f"| {r['implementation']} | {r['backend']} | {r['device']} | {r['batch']} | "
              f"{r['tiles_per_second']:.1f} | {gflops:.1f} | {share} |" if gflops else
              f"| {r['implementation']} | {r['backend']} | {r['device']} | {r['batch']} | "
              f"{r['tiles_per_second']:.1f} | | |")
    if not rows:
        print("| (no measurements) | | | | | | |")


if __name__ == "__main__":
    main(sys.argv[1:])
