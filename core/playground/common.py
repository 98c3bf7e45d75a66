"""Shared by the playground modules: errors, the model cache and its neighbours, the checks every renderer makes.

Models are cached by (path, file stamp, device) in a small LRU; the render and direction caches
live here too so that :func:`clear_caches` empties all three.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

MODEL_CACHE_SIZE = 3
RENDER_CACHE_SIZE = 64
LOSSES = ("pixel", "pixel+ssim", "d+pixel", "lpips+pixel")   # projection losses (see losses.py)


class PlaygroundError(ValueError):
    """Bad playground input; the message is one line for the user."""


class VectorError(PlaygroundError):
    """A vector that cannot be used (wrong shape, not finite, too large, unreadable)."""


# ----------------------------------------------------------------------------------------------
# Models (cached by path, file stamp and device)

CACHE_LOCK = threading.Lock()
_models: OrderedDict = OrderedDict()
RENDERS: OrderedDict = OrderedDict()
DIRECTIONS: OrderedDict = OrderedDict()


def file_stamp(path) -> tuple:
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        raise PlaygroundError("The model file is missing") from None
    return str(p), st.st_mtime_ns, st.st_size


def lru_put(cache: OrderedDict, key, value, size: int):
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


def load_model(path, device: str = "cpu"):
    """The loaded :class:`Checkpoint` for ``path`` on ``device`` (LRU of MODEL_CACHE_SIZE)."""
    from ..stylegan import CheckpointError, load_checkpoint
    key = (*file_stamp(path), str(device))
    with CACHE_LOCK:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    try:
        ckpt = load_checkpoint(key[0], device)
    except CheckpointError as e:
        raise PlaygroundError(str(e)) from None
    for net in (ckpt.G_ema, ckpt.G, ckpt.D):  # read-only here: no gradient ever lands on shared weights
        if net is not None:
            net.requires_grad_(False)
    with CACHE_LOCK:
        lru_put(_models, key, ckpt, MODEL_CACHE_SIZE)
    return ckpt


SMALL_MODEL_RES = 128


@contextmanager
def threads_for(ckpt, small_work: bool = False):
    """Intra-op threads for work on ``ckpt`` in this thread: one for models up to 128 px (or for
    ``small_work`` such as a w_dim x w_dim eigendecomposition), whose tensors are too small to
    split: two threads were 30-50x slower than one at 64 px on a busy 2-core machine, and no faster
    on a quiet one. The setting is per thread and restored after."""
    import torch
    before = torch.get_num_threads()
    if small_work or ckpt.resolution <= SMALL_MODEL_RES:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def clear_caches() -> None:
    with CACHE_LOCK:
        _models.clear()
        RENDERS.clear()
        DIRECTIONS.clear()


# ----------------------------------------------------------------------------------------------
# Checks every renderer makes

def layer_range(layers, num_ws: int) -> tuple[int, int]:
    if layers in (None, "all"):
        return 0, num_ws
    try:
        lo, hi = (int(x) for x in layers)
    except (TypeError, ValueError):
        raise PlaygroundError("Layers are 'all' or a (start, stop) range") from None
    if not 0 <= lo < hi <= num_ws:
        raise PlaygroundError(f"The layer range must lie within 0-{num_ws} for this model (got {lo}-{hi})")
    return lo, hi


def class_vector(ckpt, class_idx, n: int, device):
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


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2 ** 32:
        raise PlaygroundError(f"A seed is a whole number from 0 to {2 ** 32 - 1}")
    return int(seed)


def check_common(ckpt, psi, cutoff, noise_mode):
    if not isinstance(psi, (int, float)) or not math.isfinite(psi) or not -2 <= psi <= 2:
        raise PlaygroundError("Truncation ψ must be a number between -2 and 2")
    if cutoff is not None and (not isinstance(cutoff, (int, np.integer)) or not 0 <= cutoff <= ckpt.num_ws):
        raise PlaygroundError(f"The truncation cutoff must be between 0 and {ckpt.num_ws}")
    if noise_mode not in ("const", "random", "none"):
        raise PlaygroundError("Noise mode is const, random or none")
