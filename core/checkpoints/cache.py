"""The cache on disk: where each file lives, what state each entry is in, listing, resolving, removing.

Also validation through the engine (``load_checkpoint``, imported lazily), checksums and sidecars,
and the cross-process lock. The layout is in the docstring of
``core.checkpoints``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from pathlib import Path

from core.storage import DEFAULT_USER, atomic_write_json, data_root, read_json

from .common import CHUNK, IMPORT_SUFFIXES, CheckpointsError, ImportRefused, NotDownloaded, _mb
from .entries import _CATALOG, CatalogEntry, catalog, get_entry

REPO_ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------------------------
# Paths and states

def cache_dir() -> Path:
    path = data_root() / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _imported_dir() -> Path:
    path = cache_dir() / "imported"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached_path(entry: CatalogEntry) -> Path:
    return cache_dir() / entry.filename


def _sidecar_path(name: str) -> Path:
    return cache_dir() / f"{name}.json"


def _part_path(name: str) -> Path:
    return cache_dir() / f"{name}.part"


def bundled_path(entry: CatalogEntry) -> Path | None:
    """The shipped file of a bundled entry, or None when it is not there (yet)."""
    if not entry.bundled_path:
        return None
    path = REPO_ROOT / entry.bundled_path
    return path if path.is_file() else None


def _thumb_path(key: str) -> Path:
    return cache_dir() / "thumbnails" / f"{key}.png"


def _thumb_key(name: str, user: str | None) -> str:
    """Catalog entries by name; imports by their opaque id (two users may use the same name)."""
    if name in _CATALOG:
        return name
    rec = _imported(user).get(name)
    return f"imported-{rec['id']}" if rec else name


def thumbnail_for(entry: CatalogEntry | str, user: str | None = None) -> Path | None:
    """The cached sample image for an entry or imported name, None until one was rendered.

    A bundled entry may also ship one beside its file (``default.png``).
    """
    name = entry.name if isinstance(entry, CatalogEntry) else entry
    path = _thumb_path(_thumb_key(name, user))
    if path.is_file():
        return path
    entry = _CATALOG.get(name)
    if entry is not None and entry.bundled_path:
        shipped = (REPO_ROOT / entry.bundled_path).with_suffix(".png")
        if shipped.is_file():
            return shipped
    return None


def _index_path() -> Path:
    return _imported_dir() / "index.json"


def _imported(user: str | None) -> dict:
    return read_json(_index_path(), {}).get(user or DEFAULT_USER, {})


def _imported_file(rec: dict) -> Path:
    return _imported_dir() / f"{rec['id']}{rec['ext']}"


def imported_files(user: str | None) -> list[Path]:
    """The files kept for the user's imports (weights and thumbnails): what counts against their quota."""
    return [path for rec in _imported(user).values()
            for path in (_imported_file(rec), _thumb_path(f"imported-{rec['id']}"))]


def _entry_dict(entry: CatalogEntry) -> dict:
    d = dataclasses.asdict(entry)
    d.update(kind="bundled" if entry.bundled_path else "catalog", size_text=entry.size_text)
    if entry.bundled_path:
        path = bundled_path(entry)
        d["state"] = "bundled" if path else "missing"
    else:
        path = _cached_path(entry)
        path = path if path.is_file() else None
        d["state"] = "downloaded" if path else "not downloaded"
        part = _part_path(entry.name)
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
    for name, rec in sorted(_imported(user).items()):
        path = _imported_file(rec)
        thumb = thumbnail_for(name, user)
        out.append({
            "name": name, "title": name, "depicts": rec.get("source", ""), "resolution": rec.get("resolution"),
            "url": rec.get("url"), "size_mb": round(rec.get("bytes", 0) / 1e6), "size_text": _mb(rec.get("bytes", 0)),
            "licence": "as given by its source", "format": rec.get("format", ""), "note": "", "kind": "imported",
            "state": "imported" if path.is_file() else "missing", "path": str(path) if path.is_file() else None,
            "local_bytes": path.stat().st_size if path.is_file() else None, "sha256": rec.get("sha256"),
            "thumbnail": str(thumb) if thumb else None,
        })
    return out


def resolve_checkpoint(name_or_path: str | os.PathLike, user: str | None = None, *, allow_paths: bool = True) -> Path:
    """The local file for a catalog id, ``default``, an imported name, or (``allow_paths``) a file path.

    Raises :class:`NotDownloaded` for a catalog entry not in the cache, :class:`CheckpointsError`
    for anything else unknown. The UI passes ``allow_paths=False``: users name, never point.
    """
    text = os.fspath(name_or_path)
    if text in _CATALOG:
        entry = _CATALOG[text]
        if entry.bundled_path:
            path = bundled_path(entry)
            if path is None:
                raise CheckpointsError(f"The bundled checkpoint {text!r} is missing from this installation "
                                       f"({entry.bundled_path})")
            return path
        path = _cached_path(entry)
        if not path.is_file():
            raise NotDownloaded(f"{text} is not downloaded yet: run `python -m core.cli checkpoints download {text}`")
        meta = read_json(_sidecar_path(text), {})
        if meta.get("bytes") not in (None, path.stat().st_size):
            raise CheckpointsError(f"{text} in the cache has the wrong size (damaged?): run "
                                   f"`python -m core.cli checkpoints remove {text}` and download it again")
        return path
    rec = _imported(user).get(text)
    if rec is not None:
        path = _imported_file(rec)
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

def _validate(path: Path):
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
    path = _cached_path(entry)
    if not path.is_file():
        raise NotDownloaded(f"{name} is not downloaded yet: run `python -m core.cli checkpoints download {name}`")
    meta = read_json(_sidecar_path(name), {})
    digest = sha256_file(path)
    expected = entry.sha256 or meta.get("sha256")
    if expected is None:  # a complete file without a record (e.g. sidecar lost): record it now
        _write_sidecar(entry, path, digest)
        return True
    return digest == expected


def _write_sidecar(entry: CatalogEntry, path: Path, digest: str, source_format: str | None = None,
                   resolution: int | None = None) -> None:
    atomic_write_json(_sidecar_path(entry.name), {
        "name": entry.name, "url": entry.url, "bytes": path.stat().st_size, "sha256": digest,
        "downloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_format": source_format, "resolution": resolution,
    })


# ----------------------------------------------------------------------------------------------
# Locking and removal

@contextlib.contextmanager
def _lock(name: str):
    """One download of a name at a time across processes (the UI worker and a CLI, say)."""
    path = cache_dir() / f".{name}.lock"
    with open(path, "a+") as f:
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def remove_checkpoint(name: str, user: str | None = None) -> list[Path]:
    """Delete a downloaded entry (file, sidecar, partial download, thumbnail) or an imported name.

    Returns the paths removed. The bundled default cannot be removed.
    """
    removed: list[Path] = []
    if name in _CATALOG:
        entry = _CATALOG[name]
        if entry.bundled_path:
            raise CheckpointsError(f"{name} is bundled with Atelier and cannot be removed")
        paths = [_cached_path(entry), _sidecar_path(name), _part_path(name), _thumb_path(name)]
    else:
        with _lock("imported-index"):
            index = read_json(_index_path(), {})
            rec = index.get(user or DEFAULT_USER, {}).pop(name, None)
            if rec is None:
                raise CheckpointsError(f"Unknown checkpoint {name!r}: see `python -m core.cli checkpoints list`")
            atomic_write_json(_index_path(), index)
        paths = [_imported_file(rec), _thumb_path(f"imported-{rec['id']}")]
    for path in paths:
        if path.is_file():
            path.unlink()
            removed.append(path)
    if name in _CATALOG and not removed:
        raise CheckpointsError(f"{name} is not downloaded: nothing to remove")
    return removed
