"""Architecture kwargs of G and D read from the shapes of an official-named state dict.

Init kwargs stored in files nest differently in every repo (and TF/rosinality files have other
names), so resolution, channels, mapping depth, dims and architecture come from tensor shapes.
Behaviour that shapes cannot show (conv clamp, minibatch-std group size) comes from ``hints``.
"""
from __future__ import annotations

import re

import torch

from .safe_pickle import CheckpointError

StateDict = dict[str, torch.Tensor]


def standard_filter() -> torch.Tensor:
    """The [1,3,3,1] FIR filter as official layers store it: outer product, normalised to sum 1."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f[:, None] * f[None, :]
    return f / f.sum()


def _resolutions(keys, pattern: str) -> list[int]:
    found = sorted({int(m.group(1)) for k in keys if (m := re.match(pattern, k))})
    if not found or found[0] != 4 and pattern.startswith("synthesis"):
        raise CheckpointError("no 4x4 block: not a StyleGAN2 generator")
    for r in found:
        if r < 4 or r & (r - 1):
            raise CheckpointError(f"block resolution {r} is not a power of two")
    return found


def solve_channels(channels: dict[int, int]) -> tuple[int, int]:
    """(channel_base, channel_max) with min(base // res, max) == channels[res] for every res."""
    cmax = max(channels.values())
    candidates = [32768, 16384, 8192, 65536, 4096, 2048, 1024, 512, 256, 128]
    candidates += [c * r for r, c in sorted(channels.items(), reverse=True)]
    candidates += [c * r + r - 1 for r, c in channels.items()]
    for base in candidates:
        if all(min(base // r, cmax) == c for r, c in channels.items()):
            return base, cmax
    raise CheckpointError(f"channel counts per resolution {channels} fit no channel_base/channel_max")


def _count(sd: StateDict, pattern: str) -> int:
    return len({m.group(1) for k in sd if (m := re.fullmatch(pattern, k))})


def infer_g_kwargs(sd: StateDict, hints: dict | None = None) -> dict:
    hints = hints or {}
    for key in ("synthesis.b4.const", "mapping.fc0.weight"):
        if key not in sd:
            raise CheckpointError(f"not a StyleGAN2 generator: {key} is missing")
    res = _resolutions(sd, r"synthesis\.b(\d+)\.")
    if res != [2 ** i for i in range(2, len(res) + 2)]:
        raise CheckpointError(f"generator blocks {res} are not 4, 8, ..., R")
    R = res[-1]
    channels = {4: sd["synthesis.b4.const"].shape[0]}
    channels.update({r: sd[f"synthesis.b{r}.conv1.weight"].shape[0] for r in res})
    channel_base, channel_max = solve_channels(channels)
    layers = _count(sd, r"mapping\.fc(\d+)\.weight")
    c_dim = sd["mapping.embed.weight"].shape[1] if "mapping.embed.weight" in sd else 0
    embed = sd["mapping.embed.weight"].shape[0] if c_dim else 0
    if f"synthesis.b{R}.torgb.weight" not in sd:
        raise CheckpointError("the generator has no final toRGB layer")
    if any(re.fullmatch(r"synthesis\.b\d+\.skip\.weight", k) for k in sd):
        arch = "resnet"
    elif all(f"synthesis.b{r}.torgb.weight" in sd for r in res):
        arch = "skip"
    else:
        arch = "orig"
    return dict(z_dim=sd["mapping.fc0.weight"].shape[1] - embed, c_dim=c_dim,
                w_dim=sd[f"mapping.fc{layers - 1}.weight"].shape[0], img_resolution=R,
                img_channels=sd[f"synthesis.b{R}.torgb.weight"].shape[0], mapping_layers=layers,
                channel_base=channel_base, channel_max=channel_max, architecture=arch,
                num_fp16_res=int(hints.get("num_fp16_res", 0)), conv_clamp=hints.get("conv_clamp"))


def infer_d_kwargs(sd: StateDict, hints: dict | None = None) -> dict:
    hints = hints or {}
    for key in ("b4.conv.weight", "b4.fc.weight", "b4.out.weight"):
        if key not in sd:
            raise CheckpointError(f"not a StyleGAN2 discriminator: {key} is missing")
    res = [r for r in _resolutions(sd, r"b(\d+)\.") if r > 4]
    if res != [2 ** i for i in range(3, len(res) + 3)]:
        raise CheckpointError(f"discriminator blocks {res} are not R, ..., 8")
    R = res[-1] if res else 4
    channels = {4: sd["b4.conv.weight"].shape[0]}
    channels.update({r: sd[f"b{r}.conv0.weight"].shape[0] for r in res})
    channel_base, channel_max = solve_channels(channels)
    c_dim = sd["mapping.embed.weight"].shape[1] if "mapping.embed.weight" in sd else 0
    if f"b{R}.fromrgb.weight" not in sd:
        raise CheckpointError("the discriminator has no input fromRGB layer")
    if any(re.fullmatch(r"b\d+\.skip\.weight", k) for k in sd):
        arch = "resnet"
    elif "b4.fromrgb.weight" in sd:
        arch = "skip"
    else:
        arch = "orig"
    kwargs = dict(c_dim=c_dim, img_resolution=R, img_channels=sd[f"b{R}.fromrgb.weight"].shape[1],
                  architecture=arch, channel_base=channel_base, channel_max=channel_max,
                  num_fp16_res=int(hints.get("num_fp16_res", 0)), conv_clamp=hints.get("conv_clamp"),
                  mbstd_group_size=hints.get("mbstd_group_size", 4),
                  mbstd_num_channels=sd["b4.conv.weight"].shape[1] - channels[4])
    if c_dim:
        kwargs.update(cmap_dim=sd["b4.out.weight"].shape[0], mapping_layers=_count(sd, r"mapping\.fc(\d+)\.weight"))
    return kwargs


def add_resample_filters(sd: StateDict, generator: bool) -> StateDict:
    """Add the constant ``resample_filter`` buffers official layers carry (for converted files)."""
    out = dict(sd)
    prefixes = set()
    for k, v in sd.items():
        m = re.fullmatch(r"((?:synthesis\.)?b(\d+))\.(\w+)\.weight", k)
        if not m:
            continue
        block, r, layer = m.group(1), int(m.group(2)), m.group(3)
        if generator or r > 4:
            prefixes.add(block)
        if v.ndim == 4 and layer != "torgb":
            prefixes.add(f"{block}.{layer}")
    for p in prefixes:
        out.setdefault(f"{p}.resample_filter", standard_filter())
    return out
