"""User vectors: pasted text or ``.npy`` parsed as data, checked, and shaped into z or ws for the model.

``np.load(allow_pickle=False)``, size-capped, finite, and of exactly the shapes the model takes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import VectorError

MAX_NPY_BYTES = 1 << 20          # 1 MiB: a 1024 px model's ws are 18 x 512 float32 = 36 KiB
MAX_TEXT_CHARS = 1 << 20
MAX_VECTOR_ELEMENTS = 32 * 1024
MAX_ABS_VALUE = 1e4


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


def check_array(a: np.ndarray) -> np.ndarray:
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
    return check_array(a)


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
    return check_array(np.array(values, dtype=np.float64))


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
        return check_array(source)
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


def vector_to_latent(vec: np.ndarray, space: str, z_dim: int, w_dim: int, num_ws: int) -> np.ndarray:
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
