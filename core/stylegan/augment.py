"""Discriminator augmentation: ADA ('bgc') with its adaptive controller, and DiffAugment.

Written for Atelier from the papers:
- Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data" (ADA),
  Appendix B: the 'bgc' pipeline and its parameter distributions.
- Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training" (DiffAugment).

Images are NCHW floats in [-1, 1] on any device and dtype. Random parameters and matrices are
computed in float32 on the images' device from what the caller passes: the trainer's per-sample
streams (``streams.Streams``: a resumed run, or one on several processes, draws the same numbers),
a torch.Generator, or None for the global one.

Geometric augmentations are composed into one 3x3 homogeneous matrix per sample and applied as
the paper does, so that zooming out does not alias: the batch is padded by reflection as far as
the transforms reach, upsampled 2x with the symlet-6 wavelet low-pass filter, warped with one
bilinear `F.grid_sample`, then filtered with the same wavelet, downsampled 2x and cropped (checked
by hand against the original stylegan2-ada-pytorch pipeline: equal to 1e-5 for flips, quarter
turns and zooms; the test pins golden values from it). As there, flips and quarter turns are not
exact pixel permutations (the wavelet is not symmetric). It is differentiable to second order
w.r.t. the images (R1 on augmented reals). Colour augmentations are composed into one
4x4 matrix per sample.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from . import streams


__all__ = ["AdaptiveAugment", "AdaController", "diffaugment"]

# Symlet-6 wavelet decomposition low-pass filter (Daubechies' least-asymmetric wavelet, 12 taps).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)


def _affine(sx: float = 1.0, sy: float = 1.0, tx: float = 0.0, ty: float = 0.0, device=None) -> Tensor:
    """One [3, 3] scale-then-translate matrix (broadcasts against a batch of them)."""
    return torch.tensor([[sx, 0.0, tx], [0.0, sy, ty], [0.0, 0.0, 1.0]], device=device)


def _fir_axis(x: Tensor, taps: Tensor, dim: int, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """upfirdn along one spatial axis (dim 2: rows, 3: columns) with 1-D ``taps``: zero-insert by
    ``up``, pad (pad0, pad1) (negative crops), true convolution, keep every ``down``-th sample.
    The same as ``ops.upfirdn2d`` with the separable filter, at a fraction of the work."""
    c, k = x.shape[1], taps.shape[0]
    one = (1, 1, k, 1) if dim == 2 else (1, 1, 1, k)
    shape = (c, 1) + one[2:]
    if up > 1:  # the transposed conv is the full convolution of the zero-inserted signal
        stride = (up, 1) if dim == 2 else (1, up)
        x = F.conv_transpose2d(x, (taps * up).to(x.dtype).reshape(one).expand(shape), stride=stride, groups=c)
        n = x.shape[dim] - k + up  # the zero-inserted length (up * input)
        start, length = k - 1 - pad[0], n + pad[0] + pad[1] - k + 1
        return x.narrow(dim, start, length)
    widths = [0, 0, max(pad[0], 0), max(pad[1], 0)] if dim == 2 else [max(pad[0], 0), max(pad[1], 0)]
    x = F.pad(x, widths)
    x = x.narrow(dim, max(-pad[0], 0), x.shape[dim] - max(-pad[0], 0) - max(-pad[1], 0))
    stride = (down, 1) if dim == 2 else (1, down)
    return F.conv2d(x, taps.flip(0).to(x.dtype).reshape(one).expand(shape), stride=stride, groups=c)


def warp(x: Tensor, g: Tensor) -> Tensor:
    """Resample ``x`` [N, C, H, W] (float32) through ``g`` [N, 3, 3] (output pixel -> input pixel,
    origin at the image centre) without aliasing: reflect-pad, 2x wavelet upsampling, bilinear
    warp, wavelet low-pass, 2x downsampling, crop."""
    n, c, h, w = x.shape
    dev = x.device
    taps = torch.tensor(SYM6, device=dev)
    taps = taps / taps.sum()
    k = taps.shape[0]
    fpad = k // 4  # the filter's reach in input pixels, on each side
    # how far outside the image the output's corners reach, plus the filter: the reflect padding
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=dev)
    reach = (g @ corners.t())[:, :2, :].permute(1, 0, 2).flatten(1)  # [xy, N * 4]
    reach = torch.cat([-reach, reach]).amax(dim=1)  # [left, top, right, bottom] in centred coords
    margin = reach + torch.tensor([2 * fpad - cx, 2 * fpad - cy] * 2, device=dev)
    limit = torch.tensor([w - 1, h - 1] * 2, device=dev)
    mx0, my0, mx1, my1 = (int(v) for v in margin.clamp(min=0).minimum(limit).ceil().tolist())
    x = F.pad(x, [mx0, mx1, my0, my1], mode="reflect")
    g = _affine(tx=(mx0 - mx1) / 2, ty=(my0 - my1) / 2, device=dev) @ g  # origin: the padded image's centre
    up_pad = ((k + 1) // 2, (k - 2) // 2)  # as ops.upsample2d: keeps the picture centred
    x = _fir_axis(_fir_axis(x, taps, 3, up=2, pad=up_pad), taps, 2, up=2, pad=up_pad)
    # the same map in the upsampled image's pixel coordinates (its pixel centres sit half a pixel off)
    g = _affine(2, 2, device=dev) @ g @ _affine(0.5, 0.5, device=dev)
    g = _affine(tx=-0.5, ty=-0.5, device=dev) @ g @ _affine(tx=0.5, ty=0.5, device=dev)
    out_h, out_w = (h + 2 * fpad) * 2, (w + 2 * fpad) * 2
    to_norm = torch.diag(torch.tensor([2 / x.shape[3], 2 / x.shape[2], 1.0], device=dev))
    from_norm = torch.diag(torch.tensor([out_w / 2, out_h / 2, 1.0], device=dev))
    theta = (to_norm @ g @ from_norm)[:, :2, :]
    grid = F.affine_grid(theta, [n, c, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # low-pass with the time-reversed filter (so up then down is the identity), 2x down, crop fpad
    down_pad = ((k - 1) // 2 - 2 * fpad, (k - 2) // 2 - 2 * fpad)
    taps = taps.flip(0)
    return _fir_axis(_fir_axis(x, taps, 3, down=2, pad=down_pad), taps, 2, down=2, pad=down_pad)


# ---------------------------------------------------------------------------------------------
# Batched homogeneous matrices (float32, shape [N, 3, 3] or [N, 4, 4]).

def _eye(n: int, d: int, device) -> Tensor:
    return torch.eye(d, device=device, dtype=torch.float32).expand(n, d, d).clone()


def _translate2d(tx: Tensor, ty: Tensor) -> Tensor:
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _scale2d(sx: Tensor, sy: Tensor) -> Tensor:
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _rotate2d(theta: Tensor) -> Tensor:
    m = _eye(theta.shape[0], 3, theta.device)
    c, s = theta.cos(), theta.sin()
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def _rotate2d_quarter(k: Tensor) -> Tensor:
    """Rotation by k * 90 degrees with exact 0/1 entries (cos(pi/2) is not 0 in floats)."""
    m = _eye(k.shape[0], 3, k.device)
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=k.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=k.device)[k]
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    return m


def _translate3d(t: Tensor) -> Tensor:  # same offset on R, G, B
    m = _eye(t.shape[0], 4, t.device)
    m[:, :3, 3] = t[:, None]
    return m


def _scale3d(s: Tensor) -> Tensor:  # same gain on R, G, B; homogeneous entry stays 1
    m = _eye(s.shape[0], 4, s.device)
    m[:, :3, :3] *= s[:, None, None]
    return m


def _luma_axis(device) -> Tensor:  # [4] unit vector along grey, zero homogeneous part
    return torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3.0)


def _rotate3d_luma(theta: Tensor) -> Tensor:
    """Rodrigues rotation about the grey axis (1, 1, 1)/sqrt(3) by `theta` [N], in 4x4."""
    a = 1.0 / math.sqrt(3.0)
    dev = theta.device
    k = torch.tensor([[0.0, -a, a], [a, 0.0, -a], [-a, a, 0.0]], device=dev)  # cross-product matrix
    outer = torch.full((3, 3), 1.0 / 3.0, device=dev)
    c, s = theta.cos()[:, None, None], theta.sin()[:, None, None]
    m = _eye(theta.shape[0], 4, dev)
    m[:, :3, :3] = c * torch.eye(3, device=dev) + s * k + (1 - c) * outer
    return m


# ---------------------------------------------------------------------------------------------

class AdaptiveAugment(torch.nn.Module):
    """ADA 'bgc' pipeline: each augmentation is applied to each sample with probability p.

    `p` is a float buffer (saved in state_dict); AdaController updates it. The per-op
    multipliers (xflip=1.0, ...) scale p for that op (0 disables it); the defaults give 'bgc'.
    Rotations use p_rot = 1 - sqrt(1 - p) for each of the two, so that P(any rotation) = p.
    p == 0 returns the input object unchanged.
    """

    def __init__(self, p: float = 0.0, *,
                 xflip: float = 1.0, rotate90: float = 1.0, xint: float = 1.0,
                 scale: float = 1.0, rotate: float = 1.0, aniso: float = 1.0, xfrac: float = 1.0,
                 brightness: float = 1.0, contrast: float = 1.0, lumaflip: float = 1.0,
                 hue: float = 1.0, saturation: float = 1.0,
                 xint_max: float = 0.125, scale_std: float = 0.2, rotate_max: float = 1.0,
                 aniso_std: float = 0.2, xfrac_std: float = 0.125, brightness_std: float = 0.2,
                 contrast_std: float = 0.5, hue_max: float = 1.0, saturation_std: float = 1.0):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float32))
        self.mult = dict(xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate,
                         aniso=aniso, xfrac=xfrac, brightness=brightness, contrast=contrast,
                         lumaflip=lumaflip, hue=hue, saturation=saturation)
        self.xint_max, self.scale_std, self.rotate_max = xint_max, scale_std, rotate_max
        self.aniso_std, self.xfrac_std = aniso_std, xfrac_std
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std

    def _gate(self, name: str, n: int, p: Tensor, gen=None) -> Tensor:
        """[N] float mask: 1 where op `name` applies to the sample."""
        prob = p * self.mult[name]
        return (streams.rand((n,), gen, device=p.device) < prob).float()

    def geometric_matrix(self, n: int, h: int, w: int, p: Tensor, gen=None) -> Tensor:
        """[N, 3, 3] map from output pixel coords to input pixel coords (origin at the centre)."""
        dev = p.device
        g = _eye(n, 3, dev)
        if self.mult["xflip"] > 0:
            i = streams.randint(0, 2, (n,), gen, device=dev).float() * self._gate("xflip", n, p, gen)
            g = g @ _scale2d(1 - 2 * i, torch.ones_like(i))
        if self.mult["rotate90"] > 0:
            i = streams.randint(0, 4, (n,), gen, device=dev).float() * self._gate("rotate90", n, p, gen)
            g = g @ _rotate2d_quarter(i.long())
        if self.mult["xint"] > 0:
            t = (streams.rand((n, 2), gen, device=dev) * 2 - 1) * self.xint_max
            t = t * self._gate("xint", n, p, gen)[:, None]
            g = g @ _translate2d((t[:, 0] * w).round(), (t[:, 1] * h).round())
        if self.mult["scale"] > 0:
            s = torch.exp2(streams.randn((n,), gen, device=dev) * self.scale_std * self._gate("scale", n, p, gen))
            g = g @ _scale2d(s, s)
        p_rot = 1 - torch.sqrt((1 - p * self.mult["rotate"]).clamp(0, 1))
        if self.mult["rotate"] > 0:  # pre-rotation
            theta = (streams.rand((n,), gen, device=dev) * 2 - 1) * math.pi * self.rotate_max
            g = g @ _rotate2d(theta * (streams.rand((n,), gen, device=dev) < p_rot).float())
        if self.mult["aniso"] > 0:
            s = torch.exp2(streams.randn((n,), gen, device=dev) * self.aniso_std * self._gate("aniso", n, p, gen))
            g = g @ _scale2d(s, 1 / s)
        if self.mult["rotate"] > 0:  # post-rotation
            theta = (streams.rand((n,), gen, device=dev) * 2 - 1) * math.pi * self.rotate_max
            g = g @ _rotate2d(theta * (streams.rand((n,), gen, device=dev) < p_rot).float())
        if self.mult["xfrac"] > 0:
            t = streams.randn((n, 2), gen, device=dev) * self.xfrac_std * self._gate("xfrac", n, p, gen)[:, None]
            g = g @ _translate2d(t[:, 0] * w, t[:, 1] * h)
        return g

    def color_matrix(self, n: int, p: Tensor, gen=None) -> Tensor:
        """[N, 4, 4] affine map on homogeneous (R, G, B, 1) values in [-1, 1]."""
        dev = p.device
        c = _eye(n, 4, dev)
        v = _luma_axis(dev)
        vv = torch.outer(v, v)  # [4, 4] projector onto the grey axis
        if self.mult["brightness"] > 0:
            b = streams.randn((n,), gen, device=dev) * self.brightness_std * self._gate("brightness", n, p, gen)
            c = _translate3d(b) @ c
        if self.mult["contrast"] > 0:
            s = torch.exp2(streams.randn((n,), gen, device=dev) * self.contrast_std
                           * self._gate("contrast", n, p, gen))
            c = _scale3d(s) @ c
        if self.mult["lumaflip"] > 0:
            i = streams.randint(0, 2, (n,), gen, device=dev).float() * self._gate("lumaflip", n, p, gen)
            c = (torch.eye(4, device=dev) - 2 * vv * i[:, None, None]) @ c
        if self.mult["hue"] > 0:
            theta = (streams.rand((n,), gen, device=dev) * 2 - 1) * math.pi * self.hue_max
            c = _rotate3d_luma(theta * self._gate("hue", n, p, gen)) @ c
        if self.mult["saturation"] > 0:
            s = torch.exp2(streams.randn((n,), gen, device=dev) * self.saturation_std
                           * self._gate("saturation", n, p, gen))
            m = _eye(n, 4, dev)
            m[:, :3, :3] = vv[:3, :3] + (torch.eye(3, device=dev) - vv[:3, :3]) * s[:, None, None]
            c = m @ c
        return c

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """[N, C, H, W] -> [N, C, H, W]; random draws from ``generator`` (a torch.Generator or
        ``streams.Streams``; None: the global one)."""
        if float(self.p) == 0.0:
            return images
        assert images.ndim == 4, f"expected NCHW, got {tuple(images.shape)}"
        n, ch, h, w = images.shape
        p = self.p.to(device=images.device, dtype=torch.float32)
        x = images.float()
        if any(self.mult[k] > 0 for k in ("xflip", "rotate90", "xint", "scale", "rotate",
                                          "aniso", "xfrac")):
            g = self.geometric_matrix(n, h, w, p, generator)
            # samples drawn without any geometric op stay bit-exact
            keep = (g == torch.eye(3, device=g.device)).flatten(1).all(dim=1)  # [N]
            if not bool(keep.all()):
                x = torch.where(keep[:, None, None, None], x, warp(x, g))
        if any(self.mult[k] > 0 for k in ("brightness", "contrast", "lumaflip", "hue",
                                          "saturation")):
            c = self.color_matrix(n, p, generator)
            if ch == 3:
                x = torch.einsum("nij,njhw->nihw", c[:, :3, :3], x) + c[:, :3, 3, None, None]
            elif ch == 1:  # grey = (v, v, v): apply, then average the three outputs
                gain = c[:, :3, :3].sum(dim=2).mean(dim=1)  # [N]
                x = x * gain[:, None, None, None] + c[:, :3, 3].mean(dim=1)[:, None, None, None]
            else:
                raise ValueError(f"colour augmentation needs 1 or 3 channels, got {ch}")
        return x.to(images.dtype)

    def extra_repr(self) -> str:
        on = ",".join(k for k, v in self.mult.items() if v > 0)
        return f"p={float(self.p):.4f}, ops={on}"


# ---------------------------------------------------------------------------------------------

class AdaController:
    """Adaptive p for AdaptiveAugment (ADA paper, Sec. 3; heuristic r_t = E[sign(D(real))]).

    Per training step: `accumulate(real_logits)` for every D pass on reals, then
    `update(batch_size)` once. Every `ada_interval` calls of update(), p moves by
    sign(r_t - ada_target) * images_seen_in_interval / (ada_kimg * 1000) and is clamped to
    [0, 1]; the new p is written into the attached AdaptiveAugment. Accumulators stay on the
    logits' device, so only the interval boundary synchronises with the GPU. ``reduce``, when
    given, sums each step's [sign_sum, count] over the processes of a run (a collective that
    does not wait for the device), so every process holds the run's sums and moves p alike.
    """

    def __init__(self, augment: AdaptiveAugment | None = None, *, ada_target: float = 0.6,
                 ada_interval: int = 4, ada_kimg: float = 100.0, p: float | None = None, reduce=None):
        self.augment, self.reduce = augment, reduce
        self.ada_target, self.ada_interval, self.ada_kimg = ada_target, ada_interval, ada_kimg
        if p is None:
            p = float(augment.p) if augment is not None else 0.0
        self.p = float(p)
        self.rt: float | None = None  # last measured E[sign(D(real))]
        self._reset()
        self._push()

    def _reset(self) -> None:
        self._sign_sum: Tensor | float = 0.0
        self._count: Tensor | float = 0.0
        self._steps = 0
        self._images = 0
        self._step_sums: list = [0.0, 0.0]  # this process's [sign_sum, count] of the current step

    def _push(self) -> None:
        if self.augment is not None:
            self.augment.p.fill_(self.p)

    def accumulate(self, real_logits: Tensor) -> None:
        """Collect sign(D(real)) for this interval (logits of any shape)."""
        logits = real_logits.detach().float()
        self._step_sums = [self._step_sums[0] + logits.sign().sum(), self._step_sums[1] + logits.numel()]

    def update(self, batch_size: int) -> float:
        """Call once per training step; adjusts p every `ada_interval` calls. Returns p."""
        sign_sum, count = self.reduce(self._step_sums) if self.reduce is not None else self._step_sums
        self._sign_sum, self._count = self._sign_sum + sign_sum, self._count + count
        self._step_sums = [0.0, 0.0]
        self._steps += 1
        self._images += int(batch_size)
        if self._steps < self.ada_interval:
            return self.p
        count = float(self._count)
        if count > 0:
            self.rt = float(self._sign_sum) / count
            step = self._images / (self.ada_kimg * 1000.0)
            direction = (self.rt > self.ada_target) - (self.rt < self.ada_target)
            self.p = min(max(self.p + direction * step, 0.0), 1.0)
            self._push()
        self._reset()
        return self.p

    def state_dict(self) -> dict:
        """Plain Python numbers: safe for weights_only loading and JSON."""
        return dict(p=self.p, rt=self.rt, sign_sum=float(self._sign_sum),
                    count=float(self._count), steps=self._steps, images=self._images,
                    ada_target=self.ada_target, ada_interval=self.ada_interval,
                    ada_kimg=self.ada_kimg)

    def load_state_dict(self, state: dict) -> None:
        self.p = float(state["p"])
        self.rt = None if state.get("rt") is None else float(state["rt"])
        self._sign_sum, self._count = float(state["sign_sum"]), float(state["count"])
        self._steps, self._images = int(state["steps"]), int(state["images"])
        self.ada_target = float(state.get("ada_target", self.ada_target))
        self.ada_interval = int(state.get("ada_interval", self.ada_interval))
        self.ada_kimg = float(state.get("ada_kimg", self.ada_kimg))
        self._push()


# ---------------------------------------------------------------------------------------------
# DiffAugment (Zhao et al. 2020). Every op is differentiable w.r.t. the images.

def _da_color(x: Tensor, gen=None) -> Tensor:
    n = x.shape[0]
    r = lambda: streams.rand((n, 1, 1, 1), gen, device=x.device, dtype=x.dtype)  # noqa: E731
    x = x + (r() - 0.5)                                   # brightness, U(-0.5, 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (r() * 2) + mean                     # saturation, U(0, 2)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (r() + 0.5) + mean                # contrast, U(0.5, 1.5)


def _da_translation(x: Tensor, gen=None, ratio: float = 0.125) -> Tensor:
    """Integer shift by up to ratio*size in each axis, zero fill."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = streams.randint(-sy, sy + 1, (n, 1, 1), gen, device=x.device)
    tx = streams.randint(-sx, sx + 1, (n, 1, 1), gen, device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None] - ty + sy  # [N, H, 1] in padded image
    cols = torch.arange(w, device=x.device)[None, None, :] - tx + sx  # [N, 1, W]
    xp = F.pad(x, [sx, sx, sy, sy])                                    # [N, C, H+2sy, W+2sx]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # [N, C, H, W]


def _da_cutout(x: Tensor, gen=None, ratio: float = 0.5) -> Tensor:
    """Zero one square of side ratio*size per sample, its centre uniform over the image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = streams.randint(0, h + (1 - ch % 2), (n, 1, 1), gen, device=x.device) - ch // 2
    ox = streams.randint(0, w + (1 - cw % 2), (n, 1, 1), gen, device=x.device) - cw // 2
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    inside = (yy >= oy) & (yy < oy + ch) & (xx >= ox) & (xx < ox + cw)  # [N, H, W]
    return x * (~inside).to(x.dtype)[:, None]


_DIFFAUGMENT_OPS = {"color": _da_color, "translation": _da_translation, "cutout": _da_cutout}


def diffaugment(x: Tensor, policy: str = "color,translation,cutout",
                generator: torch.Generator | None = None) -> Tensor:
    """DiffAugment on NCHW images in [-1, 1]; apply the same policy to reals and fakes. Random draws
    come from ``generator`` (None: the global one)."""
    for name in filter(None, (s.strip() for s in policy.split(","))):
        if name not in _DIFFAUGMENT_OPS:
            raise ValueError(f"unknown DiffAugment op {name!r}; use {sorted(_DIFFAUGMENT_OPS)}")
        x = _DIFFAUGMENT_OPS[name](x, generator)
    return x
