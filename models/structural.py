"""A differentiable MS-SSIM for training tiles (train.py --msssim-weight).

The metric the sweeps report (metrics/ and tests/eval/reference_metrics.py: Gaussian window
11, sigma 1.5, valid filtering, 5 scales) needs images of at least 161 px a side; a 128 px
tile has room for 4 scales (the 4th is 16 px, 6 px after the window), so this keeps the first
4 of the 5 weights, renormalised, with SSIM at the 4th scale. Values in [0, 1].
"""
import torch
import torch.nn.functional as F

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363)
C1 = 0.01 ** 2
C2 = 0.03 ** 2


def _window(size=11, sigma=1.5, device=None):
    offsets = torch.arange(size, dtype=torch.float32, device=device) - size // 2
    window = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    return window / window.sum()


def _blur(x, window):
    channels = x.shape[1]
    horizontal = window.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = window.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    return F.conv2d(F.conv2d(x, horizontal, groups=channels), vertical, groups=channels)


def ms_ssim(x, y, scales=4):
    """Per-sample MS-SSIM of N x C x H x W tensors in [0, 1] (H, W >= 11 * 2**(scales-1))."""
    window = _window(device=x.device)
    weights = torch.tensor(WEIGHTS[:scales], device=x.device)
    weights = weights / weights.sum()
    terms = []
    for scale in range(scales):
        mu_x, mu_y = _blur(x, window), _blur(y, window)
        var_x = _blur(x * x, window) - mu_x ** 2
        var_y = _blur(y * y, window) - mu_y ** 2
        cov = _blur(x * y, window) - mu_x * mu_y
        cs = (2 * cov + C2) / (var_x + var_y + C2)
        if scale < scales - 1:
            value = cs
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        else:
            value = (2 * mu_x * mu_y + C1) / (mu_x ** 2 + mu_y ** 2 + C1) * cs
        # Clamped above 0 (as the metric's relu) but not at it: 0 ** w has no gradient.
        terms.append(value.flatten(2).mean(-1).clamp(min=1e-4))
    per_channel = torch.prod(torch.stack(terms) ** weights.view(-1, 1, 1), dim=0)
    return per_channel.mean(1)
