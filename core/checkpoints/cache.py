"""The cache on disk: where each file lives, what state each entry is in, listing, resolving, removing.

Also validation through the engine (``load_checkpoint``, imported lazily), checksums and sidecars,
and the cross-process lock. The layout is in the docstring of ``core.checkpoints``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

from core.storage import DEFAULT_USER, atomic_write_json, data_root, file_lock, read_json, user_root

from .common import CHUNK, IMPORT_SUFFIXES, CheckpointsError, ImportRefused, NotDownloaded, mb_text
from .entries import CatalogEntry, catalog, find_entry, get_entry

REPO_ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------
# Paths and states

def cache_dir() -> Path:
    path = data_root() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_path(entry: CatalogEntry) -> Path:
    return cache_dir() / entry.filename


def sidecar_path(name: str) -> Path:
    return cache_dir() / f"{name}.json"


def part_path(name: str) -> Path:
    return cache_dir() / f"{name}.part"


def cache_lock(name: str):
    """One download (or index change) of ``name`` at a time across processes (the UI worker and a CLI)."""
    return file_lock(cache_dir() / f".{name}.lock")


def bundled_path(entry: CatalogEntry) -> Path | None:
    """The shipped file of a bundled entry, or None when it is not there (yet)."""
    if not entry.bundled_path:
        return None
    path = REPO_ROOT / entry.bundled_path
    return path if path.is_file() else None


# ---- imports: the index and unfinished imports here, each user's files in their own folder --------

def imports_dir() -> Path:
    """``checkpoints/imported``: the index of every user's imports, and imports not finished yet."""
    path = cache_dir() / "imported"
    path.mkdir(parents=True, exist_ok=True)
    return path


def index_path() -> Path:
    return imports_dir() / "index.json"


def user_imports_dir(user: str | None) -> Path:
    """``users/<user>/checkpoints``: the user's imported files (weights and sample grids), which
    count against their storage quota as everything under their folder does."""
    return user_root(user or DEFAULT_USER) / "checkpoints"


def imported_records(user: str | None) -> dict:
    """{name: record} of the user's imports (id, ext, source, sha256, ...), from the index."""
    records = read_json(index_path(), {}).get(user or DEFAULT_USER, {})
    for rec in records.values():
        _move_from_shared_folder(user, rec)
    return records


def imported_file(user: str | None, rec: dict) -> Path:
    return user_imports_dir(user) / f"{rec['id']}{rec['ext']}"


def _move_from_shared_folder(user: str | None, rec: dict) -> None:
    """Imports made before they lived in the user's folder sit in ``checkpoints/imported`` (weights)
    and ``checkpoints/thumbnails/imported-<id>.png``: moved once, on the first read of the index."""
    dest = imported_file(user, rec)
    for old, new in ((imports_dir() / dest.name, dest),
                     (cache_dir() / "thumbnails" / f"imported-{rec['id']}.png", dest.with_suffix(".png"))):
        if old.is_file() and not new.exists():
            new.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(old, new)
            except FileNotFoundError:  # moved meanwhile by another reader
                pass


def imported_files(user: str | None) -> list[Path]:
    """The files kept for the user's imports: weights and thumbnails."""
    return [path for rec in imported_records(user).values()
            for path in (imported_file(user, rec), imported_file(user, rec).with_suffix(".png"))]


def thumbnail_path(name: str, user: str | None = None) -> Path:
    """Where the sample grid of a catalog entry, or of the user's import ``name``, is kept."""
    rec = None if find_entry(name) else imported_records(user).get(name)
    if rec is not None:
        return imported_file(user, rec).with_suffix(".png")
    return cache_dir() / "thumbnails" / f"{name}.png"


def thumbnail_for(entry: CatalogEntry | str, user: str | None = None) -> Path | None:
    """The cached sample image for an entry or imported name, None until one was rendered.

    A bundled entry may also ship one beside its file (``default.png``).
    """
    name = entry.name if isinstance(entry, CatalogEntry) else entry
    path = thumbnail_path(name, user)
    if path.is_file():
        return path
    entry = find_entry(name)
    if entry is not None and entry.bundled_path:
        shipped = (REPO_ROOT / entry.bundled_path).with_suffix(".png")
        if shipped.is_file():
            return shipped
    return None


def _entry_dict(entry: CatalogEntry) -> dict:
    d = dataclasses.asdict(entry)
    d.update(kind="bundled" if entry.bundled_path else "catalog", size_text=entry.size_text)
    if entry.bundled_path:
        path = bundled_path(entry)
        d["state"] = "bundled" if path else "missing"
    else:
        path = cached_path(entry)
        path = path if path.is_file() else None
        d["state"] = "downloaded" if path else "not downloaded"
        part = part_path(entry.name)
        d["partial_bytes"] = part.stat().st_size if part.is_file() else 0
    d["path"] = str(path) if path else None
    d["local_bytes"] = path.stat().st_size if path else None
    thumb = thumbnail_for(entry)
    d["thumbnail"] = str(thumb) if thumb else None
    return d


def list_checkpoints(user: str | None = None) -> list[dict]:
    """The bundled default, every catalog entry and the user's imports, each as a plain dict.

    Keys: name, title, depicts, resolution, url, size_mb, size_text, licence, format, note, kind
    ("bundled" | "catalog" | "imported"), state ("bundled" | "downloaded" | "not downloaded" |
    "imported" | "missing"), path (str or None), local_bytes, thumbnail (str or None).
    """
    out = [_entry_dict(e) for e in catalog()]
    for name, rec in sorted(imported_records(user).items()):
        path = imported_file(user, rec)  # its sample grid lies beside it (thumbnail_path); the index is read once
        present, thumb = path.is_file(), path.with_suffix(".png")
        out.append({
            "name": name, "title": name, "depicts": rec.get("source", ""), "resolution": rec.get("resolution"),
            "url": rec.get("url"), "size_mb": round(rec.get("bytes", 0) / 1e6), "size_text": mb_text(rec.get("bytes", 0)),
            "licence": "as given by its source", "format": rec.get("format", ""), "note": "", "kind": "imported",
            "state": "imported" if present else "missing", "path": str(path) if present else None,
            "local_bytes": path.stat().st_size if present else None, "sha256": rec.get("sha256"),
            "thumbnail": str(thumb) if thumb.is_file() else None,
        })
    return out


def resolve_checkpoint(name_or_path: str | os.PathLike, user: str | None = None, *, allow_paths: bool = True) -> Path:
    """The local file for a catalog id, ``default``, an imported name, or (``allow_paths``) a file path.

    Raises :class:`NotDownloaded` for a catalog entry not in the cache, :class:`CheckpointsError`
    for anything else unknown. The UI passes ``allow_paths=False``: users name, never point.
    """
    text = os.fspath(name_or_path)
    entry = find_entry(text)
    if entry is not None:
        if entry.bundled_path:
            path = bundled_path(entry)
            if path is None:
                raise CheckpointsError(f"The bundled checkpoint {text!r} is missing from this installation "
                                       f"({entry.bundled_path})")
            return path
        path = cached_path(entry)
        if not path.is_file():
            raise NotDownloaded(f"{text} is not downloaded yet: run `python -m core.cli checkpoints download {text}`")
        meta = read_json(sidecar_path(text), {})
        if meta.get("bytes") not in (None, path.stat().st_size):
            raise CheckpointsError(f"{text} in the cache has the wrong size (damaged?): run "
                                   f"`python -m core.cli checkpoints remove {text}` and download it again")
        return path
    rec = imported_records(user).get(text)
    if rec is not None:
        path = imported_file(user, rec)
        if not path.is_file():
            raise CheckpointsError(f"The imported checkpoint {text!r} has lost its file: remove it and import it again")
        return path
    if allow_paths and Path(text).expanduser().is_file():
        return Path(text).expanduser().resolve()
    if allow_paths and (os.sep in text or "/" in text or Path(text).suffix in IMPORT_SUFFIXES):
        raise CheckpointsError(f"No such checkpoint file: {text}")
    raise CheckpointsError(f"Unknown checkpoint {text!r}: see `python -m core.cli checkpoints list`")


# ----------------------------------------------------------------------------------------------
# Validation (through the engine) and checksums

def load_validated(path: Path):
    """Open ``path`` with ``load_checkpoint`` and return the loaded checkpoint; raise on refusal.

    Any exception means the file is not a usable checkpoint; the message goes to the user.
    """
    from core.stylegan import load_checkpoint  # lazy: torch
    try:
        return load_checkpoint(path, device="cpu")
    except Exception as e:  # CheckpointError for refused files; anything else is a broken file too
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImportRefused(reason) from e


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_checkpoint(name: str) -> bool:
    """Recompute the sha256 of a downloaded entry and compare it with the sidecar (and catalog)."""
    entry = get_entry(name)
    path = cached_path(entry)
    if not path.is_file():
        raise NotDownloaded(f"{name} is not downloaded yet: run `python -m core.cli checkpoints download {name}`")
    meta = read_json(sidecar_path(name), {})
    digest = sha256_file(path)
    expected = entry.sha256 or meta.get("sha256")
    if expected is None:  # a complete file without a record (e.g. sidecar lost): record it now
        write_sidecar(entry, path, digest)
        return True
    return digest == expected


def write_sidecar(entry: CatalogEntry, path: Path, digest: str, source_format: str | None = None,
                   resolution: int | None = None) -> None:
    atomic_write_json(sidecar_path(entry.name), {
        "name": entry.name, "url": entry.url, "bytes": path.stat().st_size, "sha256": digest,
        "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_format": source_format, "resolution": resolution,
    })


# ----------------------------------------------------------------------------------------------
# Removal

def remove_checkpoint(name: str, user: str | None = None) -> list[Path]:
    """Delete a downloaded entry (file, sidecar, partial download, thumbnail) or an imported name.

    Returns the paths removed. The bundled default cannot be removed.
    """
    removed: list[Path] = []
    entry = find_entry(name)
    if entry is not None:
        if entry.bundled_path:
            raise CheckpointsError(f"{name} is bundled with Atelier and cannot be removed")
        paths = [cached_path(entry), sidecar_path(name), part_path(name), thumbnail_path(name)]
    else:
        imported_records(user)  # files of an older layout moved first
        with cache_lock("imported-index"):
            index = read_json(index_path(), {})
            rec = index.get(user or DEFAULT_USER, {}).pop(name, None)
            if rec is None:
                raise CheckpointsError(f"Unknown checkpoint {name!r}: see `python -m core.cli checkpoints list`")
            atomic_write_json(index_path(), index)
        paths = [imported_file(user, rec), imported_file(user, rec).with_suffix(".png")]
    for path in paths:
        if path.is_file():
            path.unlink()
            removed.append(path)
    if entry is not None and not removed:
        raise CheckpointsError(f"{name} is not downloaded: nothing to remove")
    return removed
