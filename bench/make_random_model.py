#!/usr/bin/python3
"""Writes a tok1d model file with random weights of the default architecture
(models/tok1d_model.py DEFAULT_CONFIG), for benchmarking where the trained model is not at
hand: the decoder's speed depends on the architecture only.

  /usr/bin/python3 bench/make_random_model.py OUT.safetensors"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"))
from export import write_safetensors  # noqa: E402
from tok1d_model import Tok1d  # noqa: E402


def main(path):
    torch.manual_seed(1)
    model = Tok1d()
    with torch.no_grad():  # the zero-initialised output heads would make the decoder trivial
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0, 0.02)
    tensors = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    meta = {"format": "tok1d-model", "format_version": "1", "name": "random-default-architecture",
            "config": json.dumps(model.cfg, sort_keys=True), "training": "{}"}
    sha = write_safetensors(path, tensors, meta)
    print(f"wrote {path} (random weights, default architecture) sha256 {sha}")


if __name__ == "__main__":
    main(sys.argv[1])
