"""A differentiable estimate of the bits a tile's tokens cost, for rate-distortion training.

The range coder (codec/entropy_coder.cpp) codes every FSQ digit with a table per (token
position j, dimension d, activity context). Training uses the marginal part of that model:
one learned distribution per (j, d) over the levels, so bits(digit) = -log2 p_jd(digit).
The context tables of the real coder save a little more; the marginal is what the encoder
and decoder can shape.

The digit is round(bounded value); its cost is not differentiable in the value, so the
gradient is that of the cost interpolated linearly between the two nearest levels (the
forward value stays the cost of the rounded digit). The tables themselves learn by maximum
likelihood of the rounded digits, from their own optimiser."""
import math

import torch
import torch.nn as nn


class TokenRate(nn.Module):
    def __init__(self, tokens, levels):
        super().__init__()
        assert len(set(levels)) == 1, "one level count for every dimension"
        self.levels = levels[0]
        self.half = (self.levels - 1) / 2
        self.logits = nn.Parameter(torch.zeros(tokens, len(levels), self.levels))

    @torch.no_grad()
    def fit(self, bounded, prior=0.5):
        """Start the tables from the digit counts of bounded values [N, K, D]."""
        counts = torch.nn.functional.one_hot(self.digits(bounded), self.levels).sum(0).float() + prior
        self.logits.copy_(torch.log(counts / counts.sum(-1, keepdim=True)))

    def table_bits(self):
        return -torch.log_softmax(self.logits, -1) / math.log(2)  # [K, D, L]

    def digits(self, bounded):
        return torch.round(bounded + self.half).long().clamp(0, self.levels - 1)

    def nll(self, bounded):
        """Mean bits a token of the rounded digits costs under the tables (the tables' own
        loss: maximum likelihood; no gradient to the values)."""
        digits = self.digits(bounded.detach())
        table = self.table_bits().unsqueeze(0).expand(digits.shape[0], -1, -1, -1)
        return torch.gather(table, 3, digits.unsqueeze(-1)).sum((-1, -2)).mean()

    def bits(self, bounded, keep):
        """bounded [B, K, D] (before rounding), keep [B] -> bits of the first keep tokens [B],
        differentiable in the values (not in the tables)."""
        table = self.table_bits().detach().unsqueeze(0).expand(bounded.shape[0], -1, -1, -1)
        pos = (bounded + self.half).clamp(0, self.levels - 1)
        lo = torch.floor(pos).long().clamp(max=self.levels - 2)
        frac = pos - lo
        cost_lo = torch.gather(table, 3, lo.unsqueeze(-1)).squeeze(-1)
        cost_hi = torch.gather(table, 3, (lo + 1).unsqueeze(-1)).squeeze(-1)
        soft = cost_lo + frac * (cost_hi - cost_lo)
        hard = torch.gather(table, 3, self.digits(bounded).unsqueeze(-1)).squeeze(-1)
        cost = hard + (soft - soft.detach())  # value: the rounded digit's; gradient: interpolated
        K = bounded.shape[1]
        kept = (torch.arange(K, device=bounded.device)[None, :] < keep[:, None]).float()
        return (cost.sum(-1) * kept).sum(-1)
