"""The packed store that training reads: one flat uint8 file plus an index, memory-mapped.

A pack folder holds ``data.u8`` (every image as C x H x W uint8, back to back), ``index.npy``
(int64 rows ``offset, height, width``) and ``pack.json``. For ``center``, ``none`` and ``pad``
every image is already the final R x R square; for ``random`` each image keeps its aspect with
the short side at R and a square is cut at a random place on every draw. Reading maps the file,
so memory does not grow with the dataset and nothing is decoded per step.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from core.storage import atomic_path, atomic_write_json

FORMAT_VERSION = 1


class PackWriter:
    """Appends CHW uint8 arrays to a new pack folder; ``close()`` writes the index."""

    def __init__(self, folder: Path, resolution: int, crop: str, inflate: dict):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.meta = {"format_version": FORMAT_VERSION, "resolution": resolution, "crop": crop, "inflate": inflate}
        self._f = open(self.folder / "data.u8", "wb")
        self._rows: list[tuple[int, int, int]] = []
        self._offset = 0

    def append(self, arr: np.ndarray) -> None:
        c, h, w = arr.shape
        assert c == 3 and arr.dtype == np.uint8, (arr.shape, arr.dtype)
        r = self.meta["resolution"]
        assert min(h, w) == r and (self.meta["crop"] == "random" or h == w == r), (arr.shape, r)
        self._f.write(np.ascontiguousarray(arr).tobytes())
        self._rows.append((self._offset, h, w))
        self._offset += arr.size

    def __len__(self) -> int:
        return len(self._rows)

    def close(self, **extra) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        with atomic_path(self.folder / "index.npy") as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(self._rows, dtype=np.int64).reshape(-1, 3))
        atomic_write_json(self.folder / "pack.json", {**self.meta, "count": len(self._rows),
                                                       "bytes": self._offset, **extra})

    def abort(self) -> None:
        self._f.close()


class PackedDataset:
    """Random access to a pack: ``len(ds)``, ``ds.get(i, rng) -> uint8 [3, R, R]``."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder)
        self.meta = json.loads((self.path / "pack.json").read_text())
        self.resolution: int = int(self.meta["resolution"])
        self.crop: str = self.meta["crop"]
        self.index = np.load(self.path / "index.npy")
        nbytes = int(self.meta["bytes"])
        self.data = np.memmap(self.path / "data.u8", dtype=np.uint8, mode="r", shape=(nbytes,)) if nbytes else np.zeros(0, np.uint8)

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return f"PackedDataset({str(self.path)!r}, n={len(self)}, resolution={self.resolution}, crop={self.crop!r})"

    def raw(self, i: int) -> np.ndarray:
        """The stored array for image ``i`` (a read-only view: [3, R, R], or [3, H, W] for random crop)."""
        off, h, w = (int(v) for v in self.index[i])
        return self.data[off:off + 3 * h * w].reshape(3, h, w)

    def get(self, i: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Image ``i`` as a fresh uint8 [3, R, R] array; ``random`` crop draws its square from ``rng``."""
        a = self.raw(i)
        r = self.resolution
        _, h, w = a.shape
        if h != r or w != r:
            if rng is None:
                rng = np.random.default_rng()
            y = int(rng.integers(0, h - r + 1))
            x = int(rng.integers(0, w - r + 1))
            a = a[:, y:y + r, x:x + r]
        return np.array(a, dtype=np.uint8, copy=True)

    __getitem__ = get


def sample_batch(ds: PackedDataset, indices, rng: np.random.Generator | None = None) -> np.ndarray:
    """uint8 [N, 3, R, R] for ``indices`` (each random crop drawn from ``rng``)."""
    rng = rng if rng is not None else np.random.default_rng()
    out = np.empty((len(indices), 3, ds.resolution, ds.resolution), dtype=np.uint8)
    for k, i in enumerate(indices):
        out[k] = ds.get(int(i), rng)
    return out
