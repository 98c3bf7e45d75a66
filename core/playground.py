"""Playground: seeds, vectors, truncation, style mixing, directions, seed grids and interpolation.

The state of a view is one frozen, hashable :class:`RenderArgs`; ``render(args)`` is memoised on
it and never raises: it returns ``{"image", "error", "seed", "w"}`` with the error as one line of
text (the S3 visualizer's renderer). Models are cached by (path, file stamp, device) in a small
LRU. Vectors from users (pasted text or ``.npy``) are data: ``np.load(allow_pickle=False)``,
size-capped, finite, and of exactly the shapes the model takes.
"""
from __future__ import annotations

import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["PlaygroundError", "VectorError", "Vector", "RenderArgs", "render", "seed_grid",
           "interpolation_frames", "sefa_directions", "ganspace_directions", "apply_direction",
           "random_vector", "load_vector", "slerp", "load_model", "clear_caches"]

MAX_NPY_BYTES = 1 << 20          # 1 MiB: a 1024 px model's ws are 18 x 512 float32 = 36 KiB
MAX_TEXT_CHARS = 1 << 20
MAX_VECTOR_ELEMENTS = 32 * 1024
MAX_ABS_VALUE = 1e4
MAX_GRID_SEEDS = 64
MAX_FRAMES = 5000
MODEL_CACHE_SIZE = 3
RENDER_CACHE_SIZE = 64


class PlaygroundError(ValueError):
    """Bad playground input; the message is one line for the user."""


class VectorError(PlaygroundError):
    """A vector that cannot be used (wrong shape, not finite, too large, unreadable)."""


# ----------------------------------------------------------------------------------------------
# Vectors

@dataclass(frozen=True)
class Vector:
    """A user vector as hashable data: float32 bytes and a shape (``space`` 'z' or 'w')."""
    data: bytes
    shape: tuple
    space: str = "z"

    @staticmethod
    def of(array, space: str = "z") -> "Vector":
        a = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
        return Vector(a.tobytes(), tuple(int(s) for s in a.shape), space)

    @property
    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.float32).reshape(self.shape).copy()


def random_vector(z_dim: int, seed: int | None = None) -> np.ndarray:
    """z for ``seed`` exactly as the official tools draw it (float32 [z_dim]); a fresh seed if None."""
    if seed is None:
        seed = int.from_bytes(os.urandom(4), "little")
    return np.random.RandomState(int(seed)).randn(int(z_dim)).astype(np.float32)


def _check_array(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "fiu" or a.dtype.fields is not None:
        raise VectorError(f"The vector must hold plain numbers, not {a.dtype}")
    if a.size == 0:
        raise VectorError("The vector is empty")
    if a.size > MAX_VECTOR_ELEMENTS:
        raise VectorError(f"The vector is too large ({a.size:,} numbers; at most {MAX_VECTOR_ELEMENTS:,})")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise VectorError("The vector holds NaN or infinite values")
    if np.abs(a).max() > MAX_ABS_VALUE:
        raise VectorError(f"The vector holds values beyond ±{MAX_ABS_VALUE:g}")
    return a


def _load_npy_bytes(data: bytes) -> np.ndarray:
    import io
    if len(data) > MAX_NPY_BYTES:
        raise VectorError(f"The .npy file is too large ({len(data):,} bytes; at most {MAX_NPY_BYTES:,})")
    try:
        a = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:  # noqa: BLE001 - any unreadable file is one user error
        raise VectorError("This is not a readable .npy array (pickled objects are refused)") from None
    if not isinstance(a, np.ndarray):
        raise VectorError("Upload one .npy array, not an .npz archive")
    return _check_array(a)


_NUMBER_SPLIT = re.compile(r"[\s,;\[\]()]+")


def _parse_text(text: str) -> np.ndarray:
    if len(text) > MAX_TEXT_CHARS:
        raise VectorError("The pasted text is too long")
    tokens = [t for t in _NUMBER_SPLIT.split(text) if t]
    if not tokens:
        raise VectorError("Paste numbers separated by spaces or commas")
    if len(tokens) > MAX_VECTOR_ELEMENTS:
        raise VectorError(f"The vector is too large ({len(tokens):,} numbers; at most {MAX_VECTOR_ELEMENTS:,})")
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise VectorError(f"Not a number: {bad[:20]!r}") from None
    return _check_array(np.array(values, dtype=np.float64))


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def load_vector(source) -> np.ndarray:
    """A float32 array from a ``.npy`` file (a Path, or a str ending in .npy), its bytes, or pasted text.

    The UI passes an uploaded file as a Path and typed text as str; user text is never opened as a path
    unless it ends in ``.npy`` (the CLI's use). Raises :class:`VectorError` with a one-line reason.
    """
    if isinstance(source, (bytes, bytearray)):
        return _load_npy_bytes(bytes(source))
    if isinstance(source, np.ndarray):
        return _check_array(source)
    if isinstance(source, str) and not source.strip().lower().endswith(".npy"):
        return _parse_text(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source.strip() if isinstance(source, str) else source)
        try:
            size = path.stat().st_size
            if size > MAX_NPY_BYTES:
                raise VectorError(f"The .npy file is too large ({size:,} bytes; at most {MAX_NPY_BYTES:,})")
            with open(path, "rb") as f:
                return _load_npy_bytes(f.read(MAX_NPY_BYTES + 1))
        except OSError:
            raise VectorError("The vector file cannot be read") from None
    raise VectorError("Give the vector as numbers or a .npy file")


def _vector_to_latent(vec: np.ndarray, space: str, z_dim: int, w_dim: int, num_ws: int) -> np.ndarray:
    """z [1, z_dim] or ws [1, num_ws, w_dim]; refuses every other shape."""
    if space == "z":
        if vec.shape in ((z_dim,), (1, z_dim)):
            return vec.reshape(1, z_dim)
        raise VectorError(f"A z vector for this model has exactly {z_dim} numbers (got shape {vec.shape})")
    if space == "w":
        if vec.shape in ((w_dim,), (1, w_dim)):
            return np.repeat(vec.reshape(1, 1, w_dim), num_ws, axis=1)
        if vec.shape in ((num_ws, w_dim), (1, num_ws, w_dim), (num_ws * w_dim,)):
            return vec.reshape(1, num_ws, w_dim)
        raise VectorError(f"A w vector for this model is {w_dim} numbers or {num_ws} x {w_dim} (got shape {vec.shape})")
    raise VectorError(f"Vector space must be 'z' or 'w', not {space!r}")


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
    from .stylegan import CheckpointError, load_checkpoint
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
# Latent maths

def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between z vectors (linear where they are nearly parallel)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.clip(np.dot(a / max(na, 1e-12), b / max(nb, 1e-12)), -1.0, 1.0))
    omega = math.acos(cos)
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


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
    lo, hi = _layer_range(layers, ckpt.num_ws)
    k = int(k)
    if not 1 <= k <= ckpt.w_dim:
        raise PlaygroundError(f"k must be between 1 and {ckpt.w_dim}")
    key = ("sefa", *_stamp(model_path), lo, hi, k, include_torgb)
    with _lock:
        if key in _directions:
            return _directions[key]
    rows = []
    for idx, name in _ws_slices(G):
        if lo <= idx < hi and (include_torgb or not name.endswith("torgb")):
            block, layer = name.split(".")
            rows.append(getattr(getattr(G.synthesis, block), layer).affine.weight.detach().cpu().double().numpy())
    if not rows:
        raise PlaygroundError("No style layers in that range")
    A = np.concatenate(rows, axis=0)                                  # [sum channels, w_dim]
    A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    values, vectors = np.linalg.eigh(A.T @ A)                         # ascending
    order = np.argsort(values)[::-1][:k]
    out = {"directions": vectors[:, order].T.astype(np.float32), "values": values[order].astype(np.float32),
           "layers": (lo, hi)}
    with _lock:
        _lru_put(_directions, key, out, 32)
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
    key = ("ganspace", *_stamp(model_path), k, samples, seed)
    with _lock:
        if key in _directions:
            return _directions[key]
    z = torch.from_numpy(np.random.RandomState(seed).randn(samples, ckpt.z_dim)).float().to(device)
    c = _class_vector(ckpt, None, samples, device)
    with torch.no_grad():
        w = ckpt.G_ema.mapping(z, c)[:, 0].cpu().double().numpy()    # [samples, w_dim]
    mean = w.mean(0)
    _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
    std = s[:k] / math.sqrt(max(samples - 1, 1))
    out = {"directions": vt[:k].astype(np.float32), "values": std.astype(np.float32),
           "mean": mean.astype(np.float32), "layers": (0, ckpt.num_ws)}
    with _lock:
        _lru_put(_directions, key, out, 32)
    return out


def apply_direction(ws: np.ndarray, direction: np.ndarray, strength: float, layers=(None, None)) -> np.ndarray:
    """ws [N, num_ws, w_dim] moved by ``strength`` along ``direction`` [w_dim] on ws[:, start:stop]."""
    out = np.array(ws, dtype=np.float32, copy=True)
    lo, hi = layers
    out[:, slice(lo, hi)] += np.float32(strength) * np.asarray(direction, np.float32)
    return out


# ----------------------------------------------------------------------------------------------
# Render

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

    from .stylegan.images import to_uint8, z_from_seeds
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


# ----------------------------------------------------------------------------------------------
# Seed grids and interpolation

def seed_grid(model_path, seeds, psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const",
              class_idx: int | None = None, cols: int | None = None, device: str = "cpu", batch: int = 8):
    """(PIL grid image, seeds) for up to MAX_GRID_SEEDS seeds; PlaygroundError on bad input."""
    from .stylegan.images import generate_images, make_grid
    seeds = [_check_seed(s) for s in seeds]
    if not 1 <= len(seeds) <= MAX_GRID_SEEDS:
        raise PlaygroundError(f"A grid holds 1 to {MAX_GRID_SEEDS} seeds")
    ckpt = load_model(model_path, device)
    _check_common(ckpt, psi, cutoff, noise_mode)
    _class_vector(ckpt, class_idx, 1, device)
    imgs = [img for _, img in generate_images(ckpt.G_ema, seeds, truncation_psi=psi, truncation_cutoff=cutoff,
                                              noise_mode=noise_mode, batch=batch, device=device,
                                              class_idx=class_idx)]
    return make_grid(np.stack(imgs), cols=cols), seeds


def interpolation_frames(model_path, seeds, frames_per_transition: int = 8, psi: float = 1.0, space: str = "z",
                         noise_mode: str = "const", cutoff: int | None = None, class_idx: int | None = None,
                         device: str = "cpu", batch: int = 8):
    """Yield HWC uint8 frames seeds[0] -> seeds[1] -> ... -> seeds[0]: len(seeds) * frames_per_transition.

    Each transition's first frame is its start seed and its end is left to the next, so played on a
    loop the video has no repeated or skipped frame. ``space`` 'z' slerps z; 'w' lerps mapped w.
    Checks run before the first frame, so a bad argument raises at the call.
    """
    import torch

    from .stylegan.images import to_uint8, z_from_seeds
    seeds = [_check_seed(s) for s in seeds]
    if len(seeds) < 2:
        raise PlaygroundError("Interpolation needs at least two seeds")
    fpt = int(frames_per_transition)
    if not 1 <= fpt or fpt * len(seeds) > MAX_FRAMES:
        raise PlaygroundError(f"At most {MAX_FRAMES:,} frames in all")
    if space not in ("z", "w"):
        raise PlaygroundError("Interpolate in 'z' (slerp) or 'w' (lerp)")
    ckpt = load_model(model_path, device)
    _check_common(ckpt, psi, cutoff, noise_mode)
    _class_vector(ckpt, class_idx, 1, device)
    G = ckpt.G_ema
    zs = z_from_seeds(seeds, ckpt.z_dim).double().numpy()
    if space == "w":
        with torch.no_grad():
            c = _class_vector(ckpt, class_idx, len(seeds), device)
            anchors = G.mapping(torch.from_numpy(zs).float().to(device), c, truncation_psi=psi,
                                truncation_cutoff=cutoff).cpu().numpy()     # [S, num_ws, w_dim]
    points = [(i, t / fpt) for i in range(len(seeds)) for t in range(fpt)]

    def generate():
        for start in range(0, len(points), batch):
            chunk = points[start:start + batch]
            with torch.no_grad():
                if space == "z":
                    z = np.stack([slerp(zs[i], zs[(i + 1) % len(seeds)], t) for i, t in chunk])
                    c = _class_vector(ckpt, class_idx, len(chunk), device)
                    ws = G.mapping(torch.from_numpy(z).float().to(device), c, truncation_psi=psi,
                                   truncation_cutoff=cutoff)
                else:
                    ws = torch.from_numpy(np.stack([(1 - t) * anchors[i] + t * anchors[(i + 1) % len(seeds)]
                                                    for i, t in chunk])).float().to(device)
                yield from to_uint8(G.synthesize(ws, noise_mode=noise_mode))

    return generate()
