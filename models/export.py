#!/usr/bin/python3
"""Export a training checkpoint as the tok1d model file (safetensors, fp16)
and the golden vectors the C++ runtime is tested against.

  /usr/bin/python3 models/export.py --run models/runs/main --out models/tok1d-default.safetensors
  /usr/bin/python3 models/export.py --golden-from models/tok1d-default.safetensors \
      --golden tests/data/golden/golden.safetensors

Golden vectors are made from the final model file (after fit_entropy.py and
evaluate.py --update-model have added to it), since they name its SHA-256.

safetensors layout: u64 little-endian header length, a JSON header
{name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, raw tensors.
Metadata: format, format_version, name, config (JSON), training (JSON),
evaluation (JSON, filled in by evaluate.py --update-model)."""
import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tok1d_model import Tok1d  # noqa: E402

DTYPES = {np.float16: "F16", np.float32: "F32", np.int32: "I32", np.uint8: "U8", np.uint16: "U16"}


def write_safetensors(path, tensors, metadata):
    """tensors: name -> numpy array (kept in insertion order, 8-byte aligned)."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[arr.dtype.type], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        pad = (-len(data)) % 8
        blobs.append(data + b"\0" * pad)
        offset += len(data)
        if pad:  # keep offsets exact: padding becomes part of the next tensor's start
            offset += pad
    header["__metadata__"] = metadata
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((-len(hjson)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        meta = header.pop("__metadata__", {})
        rev = {v: k for k, v in DTYPES.items()}
        out = {}
        for name, info in header.items():
            a, b = info["data_offsets"]
            f.seek(base + a)
            out[name] = np.frombuffer(f.read(b - a), dtype=np.dtype(rev[info["dtype"]]).newbyteorder("<")).reshape(info["shape"])
    return out, meta


def load_model(path):
    """Load an exported model (fp16 weights -> fp32 module), as the runtime does."""
    tensors, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    model = Tok1d(cfg)
    state = {k: torch.tensor(v.astype(np.float32)) for k, v in tensors.items() if not k.startswith("entropy.")}
    model.load_state_dict(state)
    model.eval()
    return model, meta, tensors


def refinement_plan(meta):
    """The model's refinement plan ({"bits": B, "after": [...]}) from its metadata, or None."""
    return json.loads(meta["refinement"]) if "refinement" in meta else None


def golden_inputs(tile, n_synthetic=2, photos=()):
    """Fixed tiles: a smooth gradient with a disc, a checker/noise pattern, and optional photo tiles."""
    yy, xx = np.mgrid[0:tile, 0:tile].astype(np.float32) / (tile - 1)
    disc = ((xx - 0.6) ** 2 + (yy - 0.4) ** 2 < 0.08).astype(np.float32)
    a = np.stack([xx, yy, 0.5 * (1 - xx) + 0.5 * disc], -1)
    rng = np.random.default_rng(7)
    checker = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2).astype(np.float32)
    b = np.stack([checker, 0.5 + 0.2 * np.sin(20 * xx), rng.random((tile, tile), dtype=np.float32)], -1)
    tiles = [np.clip(np.rint(t * 255), 0, 255).astype(np.uint8) for t in (a, b)][:n_synthetic]
    tiles += list(photos)
    return np.stack(tiles)


def normalised_plan(plan_json):
    plan = json.loads(plan_json)
    return json.dumps({"bits": int(plan["bits"]), "after": [int(a) for a in plan["after"]]})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", help="training run folder (its checkpoint.pt is exported)")
    ap.add_argument("--out", help="model file to write")
    ap.add_argument("--golden-from", help="make golden vectors from this model file instead of exporting")
    ap.add_argument("--name", default="tok1d-default")
    ap.add_argument("--golden", help="also write golden vectors here")
    ap.add_argument("--golden-k", default="1,8,32,128")
    ap.add_argument("--refinement", help="refinement plan JSON ({\"bits\": B, \"after\": [...]}, from "
                                         "fit_refinement.py) to store in the model's metadata")
    ap.add_argument("--set-refinement", metavar="MODEL",
                    help="store --refinement in this existing model file, keeping its weights and "
                         "entropy tables (the tables do not depend on the plan)")
    args = ap.parse_args()
    if args.golden_from:
        if not args.golden:
            ap.error("--golden-from needs --golden")
        write_golden(args.golden_from, args.golden, [int(s) for s in args.golden_k.split(",")])
        return
    if args.set_refinement:
        if not args.refinement:
            ap.error("--set-refinement needs --refinement")
        tensors, meta = read_safetensors(args.set_refinement)
        meta["refinement"] = normalised_plan(args.refinement)
        sha = write_safetensors(args.set_refinement, tensors, meta)
        print(f"wrote {args.set_refinement} (refinement plan set) sha256 {sha}")
        return
    if not (args.run and args.out):
        ap.error("--run and --out are required to export")

    ck = torch.load(os.path.join(args.run, "checkpoint.pt"), map_location="cpu")
    cfg = ck["config"]
    tensors = {k: v.detach().numpy().astype(np.float16) for k, v in ck["model"].items()}
    train_cfg = {}
    cfg_path = os.path.join(args.run, "config.json")
    if os.path.exists(cfg_path):
        train_cfg = json.load(open(cfg_path))["train"]
    training = {"steps": ck["step"], "minutes": round(ck["elapsed"] / 60, 1),
                "images_seen": ck["step"] * train_cfg.get("batch", 0), "recipe": train_cfg}
    meta = {"format": "tok1d-model", "format_version": "1", "name": args.name,
            "config": json.dumps(cfg, sort_keys=True), "training": json.dumps(training, sort_keys=True)}
    if args.refinement:
        meta["refinement"] = normalised_plan(args.refinement)
    # keep evaluation numbers of a previous export of the same file, if any
    if os.path.exists(args.out):
        _, old = read_safetensors(args.out)
        if "evaluation" in old:
            meta["evaluation"] = old["evaluation"]
    sha = write_safetensors(args.out, tensors, meta)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) sha256 {sha}")

    if args.golden:
        write_golden(args.out, args.golden, [int(s) for s in args.golden_k.split(",")])


def write_golden(model_path, golden_path, ks):
    model, meta, _ = load_model(model_path)
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    t = model.cfg["tile"]
    sample = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples", "landscape.png")
    photos = []
    if os.path.exists(sample):  # tiles of the project's own rendered scene: mountains, lake
        from data import load_rgb
        scene = load_rgb(sample)
        photos = [scene[100:100 + t, 300:300 + t], scene[250:250 + t, 50:50 + t]]
    x_u8 = golden_inputs(t, photos=photos)
    x = torch.tensor(x_u8).float() / 255
    with torch.no_grad():
        idx = model.fsq.to_index(model.encode_codes(x))
        # the pre-rounding bounded values let the C++ test count ties
        bounded = model.fsq.bound(model.encode_latent(x))
        g = {"input": x_u8, "tokens": idx.numpy().astype(np.int32), "bounded": bounded.numpy().astype(np.float32)}
        for k in ks:
            g[f"decoded_k{k}"] = model.decode(idx, torch.full((len(x),), k)).numpy().astype(np.float32)
        plan = refinement_plan(meta)
        if plan:  # the decoder fed the refined codes of all K tokens, and refinement values
            from tok1d_model import refined_codes, refinement_parts
            K = model.cfg["tokens"]
            keep = torch.full((len(x),), K)
            g["refinement_parts"] = refinement_parts(bounded[:, :len(plan["after"])], plan["bits"]).numpy().astype(np.int32)
            g[f"decoded_refined_k{K}"] = model.decode_codes(refined_codes(model.fsq, bounded, keep, plan),
                                                             keep).numpy().astype(np.float32)
    os.makedirs(os.path.dirname(golden_path) or ".", exist_ok=True)
    gsha = write_safetensors(golden_path, g, {"model_sha256": sha, "model_name": meta.get("name", ""),
                                              "note": "decoded_k* are float outputs before clamping, HWC, [0,1] scale"})
    print(f"wrote {golden_path} sha256 {gsha}")


if __name__ == "__main__":
    main()
