"""Uploaded files as import sources: images and videos staged in one folder under the relative
paths the user dropped (subfolders kept), zips as sources of their own.

    sources = stage_uploads(uploaded_paths, relpaths_json, scratch_folder)
    import_dataset(sources, "My drawings")

The browser's drop zone sends, beside the files, a JSON list of ``{path, name, size}`` (one per
file). Everything in it is checked, and the whole staging is planned, before the first folder is
made: a malformed list, a bad path (``sources.clean_upload_path``) or too many entries is refused
with one line. Two files with one path, or a file whose path is also a folder of the drop, are
both kept: the later file is renamed ``_name``.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .common import ARCHIVE_EXTS, MAX_NAME_BYTES, MAX_UPLOAD_ENTRIES, DatasetError
from .sources import clean_upload_path

MALFORMED = "The upload's list of folder paths is malformed"


def parse_relpaths(relpaths) -> dict[tuple[str, int], list[str]]:
    """The drop zone's JSON list as ``{(file name, size): [relative path, ...]}`` (in drop order).
    Empty or missing: no paths (files keep their own names). Anything else malformed: DatasetError."""
    if relpaths is None or (isinstance(relpaths, str) and not relpaths.strip()):
        return {}
    if not isinstance(relpaths, str):
        raise DatasetError(f"{MALFORMED} (not text).")
    try:
        items = json.loads(relpaths)
    except (ValueError, RecursionError):
        raise DatasetError(f"{MALFORMED} (not valid JSON).") from None
    if not isinstance(items, list):
        raise DatasetError(f"{MALFORMED} (not a list).")
    if len(items) > MAX_UPLOAD_ENTRIES:
        raise DatasetError(f"The upload describes {len(items):,} files; at most {MAX_UPLOAD_ENTRIES:,} are read.")
    wanted: dict[tuple[str, int], list[str]] = {}
    for k, item in enumerate(items, 1):
        if not (isinstance(item, dict) and isinstance(item.get("path"), str) and isinstance(item.get("name"), str)
                and type(item.get("size")) is int):
            raise DatasetError(f"{MALFORMED} (entry {k:,} is not {{path, name, size}}).")
        wanted.setdefault((item["name"], item["size"]), []).append(clean_upload_path(item["path"]))
    return wanted


def _unique(rel: str, taken: set[str], folders: set[str]) -> str:
    """``rel``, or ``_name`` (``__name``, ...) in the same folder when a file or folder has it."""
    head, _, name = rel.rpartition("/")
    while rel in taken or rel in folders:
        name = "_" + name
        if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise DatasetError(f"Too many dropped files share the name {name.lstrip('_')[:40]!r}.")
        rel = f"{head}/{name}" if head else name
    return rel


def plan_staging(paths: list[Path], wanted: dict) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(archives, [(uploaded file, relative path to stage it at)]) for ``wanted`` from :func:`parse_relpaths`:
    every path checked and made unique (no file takes the name of a folder of the drop or of an earlier file)."""
    archives, chosen = [], []
    for p in paths:
        if p.suffix.lower() in ARCHIVE_EXTS:
            archives.append(p)
            continue
        queue = wanted.get((p.name, p.stat().st_size))
        rel = (queue.pop(0) if queue else "") or clean_upload_path(p.name) or "file"
        chosen.append((p, rel))
    folders = {rel.rsplit("/", k)[0] for _, rel in chosen for k in range(1, rel.count("/") + 1)}
    taken: set[str] = set()
    plan = []
    for p, rel in chosen:
        rel = _unique(rel, taken, folders)
        taken.add(rel)
        plan.append((p, rel))
    return archives, plan


def stage_uploads(paths, relpaths, dest: str | os.PathLike) -> list[str]:
    """Import sources for uploaded files: a folder ``dest/upload`` holding the images and videos
    (hard-linked, else copied) under their dropped relative paths, then each zip. Raises
    DatasetError (one line) for no files and for malformed paths, before anything is made."""
    paths = [Path(p) for p in paths or []]
    if not paths:
        raise DatasetError("Add some images first: drop a folder, a zip or a video, or pick a folder.")
    try:
        archives, plan = plan_staging(paths, parse_relpaths(relpaths))
        root = Path(dest) / "upload"
        root.mkdir()
        for src, rel in plan:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, target)
            except OSError:
                shutil.copyfile(src, target)
    except OSError as e:
        raise DatasetError(f"The upload could not be prepared ({e.strerror or type(e).__name__}).") from None
    return ([str(root)] if plan else []) + [str(a) for a in archives]
