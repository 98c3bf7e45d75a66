"""Where datasets live: ``user_dir(user, 'datasets') / <opaque id>``, with ``index.json`` mapping
names to ids. User strings are never joined into paths: names only ever go through the index.

A dataset is built in a hidden ``.tmp-<id>`` folder and renamed into place; the index then points
the name at it, and only after that is a replaced dataset removed. A kill at any moment leaves the
old dataset (or none) whole, never a half one.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

from core.storage import DEFAULT_USER, atomic_write_json, file_lock, read_json, user_dir

from .common import DatasetExists, DatasetNotFound, validate_name

ID_RE = re.compile(r"^ds_[0-9a-f]{16}$")
STALE_TMP_SECONDS = 24 * 3600


def root(user: str = DEFAULT_USER) -> Path:
    return user_dir(user, "datasets")


def locked(user: str):
    """Serialise index changes between processes (imports, deletes) of one user."""
    return file_lock(root(user) / ".index.lock")


def _index(user: str) -> dict[str, str]:
    return dict(read_json(root(user) / "index.json", {}).get("names", {}))


def _write_index(user: str, names: dict[str, str]) -> None:
    atomic_write_json(root(user) / "index.json", {"names": names})


def names(user: str = DEFAULT_USER) -> dict[str, str]:
    """{name: id} of every dataset of ``user``."""
    return _index(user)


def resolve(name_or_id: str, user: str = DEFAULT_USER) -> tuple[str, Path]:
    """(id, folder) of a dataset given its name or id; DatasetNotFound otherwise."""
    idx = _index(user)
    ds_id = idx.get(str(name_or_id).strip()) if isinstance(name_or_id, str) else None
    if ds_id is None and isinstance(name_or_id, str) and ID_RE.match(name_or_id) and name_or_id in idx.values():
        ds_id = name_or_id
    if ds_id is None:
        raise DatasetNotFound(f"No dataset named {str(name_or_id)[:60]!r}.")
    return ds_id, root(user) / ds_id


def name_taken(name: str, user: str = DEFAULT_USER) -> bool:
    return validate_name(name) in _index(user)


def new_build_dir(user: str = DEFAULT_USER) -> tuple[str, Path]:
    """A fresh opaque id and the hidden folder to build its dataset in."""
    sweep(user)
    ds_id = "ds_" + secrets.token_hex(8)
    tmp = root(user) / f".tmp-{ds_id}"
    tmp.mkdir()
    return ds_id, tmp


def commit(user: str, name: str, ds_id: str, build_dir: Path, replace: bool) -> str | None:
    """Move a finished build into place under ``name``; returns the id it replaced, if any."""
    name = validate_name(name)
    with locked(user):
        idx = _index(user)
        old = idx.get(name)
        if old is not None and not replace:
            raise DatasetExists(f"A dataset named {name!r} already exists: choose another name or replace it.")
        os.rename(build_dir, root(user) / ds_id)
        idx[name] = ds_id
        _write_index(user, idx)
    if old is not None:
        _remove_folder(user, old)
    return old


def remove(name_or_id: str, user: str = DEFAULT_USER) -> str:
    """Remove a dataset from the index and delete its folder; returns its id."""
    with locked(user):
        ds_id, _ = resolve(name_or_id, user)
        idx = {n: i for n, i in _index(user).items() if i != ds_id}
        _write_index(user, idx)
    _remove_folder(user, ds_id)
    return ds_id


def _remove_folder(user: str, ds_id: str) -> None:
    folder = root(user) / ds_id
    trash = root(user) / f".trash-{ds_id}-{secrets.token_hex(4)}"
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def sweep(user: str = DEFAULT_USER) -> None:
    """Delete leftovers of interrupted imports and deletes (old hidden build and trash folders)."""
    now = time.time()
    for p in root(user).iterdir():
        if p.name.startswith(".trash-") or (p.name.startswith(".tmp-") and now - p.stat().st_mtime > STALE_TMP_SECONDS):
            shutil.rmtree(p, ignore_errors=True)


def folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for fn in files:
            try:
                total += os.stat(os.path.join(dirpath, fn)).st_size
            except FileNotFoundError:
                pass
    return total
