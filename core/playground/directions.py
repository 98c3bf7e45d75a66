"""Latent directions: SeFa (closed form, from the style affines) and GANSpace (PCA of mapped W samples),
over all layers or one group of them (coarse / middle / fine, as the StyleGAN paper splits them)."""
from __future__ import annotations

import math

import numpy as np

from .common import (CACHE_LOCK, DIRECTIONS, PlaygroundError, class_vector, file_stamp, layer_range, load_model, lru_put,
                     threads_for)


def _ws_slices(G) -> list[tuple[int, str]]:
    """(ws index, module path) of every style affine in synthesis order."""
    out, w_idx = [], 0
    for res in G.synthesis.block_resolutions:
        block = getattr(G.synthesis, f"b{res}")
        idx = w_idx
        for name in ("conv0", "conv1"):
            if hasattr(block, name):
                out.append((idx, f"b{res}.{name}"))
                idx += 1
        if hasattr(block, "torgb"):
            out.append((idx, f"b{res}.torgb"))
        w_idx += block.num_conv
    return out


def layer_groups(ckpt) -> dict[str, tuple[int, int]]:
    """ws ranges: 'all', and the paper's groups coarse (4-8 px blocks), middle (16-32 px), fine (64 px up).

    The last group present also takes the final toRGB's w; a group a model lacks is left out."""
    spans: dict[str, list[int]] = {}
    w_idx = 0
    for res in ckpt.G_ema.synthesis.block_resolutions:
        n = getattr(ckpt.G_ema.synthesis, f"b{res}").num_conv
        group = "coarse" if res <= 8 else "middle" if res <= 32 else "fine"
        spans.setdefault(group, [w_idx, w_idx + n])[1] = w_idx + n
        w_idx += n
    last = list(spans)[-1]
    spans[last][1] = ckpt.num_ws
    return {"all": (0, ckpt.num_ws), **{k: (lo, hi) for k, (lo, hi) in spans.items()}}


def sefa_directions(model_path, layers="all", k: int = 10, device: str = "cpu",
                    include_torgb: bool = False) -> dict:
    """SeFa (Shen & Zhou 2021): eigenvectors of AᵀA for the stacked, row-normalised style affines.

    ``A`` stacks the affine weights [channels, w_dim] of the synthesis layers whose w lies in
    ``layers`` (a (start, stop) ws range, or 'all'); each affine output's weight row is scaled to
    unit norm. Returns ``{"directions": [k, w_dim] float32 (orthonormal rows, strongest first),
    "values": [k], "layers": (start, stop)}``. Closed form; cached per model and layer range.
    """
    ckpt = load_model(model_path, device)
    G = ckpt.G_ema
    lo, hi = layer_range(layers, ckpt.num_ws)
    k = int(k)
    if not 1 <= k <= ckpt.w_dim:
        raise PlaygroundError(f"k must be between 1 and {ckpt.w_dim}")
    key = ("sefa", *file_stamp(model_path), lo, hi, k, include_torgb)
    with CACHE_LOCK:
        if key in DIRECTIONS:
            return DIRECTIONS[key]
    rows = []
    for idx, name in _ws_slices(G):
        if lo <= idx < hi and (include_torgb or not name.endswith("torgb")):
            block, layer = name.split(".")
            rows.append(getattr(getattr(G.synthesis, block), layer).affine.weight.detach().cpu().double().numpy())
    if not rows:
        raise PlaygroundError("No style layers in that range")
    import torch
    A = torch.from_numpy(np.concatenate(rows, axis=0))                # [sum channels, w_dim]
    A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
    with threads_for(ckpt, small_work=True):                          # numpy's BLAS threads stall on a busy CPU
        values, vectors = torch.linalg.eigh(A.T @ A)                  # ascending
    order = torch.argsort(values, descending=True)[:k]
    out = {"directions": vectors[:, order].T.numpy().astype(np.float32),
           "values": values[order].numpy().astype(np.float32), "layers": (lo, hi)}
    with CACHE_LOCK:
        lru_put(DIRECTIONS, key, out, 32)
    return out


def ganspace_directions(model_path, k: int = 10, samples: int = 2000, seed: int = 0, device: str = "cpu") -> dict:
    """GANSpace (Härkönen et al. 2020): principal axes of mapped W samples.

    Returns ``{"directions": [k, w_dim] orthonormal, "values": std along each, "mean": [w_dim]}``.
    """
    import torch
    ckpt = load_model(model_path, device)
    k, samples = int(k), int(samples)
    if not 1 <= k <= ckpt.w_dim or not k <= samples <= 100_000:
        raise PlaygroundError("k or the sample count is out of range")
    key = ("ganspace", *file_stamp(model_path), k, samples, seed)
    with CACHE_LOCK:
        if key in DIRECTIONS:
            return DIRECTIONS[key]
    z = torch.from_numpy(np.random.RandomState(seed).randn(samples, ckpt.z_dim)).float().to(device)
    c = class_vector(ckpt, None, samples, device)
    with torch.no_grad(), threads_for(ckpt):
        w = ckpt.G_ema.mapping(z, c)[:, 0].cpu().double().numpy()    # [samples, w_dim]
    mean = w.mean(0)
    with threads_for(ckpt, small_work=True):
        _, s, vt = torch.linalg.svd(torch.from_numpy(w - mean), full_matrices=False)
    std = s[:k].numpy() / math.sqrt(max(samples - 1, 1))
    out = {"directions": vt[:k].numpy().astype(np.float32), "values": std.astype(np.float32),
           "mean": mean.astype(np.float32), "layers": (0, ckpt.num_ws)}
    with CACHE_LOCK:
        lru_put(DIRECTIONS, key, out, 32)
    return out


def apply_direction(ws: np.ndarray, direction: np.ndarray, strength: float, layers=(None, None)) -> np.ndarray:
    """ws [N, num_ws, w_dim] moved by ``strength`` along ``direction`` [w_dim] on ws[:, start:stop]."""
    out = np.array(ws, dtype=np.float32, copy=True)
    lo, hi = layers
    out[:, slice(lo, hi)] += np.float32(strength) * np.asarray(direction, np.float32)
    return out


METHODS = {"sefa": "SeFa", "ganspace": "GANSpace"}


def found_directions(model_path, method: str, group: str = "all", k: int = 6, device: str = "cpu") -> list[dict]:
    """The k strongest directions of ``method`` ('sefa' | 'ganspace') for a layer ``group``:
    ``[{"name", "direction" [w_dim], "layers" (start, stop), "method", "index"}]``. SeFa looks only at
    the group's style affines; GANSpace's axes (of W) are applied to the group's layers."""
    if method not in METHODS:
        raise PlaygroundError("Directions come from 'sefa' or 'ganspace'")
    ckpt = load_model(model_path, device)
    groups = layer_groups(ckpt)
    if group not in groups:
        raise PlaygroundError(f"This model has no {group} layers (it has {', '.join(groups)})")
    lo, hi = groups[group]
    k = max(1, min(int(k), ckpt.w_dim))
    found = (sefa_directions(model_path, (lo, hi), k=k, device=device) if method == "sefa"
             else ganspace_directions(model_path, k=k, device=device))
    label = METHODS[method] + ("" if group == "all" else f" {group}")
    return [{"name": f"{label} {i + 1}", "direction": d, "layers": (lo, hi), "method": method, "index": i}
            for i, d in enumerate(found["directions"])]
