"""Import: sources -> validated, normalised, deduplicated images -> a stored (and packed) dataset.

The parent process lists the sources, checks the limits, and hands one file at a time to worker
processes (``images.process_item``); it keeps only hashes, a few thumbnails and the report, and
streams packed pixels straight to disk, so memory stays flat however many images there are.
"""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import re
import shutil
import secrets
import time
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.storage import DEFAULT_USER, atomic_write_json, read_json

from . import store
from .common import (MIN_SIZE, NEAR_DUP_BITS, SUGGESTED_RANGE, WARN_BELOW, DatasetError, DatasetExists,
                     ImportReport, inflated_count, validate_crop, validate_inflate, validate_name,
                     validate_resolution)
from .images import process_item
from .packed import PackedDataset, PackWriter
from .sources import Video, iter_items, plan_sources

FORMAT_VERSION = 1
PARALLEL_FROM = 24          # fewer items than this are processed in this process (no pool start-up)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_tasks(tasks, workers: int | None = None, expected: int = 0):
    """Yield ``process_item(task)`` for every task, in order, using worker processes.

    At most ``8 * workers`` tasks are in flight, so lazily made tasks (video frames) stay bounded.
    Workers are forked: the fork start method needs no re-import of ``__main__`` and starts fast.
    """
    workers = workers or default_workers()
    if workers <= 1 or expected < PARALLEL_FROM:
        for t in tasks:
            yield process_item(t)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        pending: deque = deque()
        for t in tasks:
            pending.append(pool.apply_async(process_item, (t,)))
            if len(pending) >= 8 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _background(bg) -> tuple[int, int, int]:
    try:
        t = tuple(int(c) for c in bg)
    except (TypeError, ValueError):
        t = ()
    if len(t) != 3 or not all(0 <= c <= 255 for c in t):
        raise DatasetError(f"Background must be three numbers 0-255 (red, green, blue), not {bg!r}.")
    return t


def source_fingerprint(plan) -> str:
    """Changes when any source file is added, removed, renamed, resized or touched."""
    h = hashlib.sha256()
    stats: dict[str, str] = {}
    for e in plan.entries:
        if isinstance(e, Video):
            key, label = str(e.path), e.label
        else:
            label, ref = e
            key = ref[1]
        if key not in stats:
            st = os.stat(key)
            stats[key] = f"{st.st_size}:{st.st_mtime_ns}"
        h.update(f"{label}\0{stats[key]}\n".encode())
    return h.hexdigest()


def near_duplicate_groups(hashes: list[int], bits: int = NEAR_DUP_BITS) -> list[list[int]]:
    """Groups (indices, each sorted) of images whose dHashes differ in at most ``bits`` bits."""
    n = len(hashes)
    if n < 2:
        return []
    h = np.asarray(hashes, dtype=np.uint64)
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i in range(n - 1):
        close = np.nonzero(np.bitwise_count(h[i + 1:] ^ h[i]) <= bits)[0]
        for j in close:
            a, b = find(i), find(i + 1 + int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def _progress(fn, done, total):
    if fn is not None:
        fn(done, max(total, done))


def import_dataset(sources, name: str, *, user: str = DEFAULT_USER, crop: str = "center",
                   resolution: int | None = None, min_size: int = MIN_SIZE,
                   background=(255, 255, 255), inflate: dict | None = None, replace: bool = False,
                   progress_fn=None, video_fps: float = 2.0, workers: int | None = None) -> ImportReport:
    """Import folders, zips, videos and images as one dataset named ``name``.

    Every file is validated; each refused one is listed in the report with its reason. The
    normalised images are stored; with ``resolution`` the dataset is also packed at once.
    An existing name is refused unless ``replace=True``; a replacement is swapped in only when
    complete. Raises DatasetError (one-line message, ``.report`` when available) on bad input.
    ``progress_fn(done, total)`` is called after each file.
    """
    t0 = time.monotonic()
    name = validate_name(name)
    crop = validate_crop(crop)
    res = validate_resolution(resolution) if resolution is not None else None
    inf = validate_inflate(inflate)
    bg = _background(background)
    if not isinstance(min_size, int) or min_size < 1:
        raise DatasetError("The minimum size must be a whole number of pixels, 1 or more.")
    if not replace and store.name_taken(name, user):
        raise DatasetExists(f"A dataset named {name!r} already exists: choose another name or replace it.")
    plan = plan_sources(sources, video_fps=video_fps)
    if plan.count == 0 and not plan.rejected:
        raise DatasetError("The sources hold no images.")
    fingerprint = source_fingerprint(plan)
    report = ImportReport(name=name, crop=crop, resolution=res, inflate=inf, skipped=plan.skipped)
    for label, reason in plan.rejected:
        report.reject(label, reason)
    report.total = len(plan.rejected)

    ds_id, tmp = store.new_build_dir(user)
    writer = None
    try:
        (tmp / "images").mkdir()
        if res:
            writer = PackWriter(tmp / "packs" / f"{crop}-{res}", res, crop, inf)
        opt = {"resolution": res, "crop": crop, "inflate": inf, "background": bg, "min_size": min_size,
               "store_dir": str(tmp / "images")}
        tasks = ({"index": i, "label": label, "ref": ref, "opt": opt}
                 for i, (label, ref) in enumerate(iter_items(plan)))
        files, hashes, thumbs = [], [], []
        first_of: dict[bytes, str] = {}
        exact: dict[str, list[str]] = {}
        upscaled = 0
        expected = plan.count + report.total
        for r in run_tasks(tasks, workers, plan.count):
            report.total += 1
            label = r["label"]
            if not r["ok"]:
                report.reject(label, r["reason"])
            elif r["digest"] in first_of:
                first = first_of[r["digest"]]
                report.reject(label, f"exact duplicate of {first}")
                exact.setdefault(first, [first]).append(label)
                if r.get("stored"):
                    os.unlink(tmp / "images" / r["stored"])
            else:
                first_of[r["digest"]] = label
                for note in r["notes"]:
                    report.convert(label, note)
                    if note == "animated":
                        report.warnings.append(f"{label}: animated; only its first frame was used.")
                files.append({"file": r["stored"], "source": label, "width": r["stored_size"][0],
                              "height": r["stored_size"][1], "bytes": r["stored_bytes"]})
                hashes.append(r["dhash"])
                if len(thumbs) < 16:
                    thumbs.append(r["thumb"])
                if res and r["short"] < res:
                    upscaled += 1
                if writer is not None:
                    for a in r["packed"]:
                        writer.append(a)
                report.accepted += 1
                report.accepted_files.append(label)
            _progress(progress_fn, report.total, expected)

        report.exact_duplicates = _prefer_originals(report, files, exact)
        report.near_duplicates = [[files[i]["source"] for i in g] for g in near_duplicate_groups(hashes)]
        report.duplicates = report.exact_duplicates + report.near_duplicates
        report.training_images = inflated_count(report.accepted, inf)
        if report.accepted == 0:
            raise DatasetError(_nothing_usable(report), report)
        _advise(report, upscaled)

        from .preview import save_mosaic
        save_mosaic(thumbs, tmp / "mosaic.jpg")
        meta = {"format_version": FORMAT_VERSION, "id": ds_id, "name": name, "crop": crop, "inflate": inf,
                "background": list(bg), "min_size": min_size,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "fingerprint": fingerprint, "count": report.accepted, "files": files,
                "summary": {"total": report.total, "accepted": report.accepted, "rejected": len(report.rejected),
                            "converted": report.converted, "duplicates": len(report.exact_duplicates),
                            "near_duplicates": len(report.near_duplicates)}}
        if writer is not None:
            writer.close()
            writer = None
        report.dataset_id = ds_id
        report.bytes_stored = store.folder_bytes(tmp)
        report.seconds = round(time.monotonic() - t0, 2)
        atomic_write_json(tmp / "report.json", report.to_dict())
        atomic_write_json(tmp / "meta.json", meta)
        store.commit(user, name, ds_id, tmp, replace)
        return report
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_COPY_NAME = re.compile(r"(?i)(copy|kopie|copie|dup)|\(\d+\)\s*$|~\d*$")


def _prefer_originals(report: ImportReport, files: list[dict], exact: dict[str, list[str]]) -> list[list[str]]:
    """Of identical files, the first in path order was kept; if it looks like a copy ("x copy",
    "dup_x", "x (1)") and another does not, keep that one's name instead (the pixels are the same)."""
    groups = []
    for first, group in exact.items():
        keep = min(group, key=lambda f: (bool(_COPY_NAME.search(Path(f).stem)), group.index(f)))
        if keep != first:
            for f in files:
                if f["source"] == first:
                    f["source"] = keep
            report.accepted_files[report.accepted_files.index(first)] = keep
            for r in report.rejected:
                if r["file"] == keep:
                    r["file"] = first
        for r in report.rejected:
            if r["file"] in group and r["reason"].startswith("exact duplicate of"):
                r["reason"] = f"exact duplicate of {keep}"
        groups.append([keep] + [f for f in group if f != keep])
    return groups


def _nothing_usable(report: ImportReport) -> str:
    reasons: dict[str, int] = {}
    for r in report.rejected:
        key = r["reason"].split(":")[0].split("(")[0].strip()
        reasons[key] = reasons.get(key, 0) + 1
    top = ", ".join(f"{n} {k}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
    return f"None of the {report.total} files can be used ({top})."


def _advise(report: ImportReport, upscaled: int) -> None:
    n = report.accepted
    lo, hi = SUGGESTED_RANGE
    if n < WARN_BELOW:
        report.warnings.append(f"Only {n:,} usable images: fewer than {WARN_BELOW} is risky; "
                               f"{lo:,} to {hi:,} are suggested, similar in content and style.")
    elif n < lo:
        report.warnings.append(f"{n:,} usable images can work; {lo:,} to {hi:,} are suggested.")
    elif n > hi:
        report.warnings.append(f"{n:,} images: more than the {hi:,} suggested; training takes longer to see them all.")
    if upscaled:
        report.warnings.append(f"{upscaled:,} images are smaller than {report.resolution} px and were enlarged.")
    if report.near_duplicates:
        report.warnings.append(f"{len(report.near_duplicates):,} group(s) of near-duplicate images were kept: review them.")
    if report.training_images != n:
        report.warnings.append(f"Inflation turns {n:,} images into {report.training_images:,} training images.")


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
    from .common import human_bytes
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


def delete_dataset(name_or_id: str, user: str = DEFAULT_USER) -> dict:
    """Delete a dataset; returns what it was (``get_dataset``) so the caller can say what was lost."""
    info = get_dataset(name_or_id, user)
    store.remove(info["id"], user)
    return info


# --- packing ----------------------------------------------------------------------------------

def _pack_folder(folder: Path, resolution: int, crop: str | None, progress_fn, workers) -> Path:
    meta = _meta(folder)
    res = validate_resolution(resolution)
    crop = validate_crop(crop or meta["crop"])
    dest = folder / "packs" / f"{crop}-{res}"
    if (dest / "pack.json").exists():
        return dest
    tmp = folder / "packs" / f".tmp-{secrets.token_hex(6)}"
    inf = validate_inflate(meta.get("inflate"))
    writer = PackWriter(tmp, res, crop, inf)
    try:
        opt = {"resolution": res, "crop": crop, "inflate": inf, "background": tuple(meta.get("background", (255, 255, 255))),
               "min_size": 1, "store_dir": None}
        files = meta["files"]
        tasks = ({"index": i, "label": f["source"], "ref": ("file", str(folder / "images" / f["file"])), "opt": opt}
                 for i, f in enumerate(files))
        for k, r in enumerate(run_tasks(tasks, workers, len(files)), 1):
            if r["ok"]:
                for a in r["packed"]:
                    writer.append(a)
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
        if writer is not None:
            writer.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def pack_dataset(name_or_id: str, resolution: int, user: str = DEFAULT_USER, *, crop: str | None = None,
                 progress_fn=None, workers: int | None = None) -> Path:
    """The pack folder of a dataset at ``resolution`` (and its crop mode unless ``crop`` is given),
    made from the stored images if it does not exist yet. Idempotent."""
    _, folder = store.resolve(name_or_id, user)
    return _pack_folder(folder, resolution, crop, progress_fn, workers)


def open_packed(name_or_id_or_path, resolution: int, user: str = DEFAULT_USER, *, crop: str | None = None,
                progress_fn=None) -> PackedDataset:
    """A :class:`PackedDataset` for a dataset name/id, a dataset folder or a pack folder
    (packing first if needed)."""
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
            return PackedDataset(_pack_folder(p, res, crop, progress_fn, None))
        raise DatasetError(f"{p} is neither a dataset nor a pack folder.")
    return PackedDataset(pack_dataset(name_or_id_or_path, res, user, crop=crop, progress_fn=progress_fn))


def import_folder_of_images_for_training(path, user: str = DEFAULT_USER, *, resolution: int | None = None,
                                         crop: str = "center", progress_fn=None) -> str:
    """For ``train --dataset DIR``: import ``path`` under a name derived from it, or reuse the dataset
    already imported from the same unchanged files. Returns the dataset id."""
    p = Path(path)
    plan = plan_sources([p])
    fp = source_fingerprint(plan)
    crop = validate_crop(crop)
    for ds_id in store.names(user).values():
        meta = read_json(store.root(user) / ds_id / "meta.json", {})
        if meta.get("fingerprint") == fp and meta.get("crop") == crop:
            if resolution:
                pack_dataset(ds_id, resolution, user, progress_fn=progress_fn)
            return ds_id
    base = "".join(ch for ch in (p.resolve().name or "dataset") if ch.isprintable() and ch not in "/\\").replace("..", ".")
    base = (base.strip() or "dataset")[:80]
    name, k = base, 1
    while store.name_taken(name, user):
        k += 1
        name = f"{base} ({k})"
    report = import_dataset([p], name, user=user, crop=crop, resolution=resolution, progress_fn=progress_fn)
    return report.dataset_id
