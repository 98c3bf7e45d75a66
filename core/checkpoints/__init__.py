"""Pre-trained checkpoints: the catalog, downloads into the cache, imports, the bundled default.

Everything here works on names and paths; weights are only ever opened through
``core.stylegan.load_checkpoint`` (imported lazily: torch is heavy, and listing the catalog must
work without it). Layout under the data root::

    checkpoints/<name>.<ext>          a complete, validated download
    checkpoints/<name>.json           its sidecar: url, size, sha256 (recorded on first download)
    checkpoints/<name>.part           an unfinished download (resumed with HTTP Range)
    checkpoints/imported/<id>.<ext>   an imported file under an opaque id
    checkpoints/imported/index.json   {user: {name: {id, ext, sha256, ...}}}
    checkpoints/thumbnails/<name>.png a 2x2 sample grid rendered from the model

A file that looks complete (no ``.part``) has passed the checksum and ``load_checkpoint``.
Errors meant for a person are :class:`CheckpointsError` with a one-line message; the CLI turns
them into ``UserError``. Nothing here touches the network unless asked to download or import.

Modules: ``common`` (errors, limits), ``entries`` (the catalog, names), ``cache`` (paths, states,
listing, resolving, verifying, removing), ``download`` (resumable HTTP fetch, catalog
downloads), ``imports`` (user files and URLs), ``thumbnails`` (sample grids for the cards).
"""
from .cache import (bundled_path, cache_dir, imported_files, list_checkpoints,
                    remove_checkpoint, resolve_checkpoint, sha256_file, thumbnail_for, verify_checkpoint)
from .common import (CHUNK, DEFAULT_TIMEOUT, IMPORT_SUFFIXES, MAX_IMPORT_BYTES, CheckpointsError, DownloadError,
                     ImportRefused, NotDownloaded, ProgressFn)
from .download import download_checkpoint, fetch_to_part
from .entries import (DEFAULT_NAME, NATIVE_LICENCE, NGC_BASE, NGC_LICENCE, TF_BASE, TF_LICENCE, CatalogEntry, catalog,
                      get_entry, register_catalog_entry, unregister_catalog_entry)
from .entries import _CATALOG, _ENTRIES  # noqa: F401 - private, but core.jobs.eta and the tests read them
from .imports import import_checkpoint
from .thumbnails import THUMB_CELL, THUMB_PSI, THUMB_SEEDS, make_thumbnail

__all__ = [
    "CHUNK", "DEFAULT_NAME", "DEFAULT_TIMEOUT", "IMPORT_SUFFIXES", "MAX_IMPORT_BYTES", "NATIVE_LICENCE", "NGC_BASE",
    "NGC_LICENCE", "TF_BASE", "TF_LICENCE", "THUMB_CELL", "THUMB_PSI", "THUMB_SEEDS", "CatalogEntry",
    "CheckpointsError", "DownloadError", "ImportRefused", "NotDownloaded", "ProgressFn", "bundled_path",
    "cache_dir", "catalog", "download_checkpoint", "fetch_to_part", "get_entry",
    "import_checkpoint", "imported_files", "list_checkpoints", "make_thumbnail", "register_catalog_entry",
    "remove_checkpoint", "resolve_checkpoint", "sha256_file", "thumbnail_for", "unregister_catalog_entry",
    "verify_checkpoint",
]
