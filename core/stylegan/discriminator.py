"""StyleGAN2 discriminator (resnet / orig / skip) with minibatch std, official names and shapes."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import ops
from .generator import MappingNetwork, block_dtype, channels_for
from .layers import Conv2dLayer, FullyConnectedLayer


class DiscriminatorBlock(nn.Module):
    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, img_channels: int,
                 architecture: str = "resnet", conv_clamp: float | None = None, use_fp16: bool = False):
        super().__init__()
        assert in_channels in (0, tmp_channels)
        self.in_channels, self.architecture, self.use_fp16 = in_channels, architecture, use_fp16
        self.register_buffer("resample_filter", ops.setup_filter())
        self.num_layers = 0
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp)
            self.num_layers += 1
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation="lrelu", down=2, conv_clamp=conv_clamp)
        self.num_layers += 2
        if architecture == "resnet":
            self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)
            self.num_layers += 1

    def forward(self, x, img, force_fp32=False, channels_last=False):
        dtype = block_dtype(self.use_fp16, img.device if img is not None else x.device, force_fp32)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        if x is not None:
            x = x.to(dtype=dtype, memory_format=fmt)
        if self.in_channels == 0 or self.architecture == "skip":
            img = img.to(dtype=dtype, memory_format=fmt)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = ops.downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x)
            x = y + self.conv1(x, gain=math.sqrt(0.5))
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, in_channels: int, cmap_dim: int, resolution: int, img_channels: int,
                 architecture: str = "resnet", mbstd_group_size: int = 4, mbstd_num_channels: int = 1,
                 conv_clamp: float | None = None):
        super().__init__()
        self.architecture, self.cmap_dim = architecture, cmap_dim
        self.mbstd_group_size, self.mbstd_num_channels = mbstd_group_size, mbstd_num_channels
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu")
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation="lrelu",
                                conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap=None):
        x = x.to(torch.float32, memory_format=torch.contiguous_format)  # [N, C, 4, 4]
        if self.architecture == "skip":
            x = x + self.fromrgb(img.to(torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd_num_channels > 0:
            x = ops.minibatch_std(x, self.mbstd_group_size, self.mbstd_num_channels)
        x = self.fc(self.conv(x).flatten(1))
        x = self.out(x)  # [N, 1] or [N, cmap_dim]
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    """D(img, c) -> logits [N, 1]."""

    def __init__(self, c_dim: int = 0, img_resolution: int = 256, img_channels: int = 3,
                 architecture: str = "resnet", channel_base: int = 32768, channel_max: int = 512,
                 num_fp16_res: int = 0, conv_clamp: float | None = 256, mbstd_group_size: int = 4,
                 mbstd_num_channels: int = 1, cmap_dim: int | None = None, mapping_layers: int = 8):
        super().__init__()
        if architecture not in ("resnet", "orig", "skip"):
            raise ValueError(f"unknown discriminator architecture {architecture!r}")
        log2 = int(np.log2(img_resolution))
        assert img_resolution == 2 ** log2 and img_resolution >= 4, "resolution must be a power of two >= 4"
        if cmap_dim is None:
            cmap_dim = channels_for(4, channel_base, channel_max) if c_dim > 0 else 0
        self.init_kwargs = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels,
                                architecture=architecture, channel_base=channel_base, channel_max=channel_max,
                                num_fp16_res=num_fp16_res, conv_clamp=conv_clamp, mbstd_group_size=mbstd_group_size,
                                mbstd_num_channels=mbstd_num_channels, cmap_dim=cmap_dim,
                                mapping_layers=mapping_layers)
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        for res in self.block_resolutions:
            tmp = channels_for(res, channel_base, channel_max)
            block = DiscriminatorBlock(tmp if res < img_resolution else 0, tmp,
                                       channels_for(res // 2, channel_base, channel_max), img_channels,
                                       architecture, conv_clamp, use_fp16=(res >= fp16_resolution))
            setattr(self, f"b{res}", block)
        if c_dim > 0:
            self.mapping = MappingNetwork(0, c_dim, cmap_dim, num_ws=None, num_layers=mapping_layers, w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(channels_for(4, channel_base, channel_max), cmap_dim, 4, img_channels,
                                        architecture, mbstd_group_size, mbstd_num_channels, conv_clamp)

    def layer_names(self) -> list[str]:
        """Module prefixes of D's layers from the input side, for Freeze-D (first N layers frozen)."""
        names = []
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            for layer in ("fromrgb", "conv0", "conv1", "skip"):
                if hasattr(block, layer):
                    names.append(f"b{res}.{layer}")
        return names

    def forward(self, img, c=None, force_fp32: bool = False, channels_last: bool | None = None, bf16: bool = False):
        """bf16: the low-precision blocks (use_fp16) run under bf16 autocast instead of casting to fp16.
        channels_last (NHWC) by default on CUDA and for batches on the CPU, as in G."""
        if channels_last is None:
            channels_last = img.device.type == "cuda" or img.shape[0] > 1
        x, device = None, img.device.type
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16 and block.use_fp16):
                x, img = block(x, img, force_fp32=force_fp32, channels_last=channels_last)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)
