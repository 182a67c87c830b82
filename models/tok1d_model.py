"""The tok1d tokenizer: a TiTok / One-D-Piece style 1D tokenizer with FSQ and
linear code-space shortcuts.  This file is the reference the C++ runtime
(codec/model_cpu.cpp) reproduces operation by operation, so every op here is a
plain one: Linear, LayerNorm, softmax attention, exact (erf) GELU, tanh,
round-half-to-even, average pooling and bilinear upsampling.

Memory layouts are chosen for the C++ side: images are HWC, a patch is
flattened as (py, px, c), the pooled thumbnail as (y, x, c)."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_CONFIG = dict(
    tile=128, patch=16, width=192, enc_depth=4, dec_depth=4, heads=3, mlp_ratio=4,
    tokens=128, fsq_levels=[15, 15, 15, 15, 15, 15], pool=32, ln_eps=1e-5,
)


class FSQ(nn.Module):
    """Finite scalar quantization (Mentzer et al. 2023): bound each dimension
    with tanh, round to an integer level; straight-through gradient."""

    def __init__(self, levels):
        super().__init__()
        lv = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("levels", lv, persistent=False)
        half_l = (lv - 1) * (1 + 1e-3) / 2
        offset = torch.where(lv % 2 == 0, 0.5, 0.0)
        self.register_buffer("half_l", half_l, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half_l), persistent=False)
        self.register_buffer("half_width", torch.floor(lv / 2), persistent=False)
        basis = [1]
        for l in levels[:-1]:
            basis.append(basis[-1] * l)
        self.register_buffer("basis", torch.tensor(basis, dtype=torch.int64), persistent=False)

    def bound(self, z):
        return torch.tanh(z + self.shift) * self.half_l - self.offset

    def forward(self, z):
        """z[..., C] -> normalized codes in [-1, 1] (straight-through)."""
        b = self.bound(z)
        q = b + (torch.round(b) - b).detach()
        return q / self.half_width

    def to_index(self, codes):
        """normalized codes -> one integer per token (mixed radix, dim 0 least significant)."""
        digits = torch.round(codes * self.half_width + self.half_width).long()
        return (digits * self.basis).sum(-1)

    def from_index(self, idx):
        digits = (idx.unsqueeze(-1) // self.basis) % self.levels.long()
        return (digits.float() - self.half_width) / self.half_width


def refinement_parts(bounded, bits):
    """Refinement (container/FORMAT.md, REFN): which of the 2^bits equal parts of its
    quantization cell [q - 1/2, q + 1/2) each bounded FSQ value lies in (q = round(value))."""
    n = 2 ** bits
    return torch.clamp(torch.floor((bounded - torch.round(bounded) + 0.5) * n), 0, n - 1)


def refined_codes(fsq, bounded, keep, plan):
    """Normalized codes [B,K,C] as the decoder gets them from the first keep[b] tokens and the
    refinements that come with them under `plan` ({"bits": B, "after": [...]}, or None):
    token r < R is refined when keep > after[r]."""
    q = torch.round(bounded)
    if plan:
        bits, after = plan["bits"], torch.tensor(plan["after"])
        R = len(plan["after"])
        offsets = (refinement_parts(bounded[:, :R], bits) + 0.5) / 2 ** bits - 0.5
        on = (keep[:, None] > after[None, :]).unsqueeze(-1)  # [B, R, 1]
        q = torch.cat([q[:, :R] + offsets * on, q[:, R:]], dim=1)
    return q / fsq.half_width


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, dim, heads, mlp_ratio, eps):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, dim)

    def attention(self, x):
        b, n, d = x.shape
        h = self.heads
        qkv = self.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // h))
        att = att.softmax(dim=-1)
        out = (att @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x


class ConvBlock(nn.Module):
    """Residual 3x3 conv block (conv, GELU, conv) of the optional convolutional pixel head."""

    def __init__(self, ch):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.gelu(self.conv1(x)))


class ConvStem(nn.Module):
    """Optional convolutional stem of the encoder (Xiao et al. 2021, issue 16 experiments; not
    in the default model or the C++ runtime): stride-2 3x3 convs with GELU down to the patch
    grid, then a linear map to the width, added to the linear patch embedding. The last map
    starts at zero, so a model with a stem starts as the one without."""

    def __init__(self, channels, width, patch):
        super().__init__()
        if 2 ** len(channels) != patch:
            raise ValueError(f"conv_stem needs log2(patch) = {int(math.log2(patch))} channel counts, got {channels}")
        ins = [3] + list(channels[:-1])
        self.convs = nn.ModuleList([nn.Conv2d(i, o, 3, stride=2, padding=1) for i, o in zip(ins, channels)])
        self.out = nn.Linear(channels[-1], width)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        """x[B,H,W,3] -> [B, (H/p)*(W/p), width], patches in raster order as patchify's."""
        f = x.permute(0, 3, 1, 2)
        for conv in self.convs:
            f = F.gelu(conv(f))
        return self.out(f.flatten(2).transpose(1, 2))


def patchify(img, p):
    """img[B,H,W,C] -> [B, (H/p)*(W/p), p*p*C] with (py, px, c) order."""
    b, hh, ww, c = img.shape
    x = img.reshape(b, hh // p, p, ww // p, p, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (hh // p) * (ww // p), p * p * c)


def unpatchify(x, p, hh, ww, c=3):
    b = x.shape[0]
    x = x.reshape(b, hh // p, ww // p, p, p, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hh, ww, c)


def avg_pool_hwc(img, factor):
    b, hh, ww, c = img.shape
    return img.reshape(b, hh // factor, factor, ww // factor, factor, c).mean(dim=(2, 4))


def upsample_bilinear_hwc(x, size):
    """Bilinear, align_corners=False (half-pixel centres, edge clamped)."""
    y = F.interpolate(x.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=False)
    return y.permute(0, 2, 3, 1)


class Tok1d(nn.Module):
    def __init__(self, cfg=None):
        super().__init__()
        cfg = dict(DEFAULT_CONFIG, **(cfg or {}))
        self.cfg = cfg
        d, K, p, t = cfg["width"], cfg["tokens"], cfg["patch"], cfg["tile"]
        C = len(cfg["fsq_levels"])
        n_patches = (t // p) ** 2
        pooled_dim = (cfg["pool"] ** 2) * 3
        eps = cfg["ln_eps"]
        self.code_dim = C
        # encoder
        self.patch_embed = nn.Linear(p * p * 3, d)
        if cfg.get("conv_stem"):
            self.stem = ConvStem(cfg["conv_stem"], d, p)
        self.enc_pos = nn.Parameter(torch.randn(n_patches, d) * 0.02)
        self.latents = nn.Parameter(torch.randn(K, d) * 0.02)
        self.enc_blocks = nn.ModuleList([Block(d, cfg["heads"], cfg["mlp_ratio"], eps) for _ in range(cfg["enc_depth"])])
        self.enc_norm = nn.LayerNorm(d, eps=eps)
        self.to_code = nn.Linear(d, C)
        self.shortcut_enc = nn.Linear(pooled_dim, K * C)
        # each latent also sees its own linear (PCA) code, so the transformer refines it
        self.code_in_embed = nn.Linear(C, d)
        self.fsq = FSQ(cfg["fsq_levels"])
        # decoder
        self.code_embed = nn.Linear(C, d)
        self.dec_token_pos = nn.Parameter(torch.randn(K, d) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.patch_queries = nn.Parameter(torch.randn(n_patches, d) * 0.02)
        self.dec_blocks = nn.ModuleList([Block(d, cfg["heads"], cfg["mlp_ratio"], eps) for _ in range(cfg["dec_depth"])])
        self.dec_norm = nn.LayerNorm(d, eps=eps)
        self.to_pixels = nn.Linear(d, p * p * 3)
        self.shortcut_dec = nn.Linear(K * C, pooled_dim)
        # each patch query sees its part of the coarse (linear) reconstruction: the
        # transformer then refines a picture instead of having to assemble one
        coarse_patch = p * cfg["pool"] // t
        self.coarse_embed = nn.Linear(coarse_patch * coarse_patch * 3, d)
        # The transformer paths start at zero so the model starts as the
        # (PCA-initialised) linear transform code and learns a residual.
        for lin in (self.to_code, self.to_pixels):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)
        # Optional convolutional pixel head (issue 16 experiments; not in the default model or
        # the C++ runtime): each patch's decoder output becomes an 8x8 x ch block of a half-
        # resolution feature map, a few residual 3x3 conv blocks see across patch borders, and
        # a 3x3 conv to 12 channels + pixel shuffle x2 writes a residual on the linear head's
        # pixels (zero-initialised: the model starts as without it).
        ch = cfg.get("conv_head", 0)
        if ch:
            half = p // 2
            self.head_in = nn.Linear(d, half * half * ch)
            self.head_blocks = nn.ModuleList([ConvBlock(ch) for _ in range(cfg.get("conv_blocks", 2))])
            self.head_out = nn.Conv2d(ch, 12, 3, padding=1)
            nn.init.zeros_(self.head_out.weight)
            nn.init.zeros_(self.head_out.bias)

    # -- encoder -----------------------------------------------------------
    def encode_codes(self, img):
        """img[B,t,t,3] in [0,1] -> normalized FSQ codes [B,K,C]."""
        return self.fsq(self.encode_latent(img))

    def encode_latent(self, img):
        """img[B,t,t,3] in [0,1] -> the FSQ input z [B,K,C] (before bounding and rounding)."""
        cfg = self.cfg
        x = img - 0.5
        b = x.shape[0]
        pooled = avg_pool_hwc(x, cfg["tile"] // cfg["pool"]).reshape(b, -1)
        z_linear = self.shortcut_enc(pooled).reshape(b, cfg["tokens"], self.code_dim)
        h = self.patch_embed(patchify(x, cfg["patch"])) + self.enc_pos
        if cfg.get("conv_stem"):
            h = h + self.stem(x)
        h = torch.cat([h, self.latents + self.code_in_embed(z_linear)], dim=1)
        for blk in self.enc_blocks:
            h = blk(h)
        h = self.enc_norm(h[:, -cfg["tokens"]:])
        return self.to_code(h) + z_linear

    def encode(self, img):
        return self.fsq.to_index(self.encode_codes(img))

    # -- decoder -----------------------------------------------------------
    def decode_codes(self, codes, keep):
        """codes[B,K,C] normalized, keep[B] = number of kept tokens -> img[B,t,t,3]."""
        cfg = self.cfg
        b, K, _ = codes.shape
        kept = (torch.arange(K, device=codes.device)[None, :] < keep[:, None]).unsqueeze(-1)
        codes = codes * kept
        tok = torch.where(kept, self.code_embed(codes), self.mask_token) + self.dec_token_pos
        coarse = self.shortcut_dec(codes.reshape(b, -1)).reshape(b, cfg["pool"], cfg["pool"], 3)
        queries = self.patch_queries + self.coarse_embed(patchify(coarse, cfg["patch"] * cfg["pool"] // cfg["tile"]))
        h = torch.cat([queries, tok], dim=1)
        for blk in self.dec_blocks:
            h = blk(h)
        n_patches = self.patch_queries.shape[0]
        h = self.dec_norm(h[:, :n_patches])
        detail = unpatchify(self.to_pixels(h), cfg["patch"], cfg["tile"], cfg["tile"])
        if cfg.get("conv_head", 0):
            half, t = cfg["patch"] // 2, cfg["tile"]
            f = unpatchify(self.head_in(h), half, t // 2, t // 2, cfg["conv_head"]).permute(0, 3, 1, 2)
            for blk in self.head_blocks:
                f = blk(f)
            detail = detail + F.pixel_shuffle(self.head_out(F.gelu(f)), 2).permute(0, 2, 3, 1)
        return 0.5 + detail + upsample_bilinear_hwc(coarse, cfg["tile"])

    def decode(self, idx, keep):
        return self.decode_codes(self.fsq.from_index(idx), keep)

    def forward(self, img, keep):
        return self.decode_codes(self.encode_codes(img), keep)

    def forward_linear(self, img, keep):
        """The code-space shortcuts alone (the model's output while the
        zero-initialised transformer paths are still zero): a cheap warm-up."""
        cfg = self.cfg
        b = img.shape[0]
        pooled = avg_pool_hwc(img - 0.5, cfg["tile"] // cfg["pool"]).reshape(b, -1)
        codes = self.fsq(self.shortcut_enc(pooled).reshape(b, cfg["tokens"], self.code_dim))
        kept = (torch.arange(cfg["tokens"], device=img.device)[None, :] < keep[:, None]).unsqueeze(-1)
        coarse = self.shortcut_dec((codes * kept).reshape(b, -1)).reshape(b, cfg["pool"], cfg["pool"], 3)
        return 0.5 + upsample_bilinear_hwc(coarse, cfg["tile"])


@torch.no_grad()
def pca_init(model, crops_uint8, scale_sd=None, lowrank=None):
    """Initialise the code-space shortcuts as an ordered PCA of the pooled
    tile: token i, dim c carries principal component i*C+c. A component of one standard
    deviation enters the FSQ (before tanh) as 1/scale_sd (default 4, or the config's
    "pca_scale_sd"). The config's "pca_step_exponent" a (default 1) divides component i by
    scale_sd * sd_i^a * sd_0^(1-a) instead of scale_sd * sd_i: below 1, components weaker than
    the first are quantised with steps that grow towards one absolute step (a = 0), as reverse
    water-filling asks, instead of all at the same relative precision. lowrank (default: a
    pooled tile of more than 4,096 values, e.g. "pool": 64) finds the leading components with
    a randomized SVD instead of the full eigendecomposition, which takes hours at 12,288
    dimensions; the 32x32 default keeps the exact one."""
    import numpy as np
    cfg = model.cfg
    if scale_sd is None:
        scale_sd = cfg.get("pca_scale_sd", 4.0)
    x = torch.tensor(crops_uint8).float() / 255 - 0.5
    pooled = avg_pool_hwc(x, cfg["tile"] // cfg["pool"]).reshape(len(x), -1)
    n = cfg["tokens"] * model.code_dim
    if lowrank is None:
        lowrank = pooled.shape[1] > 4096
    if lowrank:
        mu = pooled.mean(0)
        _, s, V = torch.svd_lowrank(pooled - mu, q=n + 64, niter=6)
        ev = (s[:n] ** 2 / len(pooled)).clamp_min(1e-10)
        U = V[:, :n].contiguous()
    else:
        pooled = pooled.double()
        mu = pooled.mean(0)
        cov = ((pooled - mu).T @ (pooled - mu) / len(pooled)).numpy()
        ev, U = np.linalg.eigh(cov)
        order = np.argsort(ev)[::-1]
        ev = torch.tensor(ev[order][:n].copy()).float().clamp_min(1e-10)
        U = torch.tensor(U[:, order][:, :n].copy()).float()
    a = cfg.get("pca_step_exponent", 1.0)
    sd = ev.sqrt() * scale_sd
    if a != 1.0:
        sd = sd * (ev.sqrt() / ev[0].sqrt()) ** (a - 1)
    model.shortcut_enc.weight.copy_((U / sd).T)
    model.shortcut_enc.bias.copy_(-(mu.float() @ U) / sd)
    model.shortcut_dec.weight.copy_(U * sd)
    model.shortcut_dec.bias.copy_(mu.float())
