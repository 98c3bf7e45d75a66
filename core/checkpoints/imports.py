"""Imports of user checkpoints: a local file or an http(s) URL, validated, within quota, kept under an opaque id."""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import time
import urllib.parse
from pathlib import Path

from core import quota
from core.storage import DEFAULT_USER, atomic_write_json, read_json

from .cache import cache_lock, imported_records, imports_dir, index_path, load_validated, sha256_file, user_imports_dir
from .common import (DEFAULT_TIMEOUT, IMPORT_SUFFIXES, MAX_IMPORT_BYTES, CheckpointsError, DownloadError, ImportRefused,
                     ProgressFn, mb_text)
from .download import fetch_resuming
from .entries import check_name, find_entry
from .thumbnails import try_thumbnail


def _default_import_name(source: str, taken) -> str:
    stem = Path(urllib.parse.urlparse(source).path if "://" in source else source).stem
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:56] or "imported"
    if not base[0].isalnum():
        base = "m" + base
    name, n = base, 2
    while find_entry(name) or name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def partial_download(user: str, url: str) -> Path:
    """Where a download of ``url`` for ``user`` is kept while incomplete: the same place on every try,
    so a cut-off download resumes (a Range request) instead of starting over."""
    digest = hashlib.sha256(f"{user}\0{url}".encode()).hexdigest()[:24]
    return imports_dir() / f"partial-{digest}.part"


def import_checkpoint(path_or_url: str | os.PathLike, name: str | None = None, user: str | None = None,
                      progress_fn: ProgressFn | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                      thumbnail: bool = True, retries: int = 2) -> dict:
    """Copy a local file or download an http(s) URL into the imports, validated by ``load_checkpoint``.

    Returns the index record plus ``name`` and ``path``. A refused file is deleted and raises
    :class:`ImportRefused`; a name that is taken or not plain raises :class:`CheckpointsError`.
    A download cut off (after ``retries`` resumed tries) raises :class:`DownloadError` and keeps what
    it received: the next import of the same URL by the same user resumes from there.
    The file counts against the user's storage quota: one that does not fit is refused before
    anything is written (a download without a length, as soon as it has received too much).
    """
    user = user or DEFAULT_USER
    source = os.fspath(path_or_url)
    is_url = urllib.parse.urlparse(source).scheme in ("http", "https")
    if not is_url and "://" in source:
        raise ImportRefused(f"Only local files and http(s) URLs can be imported: {source}")
    suffix = Path(urllib.parse.urlparse(source).path if is_url else source).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        suffix = ".pkl"  # the loader reads content, not names; keep a neutral extension
    if not is_url:
        src = Path(source).expanduser()
        if not src.is_file():
            raise ImportRefused(f"No such file: {source}")
        if src.stat().st_size > MAX_IMPORT_BYTES:
            raise ImportRefused(f"{src.name} is {mb_text(src.stat().st_size)}, more than the {mb_text(MAX_IMPORT_BYTES)} allowed")
    taken = imported_records(user)
    if name is None:
        name = _default_import_name(source, taken)
    check_name(name)
    if find_entry(name):
        raise CheckpointsError(f"{name!r} is the name of a catalog entry: choose another name")
    if name in taken:
        raise CheckpointsError(f"You already have a checkpoint named {name!r}: remove it or choose another name")
    try:
        room = quota.room(user, "this checkpoint")
        if not is_url:
            room.check(src.stat().st_size)
    except quota.QuotaError as e:
        raise ImportRefused(str(e)) from None
    cid = secrets.token_hex(8)
    dest = user_imports_dir(user) / f"{cid}{suffix}"
    tmp = partial_download(user, source) if is_url else imports_dir() / f"{cid}.part"
    try:
        if is_url:
            fetch_resuming(source, tmp, progress_fn, timeout, retries=retries, max_bytes=MAX_IMPORT_BYTES,
                           size_check=room.check)
        else:
            shutil.copyfile(src, tmp)
        try:
            ckpt = load_validated(tmp)
        except ImportRefused as e:
            shown = source if is_url else Path(source).name
            raise ImportRefused(f"{shown} is not a usable StyleGAN2 checkpoint ({e}); nothing was kept") from None
        digest = sha256_file(tmp)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    except quota.QuotaExceeded as e:
        tmp.unlink(missing_ok=True)
        raise ImportRefused(str(e)) from None
    except DownloadError as e:
        if "interrupted" not in str(e):
            tmp.unlink(missing_ok=True)
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    rec = {"id": cid, "ext": suffix, "source": source if is_url else Path(source).name,
           "url": source if is_url else None, "bytes": dest.stat().st_size, "sha256": digest,
           "format": getattr(ckpt, "source_format", None), "resolution": getattr(ckpt, "resolution", None),
           "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with cache_lock("imported-index"):
        index = read_json(index_path(), {})
        if name in index.get(user, {}):
            dest.unlink(missing_ok=True)
            raise CheckpointsError(f"You already have a checkpoint named {name!r}: remove it or choose another name")
        index.setdefault(user, {})[name] = rec
        atomic_write_json(index_path(), index)
    if thumbnail:
        try_thumbnail(name, ckpt, user)
    return {**rec, "name": name, "path": str(dest)}
