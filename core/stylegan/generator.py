"""StyleGAN2 generator: mapping z -> ws, synthesis ws -> image, with the official names and shapes."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import ops
from .layers import Conv2dLayer, FullyConnectedLayer, SynthesisLayer, ToRGBLayer


def channels_for(res: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // res, channel_max)


def block_dtype(use_fp16: bool, device: torch.device, force_fp32: bool) -> torch.dtype:
    """fp16 only on CUDA, where the official checkpoints ask for it; CPU always runs fp32. Under
    autocast (bf16 precision) the autocast dtype: the block's convolutions make their outputs
    bf16 anyway, and a cast to fp32 at the next block's entry would be undone by its first conv."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return torch.float16 if use_fp16 and not force_fp32 and device.type == "cuda" else torch.float32


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int | None, num_layers: int = 8,
                 lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers = z_dim, c_dim, w_dim, num_ws, num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = w_dim if c_dim > 0 else 0
        features = [z_dim + embed_features] + [w_dim] * num_layers
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation="lrelu",
                                                        lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            x = ops.normalize_2nd_moment(z.to(torch.float32))  # [N, z_dim]
        if self.c_dim > 0:
            y = ops.normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)  # [N, w_dim]
        if update_w_avg and self.num_ws is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x = torch.cat([self.w_avg.lerp(x[:, :cutoff], truncation_psi), x[:, cutoff:]], dim=1)
        return x


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", conv_clamp: float | None = None, use_fp16: bool = False):
        super().__init__()
        self.in_channels, self.resolution, self.is_last = in_channels, resolution, is_last
        self.architecture, self.use_fp16 = architecture, use_fp16
        self.register_buffer("resample_filter", ops.setup_filter())
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2)

    def forward(self, x, img, ws, noise_mode="random", fused=True, force_fp32=False, channels_last=False,
                noise_generator=None):
        """ws: [N, num_conv + num_torgb, w_dim]. Without autograd, ``x`` may be overwritten.
        Random noise is drawn from ``noise_generator`` (a torch.Generator or streams.Streams; None: the global one)."""
        noise = dict(noise_generator=noise_generator)
        w_iter = iter(ws.unbind(dim=1))
        dtype = block_dtype(self.use_fp16, ws.device, force_fp32)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=torch.contiguous_format)
            x = x.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1).to(memory_format=fmt)
            x = self.conv1(x, next(w_iter), noise_mode, fused, consume_input=True, **noise)
        elif self.architecture == "resnet":
            x = x.to(dtype=dtype, memory_format=fmt)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode, fused, consume_input=True, **noise)
            x = y + self.conv1(x, next(w_iter), noise_mode, fused, gain=math.sqrt(0.5), consume_input=True, **noise)
        else:
            x = x.to(dtype=dtype, memory_format=fmt)
            x = self.conv0(x, next(w_iter), noise_mode, fused, consume_input=True, **noise)
            x = self.conv1(x, next(w_iter), noise_mode, fused, consume_input=True, **noise)
        if img is not None:
            img = ops.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused).to(torch.float32, memory_format=torch.contiguous_format)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, architecture: str = "skip", num_fp16_res: int = 0,
                 conv_clamp: float | None = None):
        super().__init__()
        log2 = int(np.log2(img_resolution))
        assert img_resolution == 2 ** log2 and img_resolution >= 4, "resolution must be a power of two >= 4"
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, log2 + 1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = channels_for(res // 2, channel_base, channel_max) if res > 4 else 0
            block = SynthesisBlock(in_channels, channels_for(res, channel_base, channel_max), w_dim, res,
                                   img_channels, is_last=(res == img_resolution), architecture=architecture,
                                   conv_clamp=conv_clamp, use_fp16=(res >= fp16_resolution))
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws: torch.Tensor, bf16: bool = False, **block_kwargs) -> torch.Tensor:
        # ws: [N, num_ws, w_dim]; a block's torgb shares its w with the next block's conv0.
        # bf16: the low-precision blocks (use_fp16) run under bf16 autocast instead of casting to fp16.
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            with torch.autocast(ws.device.type, dtype=torch.bfloat16, enabled=bf16 and block.use_fp16):
                x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), **block_kwargs)
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """G(z, c) -> images [N, C, R, R] in [-1, 1] scale (not clamped)."""

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: int = 256,
                 img_channels: int = 3, mapping_layers: int = 8, channel_base: int = 32768, channel_max: int = 512,
                 architecture: str = "skip", num_fp16_res: int = 0, conv_clamp: float | None = 256):
        super().__init__()
        if architecture not in ("skip", "orig", "resnet"):
            raise ValueError(f"unknown generator architecture {architecture!r}")
        self.init_kwargs = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution,
                                img_channels=img_channels, mapping_layers=mapping_layers, channel_base=channel_base,
                                channel_max=channel_max, architecture=architecture, num_fp16_res=num_fp16_res,
                                conv_clamp=conv_clamp)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max,
                                          architecture, num_fp16_res, conv_clamp)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, num_layers=mapping_layers)

    def synthesize(self, ws: torch.Tensor, noise_mode: str = "random", fused: bool | None = None,
                   force_fp32: bool = False, channels_last: bool | None = None, noise_generator=None,
                   bf16: bool = False) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images. Style mixing is any ws whose rows differ."""
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be random, const or none, not {noise_mode!r}")
        on_cuda = ws.device.type == "cuda"
        if fused is None:
            # Grouped conv is slow on CPU for N > 1; scaling the activations is the same maths.
            fused = not self.training and (on_cuda or ws.shape[0] == 1)
        if channels_last is None:  # NHWC suits cuDNN and, for batches, oneDNN on the CPU
            channels_last = on_cuda or ws.shape[0] > 1
        return self.synthesis(ws, noise_mode=noise_mode, fused=fused, force_fp32=force_fp32,
                              channels_last=channels_last, noise_generator=noise_generator, bf16=bf16)

    def forward(self, z, c=None, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                noise_mode: str = "random", update_w_avg: bool = False, **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_w_avg=update_w_avg)
        return self.synthesize(ws, noise_mode=noise_mode, **synthesis_kwargs)
