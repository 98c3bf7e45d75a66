"""StyleGAN2 losses as pure functions, per sample: non-saturating logistic loss, R1, path length.

Each returns one value per sample [N] (the values the original reports as its statistics); the
trainer averages them and scales by the phase's gain before backpropagating.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's loss: -log sigmoid(D(G(z))) = softplus(-D(G(z))), per sample."""
    return F.softplus(-fake_logits).flatten()


def d_fake(fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss on fakes: -log(1 - sigmoid(D(G(z)))) = softplus(D(G(z))), per sample."""
    return F.softplus(fake_logits).flatten()


def d_real(real_logits: torch.Tensor) -> torch.Tensor:
    """D's loss on reals: -log sigmoid(D(x)) = softplus(-D(x)), per sample."""
    return F.softplus(-real_logits).flatten()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """|dD(x)/dx|^2 per sample [N], kept in the graph; needs real_images.requires_grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True, only_inputs=True)
    return grad.float().square().sum(dim=[1, 2, 3])


PL_DECAY = 0.01  # pl_mean's step toward the batch's mean path length


def path_lengths(images: torch.Tensor, ws: torch.Tensor, randn: torch.Tensor,
                 create_graph: bool = True) -> torch.Tensor:
    """StyleGAN2's path lengths [N] of images [N, C, H, W] made from ws [N, num_ws, w_dim]:
        y = randn / sqrt(H W),   L_i = sqrt(mean_k |d sum(images * y) / d ws_ik|^2)
    ``randn`` is standard normal noise of the images' shape, drawn by the caller."""
    noise = randn.to(images.dtype) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=create_graph, only_inputs=True)
    return grad.float().square().sum(dim=2).mean(dim=1).sqrt()


def path_length_penalty(images: torch.Tensor, ws: torch.Tensor, pl_mean: torch.Tensor, randn: torch.Tensor,
                        decay: float = PL_DECAY) -> tuple[torch.Tensor, torch.Tensor]:
    """StyleGAN2's path length regulariser on one batch (path_lengths() for L_i):
        a = pl_mean + decay (mean_i L_i - pl_mean)      (in the graph, as in the original)
        penalty_i = (L_i - a)^2
    Returns (penalty [N], a); the caller keeps ``a.detach()`` as the next pl_mean.
    """
    lengths = path_lengths(images, ws, randn)
    new_mean = pl_mean.lerp(lengths.mean(), decay)
    return (lengths - new_mean).square(), new_mean


def path_length_terms(lengths: torch.Tensor, new_mean: float | torch.Tensor, mean_length: float | torch.Tensor,
                      decay: float = PL_DECAY) -> tuple[torch.Tensor, torch.Tensor]:
    """The path length regulariser of a batch split into parts (passes, processes): ``lengths``
    [n] of one part, in the graph; ``mean_length`` = mean L over the whole batch of N and
    ``new_mean`` = a = pl_mean + decay (mean_length - pl_mean), both plain numbers. Returns
        penalty_i   = (L_i - a)^2                              (the values, detached)
        objective_i = (L_i - a)^2 - 2 decay (mean_length - a) L_i
    The sum over all parts of sum_i objective_i / N has the gradient of mean_i penalty_i with a
    kept in the graph (path_length_penalty on the whole batch): d/dL_j of mean_i (L_i - a)^2 is
    2 (L_j - a) / N - 2 decay (mean L - a) / N, since da/dL_j = decay / N."""
    centred = lengths - new_mean
    objective = centred.square() - 2 * decay * (mean_length - new_mean) * lengths
    return centred.detach().square(), objective


def auto_r1_gamma(resolution: int, batch: int) -> float:
    """The StyleGAN2-ADA 'auto' heuristic."""
    return 0.0002 * resolution ** 2 / batch


def lazy_adam_params(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """Adam settings of a network regularised every ``interval`` steps in a separate Adam step:
    lr and betas scaled by k / (k + 1), so that the k main steps and the one regulariser step
    together move as k + 1 unscaled steps would (StyleGAN2, Appendix B: lazy regularisation)."""
    ratio = interval / (interval + 1)
    return lr * ratio, (betas[0] ** ratio, betas[1] ** ratio)
