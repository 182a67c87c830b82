#!/usr/bin/python3
"""Train the tok1d tokenizer within a time budget; checkpoints and resumes.

  /usr/bin/python3 models/train.py --minutes 120 --run models/runs/main

Logs validation PSNR at several kept-token counts to RUN/log.csv."""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rate import TokenRate  # noqa: E402
from structural import ms_ssim  # noqa: E402
from data import CropSampler, fixed_crops, load_dataset, kodak_images, tile_image  # noqa: E402
from tok1d_model import DEFAULT_CONFIG, Tok1d, pca_init, refined_codes  # noqa: E402

EVAL_K = [2, 8, 32, 128]


def psnr(mse):
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def decoder_codes(model, bounded, keep, plan, steps=None):
    """The decoder's input for kept counts `keep`: the rounded FSQ values, and with a refinement
    plan the refined values of the tokens it refines (as the codec sends them); with `steps`
    (first [B], step [B]) tokens from first[b] on rounded to every step[b]-th level, as the
    codec's quantiser steps do (container/FORMAT.md, QSTP). The gradient passes straight
    through to the bounded values."""
    plain = bounded / model.fsq.half_width
    codes = refined_codes(model.fsq, bounded.detach(), keep, plan)
    if steps is not None:
        first, step = steps[0].view(-1, 1, 1), steps[1].view(-1, 1, 1).to(bounded.dtype)
        half = model.fsq.half_width
        limit = step * torch.floor(half / step)
        coarse = torch.maximum(torch.minimum(step * torch.round(bounded.detach() / step), limit), -limit)
        position = torch.arange(bounded.shape[1], device=bounded.device).view(1, -1, 1)
        codes = torch.where(position >= first, coarse / half, codes)
    return plain + (codes - plain).detach()


def sample_steps(batch, K, gen, device, share):
    """Quantiser steps for a share of the samples: from token 16, 32 or 48 on, every 2nd or
    3rd level (the others: first = K, no step)."""
    on = torch.rand(batch, generator=gen) < share
    first = torch.tensor([16, 32, 48])[torch.randint(0, 3, (batch,), generator=gen)].clamp(max=K)
    step = torch.randint(2, 4, (batch,), generator=gen)
    return torch.where(on, first, torch.full_like(first, K)).to(device), step.to(device)


@torch.no_grad()
def evaluate(model, tiles_uint8, device, ks, batch=64, plan=None, rate=None):
    """Mean-squared-error PSNR over all tiles (pooled MSE), for each kept count k; with a
    TokenRate, also "bits": the mean bits a token costs under its tables."""
    model.eval()
    sums = {k: 0.0 for k in ks}
    n, bits = 0, 0.0
    for i in range(0, len(tiles_uint8), batch):
        x = torch.tensor(tiles_uint8[i:i + batch], device=device).float() / 255
        bounded = model.fsq.bound(model.encode_latent(x))
        if rate is not None:
            bits += rate.nll(bounded).item() * len(x)
        for k in ks:
            keep = torch.full((len(x),), k, device=device)
            y = model.decode_codes(decoder_codes(model, bounded, keep, plan), keep).clamp(0, 1)
            sums[k] += ((y - x) ** 2).mean(dim=(1, 2, 3)).sum().item()
        n += len(x)
    model.train()
    scores = {k: psnr(sums[k] / n) for k in ks}
    if rate is not None:
        scores["bits"] = bits / n
    return scores


def sample_keep(batch, K, gen, device, full_share=0.0):
    """Tail-token drop, per sample: k uniform in 1..K; with probability full_share, k = K
    (more weight on the top rate, where the model is furthest from JPEG and WebP)."""
    keep = torch.randint(1, K + 1, (batch,), generator=gen)
    if full_share > 0:
        keep = torch.where(torch.rand(batch, generator=gen) < full_share, torch.full_like(keep, K), keep)
    return keep.to(device)


def cpu_has_bf16():
    """Whether this CPU computes bfloat16 natively (Linux: /proc/cpuinfo flags)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def make_optimizer(model, args, new_names=()):
    """AdamW with the shortcuts at their own rate and the parts a graft added (`new_names`,
    given only with --new-lr-scale) at theirs. A resume takes each group's saved scale."""
    groups = {"rest": [], "shortcut": [], "new": []}
    new = set(new_names)
    for n, p in model.named_parameters():
        groups["shortcut" if n.startswith("shortcut_") else "new" if n in new else "rest"].append(p)
    param_groups = [
        {"params": groups["rest"], "lr_scale": 1.0, "weight_decay": 0.01},
        {"params": groups["shortcut"], "lr_scale": args.shortcut_lr_scale, "weight_decay": 0.0},
    ]
    if groups["new"]:
        param_groups.append({"params": groups["new"], "lr_scale": args.new_lr_scale or 1.0, "weight_decay": 0.01})
    return torch.optim.AdamW(param_groups, lr=args.lr)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, required=True, help="training time budget (wall clock)")
    ap.add_argument("--run", required=True, help="run folder: checkpoint, log, config")
    ap.add_argument("--data", nargs="+", default=["../shared/data/train"])
    ap.add_argument("--cache", default="data/cache/train512.npz")
    ap.add_argument("--kodak", default="../shared/data/kodak", help="evaluation only; never trained on")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--eval-every", type=float, default=10.0, help="minutes between evaluations")
    ap.add_argument("--shortcut-lr-scale", type=float, default=0.03,
                    help="learning-rate factor for the PCA-initialised shortcuts: Adam's unit-size steps "
                         "at the full rate wreck their small weights")
    ap.add_argument("--new-lr-scale", type=float, default=None,
                    help="with --init-from and --config: learning-rate factor for the parts the "
                         "graft adds (they start as the identity; at a fine-tune's rate they barely move)")
    ap.add_argument("--linear-minutes", type=float, default=0.0,
                    help="warm-up: train the code-space shortcuts alone (cheap) for this long first")
    ap.add_argument("--linear-batch", type=int, default=256)
    ap.add_argument("--config", default="{}", help="JSON overrides of the model config (with "
                    "--init-from: parts to add to the exported model, e.g. a conv head)")
    ap.add_argument("--no-pca-init", action="store_true")
    ap.add_argument("--init-from", help="a new run starts from this exported model's weights (its "
                                        "architecture; fp16 -> fp32) instead of a PCA init")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps-share", type=float, default=0.0,
                    help="share of samples decoded with random quantiser steps (docs/steps.md)")
    ap.add_argument("--full-share", type=float, default=0.0,
                    help="share of samples that keep all K tokens (the rest: k uniform in 1..K)")
    ap.add_argument("--amp", choices=["auto", "fp32", "bf16"], default="auto",
                    help="bf16: the training forward pass under autocast to bfloat16 (evaluation stays "
                         "fp32); 1.7x the crops per CPU-second of fp32 on this AVX512-BF16 CPU with the "
                         "same loss (models/README.md, 'Training setup and speed'). auto: bf16 on a CPU "
                         "with native bf16 (avx512_bf16 or amx_bf16), else fp32 (CUDA: fp32 with TF32)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training loss (PyTorch 2)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="what --minutes counts: wall-clock time, or this process's CPU time (fair "
                         "equal-budget comparisons on a machine shared with builds; with 1 thread)")
    ap.add_argument("--max-steps", type=int, default=0,
                    help="stop after this many steps (0: the time budget alone) and print a throughput "
                         "summary (crops/s after the first 10 steps, mean loss of the last 20 steps)")
    ap.add_argument("--synthetic", type=float, default=0.0,
                    help="share of each batch replaced by synthetic graphics tiles (synthetic.py)")
    ap.add_argument("--refinement", help="train and evaluate with refined values: a plan as JSON "
                                         "({\"bits\": B, \"after\": [...]}) or 'model' for the "
                                         "--init-from model's plan")
    ap.add_argument("--rate-weight", type=float, default=0.0,
                    help="rate-distortion training: add c * mse/bits * bits per tile (bits of its kept "
                         "tokens under learned tables, rate.py); c is the slope d ln(MSE) / d ln(bits) "
                         "the model trades at (about 0.26 for today's model: 0.78 dB per doubling)")
    ap.add_argument("--rate-weight-top", type=float,
                    help="c at k = K when it should differ from c at k = 1 (--rate-weight): c moves "
                         "log-linearly in k between them; the model's own slope is lower at the top "
                         "of the ladder, where a uniform c empties the late tokens")
    ap.add_argument("--msssim-weight", type=float, default=0.0,
                    help="add a structural term, 1 - MS-SSIM (models/structural.py), weighted "
                    "relative to the squared error as --rate-weight is")
    ap.add_argument("--rate-lr", type=float, default=1e-2, help="learning rate of the rate tables")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if args.amp == "auto":
        args.amp = "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"
    elif args.amp == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        # measured on an AVX2-only EPYC: 3 steps a CPU-minute against fp32's 50
        print("warning: --amp bf16 on a CPU without native bf16 (avx512_bf16/amx_bf16) is "
              "emulated and many times slower than fp32; use --amp auto", flush=True)
    print(f"torch {torch.__version__}, {args.threads} thread(s), amp {args.amp}", flush=True)
    if device.type == "cuda":  # TF32 matrix products: several times faster, ample for training
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    os.makedirs(args.run, exist_ok=True)
    ckpt_path = os.path.join(args.run, "checkpoint.pt")
    log_path = os.path.join(args.run, "log.csv")

    train_imgs, val_imgs = load_dataset(args.data, cache=args.cache)
    tile = DEFAULT_CONFIG["tile"]
    sampler = CropSampler(train_imgs, tile, seed=args.seed)
    # small fixed sets keep the periodic evaluation cheap; evaluate.py does the full Kodak run
    val_tiles = fixed_crops(val_imgs, tile, per_image=1)[:64]
    kodak_tiles = None
    if args.kodak and os.path.isdir(args.kodak):
        kodak_tiles = np.concatenate([tile_image(im, tile)[0] for im in kodak_images(args.kodak)])[::12]

    new_names = []  # parameters in the optimizer's own group for grafted parts
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu")
        model = Tok1d(ck["config"]).to(device)
        model.load_state_dict(ck["model"])
        new_names = ck.get("new_params", [])
        opt = make_optimizer(model, args, new_names)
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck["elapsed"]
        linear_steps = ck.get("linear_steps", 0)
        sampler.rng.setstate(ck["sampler_rng"])
        print(f"resumed at step {step}, {elapsed / 60:.1f} min", flush=True)
        # record the resume: its budget and settings may differ from the first start's
        cfg_path = os.path.join(args.run, "config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path) as f:
                record = json.load(f)
            record["train"].setdefault("resumes", []).append(
                {"step": step, "minutes_done": round(elapsed / 60, 2), "minutes": args.minutes,
                 "batch": args.batch, "threads": args.threads, "lr": args.lr, "device": args.device,
                 "full_share": args.full_share})
            with open(cfg_path, "w") as f:
                json.dump(record, f, indent=1)
    elif args.init_from:  # fine-tuning, e.g. the default model on a GPU (scripts/gpu-train)
        from export import load_model
        model = load_model(args.init_from)[0]
        overrides = json.loads(args.config)
        if overrides:  # graft: new parts (e.g. a zero-initialised conv head) start as in a new model
            grafted = Tok1d({**model.cfg, **overrides})
            missing, unexpected = grafted.load_state_dict(model.state_dict(), strict=False)
            if unexpected:
                raise SystemExit(f"--config {args.config} drops trained weights: {unexpected}")
            # added transformer blocks start as the identity (zero output projections), so the
            # grafted model decodes exactly as the one it comes from
            with torch.no_grad():
                for name, param in grafted.named_parameters():
                    if name in missing and "_blocks." in name and name.split(".")[-2] in ("proj", "fc2"):
                        param.zero_()
            print(f"grafted onto {args.init_from}: new {sorted({k.split('.')[0] for k in missing})}", flush=True)
            model = grafted
            if args.new_lr_scale is not None:
                new_names = sorted(missing)
        model = model.train().to(device)
        opt = make_optimizer(model, args, new_names)
        step, elapsed, linear_steps = 0, 0.0, 0
        with open(os.path.join(args.run, "config.json"), "w") as f:
            json.dump({"model": model.cfg, "train": vars(args)}, f, indent=1)
    else:
        model = Tok1d(json.loads(args.config))
        if not args.no_pca_init:
            pca_init(model, CropSampler(train_imgs, tile, seed=999).batch(20000))
        model.to(device)
        opt = make_optimizer(model, args)
        step, elapsed, linear_steps = 0, 0.0, 0
        with open(os.path.join(args.run, "config.json"), "w") as f:
            json.dump({"model": model.cfg, "train": vars(args)}, f, indent=1)
    K = model.cfg["tokens"]
    # the rate tables are trained in every run (their bits/token is logged), used in the loss
    # only with --rate-weight
    rate = TokenRate(K, model.cfg["fsq_levels"]).to(device)
    if os.path.exists(ckpt_path) and "rate" in ck:
        rate.load_state_dict(ck["rate"])
    else:
        with torch.no_grad():
            xs = torch.tensor(CropSampler(train_imgs, tile, seed=4242).batch(512), device=device).float() / 255
            rate.fit(model.fsq.bound(model.encode_latent(xs)))
    rate_opt = torch.optim.Adam(rate.parameters(), lr=args.rate_lr)
    if os.path.exists(ckpt_path) and "rate_opt" in ck:
        rate_opt.load_state_dict(ck["rate_opt"])
    plan = None
    if args.refinement == "model":
        from export import read_safetensors, refinement_plan
        plan = refinement_plan(read_safetensors(args.init_from)[1])
    elif args.refinement:
        plan = json.loads(args.refinement)
    gen = torch.Generator().manual_seed(args.seed + step)
    budget = args.minutes * 60
    synth = None
    if args.synthetic > 0:
        from synthetic import SyntheticTiles
        synth = SyntheticTiles(tile, seed=args.seed + 17 + step)

    def train_batch(n):
        x = sampler.batch(n)
        if synth is not None:
            m = int(round(n * args.synthetic))
            if m:
                x[n - m:] = synth.batch(m)
        return x

    def rate_weight(keep):
        if args.rate_weight_top is None:
            return args.rate_weight
        position = torch.log(keep.float()) / math.log(K)  # 0 at k = 1, 1 at k = K
        return args.rate_weight * (args.rate_weight_top / args.rate_weight) ** position

    def loss_fn(x, keep, steps=None):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp == "bf16"):
            bounded = model.fsq.bound(model.encode_latent(x))
            y = model.decode_codes(decoder_codes(model, bounded, keep, plan, steps), keep)
        mse = ((y.float() - x) ** 2).mean((1, 2, 3))
        loss = mse.mean()
        if args.msssim_weight > 0:
            dissimilarity = 1 - ms_ssim(y.float().permute(0, 3, 1, 2), x.permute(0, 3, 1, 2))
            loss = loss + (args.msssim_weight * mse.detach() / dissimilarity.detach().clamp(min=1e-6)
                           * dissimilarity).mean()
        bounded = bounded.float()
        if args.rate_weight > 0:
            bits = rate.bits(bounded, keep)
            loss = loss + (rate_weight(keep) * mse.detach() / bits.detach().clamp(min=1.0) * bits).mean()
        return loss, bounded

    if args.compile:
        loss_fn = torch.compile(loss_fn)
    step0, times, losses = step, [], []
    t_loop = None
    cpu_times = []

    def log_eval():
        row = {"step": step, "linear_steps": linear_steps, "minutes": round(elapsed / 60, 2)}
        for name, tiles in (("val", val_tiles), ("kodak", kodak_tiles)):
            if tiles is None:
                continue
            scores = evaluate(model, tiles, device, EVAL_K, plan=plan, rate=rate)
            bits = scores.pop("bits")
            for k, v in scores.items():
                row[f"{name}_k{k}"] = round(v, 3)
            row[f"{name}_bits"] = round(bits, 3)
        new = not os.path.exists(log_path)
        with open(log_path, "a") as f:
            if new:
                f.write(",".join(row) + "\n")
            f.write(",".join(str(v) for v in row.values()) + "\n")
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    def save():
        tmp = ckpt_path + ".tmp"
        torch.save({"config": model.cfg, "model": model.state_dict(), "opt": opt.state_dict(),
                    "step": step, "linear_steps": linear_steps, "elapsed": elapsed, "sampler_rng": sampler.rng.getstate(),
                    "rate": rate.state_dict(), "rate_opt": rate_opt.state_dict(), "new_params": new_names}, tmp)
        os.replace(tmp, ckpt_path)

    if step == 0:
        log_eval()
    last_eval = elapsed
    clock = time.process_time if args.clock == "cpu" else time.time
    t0 = clock() - elapsed
    linear_budget = args.linear_minutes * 60
    t_loop = time.time()
    while elapsed < budget:
        if elapsed < linear_budget:
            # warm-up of the shortcuts alone: exact, since the transformer paths output zero
            x = torch.tensor(sampler.batch(args.linear_batch), device=device).float() / 255
            keep = sample_keep(args.linear_batch, K, gen, device)
            loss = ((model.forward_linear(x, keep) - x) ** 2).mean()
            for g in opt.param_groups:
                g["lr"] = args.lr * g["lr_scale"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            elapsed = clock() - t0
            if step % 200 == 0:
                print(f"linear step {step} min {elapsed / 60:.1f} loss {loss.item():.5f} psnr {psnr(loss.item()):.2f}", flush=True)
            if elapsed >= linear_budget:
                linear_steps = step
                log_eval()
            continue
        frac = elapsed / budget
        lr = args.lr * min(1.0, (step - linear_steps + 1) / args.warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        x = torch.tensor(train_batch(args.batch), device=device).float() / 255
        keep = sample_keep(args.batch, K, gen, device, args.full_share)
        steps = sample_steps(args.batch, K, gen, device, args.steps_share) if args.steps_share > 0 else None
        loss, bounded = loss_fn(x, keep, steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        rate_loss = rate.nll(bounded)
        rate_opt.zero_grad(set_to_none=True)
        rate_loss.backward()
        rate_opt.step()
        step += 1
        elapsed = clock() - t0
        if step % 50 == 0:
            print(f"step {step} min {elapsed / 60:.1f} lr {lr:.2e} loss {loss.item():.5f} bits/token {rate_loss.item():.2f}", flush=True)
        times.append(time.time())
        cpu_times.append(time.process_time())
        losses.append(loss.item())
        if args.max_steps and step - step0 >= args.max_steps:
            break
        if elapsed - last_eval >= args.eval_every * 60:
            save()
            log_eval()
            last_eval = elapsed
    save()
    log_eval()
    if args.max_steps and len(times) > 10:
        n = len(times) - 10
        summary = {"torch": torch.__version__, "threads": args.threads, "amp": args.amp,
                   "compile": args.compile, "batch": args.batch, "steps": len(times),
                   "first10_s": round(times[9] - t_loop, 2),
                   "crops_per_s": round(n * args.batch / (times[-1] - times[9]), 2),
                   "crops_per_cpu_s": round(n * args.batch / (cpu_times[-1] - cpu_times[9]), 2),
                   "loss_last20": round(sum(losses[-20:]) / len(losses[-20:]), 6)}
        print("THROUGHPUT " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
