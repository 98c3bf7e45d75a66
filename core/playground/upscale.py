"""Upscaling a rendering x2 or x4: a high-quality resampler, or a super-resolution network whose
weights the user supplies (read by ``weights.load_tensors``: safetensors or tensors only).

Resampler: Lanczos (3 lobes) on gamma-encoded 8-bit RGB, the sharpest of Pillow's filters without
ringing worth the name at these factors. Networks, told apart by their tensor names:

- RRDBNet (ESRGAN / Real-ESRGAN ``x4plus``, ``x2plus``): ``conv_first``, ``body.N.rdbK.convJ``,
  ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``. It upsamples by 4; a x2
  file first folds each 2x2 pixel block into channels (12 input channels), a x1 file 4x4 (48).
- SRVGGNetCompact (Real-ESRGAN ``general-x4v3``, ``animevideov3``): ``body.0`` conv, then PReLU /
  conv pairs, the last conv giving 3·s² channels for a pixel shuffle by s, added to the input
  upsampled (nearest) by s.

A network's own factor is used, then Lanczos takes the result to the factor asked for.
"""
from __future__ import annotations

import re
import threading
from collections import OrderedDict

import numpy as np

from .common import PlaygroundError, file_stamp, lru_put
from .weights import load_tensors, strip_prefix

FACTORS = (2, 4)
MAX_SR_INPUT = 512          # a network's input side; larger images take the resampler
MAX_OUTPUT_SIDE = 8192
_nets: OrderedDict = OrderedDict()
_nets_lock = threading.Lock()


def lanczos(image: np.ndarray, factor: int) -> np.ndarray:
    from PIL import Image
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.Resampling.LANCZOS))


def _check(image, factor) -> np.ndarray:
    if isinstance(factor, bool) or factor not in FACTORS:
        raise PlaygroundError("Upscale x2 or x4")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise PlaygroundError("Upscaling takes an RGB image")
    if max(image.shape[:2]) * factor > MAX_OUTPUT_SIDE:
        raise PlaygroundError(f"The upscaled image would be larger than {MAX_OUTPUT_SIDE:,} px a side")
    return image


def upscale(image: np.ndarray, factor: int = 2, weights=None, device: str = "cpu") -> np.ndarray:
    """HWC uint8 image ``factor`` times larger; with ``weights`` (a file) through that network."""
    image = _check(image, factor)
    if not weights:
        return lanczos(image, factor)
    import torch
    if max(image.shape[:2]) > MAX_SR_INPUT:
        raise PlaygroundError(f"Networks take images up to {MAX_SR_INPUT} px; use the resampler for larger ones")
    net, scale = load_sr_network(weights, device)
    x = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = net(x).clamp(0, 1)
    out = (y[0].permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()
    h, w = image.shape[:2]
    if out.shape[:2] != (h * factor, w * factor):
        from PIL import Image
        out = np.asarray(Image.fromarray(out).resize((w * factor, h * factor), Image.Resampling.LANCZOS))
    return out


def load_sr_network(path, device: str = "cpu"):
    """(module, scale) for a weights file; cached by path, size and mtime."""
    try:
        key = (*file_stamp(path), str(device))
    except PlaygroundError:
        raise PlaygroundError("The weights file cannot be read") from None
    with _nets_lock:
        if key in _nets:
            return _nets[key]
    sd = strip_prefix(load_tensors(path), "params_ema.", "params.", "module.")
    if "conv_first.weight" in sd:
        net, scale = _rrdb(sd)
    elif "body.0.weight" in sd:
        net, scale = _srvgg(sd)
    else:
        raise PlaygroundError("Unknown super-resolution network: RRDBNet (ESRGAN) and SRVGGNetCompact "
                              "(Real-ESRGAN) weights are supported")
    net = net.to(device).eval().requires_grad_(False)
    with _nets_lock:
        lru_put(_nets, key, (net, scale), 2)
    return net, scale


def _load_exactly(net, sd: dict, what: str):
    expected = net.state_dict()
    missing, unknown = expected.keys() - sd.keys(), sd.keys() - expected.keys()
    if missing or unknown:
        raise PlaygroundError(f"{what}: tensors do not match (missing {sorted(missing)[:2]}, unknown {sorted(unknown)[:2]})")
    for k, t in expected.items():
        if tuple(sd[k].shape) != tuple(t.shape):
            raise PlaygroundError(f"{what}: {k} has shape {tuple(sd[k].shape)}, expected {tuple(t.shape)}")
    net.load_state_dict({k: v.float() for k, v in sd.items()})
    return net


def _rrdb(sd: dict):
    from .srnets import RRDBNet
    in_ch = sd["conv_first.weight"].shape[1]
    fold = {3: 1, 12: 2, 48: 4}.get(in_ch)
    if fold is None:
        raise PlaygroundError(f"RRDBNet with {in_ch} input channels is not an RGB network")
    blocks = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.", k)))
    feat, grow = sd["conv_first.weight"].shape[0], sd["body.0.rdb1.conv1.weight"].shape[0]
    net = RRDBNet(num_feat=feat, num_block=blocks, num_grow_ch=grow, fold=fold)
    return _load_exactly(net, sd, "RRDBNet"), 4 // fold


def _srvgg(sd: dict):
    from .srnets import SRVGGNetCompact
    convs = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"body\.(\d+)\.weight", k))
                   and sd[k].ndim == 4)
    last = sd[f"body.{convs[-1]}.weight"]
    scale2 = last.shape[0] // 3
    scale = int(round(scale2 ** 0.5))
    if scale * scale * 3 != last.shape[0] or sd["body.0.weight"].shape[1] != 3:
        raise PlaygroundError("SRVGGNetCompact weights of an unexpected shape")
    net = SRVGGNetCompact(num_feat=sd["body.0.weight"].shape[0], num_conv=len(convs) - 2, upscale=scale)
    return _load_exactly(net, sd, "SRVGGNetCompact"), scale
