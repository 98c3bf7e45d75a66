"""StyleGAN2 losses as pure functions: non-saturating logistic loss, R1, path length."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(G(z))), averaged."""
    return F.softplus(-fake_logits).mean()


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), averaged."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """Per-sample squared gradient norm of D at the real images [N]; needs real_images.requires_grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True, only_inputs=True)
    return grad.float().square().sum(dim=[1, 2, 3])


def path_length_penalty(images: torch.Tensor, ws: torch.Tensor, pl_mean: torch.Tensor,
                        decay: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2 path length regulariser: (penalty [N], updated running mean of lengths)."""
    noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True, only_inputs=True)
    lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()  # [N]
    new_mean = pl_mean.lerp(lengths.mean().detach(), decay)
    return (lengths - new_mean).square(), new_mean


def auto_r1_gamma(resolution: int, batch: int) -> float:
    """The StyleGAN2-ADA 'auto' heuristic."""
    return 0.0002 * resolution ** 2 / batch


def lazy_adam_params(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """A regulariser applied every `interval` steps scales lr and betas by k / (k + 1)."""
    if interval <= 1:
        return lr, betas
    ratio = interval / (interval + 1)
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)
