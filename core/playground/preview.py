"""One preview: :class:`RenderArgs` (hashable) and ``render(args)``, memoised, returning errors as data.

``render`` never raises: it returns ``{"image", "error", "seed", "w", "z"}`` with the error as one
line of text (the S3 visualizer's renderer). torch is imported only when an image is rendered.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .common import (RENDER_CACHE_SIZE, PlaygroundError, VectorError, _check_common, _check_seed, _class_vector,
                     _layer_range, _lock, _lru_put, _renders, _stamp, load_model)
from .directions import apply_direction, ganspace_directions, sefa_directions
from .vectors import Vector, _check_array, _vector_to_latent


@dataclass(frozen=True)
class RenderArgs:
    """Everything one preview depends on; hashable, so equal args are rendered once.

    ``vector`` (a :class:`Vector`, or an array / list converted on construction) wins over ``seed``.
    Style mixing takes ws[mix_layers] (half-open, default the coarse 0-6) from ``mix_seed``.
    A direction is ``(method, index)`` with method 'sefa' or 'ganspace', moved by
    ``direction_strength`` on ``direction_layers`` ('all' or a (start, stop) ws range).
    """
    model: str
    seed: int | None = 0
    vector: Vector | None = None
    psi: float = 1.0
    cutoff: int | None = None
    noise_mode: str = "const"
    class_idx: int | None = None
    mix_seed: int | None = None
    mix_layers: tuple = (0, 7)
    direction: tuple | None = None
    direction_strength: float = 0.0
    direction_layers: object = "all"
    device: str = "cpu"
    _bad: str | None = field(default=None, compare=True, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "model", os.fspath(self.model))
        if self.vector is not None and not isinstance(self.vector, Vector):
            try:
                object.__setattr__(self, "vector", Vector.of(_check_array(np.asarray(self.vector))))
            except (VectorError, ValueError, TypeError) as e:
                object.__setattr__(self, "vector", None)
                object.__setattr__(self, "_bad", str(e) if isinstance(e, VectorError) else "The vector is not numeric")
        for name in ("mix_layers", "direction"):
            v = getattr(self, name)
            if isinstance(v, list):
                object.__setattr__(self, name, tuple(v))
        if isinstance(self.direction_layers, list):
            object.__setattr__(self, "direction_layers", tuple(self.direction_layers))


def _truncate(ckpt, ws, psi: float, cutoff):
    if psi == 1:
        return ws
    cutoff = ckpt.num_ws if cutoff is None else cutoff
    ws = ws.clone()
    w_avg = ckpt.G_ema.mapping.w_avg
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


def _render_uncached(a: RenderArgs) -> dict:
    import torch

    from ..stylegan.images import to_uint8, z_from_seeds
    if a._bad:
        raise VectorError(a._bad)
    ckpt = load_model(a.model, a.device)
    G, dev = ckpt.G_ema, a.device
    _check_common(ckpt, a.psi, a.cutoff, a.noise_mode)
    c = _class_vector(ckpt, a.class_idx, 1, dev)
    seed, z = None, None
    with torch.no_grad():
        if a.vector is not None:
            lat = _vector_to_latent(_check_array(a.vector.array), a.vector.space, ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)
            if a.vector.space == "z":
                z = torch.from_numpy(lat).to(dev)
                ws = G.mapping(z, c, truncation_psi=a.psi, truncation_cutoff=a.cutoff)
            else:
                ws = _truncate(ckpt, torch.from_numpy(lat).to(dev), a.psi, a.cutoff)
        else:
            seed = _check_seed(a.seed)
            z = z_from_seeds([seed], ckpt.z_dim).to(dev)
            ws = G.mapping(z, c, truncation_psi=a.psi, truncation_cutoff=a.cutoff)
        if a.mix_seed is not None:
            lo, hi = _layer_range(a.mix_layers, ckpt.num_ws)
            ws2 = G.mapping(z_from_seeds([_check_seed(a.mix_seed)], ckpt.z_dim).to(dev), c,
                            truncation_psi=a.psi, truncation_cutoff=a.cutoff)
            ws = ws.clone()
            ws[:, lo:hi] = ws2[:, lo:hi]
        if a.direction is not None and a.direction_strength:
            if not isinstance(a.direction_strength, (int, float)) or not math.isfinite(a.direction_strength) \
                    or abs(a.direction_strength) > 100:
                raise PlaygroundError("The direction strength must be a number between -100 and 100")
            try:
                method, index = a.direction
                index = int(index)
            except (TypeError, ValueError):
                raise PlaygroundError("A direction is ('sefa' or 'ganspace', index)") from None
            if method == "sefa":
                found = sefa_directions(a.model, a.direction_layers, k=min(ckpt.w_dim, max(10, index + 1)), device=dev)
            elif method == "ganspace":
                found = ganspace_directions(a.model, k=min(ckpt.w_dim, max(10, index + 1)), device=dev)
            else:
                raise PlaygroundError("A direction is ('sefa' or 'ganspace', index)")
            if not 0 <= index < len(found["directions"]):
                raise PlaygroundError(f"Direction index must be between 0 and {len(found['directions']) - 1}")
            lo, hi = found["layers"] if method == "sefa" else _layer_range(a.direction_layers, ckpt.num_ws)
            moved = apply_direction(ws.cpu().numpy(), found["directions"][index], a.direction_strength, (lo, hi))
            ws = torch.from_numpy(moved).to(dev)
        img = G.synthesize(ws, noise_mode=a.noise_mode)
    image = to_uint8(img)[0]
    w = ws[0].cpu().numpy().astype(np.float32)
    return {"image": image, "error": None, "seed": seed, "w": w,
            "z": None if z is None else z[0].cpu().numpy().astype(np.float32)}


def _frozen(result: dict) -> dict:
    for v in result.values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    return result


def render(args: RenderArgs) -> dict:
    """``{"image": HWC uint8 | None, "error": str | None, "seed", "w", "z"}``; memoised; never raises."""
    try:
        key = (args, _stamp(args.model))
        hash(key)
    except Exception as e:  # noqa: BLE001
        return {"image": None, "error": _message(e), "seed": getattr(args, "seed", None), "w": None, "z": None}
    with _lock:
        if key in _renders:
            _renders.move_to_end(key)
            return dict(_renders[key])
    try:
        result = _frozen(_render_uncached(args))
    except Exception as e:  # noqa: BLE001 - errors are data here
        return {"image": None, "error": _message(e), "seed": args.seed if args.vector is None else None,
                "w": None, "z": None}
    with _lock:
        _lru_put(_renders, key, result, RENDER_CACHE_SIZE)
    return dict(result)


def _message(e: Exception) -> str:
    if isinstance(e, PlaygroundError):
        return str(e)
    if isinstance(e, MemoryError):
        return "Out of memory while rendering"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"Rendering failed: {text[:200]}"
