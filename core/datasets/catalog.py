"""Stored datasets: metadata, listing, deletion, packing at more resolutions, opening packs."""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from core.storage import DEFAULT_USER, read_json

from . import store
from .common import (DatasetError, check_room, human_bytes, inflated_count, packed_bytes_estimate, storage_room,
                     validate_crop, validate_inflate, validate_resolution)
from .packed import PackedDataset, PackWriter
from .workers import run_tasks


def _progress(fn, done, total):
    if fn is not None:
        fn(done, max(total, done))


# --- reading stored datasets ------------------------------------------------------------------

def _meta(folder: Path) -> dict:
    meta = read_json(folder / "meta.json")
    if meta is None:
        raise DatasetError(f"Dataset folder {folder.name} has no metadata.")
    return meta


def _packs(folder: Path) -> list[dict]:
    out = []
    for p in sorted((folder / "packs").glob("*/pack.json")):
        m = read_json(p, {})
        out.append({"crop": m.get("crop"), "resolution": m.get("resolution"), "count": m.get("count"),
                    "path": str(p.parent)})
    return out


def get_dataset(name_or_id: str, user: str = DEFAULT_USER) -> dict:
    """Metadata of one dataset: id, name, count, bytes, created, crop, resolutions, packs, mosaic, ..."""
    ds_id, folder = store.resolve(name_or_id, user)
    meta = _meta(folder)
    packs = _packs(folder)
    size = store.folder_bytes(folder)
    mosaic = folder / "mosaic.jpg"
    return {"id": ds_id, "name": meta["name"], "count": meta["count"],
            "training_images": inflated_count(meta["count"], meta.get("inflate")),
            "bytes": size, "size": human_bytes(size), "created": meta["created"], "crop": meta["crop"],
            "inflate": meta.get("inflate", {}), "resolutions": sorted({p["resolution"] for p in packs}),
            "packs": packs, "mosaic": str(mosaic) if mosaic.exists() else None, "path": str(folder),
            "summary": meta.get("summary", {})}


def get_report(name_or_id: str, user: str = DEFAULT_USER) -> dict:
    """The import report saved with the dataset (as ``ImportReport.to_dict()``)."""
    _, folder = store.resolve(name_or_id, user)
    return read_json(folder / "report.json", {})


def list_datasets(user: str = DEFAULT_USER) -> list[dict]:
    """Every dataset of ``user`` (as ``get_dataset``), newest first."""
    out = []
    for ds_id in store.names(user).values():
        try:
            out.append(get_dataset(ds_id, user))
        except DatasetError:
            continue
    return sorted(out, key=lambda d: d["created"], reverse=True)


def dataset_images(name_or_id: str, user: str = DEFAULT_USER, limit: int = 48) -> list[tuple[str, Path]]:
    """(source name, stored file) of the first ``limit`` images of one of the user's datasets."""
    _, folder = store.resolve(name_or_id, user)
    files = _meta(folder).get("files", [])[:max(0, int(limit))]
    return [(f["source"], folder / "images" / f["file"]) for f in files if (folder / "images" / f["file"]).is_file()]


def delete_dataset(name_or_id: str, user: str = DEFAULT_USER) -> dict:
    """Delete a dataset; returns what it was (``get_dataset``) so the caller can say what was lost."""
    info = get_dataset(name_or_id, user)
    store.remove(info["id"], user)
    return info


# --- packing ----------------------------------------------------------------------------------

def _pack_folder(folder: Path, resolution: int, crop: str | None, progress_fn, workers, user: str | None = None,
                 should_stop=None) -> Path:
    """Pack a dataset folder; with ``user``, within their storage quota (checked before and while packing).
    ``should_stop()`` is asked about once a second; yes ends the packing with ``DecodingStopped``."""
    meta = _meta(folder)
    res = validate_resolution(resolution)
    crop = validate_crop(crop or meta["crop"])
    dest = folder / "packs" / f"{crop}-{res}"
    if (dest / "pack.json").exists():
        return dest
    inf = validate_inflate(meta.get("inflate"))
    room = storage_room(user, f"a {res} px copy of this dataset") if user is not None else None
    if room is not None:
        check_room(room, packed_bytes_estimate(len(meta["files"]), res, crop, inf))
    tmp = folder / "packs" / f".tmp-{secrets.token_hex(6)}"
    writer = PackWriter(tmp, res, crop, inf)
    written, results = 0, None
    try:
        opt = {"resolution": res, "crop": crop, "inflate": inf, "background": tuple(meta.get("background", (255, 255, 255))),
               "min_size": 1, "store_dir": None}
        files = meta["files"]
        tasks = ({"index": i, "label": f["source"], "ref": ("file", str(folder / "images" / f["file"])), "opt": opt}
                 for i, f in enumerate(files))
        results = run_tasks(tasks, workers, len(files), should_stop=should_stop)
        for k, r in enumerate(results, 1):
            if r["ok"]:
                for a in r["packed"]:
                    writer.append(a)
                    written += a.size
                if room is not None:
                    check_room(room, written)
            _progress(progress_fn, k, len(files))
        if len(writer) == 0:
            raise DatasetError("The dataset's stored images could not be read.")
        writer.close()
        writer = None
        try:
            os.rename(tmp, dest)
        except OSError:  # packed meanwhile by another process
            if not (dest / "pack.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        return dest
    except BaseException:
        abandon(tmp, writer, results)
        raise


def pack_dataset(name_or_id: str, resolution: int, user: str = DEFAULT_USER, *, crop: str | None = None,
                 progress_fn=None, workers: int | None = None, should_stop=None) -> Path:
    """The pack folder of a dataset at ``resolution`` (and its crop mode unless ``crop`` is given),
    made from the stored images if it does not exist yet, within the user's storage quota. Idempotent.
    ``should_stop()``, asked about once a second, ends the packing with ``DecodingStopped``."""
    _, folder = store.resolve(name_or_id, user)
    return _pack_folder(folder, resolution, crop, progress_fn, workers, user, should_stop)


def open_packed(name_or_id_or_path, resolution: int, user: str = DEFAULT_USER, *, crop: str | None = None,
                progress_fn=None, should_stop=None) -> PackedDataset:
    """A :class:`PackedDataset` for a dataset name/id, a dataset folder or a pack folder
    (packing first if needed; see :func:`pack_dataset` for ``progress_fn`` and ``should_stop``)."""
    res = validate_resolution(resolution)
    # Names cannot hold '/', so a string with one (or any Path) is a folder.
    if isinstance(name_or_id_or_path, os.PathLike) or "/" in str(name_or_id_or_path):
        p = Path(name_or_id_or_path)
        if (p / "pack.json").exists():
            ds = PackedDataset(p)
            if ds.resolution != res:
                raise DatasetError(f"That pack is {ds.resolution} px, not {res} px.")
            return ds
        if (p / "meta.json").exists():
            return PackedDataset(_pack_folder(p, res, crop, progress_fn, None, should_stop=should_stop))
        raise DatasetError(f"{p} is neither a dataset nor a pack folder.")
    return PackedDataset(pack_dataset(name_or_id_or_path, res, user, crop=crop, progress_fn=progress_fn,
                                      should_stop=should_stop))


def abandon(tmp: Path, writer: PackWriter | None, results) -> None:
    """After a failed or stopped import or pack: the decoding pool goes now (not when the traceback
    is freed), the pack being written is dropped, and so is the temporary folder."""
    if results is not None:
        results.close()
    if writer is not None:
        writer.abort()
    shutil.rmtree(tmp, ignore_errors=True)
