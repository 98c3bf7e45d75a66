"""Import: sources -> validated, normalised, deduplicated images -> a stored (and packed) dataset.

The parent process lists the sources, checks the limits, and hands one file at a time to worker
processes (``images.process_item``); it keeps only hashes, a few thumbnails and the report, and
streams packed pixels straight to disk, so memory stays flat however many images there are.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.storage import DEFAULT_USER, atomic_write_json, read_json

from . import store
from .common import (MIN_SIZE, MIN_TO_TRAIN, NEAR_DUP_BITS, SUGGESTED_RANGE, WARN_BELOW, DatasetError, DatasetExists,
                     ImportReport, check_room, inflated_count, packed_bytes_estimate, storage_room,
                     validate_crop, validate_inflate, validate_name, validate_resolution)
from .catalog import abandon, pack_dataset
from .memory import import_slot
from .packed import PackWriter
from .sources import Video, iter_items, plan_sources
from .workers import run_tasks

FORMAT_VERSION = 1


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
                   progress_fn=None, video_fps: float = 2.0, workers: int | None = None,
                   wait_fn=None) -> ImportReport:
    """Import folders, zips, videos and images as one dataset named ``name``.

    Every file is validated; each refused one is listed in the report with its reason. The
    normalised images are stored; with ``resolution`` the dataset is also packed at once.
    An existing name is refused unless ``replace=True``; a replacement is swapped in only when
    complete. Raises DatasetError (one-line message, ``.report`` when available) on bad input,
    and when the dataset would not fit in the user's storage quota: before anything is written
    for the sources' size (plus the pack), and during the import for what it actually writes.
    ``progress_fn(done, total)`` is called after each file. At most ``memory.imports_at_once()``
    imports decode at once on a data root; a later one waits its turn, after calling
    ``wait_fn(message)`` once (the UI and the CLI show the message).
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
    room = storage_room(user)
    check_room(room, plan.total_bytes + (packed_bytes_estimate(plan.count, res, crop, inf) if res else 0))
    with import_slot(wait_fn):
        ds_id, tmp = store.new_build_dir(user)
        writer = results = None
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
            upscaled, written = 0, 0
            expected = plan.count + report.total
            results = run_tasks(tasks, workers, plan.count)
            for r in results:
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
                            written += a.size
                    written += r["stored_bytes"]
                    check_room(room, written)
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
            abandon(tmp, writer, results)
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


def size_advice(n: int) -> str | None:
    """One sentence about a dataset of ``n`` usable images, or None when the size is as suggested."""
    lo, hi = SUGGESTED_RANGE
    if n < MIN_TO_TRAIN:
        return (f"Only {n:,} usable image{'s' if n != 1 else ''}: with fewer than {MIN_TO_TRAIN} a model can only "
                f"copy them, not learn a style; {lo:,} to {hi:,} are suggested (at least {WARN_BELOW}).")
    if n < WARN_BELOW:
        return (f"Only {n:,} usable images: fewer than {WARN_BELOW} is risky; "
                f"{lo:,} to {hi:,} are suggested, similar in content and style.")
    if n < lo:
        return f"{n:,} usable images can work; {lo:,} to {hi:,} are suggested."
    if n > hi:
        return f"{n:,} images: more than the {hi:,} suggested; training takes longer to see them all."
    return None


NAMED_GROUPS = 5     # near-duplicate groups named in the warning (all of them are in the report)


def near_duplicates_text(groups: list[list[str]]) -> str:
    """'a.jpg ≈ b.jpg; c.jpg ≈ d.jpg ≈ e.jpg' (the first few groups, each file by its path)."""
    named = "; ".join(" ≈ ".join(g[:4]) + (f" (and {len(g) - 4} more)" if len(g) > 4 else "")
                      for g in groups[:NAMED_GROUPS])
    return named + (f"; and {len(groups) - NAMED_GROUPS:,} more groups" if len(groups) > NAMED_GROUPS else "")


def _advise(report: ImportReport, upscaled: int) -> None:
    advice = size_advice(report.accepted)
    if advice:
        report.warnings.append(advice)
    if upscaled:
        report.warnings.append(f"{upscaled:,} images are smaller than {report.resolution} px and were enlarged.")
    if report.near_duplicates:
        k = len(report.near_duplicates)
        report.warnings.append(f"{k:,} group{'s' if k != 1 else ''} of near-duplicate images "
                               f"{'were' if k != 1 else 'was'} kept; review them: "
                               f"{near_duplicates_text(report.near_duplicates)}.")
    if report.training_images != report.accepted:
        report.warnings.append(f"Inflation turns {report.accepted:,} images into {report.training_images:,} "
                               "training images.")


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
