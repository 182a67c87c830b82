"""How many bits would a learned context model save over the range coder's count tables?

Trains a small causal model (a transformer over the tile's earlier tokens, or an MLP over the
last --window tokens; each FSQ digit also sees the token's earlier digits with --intra 1) on the
default model's tokens of training crops and prints the ideal code length (cross-entropy, bits
per token) of held-out crops for each prefix k, to set beside the count tables' numbers that
fit_entropy.py prints for the same crops (models/README.md, "Recipes measured and dropped").

  /usr/bin/python3 models/fit_entropy.py --model models/tok1d-default.safetensors \
      --out /tmp/refit.safetensors --tiles 32768 --val-tiles 2048 --save-tokens /tmp/tokens.npz
  /usr/bin/python3 models/experiments/f1_learned_context.py --tokens /tmp/tokens.npz --kind mlp
"""
import argparse, math, time, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--tokens", required=True, help="npz from fit_entropy.py --save-tokens")
ap.add_argument("--kind", default="transformer")
ap.add_argument("--width", type=int, default=128)
ap.add_argument("--depth", type=int, default=2)
ap.add_argument("--window", type=int, default=8)
ap.add_argument("--intra", type=int, default=1, help="condition dim d on dims < d of the token")
ap.add_argument("--minutes", type=float, default=10)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--lr", type=float, default=2e-3)
ap.add_argument("--threads", type=int, default=1)
args = ap.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

z = np.load(args.tokens)
levels = [int(l) for l in z["levels"]]
L, D = max(levels), len(levels)


def digits(tokens):
    out = np.zeros(tokens.shape + (D,), np.int64)
    t = tokens.astype(np.int64)
    for d in range(D):
        out[..., d] = t % levels[d]
        t //= levels[d]
    return out


train = torch.tensor(digits(z["train"]))  # [N, K, D]
val = torch.tensor(digits(z["val"]))
N, K, _ = train.shape
print(f"{N} train, {len(val)} val tiles, K={K}, levels={levels}", flush=True)


class Prior(nn.Module):
    def __init__(self):
        super().__init__()
        w = args.width
        self.embed = nn.ModuleList([nn.Embedding(L, w) for _ in range(D)])
        self.start = nn.Parameter(torch.zeros(w))
        self.pos = nn.Parameter(torch.zeros(K, w))
        if args.kind == "transformer":
            layer = nn.TransformerEncoderLayer(w, 4, 4 * w, dropout=0.0, batch_first=True, norm_first=True)
            self.body = nn.TransformerEncoder(layer, args.depth)
        else:  # window MLP over the previous `window` tokens
            self.body = nn.Sequential(nn.Linear(w * args.window + w, 2 * w), nn.GELU(), nn.Linear(2 * w, w))
        self.norm = nn.LayerNorm(w)
        # dim d's head sees the context plus the embeddings of the token's digits < d
        self.intra = nn.ModuleList([nn.Embedding(L, w) for _ in range(D)])
        self.heads = nn.ModuleList([nn.Sequential(nn.Linear(w, w), nn.GELU(), nn.Linear(w, L)) for _ in range(D)])

    def forward(self, dg):  # dg [B, K, D] -> logits [B, K, D, L]
        B = dg.shape[0]
        tok = sum(self.embed[d](dg[..., d]) for d in range(D))  # [B, K, w]
        prev = torch.cat([self.start.expand(B, 1, -1), tok[:, :-1]], 1)  # token j sees tokens < j
        if args.kind == "transformer":
            mask = torch.triu(torch.full((K, K), float("-inf")), 1)
            h = self.body(prev + self.pos, mask=mask)
        else:
            pad = torch.cat([torch.zeros(B, args.window - 1, prev.shape[-1]), prev], 1)
            win = pad.unfold(1, args.window, 1)  # [B, K, w, window]
            win = win.permute(0, 1, 3, 2).reshape(B, K, -1)
            h = self.body(torch.cat([win, self.pos.expand(B, -1, -1)], -1))
        h = self.norm(h)
        out, acc = [], torch.zeros_like(h)
        for d in range(D):
            out.append(self.heads[d](h + acc))
            if args.intra:
                acc = acc + self.intra[d](dg[..., d])
        return torch.stack(out, 2)


def bits_per_position(model, data):
    model.eval()
    total = torch.zeros(K)
    with torch.no_grad():
        for i in range(0, len(data), 256):
            dg = data[i:i + 256]
            logp = F.log_softmax(model(dg), -1)
            nll = -logp.gather(-1, dg.unsqueeze(-1)).squeeze(-1).sum(-1)  # [B, K]
            total += nll.sum(0)
    model.train()
    return (total / len(data) / math.log(2)).numpy()


def report(tag, bits):
    ks = [1, 2, 4, 8, 16, 32, 64, 128]
    print(tag, " ".join(f"k{k}:{bits[:k].mean():.2f}" for k in ks), flush=True)


model = Prior()
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters", flush=True)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
start = time.process_time()
budget = args.minutes * 60
step = 0
g = torch.Generator().manual_seed(0)
while True:
    used = time.process_time() - start
    if used > budget:
        break
    frac = used / budget
    for group in opt.param_groups:
        group["lr"] = args.lr * min(1.0, step / 100) * 0.5 * (1 + math.cos(math.pi * frac))
    idx = torch.randint(0, N, (args.batch,), generator=g)
    dg = train[idx]
    logits = model(dg)
    loss = F.cross_entropy(logits.reshape(-1, L), dg.reshape(-1)) * D / math.log(2)
    opt.zero_grad()
    loss.backward()
    opt.step()
    step += 1
    if step % 200 == 0:
        print(f"step {step} cpu {used / 60:.1f} min train bits/token {loss.item():.2f}", flush=True)
    if step % 1000 == 0:
        report(f"  val step {step}", bits_per_position(model, val))
report(f"final val ({step} steps)", bits_per_position(model, val))
