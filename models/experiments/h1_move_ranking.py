#!/usr/bin/python3
"""How well does the token search (codec/token_search.cpp) pick the single moves it tries?

The polish ranks every one-level move of a kept value by its first-order change of the
objective (gradient · step, plus the exact change of code length) and tries the best few
exactly. A level is a large step for the decoder, so the first-order term misses the
curvature: for a squared error, Δ ≈ g·s + s²·‖J_i‖² (Gauss-Newton), where J_i is the
decoded tile's derivative in value i. This measures, on held-out training tiles (never
Kodak), every move's exact change and how many of the top T of each ranking help:

  first order         g·s + λ Δbits                              (the codec today)
  curvature, exact    + s²‖J_i‖², ‖J_i‖² from finite differences (a bound on the idea)
  curvature, S probes + s² mean_v (J_iᵀv)², v random ±1 pixels   (Hutchinson: S backward passes)

  /usr/bin/python3 models/experiments/h1_move_ranking.py --tiles 16 --k 32
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from data import list_images, load_rgb, split_train_val, tile_image  # noqa: E402
from export import load_model, refinement_plan  # noqa: E402
from optimize_tokens import Quantizer, TokenBits  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(HERE, "..", "tok1d-default.safetensors"))
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "train"))
    ap.add_argument("--tiles", type=int, default=16)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--tries", type=int, default=16)
    ap.add_argument("--probes", default="2,4,8,16")
    ap.add_argument("--lambda-scale", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, meta, tensors = load_model(args.model)
    for p in model.parameters():
        p.requires_grad_(False)
    bits_of = TokenBits(tensors, meta, model)
    quant = Quantizer(model, refinement_plan(meta))
    _, val = split_train_val(list_images(args.data))
    rng = np.random.default_rng(0)
    tiles = []
    for path in val[::7]:
        t, _, _ = tile_image(load_rgb(path), model.cfg["tile"])
        tiles.append(t[rng.integers(len(t))])
        if len(tiles) == args.tiles:
            break
    x = torch.tensor(np.stack(tiles)).float() / 255
    k, K = args.k, model.cfg["tokens"]
    mask = (torch.arange(K) < k).view(1, K, 1).float()
    hw = model.fsq.half_width

    def decode(v):  # v: [B, K, C] quantised values (levels), the first k kept
        return model.decode_codes(v * mask / hw, torch.full((v.shape[0],), k)).clamp(0, 1)

    with torch.no_grad():
        b0 = model.fsq.bound(model.encode_latent(x))
        half = quant(b0, k // 2) * (torch.arange(K) < k // 2).view(1, K, 1)
        sse_half = ((model.decode_codes(half / hw, torch.full((len(x),), k // 2)).clamp(0, 1) - x) ** 2).sum()
        v0 = quant(b0, k)
        sse0 = ((decode(v0) - x) ** 2).sum((1, 2, 3))
    lam = args.lambda_scale * float(sse_half - sse0.sum()) / float(bits_of(b0, k).sum() - bits_of(b0, k // 2).sum())
    C = v0.shape[2]
    step = torch.ones(K)
    plan = refinement_plan(meta)
    if plan:
        after = torch.tensor(plan["after"])
        step[: len(after)] = torch.where(k > after, 1.0 / 2 ** plan["bits"], 1.0)
    probes = [int(s) for s in args.probes.split(",")]
    names = ["first order", "curvature, exact"] + [f"curvature, {s} probes" for s in probes]
    helped = {n: [] for n in names}
    best_found = {n: [] for n in names}
    oracle_best, helpful_all = [], []
    saved = []
    for t in range(len(x)):
        v = v0[t : t + 1].clone().requires_grad_(True)
        out = model.decode_codes(v * mask / hw, torch.full((1,), k))
        inside = ((out > 0) & (out < 1)).float()
        sse = ((out.clamp(0, 1) - x[t : t + 1]) ** 2).sum()
        (g,) = torch.autograd.grad(sse, v, retain_graph=True)
        g = g[0, :k]
        # Hutchinson probes of diag(JᵀJ) (the clamp's mask applied, as the codec's gradient is)
        diag_est = {}
        sq = torch.zeros(k, C)
        done = 0
        for s in range(max(probes)):
            probe = (torch.randint(0, 2, out.shape) * 2 - 1).float() * inside
            (jv,) = torch.autograd.grad(out, v, probe, retain_graph=True)
            sq += jv[0, :k] ** 2
            done += 1
            if done in probes:
                diag_est[done] = sq / done
        with torch.no_grad():
            base_bits = float(bits_of(v0[t : t + 1], k)[0])
            base_obj = float(sse0[t]) + lam * base_bits
            # every move, exactly, and ‖J_i‖² by finite differences
            trials, meta_moves = [], []
            for j in range(k):
                for d in range(C):
                    for sign in (1.0, -1.0):
                        nv = float(v0[t, j, d]) + sign * float(step[j])
                        if abs(nv) > float(quant.half[d]) + 1e-6:
                            continue
                        tr = v0[t].clone()
                        tr[j, d] = nv
                        trials.append(tr)
                        meta_moves.append((j, d, sign * float(step[j])))
            trials = torch.stack(trials)
            exact = []
            for i in range(0, len(trials), 64):
                chunk = trials[i : i + 64]
                e = ((decode(chunk) - x[t : t + 1]) ** 2).sum((1, 2, 3))
                bb = torch.tensor(bits_of(chunk, k), dtype=torch.float32)
                exact.append(e + lam * bb)
            exact = torch.cat(exact).numpy() - base_obj
            eps = 0.05
            fd = []
            base_out = decode(v0[t : t + 1])
            for j in range(k):
                pert = v0[t].clone().unsqueeze(0).repeat(C, 1, 1)
                pert[torch.arange(C), j, torch.arange(C)] += eps
                fd.append((((decode(pert) - base_out) / eps) ** 2).sum((1, 2, 3)))
            jn = torch.stack(fd)  # [k, C]
            bits_trials = np.concatenate([bits_of(trials[i : i + 256], k) for i in range(0, len(trials), 256)])
            dbits = bits_trials - base_bits
        first = np.array([float(g[j, d]) * s for j, d, s in meta_moves]) + lam * dbits
        preds = {"first order": first,
                 "curvature, exact": first + np.array([s * s * float(jn[j, d]) for j, d, s in meta_moves])}
        for p in probes:
            preds[f"curvature, {p} probes"] = first + np.array(
                [s * s * float(diag_est[p][j, d]) for j, d, s in meta_moves])
        saved.append((first, meta_moves, exact, jn))
        oracle_best.append(-exact.min())
        helpful_all.append(int((exact < 0).sum()))
        for n in names:
            top = np.argsort(preds[n], kind="stable")[: args.tries]
            helped[n].append(int((exact[top] < 0).sum()))
            best_found[n].append(max(0.0, -exact[top].min()))
        print(f"tile {t}: {len(exact)} moves, {helpful_all[-1]} help; best {oracle_best[-1]:.4f}; "
              + ", ".join(f"{n}: {helped[n][-1]}/{args.tries}" for n in names), flush=True)
    # ‖J_i‖² as a table per (token, dimension): the mean over the other tiles
    n = "curvature, table (other tiles)"
    names.append(n)
    helped[n], best_found[n] = [], []
    all_jn = torch.stack([j for *_, j in saved])
    for t, (first, meta_moves, exact, jn) in enumerate(saved):
        table = (all_jn.sum(0) - jn) / max(len(saved) - 1, 1)
        pred = first + np.array([s * s * float(table[j, d]) for j, d, s in meta_moves])
        top = np.argsort(pred, kind="stable")[: args.tries]
        helped[n].append(int((exact[top] < 0).sum()))
        best_found[n].append(max(0.0, -exact[top].min()))
    rel = (all_jn.std(0) / all_jn.mean(0)).mean()
    print(f"‖J_i‖² across tiles: mean relative spread {float(rel):.2f}")
    print(f"\nk = {k}, {len(x)} held-out tiles, λ = {args.lambda_scale} × slope; moves that help among "
          f"all: {np.mean(helpful_all):.1f} a tile")
    print(f"| ranking | of the top {args.tries}, moves that help | best gain found / best of all moves |")
    print("|---|---|---|")
    for n in names:
        ratio = np.sum(best_found[n]) / max(np.sum(oracle_best), 1e-12)
        print(f"| {n} | {np.mean(helped[n]):.2f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
