"""StyleGAN2 ops in plain PyTorch: FIR resampling, bias + activation + clamp, modulated convolution.

Conventions follow the official StyleGAN2 formulation, so weights from the official checkpoints
give the same outputs: the FIR filter is applied as a true convolution (flipped), upsampling
inserts zeros and scales the filter by up**2, and padding is (before, after) per axis.
Everything here runs on any device; nothing is compiled.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
ACT_GAINS = {"linear": 1.0, "lrelu": math.sqrt(2.0)}


def setup_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    """Separable FIR taps -> normalised 2-D filter [k, k] summing to 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def cpu_bf16(x: torch.Tensor) -> bool:
    """Whether ``x`` goes through the CPU's convolutions in bf16 (its dtype, or autocast's)."""
    if x.device.type != "cpu":
        return False
    return x.dtype == torch.bfloat16 or (torch.is_autocast_enabled("cpu")
                                         and torch.get_autocast_dtype("cpu") == torch.bfloat16)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1,
              padding=(0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (x0, x1, y0, y1), convolve with f, downsample by striding."""
    n, c, h, w = x.shape
    nhwc = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    layout = torch.channels_last if nhwc else torch.contiguous_format
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    f = (f * gain).to(x.dtype).flip([0, 1])  # true convolution
    weight = f[None, None].expand(c, 1, *f.shape)
    if min(padding) >= 0 and px0 == px1 and py0 == py1 and not (down > 1 and cpu_bf16(x)):
        # the convolution pads and strides: no padded copy, no output computed to be dropped
        # (but oneDNN's strided depthwise bf16 backward is 20-100x slower than its stride 1)
        return F.conv2d(x, weight, padding=(py0, px0), stride=down, groups=c)
    if min(padding) >= 0:
        # the convolution pads (no padded copy of a large activation); uneven pads crop the extra
        py, px = max(py0, py1), max(px0, px1)
        x = F.conv2d(x, weight, padding=(py, px), groups=c)
        if (py0, py1, px0, px1) != (py, py, px, px):
            x = x[:, :, py - py0: x.shape[2] - (py - py1), px - px0: x.shape[3] - (px - px1)]
    else:
        x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        x = x[:, :, max(-py0, 0): x.shape[2] - max(-py1, 0), max(-px0, 0): x.shape[3] - max(-px1, 0)]
        x = F.conv2d(x, weight, groups=c)
    if down > 1:  # dense again, in the input's layout (a strided view would reach the next conv as NCHW)
        x = x[:, :, ::down, ::down].contiguous(memory_format=layout)
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    k = f.shape[-1]
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    k = f.shape[-1]
    p0, p1 = (k - down + 1) // 2, (k - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, act: str = "linear",
             gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """x + b (broadcast over dim 1), activation, times gain (default: the activation's), clamp.

    Without autograd, x is updated in place: callers pass a fresh tensor (a conv or matmul
    output), and four passes over a large activation cost more than the convolution on a CPU.
    With autograd it is one node (BiasAct) whose backward works from the output alone, as the
    original's bias_act does, instead of a node per pass.
    """
    if act not in ACT_GAINS:
        raise ValueError(f"unknown activation {act!r}")
    gain = ACT_GAINS[act] if gain is None else gain
    if torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad)):
        if b is None and act == "linear" and clamp is None:
            return x * gain if gain != 1 else x
        return BiasAct.apply(x, b, act, gain, clamp)
    if b is not None:
        x = x.add_(b.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2)))
    return _act_gain_clamp_(x, act, gain, clamp)


def _act_gain_clamp_(x: torch.Tensor, act: str, gain: float, clamp: float | None) -> torch.Tensor:
    if act == "lrelu":
        x = F.leaky_relu_(x, LRELU_SLOPE)
    if gain != 1:
        x = x.mul_(gain)
    if clamp is not None:
        x = x.clamp_(-clamp, clamp)
    return x


class BiasAct(torch.autograd.Function):
    """bias_act as one autograd node. The forward works in place on a fresh input (a conv or matmul
    result no other node kept: autograd's version check fails loudly otherwise), else on one copy;
    the backward needs only the output y: leaky ReLU keeps the sign (gain > 0), so y > 0 where
    its input was, and the clamp passes gradient where |y| < clamp. Twice differentiable (R1):
    the masks are constants of the second derivative, as for any piecewise-linear activation."""

    @staticmethod
    def forward(ctx, x, b, act, gain, clamp):
        if x._base is None and not x.is_leaf:  # a fresh result: worked on in place (backward checks that no node kept it)
            ctx.mark_dirty(x)
            y = x.add_(b.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2))) if b is not None else x
        else:
            y = x + b.to(x.dtype).reshape([1, -1] + [1] * (x.ndim - 2)) if b is not None else x.clone()
        y = _act_gain_clamp_(y, act, gain, clamp)
        ctx.act, ctx.gain, ctx.clamp, ctx.b_dtype = act, gain, clamp, None if b is None else b.dtype
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y = ctx.saved_tensors[0].detach()  # the masks come from y; no gradient flows into them
        if ctx.act == "lrelu":
            g = torch.ops.aten.leaky_relu_backward(g, y, LRELU_SLOPE, True)
        if ctx.clamp is not None:
            g = torch.ops.aten.hardtanh_backward(g, y, -ctx.clamp, ctx.clamp)
        if ctx.gain != 1:
            g = g * ctx.gain
        gb = None
        if ctx.needs_input_grad[1]:
            gb = g.sum(dim=[d for d in range(g.ndim) if d != 1], dtype=ctx.b_dtype)
        return g, gb, None, None, None


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """2-D convolution with optional FIR up- or downsampling by 2, as in the official ops.

    up: transposed conv (stride 2) with the stored weight, then the FIR filter.
    down: FIR filter, then a strided conv. 1x1 kernels resample on the cheaper side.
    """
    out_c, in_c_per_group, kh, kw = w.shape
    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    k = f.shape[-1]
    if down > 1:
        p0 = padding + (k - down + 1) // 2
        p1 = padding + (k - down) // 2
        if kh == 1 and kw == 1:
            x = upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))
        return F.conv2d(x, w, stride=down, groups=groups)
    p0 = padding + (k + up - 1) // 2
    p1 = padding + (k - up) // 2
    if kh == 1 and kw == 1:
        x = F.conv2d(x, w, groups=groups)
        return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)
    if groups == 1:
        wt = w.transpose(0, 1)
    else:
        wt = w.reshape(groups, out_c // groups, in_c_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_c_per_group, out_c // groups, kh, kw)
    p0 -= kw - 1
    p1 -= kw - up
    pt = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, wt, stride=up, padding=pt, groups=groups)
    return upfirdn2d(x, f, padding=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up * up)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                     resample_filter: torch.Tensor | None = None, demodulate: bool = True,
                     fused: bool = True, consume_input: bool = False) -> torch.Tensor:
    """StyleGAN2 weight modulation/demodulation.

    x [N,I,H,W], weight [O,I,k,k], styles [N,I]. ``fused`` runs one grouped convolution with
    per-sample weights; otherwise the activations are scaled before and after one shared
    convolution (the same maths, much faster on CPU for N > 1 and used for training).
    Without autograd the unfused path scales the convolution's output in place, and the input
    too when the caller says it is done with it (``consume_input``): a fresh activation of a
    batch at 256 px is hundreds of MB, and allocating it costs more than the arithmetic.
    """
    n = x.shape[0]
    out_c, in_c, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:  # keep fp16 in range, as the official code does
        weight = weight * (1 / math.sqrt(in_c * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = None
    if demodulate:
        # sum_{i,k} (w_oik * s_ni)^2 = sum_i s_ni^2 * sum_k w_oik^2: [N,I] @ [I,O], no [N,O,I,k,k] tensor
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N,O]
    if not fused:
        no_grad = not torch.is_grad_enabled()
        scale_in = styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = x.mul_(scale_in) if consume_input and no_grad else x * scale_in
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
        if dcoefs is not None:
            scale_out = dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
            if no_grad:  # x is the convolution's own output
                x = x.mul_(scale_out)
                return x.add_(noise.to(x.dtype)) if noise is not None else x
            if noise is not None:
                return torch.addcmul(noise.to(x.dtype), x, scale_out)
            return x * scale_out
        if noise is not None:
            return x.add_(noise.to(x.dtype)) if no_grad else x + noise.to(x.dtype)
        return x
    w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
    if dcoefs is not None:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_c, kh, kw).to(x.dtype)
    x = conv2d_resample(x, w, resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def minibatch_std(x: torch.Tensor, group_size: int, num_channels: int = 1) -> torch.Tensor:
    """Append the group standard deviation as extra channels (strided grouping, as official)."""
    n, c, h, w = x.shape
    g = min(group_size, n) if group_size else n
    while n % g:  # the official code would fail here; take the largest group that divides N
        g -= 1
    f = num_channels
    y = x.reshape(g, -1, f, c // f, h, w)  # [G, n, F, c, H, W]
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [n, F, c, H, W]
    y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [n, F, 1, 1]
    y = y.repeat(g, 1, h, w)  # [N, F, H, W]
    return torch.cat([x, y], dim=1)
