"""LPIPS (Zhang et al. 2018) on VGG16, from weights the user supplies: nothing is downloaded.

VGG16's convolutions are read under torchvision's names (``features.N.weight``) or the lpips
package's (``net.sliceK.N.weight``, same N); LPIPS' learnt 1x1 layers (``linK.model.1.weight``,
K = 0..4) are optional: without them every channel weighs the same (a plain VGG feature distance).
Several files may be given (e.g. VGG16 and LPIPS' own small file); their tensors are merged.
Activations are taken after relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, unit-normalised along
channels, and their squared differences averaged over space and summed over the five taps.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from .common import PlaygroundError
from .weights import load_tensors, strip_prefix

# (in, out) of VGG16's 13 convolutions at their torchvision 'features' indices; pools follow taps.
VGG16_CONVS = {0: (3, 64), 2: (64, 64), 5: (64, 128), 7: (128, 128), 10: (128, 256), 12: (256, 256),
               14: (256, 256), 17: (256, 512), 19: (512, 512), 21: (512, 512), 24: (512, 512), 26: (512, 512),
               28: (512, 512)}
TAPS = (2, 7, 14, 21, 28)          # the conv whose ReLU output LPIPS reads
POOL_AFTER = (2, 7, 14, 21)
# LPIPS' input scaling for images in [-1, 1] (ImageNet mean and std, moved to that range)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
MAX_SIDE = 256


def unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each pixel's channel vector scaled to unit length (LPIPS' normalisation)."""
    return x / (x.square().sum(dim=1, keepdim=True) + eps).sqrt()


class VGGPerceptual:
    def __init__(self, convs: dict, lins: list | None):
        self.convs, self.lins = convs, lins

    @staticmethod
    def load(paths, device="cpu") -> "VGGPerceptual":
        if isinstance(paths, (str, bytes)) or not hasattr(paths, "__iter__"):
            paths = [paths]
        sd: dict = {}
        for p in paths:
            sd.update(strip_prefix(load_tensors(p), "module."))
        convs, lins = {}, {}
        for key, t in sd.items():
            m = re.fullmatch(r"(?:features|net\.slice\d)\.(\d+)\.(weight|bias)", key)
            if m and int(m.group(1)) in VGG16_CONVS:
                convs.setdefault(int(m.group(1)), {})[m.group(2)] = t.float().to(device)
            m = re.fullmatch(r"lin(\d)\.model\.1\.weight", key)
            if m:
                lins[int(m.group(1))] = t.float().to(device)
        for idx, (cin, cout) in VGG16_CONVS.items():
            layer = convs.get(idx, {})
            if "weight" not in layer or "bias" not in layer:
                raise PlaygroundError("The weights hold no complete VGG16 (features.N.weight / bias): "
                                      "add the VGG16 file")
            if tuple(layer["weight"].shape) != (cout, cin, 3, 3) or tuple(layer["bias"].shape) != (cout,):
                raise PlaygroundError(f"VGG16 layer features.{idx} has the wrong shape {tuple(layer['weight'].shape)}")
        lin_list = None
        if lins:
            if sorted(lins) != [0, 1, 2, 3, 4]:
                raise PlaygroundError("The LPIPS weights need all five layers lin0..lin4")
            lin_list = [lins[k] for k in range(5)]
            for k, tap in enumerate(TAPS):
                if tuple(lin_list[k].shape) != (1, VGG16_CONVS[tap][1], 1, 1):
                    raise PlaygroundError(f"LPIPS layer lin{k} has the wrong shape {tuple(lin_list[k].shape)}")
        for layer in convs.values():
            for t in layer.values():
                t.requires_grad_(False)
        return VGGPerceptual(convs, lin_list)

    def __call__(self, img: torch.Tensor) -> list[torch.Tensor]:
        """img [N, 3, H, W] in [-1, 1] -> the five unit-normalised activations."""
        if max(img.shape[-2:]) > MAX_SIDE:
            img = F.interpolate(img, size=(MAX_SIDE, MAX_SIDE), mode="area")
        shift = torch.tensor(SHIFT, device=img.device).view(1, 3, 1, 1)
        scale = torch.tensor(SCALE, device=img.device).view(1, 3, 1, 1)
        x, out = (img - shift) / scale, []
        for idx in sorted(VGG16_CONVS):
            layer = self.convs[idx]
            x = F.relu(F.conv2d(x, layer["weight"], layer["bias"], padding=1))
            if idx in TAPS:
                out.append(unit_channels(x))
            if idx in POOL_AFTER:
                x = F.max_pool2d(x, 2, ceil_mode=True)
        return out

    def distance(self, a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        total = 0
        for k, (x, y) in enumerate(zip(a, b)):
            d = (x - y).square()
            d = F.conv2d(d, self.lins[k]) if self.lins is not None else d.mean(1, keepdim=True)
            total = total + d.mean()
        return total
