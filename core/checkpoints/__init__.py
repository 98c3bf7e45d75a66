"""Pre-trained checkpoints: the catalog, downloads into the cache, imports, the bundled default.

Everything here works on names and paths; weights are only ever opened through
``core.stylegan.load_checkpoint`` (imported lazily: torch is heavy, and listing the catalog must
work without it). Layout under the data root::

    checkpoints/<name>.<ext>          a complete, validated download
    checkpoints/<name>.json           its sidecar: url, size, sha256 (recorded on first download)
    checkpoints/<name>.part           an unfinished download (resumed with HTTP Range)
    checkpoints/thumbnails/<name>.png a 2x2 sample grid rendered from the model
    checkpoints/imported/index.json   {user: {name: {id, ext, sha256, ...}}}: every user's imports
    checkpoints/imported/*.part       imports not finished yet (``partial-*``: a URL, resumed)
    users/<user>/checkpoints/<id>.<ext>  an imported file under an opaque id, in its user's folder
    users/<user>/checkpoints/<id>.png    its sample grid

Imported files live in their user's folder, so they count against the user's storage quota as
everything there does (imports made before sit in ``checkpoints/imported``: moved on first read).

A file that looks complete (no ``.part``) has passed the checksum and ``load_checkpoint``.
Errors meant for a person are :class:`CheckpointsError` with a one-line message; the CLI turns
them into ``UserError``. Nothing here touches the network unless asked to download or import.

Modules: ``common`` (errors, limits), ``entries`` (the catalog, names), ``cache`` (paths, states,
listing, resolving, verifying, removing), ``download`` (resumable HTTP fetch, catalog
downloads), ``imports`` (user files and URLs), ``thumbnails`` (sample grids for the cards).
"""
from .cache import (bundled_path, cache_dir, imported_files, list_checkpoints, remove_checkpoint, resolve_checkpoint,
                    sha256_file, thumbnail_for, user_imports_dir, verify_checkpoint)
from .common import (CHUNK, DEFAULT_TIMEOUT, IMPORT_SUFFIXES, MAX_IMPORT_BYTES, CheckpointsError, DownloadError,
                     ImportRefused, NotDownloaded, ProgressFn)
from .download import download_checkpoint, fetch_to_part
from .entries import (BUILT_IN, DEFAULT_NAME, NATIVE_LICENCE, NGC_BASE, NGC_LICENCE, TF_BASE, TF_LICENCE, CatalogEntry,
                      catalog, find_entry, get_entry, register_catalog_entry, unregister_catalog_entry)
from .imports import import_checkpoint
from .thumbnails import THUMB_CELL, THUMB_PSI, THUMB_SEEDS, make_thumbnail

__all__ = [
    "BUILT_IN", "CHUNK", "DEFAULT_NAME", "DEFAULT_TIMEOUT", "IMPORT_SUFFIXES", "MAX_IMPORT_BYTES", "NATIVE_LICENCE", "NGC_BASE",
    "NGC_LICENCE", "TF_BASE", "TF_LICENCE", "THUMB_CELL", "THUMB_PSI", "THUMB_SEEDS", "CatalogEntry",
    "CheckpointsError", "DownloadError", "ImportRefused", "NotDownloaded", "ProgressFn", "bundled_path",
    "cache_dir", "catalog", "download_checkpoint", "fetch_to_part", "find_entry", "get_entry",
    "import_checkpoint", "imported_files", "list_checkpoints", "make_thumbnail", "register_catalog_entry",
    "remove_checkpoint", "resolve_checkpoint", "sha256_file", "thumbnail_for", "unregister_catalog_entry",
    "user_imports_dir", "verify_checkpoint",
]
