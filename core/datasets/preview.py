"""What the user sees before and after an import: crop previews and the mosaic thumbnail."""
from __future__ import annotations

import contextlib
import io
import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from core.storage import DEFAULT_USER, atomic_path

from . import memory, store
from .common import MIN_SIZE, DatasetError, DatasetNotFound
from .images import Reject, decode, fingerprint, to_training
from .sources import Plan, Video, iter_items, plan_sources, read_ref


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


SCAN_LIMIT = 2_000   # image headers read to find the least square ones (sizes only: no pixels decoded)


def _header_size(ref) -> tuple[int, int] | None:
    """(width, height) from an image's header, or None when it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(ref[1] if ref[0] == "file" else io.BytesIO(read_ref(ref))) as im:
                return im.size
    except Exception:  # noqa: BLE001 - unreadable, a bomb, not an image: the import reports it
        return None


def _candidates(sources_or_dataset, user: str):
    """(how many images the sources hold, unchecked; an iterator of (label, ref, width, height) of up
    to SCAN_LIMIT of them): a stored dataset's sizes from its metadata, uploads' from their headers,
    a video's from its first frame."""
    folder = None
    if isinstance(sources_or_dataset, str) and "/" not in sources_or_dataset and not os.path.exists(sources_or_dataset):
        try:
            _, folder = store.resolve(sources_or_dataset, user)
        except DatasetNotFound:
            folder = None
    if folder is not None:
        from core.storage import read_json
        files = read_json(folder / "meta.json", {}).get("files", [])
        return len(files), ((f["source"], ("file", str(folder / "images" / f["file"])), f["width"], f["height"])
                            for f in files[:SCAN_LIMIT])
    plan = plan_sources(sources_or_dataset)

    def sizes():
        for entry in plan.entries[:SCAN_LIMIT]:
            if isinstance(entry, Video):
                frames = iter_items(Plan(entries=[entry]))
                first = next(frames, None)
                frames.close()
                if first is not None:
                    yield first[0], first[1], first[1][1], first[1][2]
                continue
            label, ref = entry
            size = _header_size(ref)
            if size is not None:
                yield label, ref, size[0], size[1]
    return plan.count, sizes()


def least_square_images(sources_or_dataset, n: int, want: int, user: str) -> tuple[int, list[tuple[str, Image.Image]]]:
    """(images found, unchecked; the ``n`` usable images farthest from square (wide or tall: where the
    crop choice shows) as (label, image), ties in file order)."""
    count, candidates = _candidates(sources_or_dataset, user)
    ordered = sorted(enumerate(candidates), key=lambda kc: (-abs(math.log(max(kc[1][2], 1) / max(kc[1][3], 1))), kc[0]))
    out = []
    for _, (label, ref, _, _) in ordered:
        try:
            with contextlib.ExitStack() as held:   # within this process's decoding budget
                reserve = lambda nbytes: held.enter_context(memory.hold(nbytes))  # noqa: E731
                if ref[0] == "frame":
                    img, *_ = decode(None, frame=ref[1:], want=want, reserve=reserve)
                else:
                    img, *_ = decode(read_ref(ref), want=want, min_size=MIN_SIZE, reserve=reserve)
                fingerprint(img)  # skips blank images
        except (Reject, OSError):
            continue
        out.append((label, img))
        if len(out) >= n:
            break
    return count, out


def crop_previews(sources_or_dataset, n: int = 6, resolution: int = 128, *, user: str = DEFAULT_USER,
                  seed: int = 0, background=(255, 255, 255)) -> dict:
    """The ``n`` least square usable images under every crop mode, as PIL images of ``resolution`` px.

    ``sources_or_dataset``: a dataset name/id, or sources as for ``import_dataset``. Keys:
    ``found`` (how many images the sources hold, before any check), ``labels`` (the files' names), ``center``, ``random`` and ``random_2`` (two independent draws of
    the random crop), ``none`` (stretched to 1:1), ``pad`` (letterboxed: the whole image). Lists are
    aligned: item k of every list is image k.
    """
    res = int(resolution)
    if not 16 <= res <= 1024:
        raise DatasetError("Preview size must be 16 to 1024 px.")
    found, images = least_square_images(sources_or_dataset, n, res, user)
    if not images:
        raise DatasetError("No usable images to preview.")
    rng = np.random.default_rng(seed)
    out: dict = {"found": found, "labels": [label for label, _ in images],
                            "center": [], "random": [], "random_2": [], "none": [], "pad": []}
    for _, img in images:
        out["center"].append(to_training(img, res, "center"))
        base = to_training(img, res, "random")
        for key in ("random", "random_2"):
            w, h = base.size
            x, y = int(rng.integers(0, w - res + 1)), int(rng.integers(0, h - res + 1))
            out[key].append(base.crop((x, y, x + res, y + res)))
        out["none"].append(to_training(img, res, "none"))
        out["pad"].append(to_training(img, res, "pad", background))
    return out
