"""Super-resolution networks in plain PyTorch, named so that published weight files load as they are.

RRDBNet (Wang et al. 2018, ESRGAN): residual-in-residual dense blocks, nearest x2 upsampling twice.
SRVGGNetCompact (Real-ESRGAN's compact model): a plain conv/PReLU stack and a pixel shuffle.
Inputs and outputs are RGB in [0, 1], NCHW.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DenseBlock(nn.Module):
    """Five 3x3 convs, each fed every earlier output; the fifth's output, scaled by 0.2, is added to x."""

    def __init__(self, feat: int, grow: int):
        super().__init__()
        for i in range(1, 6):
            setattr(self, f"conv{i}", nn.Conv2d(feat + (i - 1) * grow, feat if i == 5 else grow, 3, 1, 1))

    def forward(self, x):
        feats = [x]
        for i in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, f"conv{i}")(torch.cat(feats, 1)), 0.2))
        return x + 0.2 * self.conv5(torch.cat(feats, 1))


class RRDB(nn.Module):
    def __init__(self, feat: int, grow: int):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = DenseBlock(feat, grow), DenseBlock(feat, grow), DenseBlock(feat, grow)

    def forward(self, x):
        return x + 0.2 * self.rdb3(self.rdb2(self.rdb1(x)))


class RRDBNet(nn.Module):
    def __init__(self, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32, fold: int = 1):
        super().__init__()
        self.fold = fold
        self.conv_first = nn.Conv2d(3 * fold * fold, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x):
        h, w = x.shape[2] * 4 // self.fold, x.shape[3] * 4 // self.fold
        if self.fold > 1:
            pad_h, pad_w = (-x.shape[2]) % self.fold, (-x.shape[3]) % self.fold
            x = F.pixel_unshuffle(F.pad(x, (0, pad_w, 0, pad_h), mode="reflect"), self.fold)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2):
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))[:, :, :h, :w]


class SRVGGNetCompact(nn.Module):
    def __init__(self, num_feat: int = 64, num_conv: int = 16, upscale: int = 4):
        super().__init__()
        self.upscale = upscale
        layers: list[nn.Module] = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_parameters=num_feat)]
        layers.append(nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        out = F.pixel_shuffle(self.body(x), self.upscale)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
