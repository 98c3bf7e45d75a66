"""One preview: :class:`RenderArgs` (hashable) and ``render(args)``, memoised, returning errors as data.

``render`` never raises: it returns ``{"image", "error", "seed", "w", "z"}`` with the error as one
line of text (the S3 visualizer's renderer). torch is imported only when an image is rendered.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .common import (CACHE_LOCK, RENDER_CACHE_SIZE, RENDERS, PlaygroundError, VectorError, check_common, check_seed,
                     class_vector, file_stamp, layer_range, load_model, lru_put, threads_for)
from .directions import apply_direction, ganspace_directions, sefa_directions
from .vectors import Vector, check_array, vector_to_latent


@dataclass(frozen=True)
class Edit:
    """Move ws[start:stop] by ``strength`` along ``direction`` (a Vector of w_dim numbers)."""
    direction: Vector
    start: int
    stop: int
    strength: float


@dataclass(frozen=True)
class NoiseMaps:
    """Noise maps by buffer name, as hashable data."""
    items: tuple   # ((name, shape, float32 bytes), ...)

    @staticmethod
    def of(maps: dict | None) -> "NoiseMaps | None":
        if not maps:
            return None
        return NoiseMaps(tuple((k, tuple(np.shape(v)), np.ascontiguousarray(v, np.float32).tobytes())
                               for k, v in sorted(maps.items())))

    def arrays(self) -> dict:
        return {k: np.frombuffer(b, np.float32).reshape(shape).copy() for k, shape, b in self.items}


@dataclass(frozen=True)
class RenderArgs:
    """Everything one preview depends on; hashable, so equal args are rendered once.

    ``vector`` (a :class:`Vector`, or an array / list converted on construction) wins over ``seed``.
    Style mixing takes ws[mix_layers] (half-open, default the coarse 0-6) from ``mix_seed``.
    A direction is ``(method, index)`` with method 'sefa' or 'ganspace', moved by
    ``direction_strength`` on ``direction_layers`` ('all' or a (start, stop) ws range).
    ``edits`` are more moves, each an :class:`Edit` (a direction of its own, its ws range, a strength).
    ``noise`` replaces the model's constant noise maps (a projection's fitted maps), as :class:`NoiseMaps`.
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
    edits: tuple = ()
    noise: "NoiseMaps | None" = None
    device: str = "cpu"
    _bad: str | None = field(default=None, compare=True, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "model", os.fspath(self.model))
        if self.vector is not None and not isinstance(self.vector, Vector):
            try:
                object.__setattr__(self, "vector", Vector.of(check_array(np.asarray(self.vector))))
            except (VectorError, ValueError, TypeError) as e:
                object.__setattr__(self, "vector", None)
                object.__setattr__(self, "_bad", str(e) if isinstance(e, VectorError) else "The vector is not numeric")
        for name in ("mix_layers", "direction"):
            v = getattr(self, name)
            if isinstance(v, list):
                object.__setattr__(self, name, tuple(v))
        if isinstance(self.direction_layers, list):
            object.__setattr__(self, "direction_layers", tuple(self.direction_layers))
        if isinstance(self.edits, list):
            object.__setattr__(self, "edits", tuple(self.edits))


def truncate(ckpt, ws, psi: float, cutoff):
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
    check_common(ckpt, a.psi, a.cutoff, a.noise_mode)
    c = class_vector(ckpt, a.class_idx, 1, dev)
    seed, z = None, None
    with torch.no_grad(), threads_for(ckpt):
        if a.vector is not None:
            lat = vector_to_latent(check_array(a.vector.array), a.vector.space, ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)
            if a.vector.space == "z":
                z = torch.from_numpy(lat).to(dev)
                ws = G.mapping(z, c, truncation_psi=a.psi, truncation_cutoff=a.cutoff)
            else:
                ws = truncate(ckpt, torch.from_numpy(lat).to(dev), a.psi, a.cutoff)
        else:
            seed = check_seed(a.seed)
            z = z_from_seeds([seed], ckpt.z_dim).to(dev)
            ws = G.mapping(z, c, truncation_psi=a.psi, truncation_cutoff=a.cutoff)
        if a.mix_seed is not None:
            lo, hi = layer_range(a.mix_layers, ckpt.num_ws)
            ws2 = G.mapping(z_from_seeds([check_seed(a.mix_seed)], ckpt.z_dim).to(dev), c,
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
            lo, hi = found["layers"] if method == "sefa" else layer_range(a.direction_layers, ckpt.num_ws)
            moved = apply_direction(ws.cpu().numpy(), found["directions"][index], a.direction_strength, (lo, hi))
            ws = torch.from_numpy(moved).to(dev)
        ws = _apply_edits(ckpt, ws, a.edits)
        img = _synthesize(ckpt, ws, a)
    image = to_uint8(img)[0]
    w = ws[0].cpu().numpy().astype(np.float32)
    return {"image": image, "error": None, "seed": seed, "w": w,
            "z": None if z is None else z[0].cpu().numpy().astype(np.float32)}


def _apply_edits(ckpt, ws, edits):
    import torch
    if not edits:
        return ws
    moved = ws.cpu().numpy()
    for e in edits:
        if not isinstance(e, Edit) or not isinstance(e.strength, (int, float)) or not math.isfinite(e.strength) \
                or abs(e.strength) > 100:
            raise PlaygroundError("A direction strength must be a number between -100 and 100")
        d = check_array(e.direction.array).reshape(-1)
        if d.shape != (ckpt.w_dim,):
            raise PlaygroundError(f"A direction for this model has {ckpt.w_dim} numbers (got {d.size})")
        lo, hi = layer_range((e.start, e.stop), ckpt.num_ws)
        moved = apply_direction(moved, d, e.strength, (lo, hi))
    return torch.from_numpy(moved).to(ws.device)


def _synthesize(ckpt, ws, a: RenderArgs):
    if a.noise is None:
        return ckpt.G_ema.synthesize(ws, noise_mode=a.noise_mode)
    from .projection import noise_buffer_names, synthesize_with_noise
    maps = a.noise.arrays()
    expected = {n: tuple(b.shape) for n, b in ckpt.G_ema.synthesis.named_buffers() if n in noise_buffer_names(ckpt.G_ema)}
    if {k: tuple(v.shape) for k, v in maps.items()} != expected:
        raise PlaygroundError("These noise maps belong to another model")
    if a.noise_mode != "const":  # the fitted maps replace the constant ones; other modes ignore them
        return ckpt.G_ema.synthesize(ws, noise_mode=a.noise_mode)
    return synthesize_with_noise(ckpt.G_ema, ws, maps)


def _frozen(result: dict) -> dict:
    for v in result.values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    return result


def render(args: RenderArgs) -> dict:
    """``{"image": HWC uint8 | None, "error": str | None, "seed", "w", "z"}``; memoised; never raises."""
    try:
        key = (args, file_stamp(args.model))
        hash(key)
    except Exception as e:  # noqa: BLE001
        return {"image": None, "error": _message(e), "seed": getattr(args, "seed", None), "w": None, "z": None}
    with CACHE_LOCK:
        if key in RENDERS:
            RENDERS.move_to_end(key)
            return dict(RENDERS[key])
    try:
        result = _frozen(_render_uncached(args))
    except Exception as e:  # noqa: BLE001 - errors are data here
        return {"image": None, "error": _message(e), "seed": args.seed if args.vector is None else None,
                "w": None, "z": None}
    with CACHE_LOCK:
        lru_put(RENDERS, key, result, RENDER_CACHE_SIZE)
    return dict(result)


def _message(e: Exception) -> str:
    if isinstance(e, PlaygroundError):
        return str(e)
    if isinstance(e, MemoryError):
        return "Out of memory while rendering"
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return f"Rendering failed: {text[:200]}"
