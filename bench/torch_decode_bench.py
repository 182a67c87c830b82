#!/usr/bin/python3
"""The PyTorch reference decoder (models/tok1d_model.py) on the same GPU and weights as
tok1d_bench, timed the same way: token indices from the host, Tok1d.decode, pixels back to the
host. Prints one JSON object per line, like tok1d_bench, and first a "gpu" line with the
device's theoretical FP32 peak, for bench/report.py.

  /usr/bin/python3 bench/torch_decode_bench.py --model FILE [--batches 1,24,1024] [--seconds S]

Exits 77 (skipped) when PyTorch or a CUDA device is missing."""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))

# FP32 lanes per multiprocessor by compute capability (NVIDIA's tuning guides); the peak is
# lanes × 2 (a fused multiply-add) × multiprocessors × the maximum SM clock.
FP32_LANES_PER_SM = {(7, 0): 64, (7, 5): 64, (8, 0): 64, (8, 6): 128, (8, 7): 128, (8, 9): 128,
                     (9, 0): 128, (10, 0): 128, (12, 0): 128}


def max_sm_clock_mhz():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return float(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def gpu_line(torch):
    props = torch.cuda.get_device_properties(0)
    lanes = FP32_LANES_PER_SM.get((props.major, props.minor))
    clock = max_sm_clock_mhz()
    peak = props.multi_processor_count * lanes * 2 * clock / 1e3 if lanes and clock else None
    return {"gpu": props.name, "compute_capability": f"{props.major}.{props.minor}",
            "multiprocessors": props.multi_processor_count, "max_sm_clock_mhz": clock,
            "fp32_lanes_per_sm": lanes, "peak_fp32_gflops": peak,
            "torch": torch.__version__, "cuda": torch.version.cuda}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batches", default="1,24,1024")
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("skipped: PyTorch is not installed for", sys.executable, file=sys.stderr)
        return 77
    if not torch.cuda.is_available():
        print("skipped: PyTorch sees no CUDA device", file=sys.stderr)
        return 77
    from export import load_model  # noqa: E402 (models/)

    print(json.dumps(gpu_line(torch)), flush=True)
    model, _, _ = load_model(args.model)
    model = model.cuda().eval()
    cfg = model.cfg
    codebook = 1
    for levels in cfg["fsq_levels"]:
        codebook *= levels
    # Matrix products in true FP32 like tok1d's kernels; then TF32 tensor cores, which PyTorch
    # may use when asked and which show what tensor cores would give.
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        for batch in (int(b) for b in args.batches.split(",")):
            generator = torch.Generator().manual_seed(1)
            idx = torch.randint(0, codebook, (batch, cfg["tokens"]), generator=generator)
            keep = torch.full((batch,), cfg["tokens"])

            def decode():
                with torch.no_grad():
                    return model.decode(idx.cuda(), keep.cuda()).cpu()

            decode()  # warm-up: kernels, allocator
            torch.cuda.synchronize()
            runs, start = 0, time.perf_counter()
            while True:
                decode()
                runs += 1
                elapsed = time.perf_counter() - start
                if elapsed >= args.seconds:
                    break
            tiles_per_second = runs * batch / elapsed
            print(json.dumps({"implementation": "pytorch" + (" tf32" if tf32 else ""), "backend": "cuda",
                              "device": torch.cuda.get_device_name(0), "batch": batch, "runs": runs,
                              "seconds_per_batch": elapsed / runs, "tiles_per_second": tiles_per_second}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
