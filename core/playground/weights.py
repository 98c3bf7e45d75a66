"""Weights files users supply (LPIPS / VGG16, super-resolution networks), read as data only.

A ``.safetensors`` file is read with safetensors; a ``torch.save`` file (``.pth``/``.pt``) with
``torch.load(weights_only=True)`` through the same reader as checkpoints, which refuses any pickled
object that is not a tensor or plain container. Nothing in the file is ever executed.
"""
from __future__ import annotations

from pathlib import Path

from .common import PlaygroundError

MAX_WEIGHTS_BYTES = 2 << 30


def _flatten(obj, prefix: str, out: dict) -> None:
    import torch
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str):
                _flatten(v, f"{prefix}.{k}" if prefix else k, out)


def load_tensors(path) -> dict:
    """``{name: tensor}`` of a safetensors or torch-zip file; PlaygroundError with one line otherwise."""
    from ..stylegan import CheckpointError
    from ..stylegan.formats import sniff
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        raise PlaygroundError("The weights file cannot be read") from None
    if size > MAX_WEIGHTS_BYTES:
        raise PlaygroundError(f"The weights file is too large ({size / 1e9:.1f} GB; at most {MAX_WEIGHTS_BYTES / 1e9:.1f} GB)")
    kind = sniff(head)
    if kind == "safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception:  # noqa: BLE001 - any unreadable header is one user error
            raise PlaygroundError("The .safetensors file is damaged") from None
    if kind == "zip":
        from ..stylegan.formats import torch_load
        try:
            obj = torch_load(path)
        except CheckpointError as e:
            raise PlaygroundError(str(e)) from None
        out: dict = {}
        _flatten(obj, "", out)
        if not out:
            raise PlaygroundError("The weights file holds no tensors")
        return out
    raise PlaygroundError("Weights must be a .safetensors file or a torch.save (.pth) file of tensors; "
                          "plain pickles are refused")


def strip_prefix(sd: dict, *prefixes: str) -> dict:
    """Keys without the first of ``prefixes`` that every key carries (e.g. 'params_ema.', 'module.')."""
    for p in prefixes:
        if sd and all(k.startswith(p) for k in sd):
            return {k[len(p):]: v for k, v in sd.items()}
    return sd
