"""The fast paths of the ops compute the same numbers as the plain formulation, and the in-place
shortcuts (taken only without autograd) never touch a tensor the caller still owns."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from core.stylegan import ops
from core.stylegan.networks import Generator


def reference_upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), gain=1.0):
    """Zero insertion, explicit pad (negative: crop), depthwise conv with the flipped filter, stride."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    px0, px1, py0, py1 = padding
    x = F.pad(x, [px0, px1, py0, py1])  # F.pad crops on negative pads
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,padding", [
    (1, 1, (1, 1, 1, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (2, 0, 1, 3)),
    (1, 1, (-1, 2, 0, -1)), (2, 1, (0, 0, 0, 0)), (1, 2, (0, 0, 0, 0)), (1, 2, (2, 1, 2, 1)), (1, 2, (1, 2, -1, 1))])
def test_upfirdn2d_matches_the_plain_formulation(up, down, padding):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 11)
    f = ops.setup_filter()
    ours = ops.upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up * up)
    ref = reference_upfirdn2d(x, f, up=up, down=down, padding=padding, gain=up * up)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_downsampling_keeps_the_layout_of_its_input(dtype):
    torch.manual_seed(5)
    x = torch.randn(2, 6, 8, 8).to(dtype).contiguous(memory_format=torch.channels_last)
    f = ops.setup_filter()
    for padding in ((1, 1, 1, 1), (2, 1, 2, 1)):
        ours = ops.upfirdn2d(x, f, down=2, padding=padding)
        assert ours.is_contiguous(memory_format=torch.channels_last)
        ref = reference_upfirdn2d(x.float(), f, down=2, padding=padding)
        torch.testing.assert_close(ours.float(), ref, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("with_noise", [True, False])
def test_unfused_equals_fused_and_leaves_the_input_alone(up, demodulate, with_noise):
    torch.manual_seed(1)
    x = torch.randn(3, 8, 8, 8).contiguous(memory_format=torch.channels_last)
    weight, styles = torch.randn(6, 8, 3, 3), torch.randn(3, 8)
    noise = torch.randn(8 * up, 8 * up) if with_noise else None
    f = ops.setup_filter()
    kw = dict(up=up, padding=1, resample_filter=f, demodulate=demodulate)
    before = x.clone()
    with torch.no_grad():
        fused = ops.modulated_conv2d(x, weight, styles, noise, fused=True, **kw)
        unfused = ops.modulated_conv2d(x, weight, styles, noise, fused=False, **kw)
    torch.testing.assert_close(unfused, fused, rtol=1e-4, atol=1e-4)
    assert torch.equal(x, before)                                   # not consumed: untouched
    with torch.no_grad():
        consumed = ops.modulated_conv2d(x.clone(), weight, styles, noise, fused=False, consume_input=True, **kw)
    torch.testing.assert_close(consumed, fused, rtol=1e-4, atol=1e-4)


def test_consume_input_is_ignored_under_autograd():
    torch.manual_seed(2)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    weight = torch.randn(5, 4, 3, 3, requires_grad=True)
    styles = torch.randn(2, 4)
    before = x.detach().clone()
    y = ops.modulated_conv2d(x, weight, styles, torch.randn(8, 8), padding=1, fused=False, consume_input=True)
    y.square().sum().backward()
    assert torch.equal(x.detach(), before)
    assert x.grad is not None and weight.grad is not None and torch.isfinite(x.grad).all()


def test_every_synthesis_path_gives_the_same_images_and_keeps_the_weights():
    torch.manual_seed(3)
    G = Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3, mapping_layers=2,
                  channel_base=512, channel_max=32).eval()
    for p in G.parameters():  # away from the initial values (const, biases, noise strengths)
        p.data.add_(0.1 * torch.randn_like(p))
    params = copy.deepcopy(G.state_dict())
    ws = G.mapping(torch.randn(4, 32), None)
    ws_before = ws.clone()
    with torch.inference_mode():
        images = [G.synthesize(ws, noise_mode="const", fused=fused, channels_last=cl)
                  for fused in (True, False) for cl in (False, True)]
    for img in images[1:]:
        torch.testing.assert_close(img, images[0], rtol=1e-4, atol=1e-4)
    assert torch.equal(ws, ws_before)
    for name, value in G.state_dict().items():
        assert torch.equal(value, params[name]), name


def plain_bias_act(x, b, act, gain, clamp):
    """The original's reference formulation: one autograd node per pass."""
    x = x + b.reshape(1, -1, 1, 1) if b is not None else x
    x = F.leaky_relu(x, ops.LRELU_SLOPE) if act == "lrelu" else x
    x = x * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


@pytest.mark.parametrize("act,gain,clamp,bias", [("lrelu", 2 ** 0.5, 0.5, True), ("linear", 1.0, 0.3, True),
                                                 ("lrelu", 0.7, None, False), ("linear", 0.5, None, True)])
def test_bias_act_node_has_the_plain_first_and_second_derivatives(act, gain, clamp, bias):
    torch.manual_seed(4)
    x0, b0 = torch.randn(3, 5, 4, 4, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    results = []
    for fn, fresh in ((plain_bias_act, False), (ops.bias_act, False), (ops.bias_act, True)):
        x, b = x0.clone().requires_grad_(), b0.clone().requires_grad_() if bias else None
        y = fn(x * 1 if fresh else x, b, act, gain, clamp)  # a fresh result is worked on in place
        assert torch.equal(x.detach(), x0)  # a leaf (a tensor the caller owns) never is
        inputs = [x, b] if bias else [x]
        grads = torch.autograd.grad(y.square().sum(), inputs, create_graph=True)  # as R1 does
        second = torch.autograd.grad(sum(g.square().sum() for g in grads), inputs)
        results.append([y, *grads, *second])
    for ours in results[1:]:
        assert type(ours[0].grad_fn).__name__ == "BiasActBackward"
        for value, ref in zip(ours, results[0]):
            torch.testing.assert_close(value, ref)


def test_bias_act_in_place_on_a_tensor_another_node_kept_fails_loudly():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    h = x * 1
    kept = h.square()  # square's backward needs h as it was
    y = ops.bias_act(h, torch.zeros(3), act="lrelu")
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (y.sum() + kept.sum()).backward()
