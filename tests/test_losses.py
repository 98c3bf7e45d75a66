"""losses.py against closed forms: logistic losses, R1 on a linear D, path length, lazy Adam settings."""
import math

import pytest
import torch

from core.stylegan import losses


def test_logistic_losses_per_sample():
    logits = torch.tensor([[0.0], [2.0], [-3.0]])
    softplus = torch.log1p(torch.exp(logits.flatten()))
    assert torch.allclose(losses.d_fake(logits), softplus)
    assert torch.allclose(losses.d_real(logits), torch.log1p(torch.exp(-logits.flatten())))
    assert torch.allclose(losses.g_nonsaturating(logits), losses.d_real(logits))
    assert losses.g_nonsaturating(torch.zeros(4, 1)).tolist() == pytest.approx([math.log(2)] * 4)


def test_r1_on_a_linear_discriminator_is_the_squared_weight_norm():
    torch.manual_seed(0)
    w, b = torch.randn(3, 4, 4, requires_grad=True), torch.tensor(0.7)  # D's parameters
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x * w).sum(dim=[1, 2, 3]) + b  # D(x) = <w, x> + b: dD/dx = w for every sample
    r1 = losses.r1_penalty(logits, x)
    assert r1.shape == (5,) and torch.allclose(r1, w.square().sum().expand(5))
    assert r1.requires_grad  # kept in the graph: its gradient reaches D's parameters


def test_path_length_of_a_linear_generator():
    """images = ws_mean @ M (reshaped): d sum(images * y) / d ws_k = (M y) / num_ws for each of the
    num_ws rows, so L = |M y| / num_ws; the new mean is pl_mean + decay (mean L - pl_mean), in the graph."""
    torch.manual_seed(0)
    n, num_ws, w_dim, c, r = 3, 4, 6, 2, 4
    M = torch.randn(w_dim, c * r * r, requires_grad=True)  # G's parameters
    ws = torch.randn(n, num_ws, w_dim, requires_grad=True)
    images = (ws.mean(dim=1) @ M).reshape(n, c, r, r)
    randn = torch.randn(n, c, r, r)
    pl_mean = torch.tensor(0.5)
    penalty, new_mean = losses.path_length_penalty(images, ws, pl_mean, randn, decay=0.01)
    y = randn.reshape(n, -1) / r  # randn / sqrt(H W)
    lengths = (y @ M.t()).norm(dim=1) / num_ws
    want_mean = 0.5 + 0.01 * (lengths.mean() - 0.5)
    assert torch.allclose(new_mean, want_mean) and new_mean.requires_grad
    assert torch.allclose(penalty, (lengths - want_mean).square())


def test_lazy_adam_settings_scale_by_k_over_k_plus_one():
    lr, betas = losses.lazy_adam_params(0.0025, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0025 * 16 / 17) and betas == pytest.approx((0.0, 0.99 ** (16 / 17)))
    lr, betas = losses.lazy_adam_params(0.0025, (0.0, 0.99), 4)
    assert lr == pytest.approx(0.002) and betas == pytest.approx((0.0, 0.99 ** 0.8))
    assert losses.auto_r1_gamma(256, 16) == pytest.approx(0.8192)
