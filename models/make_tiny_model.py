#!/usr/bin/python3
"""A tiny tok1d model with random weights in every part (none left at its zero start), for
golden vectors of architectures the default model does not have yet: the C++ runtime's parity
tests run on it the way they run on the default model.

  /opt/tok1d-venv/bin/python models/make_tiny_model.py --out tests/data/golden/conv_head/model.safetensors \\
      --config '{"conv_head": 8}'
  python models/export.py --golden-from MODEL --golden GOLDEN --golden-k 1,4,16
  python models/golden_gradients.py --model MODEL --golden GOLDEN --out GRADIENTS --keep 4,8,16

The config is DEFAULT_CONFIG shrunk (64 px tiles, width 32, 16 tokens) plus --config's keys."""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import write_safetensors  # noqa: E402
from tok1d_model import Tok1d  # noqa: E402

TINY = {"tile": 64, "patch": 16, "width": 32, "enc_depth": 1, "dec_depth": 2, "heads": 2,
        "mlp_ratio": 2, "tokens": 16, "pool": 16}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--config", default="{}", help="JSON keys added to the tiny config")
    ap.add_argument("--name", default="tiny-random")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model = Tok1d(dict(TINY, **json.loads(args.config)))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("norm.weight"):
                param.copy_(1 + 0.1 * torch.randn_like(param))
            else:  # about unit-variance outputs for unit-variance inputs
                fan_in = param[0].numel() if param.dim() > 1 else 1
                param.copy_(torch.randn_like(param) / np.sqrt(fan_in) * (0.3 if param.dim() > 1 else 0.05))
    tensors = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    meta = {"format": "tok1d-model", "format_version": "1", "name": args.name,
            "config": json.dumps(model.cfg, sort_keys=True),
            "training": json.dumps({"note": "random weights (models/make_tiny_model.py), a test model"})}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    sha = write_safetensors(args.out, tensors, meta)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) sha256 {sha}")


if __name__ == "__main__":
    main()
