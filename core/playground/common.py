"""Shared by the playground modules: errors, the model cache and its neighbours, the checks every renderer makes.

Models are cached by (path, file stamp, device) in a small LRU; the render and direction caches
live here too so that :func:`clear_caches` empties all three.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

MODEL_CACHE_SIZE = 3
RENDER_CACHE_SIZE = 64


class PlaygroundError(ValueError):
    """Bad playground input; the message is one line for the user."""


class VectorError(PlaygroundError):
    """A vector that cannot be used (wrong shape, not finite, too large, unreadable)."""


# ----------------------------------------------------------------------------------------------
# Models (cached by path, file stamp and device)

_lock = threading.Lock()
_models: OrderedDict = OrderedDict()
_renders: OrderedDict = OrderedDict()
_directions: OrderedDict = OrderedDict()


def _stamp(path) -> tuple:
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        raise PlaygroundError("The model file is missing") from None
    return str(p), st.st_mtime_ns, st.st_size


def _lru_put(cache: OrderedDict, key, value, size: int):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def load_model(path, device: str = "cpu"):
    """The loaded :class:`Checkpoint` for ``path`` on ``device`` (LRU of MODEL_CACHE_SIZE)."""
    from ..stylegan import CheckpointError, load_checkpoint
    key = (*_stamp(path), str(device))
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    try:
        ckpt = load_checkpoint(key[0], device)
    except CheckpointError as e:
        raise PlaygroundError(str(e)) from None
    with _lock:
        _lru_put(_models, key, ckpt, MODEL_CACHE_SIZE)
    return ckpt


def clear_caches() -> None:
    with _lock:
        _models.clear()
        _renders.clear()
        _directions.clear()


# ----------------------------------------------------------------------------------------------
# Checks every renderer makes

def _layer_range(layers, num_ws: int) -> tuple[int, int]:
    if layers in (None, "all"):
        return 0, num_ws
    try:
        lo, hi = (int(x) for x in layers)
    except (TypeError, ValueError):
        raise PlaygroundError("Layers are 'all' or a (start, stop) range") from None
    if not 0 <= lo < hi <= num_ws:
        raise PlaygroundError(f"The layer range must lie within 0-{num_ws} for this model (got {lo}-{hi})")
    return lo, hi


def _class_vector(ckpt, class_idx, n: int, device):
    import torch
    if ckpt.c_dim == 0:
        if class_idx not in (None, 0):
            raise PlaygroundError("This model has no classes")
        return None
    idx = 0 if class_idx is None else int(class_idx)
    if not 0 <= idx < ckpt.c_dim:
        raise PlaygroundError(f"The class must be between 0 and {ckpt.c_dim - 1}")
    c = torch.zeros(n, ckpt.c_dim, device=device)
    c[:, idx] = 1
    return c


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2 ** 32:
        raise PlaygroundError(f"A seed is a whole number from 0 to {2 ** 32 - 1}")
    return int(seed)


def _check_common(ckpt, psi, cutoff, noise_mode):
    if not isinstance(psi, (int, float)) or not math.isfinite(psi) or not -2 <= psi <= 2:
        raise PlaygroundError("Truncation ψ must be a number between -2 and 2")
    if cutoff is not None and (not isinstance(cutoff, (int, np.integer)) or not 0 <= cutoff <= ckpt.num_ws):
        raise PlaygroundError(f"The truncation cutoff must be between 0 and {ckpt.num_ws}")
    if noise_mode not in ("const", "random", "none"):
        raise PlaygroundError("Noise mode is const, random or none")
