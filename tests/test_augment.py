"""Tests for core/stylegan/augment.py: ADA pipeline, its controller and DiffAugment (CPU, tiny)."""
import pytest
import torch
import torch.nn.functional as F

from core.stylegan.augment import AdaController, AdaptiveAugment, diffaugment, warp

GEOM = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")


def only(*ops: str, p: float = 1.0) -> AdaptiveAugment:
    return AdaptiveAugment(p, **{k: float(k in ops) for k in GEOM + COLOUR})


def images(n=8, c=3, h=16, w=16, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 2 - 1


def test_p_zero_returns_input_unchanged():
    x = images()
    aug = AdaptiveAugment(0.0)
    assert aug(x) is x
    assert float(aug.state_dict()["p"]) == 0.0


def test_tiny_p_leaves_untouched_samples_bit_exact():
    x = images(n=16)
    assert torch.equal(AdaptiveAugment(1e-9)(x), x)


def test_p_one_changes_every_image():
    torch.manual_seed(0)
    x = images(n=32)
    y = AdaptiveAugment(1.0)(x)
    per_image = (y - x).abs().flatten(1).mean(1)
    assert (per_image > 0.05).float().mean() > 0.9


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(4, 3, 16, 16), (3, 3, 12, 20), (2, 1, 16, 16)])
def test_shape_and_dtype_preserved(dtype, shape):
    x = torch.rand(shape).to(dtype) * 2 - 1
    y = AdaptiveAugment(0.7)(x)
    assert y.shape == x.shape and y.dtype == dtype and torch.isfinite(y.float()).all()


def test_gradients_flow_first_and_second_order():
    torch.manual_seed(0)
    aug = AdaptiveAugment(1.0)
    conv = torch.nn.Conv2d(3, 1, 3)
    x = images(n=4).requires_grad_()
    logits = conv(aug(x)).mean(dim=(1, 2, 3))
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)  # R1 on augmented reals
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    grad.square().sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_geometric_stays_in_range_and_colour_roughly():
    torch.manual_seed(0)
    x = images(n=64)
    g = only(*GEOM)(x)
    assert g.abs().quantile(0.99) < 1.1 and g.abs().max() < 1.6  # the wavelet rings a little on noise
    y = AdaptiveAugment(1.0)(x)
    assert y.abs().quantile(0.99) < 4 and y.abs().mean() < 1.5


def smooth(h=16, w=12) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return (torch.sin(5 * xx + 1) * torch.cos(4 * yy - 0.5) + 0.3 * xx)[None, None]


def test_warp_identity_and_whole_pixel_shift_are_exact():
    x = images(n=2, h=16, w=12)
    torch.testing.assert_close(warp(x, torch.eye(3).expand(2, 3, 3)), x, rtol=0, atol=1e-5)
    g = torch.eye(3).repeat(2, 1, 1)
    g[:, 0, 2] = 1.0                                                  # output pixel u reads input u + 1
    torch.testing.assert_close(warp(x, g)[..., :-1], x[..., 1:], rtol=0, atol=1e-5)


def test_warp_matches_the_official_pipeline_golden_values():
    """A zoom-out by 1/0.8097 of a smooth non-square image; the expected values are the original
    stylegan2-ada-pytorch AugmentPipe's output for the same map, computed once by hand."""
    s = 0.8096926212310791
    out = warp(smooth(), torch.diag(torch.tensor([1 / s, 1 / s, 1.0]))[None])[0, 0, ::5, ::4]
    official = torch.tensor([[0.07876929640769958, 0.48880359530448914, 0.7243127226829529],
                             [-0.05112111195921898, 0.23994067311286926, 0.48991453647613525],
                             [-0.36323538422584534, -0.3580531179904938, -0.07332196831703186],
                             [0.046124279499053955, 0.42625755071640015, 0.6654021739959717]])
    torch.testing.assert_close(out, official, rtol=0, atol=1e-5)


def test_rotate90_and_xflip_move_the_picture_as_expected():
    """Not exact permutations (the symlet wavelet is not symmetric, as in the original pipeline),
    but on a smooth picture the result is the rotated / mirrored one."""
    torch.manual_seed(0)
    x = smooth(16, 16).repeat(16, 3, 1, 1)
    y = only("rotate90")(x)
    for a, b in zip(x, y):
        assert min((b - torch.rot90(a, k, dims=(1, 2))).abs().max() for k in range(4)) < 0.1
    y = only("xflip")(x)
    for a, b in zip(x, y):
        assert min((b - a).abs().max(), (b - a.flip(2)).abs().max()) < 0.1


def test_zooming_out_does_not_alias():
    """A one-pixel checkerboard (the highest frequency) zoomed out 1.7x must come out as flat grey;
    a plain bilinear resampling turns it into a moiré instead."""
    board = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float()[None, None] * 2 - 1
    g = torch.diag(torch.tensor([1.7, 1.7, 1.0]))[None]              # output u reads input 1.7 u
    inner = warp(board, g)[..., 8:-8, 8:-8]
    assert inner.std() < 0.02 and inner.mean().abs() < 0.02
    theta = torch.tensor([[[1.7, 0, 0], [0, 1.7, 0]]])
    plain = F.grid_sample(board, F.affine_grid(theta, [1, 1, 32, 32], align_corners=False),
                          mode="bilinear", padding_mode="reflection", align_corners=False)[..., 8:-8, 8:-8]
    assert plain.std() > 0.2                                          # what the filter prevents


def test_hue_and_saturation_keep_grey_grey_lumaflip_negates_it():
    torch.manual_seed(0)
    grey = images(n=16, c=1).repeat(1, 3, 1, 1)
    torch.testing.assert_close(only("hue", "saturation")(grey), grey, atol=1e-5, rtol=0)
    y = only("lumaflip")(grey)
    for a, b in zip(grey, y):
        assert min((b - a).abs().max(), (b + a).abs().max()) < 1e-5


def test_xflip_probability_is_p_times_half():
    torch.manual_seed(0)
    n, p = 4000, 0.5
    ramp = torch.linspace(-1, 1, 4).expand(n, 1, 4, 4).contiguous()
    y = only("xflip", p=p)(ramp)
    flipped = (y[:, 0, 0, 0] > 0).float().mean().item()
    assert abs(flipped - p / 2) < 0.04  # flip chosen with prob. 1/2 once the op is applied


def test_augment_p_in_state_dict_round_trip():
    a, b = AdaptiveAugment(0.25), AdaptiveAugment(0.0)
    b.load_state_dict(a.state_dict())
    assert float(b.p) == 0.25


# --- controller ------------------------------------------------------------------------------

def test_controller_raises_p_when_d_overfits():
    aug = AdaptiveAugment(0.0)
    ctl = AdaController(aug, ada_target=0.6, ada_interval=4, ada_kimg=1)
    for _ in range(8):
        ctl.accumulate(torch.ones(16))  # sign(D(real)) = +1 -> r_t = 1 > 0.6
        ctl.update(16)
    assert ctl.rt == 1.0
    assert ctl.p == pytest.approx(2 * 16 * 4 / 1000)
    assert float(aug.p) == pytest.approx(ctl.p)


def test_controller_lowers_p_and_clamps_at_zero_and_one():
    ctl = AdaController(ada_interval=2, ada_kimg=0.01, p=0.05)  # step 0.032 per interval
    for _ in range(20):
        ctl.accumulate(-torch.ones(8, 1))
        ctl.update(8)
    assert ctl.p == 0.0 and ctl.rt == -1.0
    for _ in range(200):
        ctl.accumulate(torch.ones(8, 1))
        ctl.update(8)
    assert ctl.p == 1.0


def test_controller_no_change_at_target_and_between_intervals():
    ctl = AdaController(ada_interval=4, ada_kimg=1, p=0.3)
    ctl.accumulate(torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0]))  # r_t = 0.2
    for _ in range(3):
        assert ctl.update(5) == 0.3  # not yet an interval boundary
    assert ctl.update(5) < 0.3


def test_controller_state_round_trip_is_exact():
    torch.manual_seed(0)
    logits = [torch.randn(12) + 0.8 for _ in range(30)]
    a = AdaController(AdaptiveAugment(), ada_interval=4, ada_kimg=0.5)
    for t in range(13):  # stop mid-interval
        a.accumulate(logits[t])
        a.update(12)
    state = a.state_dict()
    aug_b = AdaptiveAugment()
    b = AdaController(aug_b, ada_interval=4, ada_kimg=0.5)
    b.load_state_dict(state)
    assert float(aug_b.p) == pytest.approx(a.p)
    for t in range(13, 30):
        a.accumulate(logits[t])
        b.accumulate(logits[t])
        assert a.update(12) == b.update(12)
        assert a.rt == b.rt
    assert a.p > 0


# --- DiffAugment -----------------------------------------------------------------------------

def test_diffaugment_shape_grad_and_ops():
    torch.manual_seed(0)
    x = images(n=8).requires_grad_()
    y = diffaugment(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert diffaugment(x, "") is x
    with pytest.raises(ValueError):
        diffaugment(x, "color,warp")


def _shift(a: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """a moved by (dy, dx) pixels, zero fill (reference for the translation op)."""
    out = torch.zeros_like(a)
    h, w = a.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        a[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def test_diffaugment_translation_is_a_zero_filled_shift():
    torch.manual_seed(0)
    x = images(n=16, h=16, w=16)
    y = diffaugment(x, "translation")
    shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]  # 0.125 * 16 = 2
    for a, b in zip(x, y):
        assert any(torch.equal(b, _shift(a, dy, dx)) for dy, dx in shifts)
    assert not torch.equal(x, y)


def test_diffaugment_cutout_area():
    torch.manual_seed(0)
    x = torch.ones(400, 1, 16, 16)
    y = diffaugment(x, "cutout")
    frac = (y == 0).float().mean().item()
    assert 0.12 < frac < 0.25  # an 8x8 square, partly outside the image near borders
