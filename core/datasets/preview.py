"""What the user sees before and after an import: crop previews and the mosaic thumbnail."""
from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from core.storage import DEFAULT_USER, atomic_path

from . import memory, store
from .common import DatasetError, DatasetNotFound
from .images import Reject, decode, fingerprint, to_training
from .sources import iter_items, plan_sources, read_ref


def save_mosaic(thumbs: list[np.ndarray], dest: Path, tile: int = 64) -> None:
    """Up to 16 HxWx3 thumbnails in a square grid, saved as JPEG (atomically)."""
    if not thumbs:
        return
    side = min(4, math.ceil(math.sqrt(len(thumbs))))
    grid = Image.new("RGB", (side * tile, side * tile), (24, 24, 24))
    for k, t in enumerate(thumbs[: side * side]):
        im = Image.fromarray(t).resize((tile, tile))
        grid.paste(im, ((k % side) * tile, (k // side) * tile))
    with atomic_path(dest) as tmp:
        grid.save(tmp, "JPEG", quality=85)


def _first_images(sources_or_dataset, n: int, want: int, user: str) -> list[Image.Image]:
    folder = None
    if isinstance(sources_or_dataset, str) and "/" not in sources_or_dataset and not os.path.exists(sources_or_dataset):
        try:
            _, folder = store.resolve(sources_or_dataset, user)
        except DatasetNotFound:
            folder = None
    if folder is not None:
        from core.storage import read_json
        files = read_json(folder / "meta.json", {}).get("files", [])
        items = (((f["source"]), ("file", str(folder / "images" / f["file"]))) for f in files)
    else:
        items = iter_items(plan_sources(sources_or_dataset))
    out = []
    for _, ref in items:
        try:
            with contextlib.ExitStack() as held:   # within this process's decoding budget
                reserve = lambda nbytes: held.enter_context(memory.hold(nbytes))  # noqa: E731
                if ref[0] == "frame":
                    img, *_ = decode(None, frame=ref[1:], want=want, reserve=reserve)
                else:
                    img, *_ = decode(read_ref(ref), want=want, min_size=16, reserve=reserve)
                fingerprint(img)  # skips blank images
        except (Reject, OSError):
            continue
        out.append(img)
        if len(out) >= n:
            break
    return out


def crop_previews(sources_or_dataset, n: int = 6, resolution: int = 128, *, user: str = DEFAULT_USER,
                  seed: int = 0, background=(255, 255, 255)) -> dict[str, list[Image.Image]]:
    """The same first ``n`` usable images under every crop mode, as PIL images of ``resolution`` px.

    ``sources_or_dataset``: a dataset name/id, or sources as for ``import_dataset``. Keys:
    ``center``, ``random`` and ``random_2`` (two independent draws of the random crop), ``none``
    (stretched to 1:1), ``pad`` (letterboxed). Lists are aligned: item k of every list is image k.
    """
    res = int(resolution)
    if not 16 <= res <= 1024:
        raise DatasetError("Preview size must be 16 to 1024 px.")
    images = _first_images(sources_or_dataset, n, res, user)
    if not images:
        raise DatasetError("No usable images to preview.")
    rng = np.random.default_rng(seed)
    out: dict[str, list[Image.Image]] = {"center": [], "random": [], "random_2": [], "none": [], "pad": []}
    for img in images:
        out["center"].append(to_training(img, res, "center"))
        base = to_training(img, res, "random")
        for key in ("random", "random_2"):
            w, h = base.size
            x, y = int(rng.integers(0, w - res + 1)), int(rng.integers(0, h - res + 1))
            out[key].append(base.crop((x, y, x + res, y + res)))
        out["none"].append(to_training(img, res, "none"))
        out["pad"].append(to_training(img, res, "pad", background))
    return out
