"""How far a rendering is from the photo being projected: losses that need no download.

Images are NCHW float32 in [-1, 1] (the generator's scale). Every loss here is a pure function of
the two images (plus fixed networks), differentiable in the first:

- ``multiscale_mse``: mean squared error averaged over an image pyramid (full size, 1/2, 1/4, ...
  down to 8 px): coarse levels weigh colour and layout, the full level the detail.
- ``ssim_loss``: 1 - SSIM (Wang et al. 2004; Gaussian window σ = 1.5, 11 taps, C1 = (0.01·2)²,
  C2 = (0.03·2)² for the data range 2), averaged over the same pyramid.
- ``DFeatures``: distances between the model's own discriminator activations, each channel vector
  scaled to unit length first (as LPIPS does with VGG activations): features learnt on the model's
  own images, available offline for every checkpoint that ships its D.
- ``VGGPerceptual`` (``vgg.py``): LPIPS / VGG16 from a weights file the user supplies.

``make_loss`` builds the loss named by the user.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .common import LOSSES, PlaygroundError
from .vgg import VGGPerceptual, unit_channels

MIN_LEVEL = 8
SSIM_C1, SSIM_C2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2


def pyramid(x: torch.Tensor) -> list[torch.Tensor]:
    """x, then 2x2-averaged halvings while the short side stays >= MIN_LEVEL."""
    out = [x]
    while min(out[-1].shape[-2:]) >= 2 * MIN_LEVEL:
        out.append(F.avg_pool2d(out[-1], 2))
    return out


def multiscale_mse(a: torch.Tensor, b_pyramid: list[torch.Tensor]) -> torch.Tensor:
    levels = pyramid(a)
    return sum(F.mse_loss(x, y) for x, y in zip(levels, b_pyramid)) / len(levels)


def _gaussian_window(channels: int, device, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    t = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-t.square() / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM per image [N] of images in [-1, 1] (data range 2), 'valid' windows only."""
    c = a.shape[1]
    size = min(11, a.shape[-1], a.shape[-2])
    win = _gaussian_window(c, a.device, size, 1.5 * size / 11)
    mu_a, mu_b = F.conv2d(a, win, groups=c), F.conv2d(b, win, groups=c)
    var_a = F.conv2d(a * a, win, groups=c) - mu_a.square()
    var_b = F.conv2d(b * b, win, groups=c) - mu_b.square()
    cov = F.conv2d(a * b, win, groups=c) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / \
        ((mu_a.square() + mu_b.square() + SSIM_C1) * (var_a + var_b + SSIM_C2))
    return s.flatten(1).mean(1)


def ssim_loss(a: torch.Tensor, b_pyramid: list[torch.Tensor]) -> torch.Tensor:
    levels = pyramid(a)
    return sum((1 - ssim(x, y)).mean() for x, y in zip(levels, b_pyramid)) / len(levels)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in [-1, 1] after the uint8 rounding every saved image goes through."""
    qa = ((a.detach() * 127.5 + 128).clamp(0, 255).floor())
    qb = ((b.detach() * 127.5 + 128).clamp(0, 255).floor())
    mse = F.mse_loss(qa, qb).item()
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


class DFeatures:
    """Activations of the discriminator's blocks (fromrgb side to 8 px), without its epilogue."""

    def __init__(self, D):
        if D is None:
            raise PlaygroundError("This model file has no discriminator: choose another loss")
        self.D = D

    def __call__(self, img: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], None
        for res in self.D.block_resolutions:
            x, img = getattr(self.D, f"b{res}")(x, img, force_fp32=True)
            feats.append(unit_channels(x))
        return feats

    @staticmethod
    def distance(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        return sum((x - y).square().sum(1).mean() for x, y in zip(a, b)) / len(a)


def make_loss(kind: str, target: torch.Tensor, ckpt=None, lpips_weights=None):
    """``loss(img) -> scalar`` of rendering ``img`` against ``target`` (both [1, 3, R, R] in [-1, 1])."""
    if kind not in LOSSES:
        raise PlaygroundError(f"The loss is one of {', '.join(LOSSES)}")
    tp = pyramid(target)
    if kind == "pixel":
        return lambda img: multiscale_mse(img, tp)
    if kind == "pixel+ssim":
        return lambda img: multiscale_mse(img, tp) + 0.1 * ssim_loss(img, tp)
    if kind == "d+pixel":
        feats = DFeatures(ckpt.D if ckpt is not None else None)
        with torch.no_grad():
            t_feats = feats(target)
        return lambda img: multiscale_mse(img, tp) + 0.1 * DFeatures.distance(feats(img), t_feats)
    if not lpips_weights:
        raise PlaygroundError("The LPIPS loss needs a VGG16 / LPIPS weights file: supply one, or choose another loss")
    vgg = VGGPerceptual.load(lpips_weights, target.device)
    with torch.no_grad():
        t_feats = vgg(target)
    return lambda img: multiscale_mse(img, tp) + vgg.distance(vgg(img), t_feats)
