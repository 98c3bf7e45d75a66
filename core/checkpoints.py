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
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import os
import re
import secrets
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core import quota
from core.storage import DEFAULT_USER, atomic_path, atomic_write_json, data_root, read_json

ProgressFn = Callable[[int, "int | None"], None]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_NAME = "default"
DEFAULT_TIMEOUT = 30.0            # seconds without a byte before a download gives up
CHUNK = 1 << 20
MAX_IMPORT_BYTES = 4 << 30        # an imported checkpoint larger than this is refused
IMPORT_SUFFIXES = (".pkl", ".pt", ".pth", ".safetensors")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CheckpointsError(Exception):
    """A problem to report to the user as one line (unknown name, not downloaded, offline...)."""


class NotDownloaded(CheckpointsError):
    """A catalog entry was asked for by name but is not in the cache yet."""


class DownloadError(CheckpointsError):
    """A download failed (offline, HTTP error, corrupted content); no complete-looking file is left."""


class ImportRefused(CheckpointsError):
    """An imported file was refused; nothing of it is kept."""


# ----------------------------------------------------------------------------------------------
# The catalog

NGC_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
TF_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
NGC_LICENCE = "NVIDIA Source Code License-NC (non-commercial research use only)"
TF_LICENCE = "CC BY-NC 4.0 (non-commercial use only; credit NVIDIA)"
NATIVE_LICENCE = "Trained by Atelier on a generated sample dataset; same licence as Atelier"


@dataclass(frozen=True)
class CatalogEntry:
    name: str                      # short id used everywhere: "ffhq-1024"
    title: str                     # for a card: "Faces (FFHQ)"
    depicts: str                   # what the images show, one sentence
    resolution: int                # output size in pixels (square)
    url: str | None                # None for the bundled default
    size_mb: int | None            # approximate download size
    size_exact: bool = False       # False: size_mb is an estimate from parameter counts
    licence: str = NGC_LICENCE
    format: str = "stylegan2-ada-pytorch pickle"
    sha256: str | None = None      # a known digest; None: recorded on first download
    bundled_path: str | None = None  # repo-relative file shipped with Atelier
    note: str = ""
    arch: dict = field(default_factory=dict)  # what the ETA hook needs (channel_base, mapping layers)

    @property
    def filename(self) -> str:
        """The cache file name: ``<name>`` plus the extension of the URL's file."""
        suffix = Path(urllib.parse.urlparse(self.url).path).suffix if self.url else ""
        return self.name + (suffix if suffix in IMPORT_SUFFIXES else ".pkl")

    @property
    def size_text(self) -> str:
        if self.size_mb is None:
            return "unknown size"
        return f"{self.size_mb:,} MB" if self.size_exact else f"about {self.size_mb:,} MB"


_A1024 = {"channel_base": 32768, "channel_max": 512, "mapping_layers": 8}
_P256 = {"channel_base": 16384, "channel_max": 512, "mapping_layers": 8}
_CIFAR = {"channel_base": 32768, "channel_max": 512, "mapping_layers": 2, "c_dim": 10}


def _ngc(name, title, depicts, res, size_mb, arch, exact=False, note=""):
    return CatalogEntry(name, title, depicts, res, NGC_BASE + f"stylegan2-{name.rsplit('-', 1)[0]}-{res}x{res}.pkl",
                        size_mb, exact, arch=arch, note=note)


def _tf(name, title, depicts, res, size_mb, note=""):
    return CatalogEntry(name, title, depicts, res, TF_BASE + f"stylegan2-{name.rsplit('-', 1)[0]}-config-f.pkl",
                        size_mb, False, TF_LICENCE, "TF-era StyleGAN2 pickle", note=note, arch=dict(_A1024))


# Sizes: ffhq-1024 is known; the others are estimated from parameter counts (G + G_ema + D in
# float32, calibrated on ffhq-1024) and shown as "about".
_ENTRIES = [
    CatalogEntry(DEFAULT_NAME, "Flowers (bundled)",
                 "Radial blossoms on soft grounds, trained by Atelier on its own sample dataset; works "
                 "offline, small and quick to fine-tune on CPU.", 64, None, None, licence=NATIVE_LICENCE,
                 format="Atelier native (safetensors + JSON)",
                 bundled_path="static/models/default.safetensors"),
    _ngc("ffhq-1024", "Faces (FFHQ)", "Photographs of human faces, aligned and cropped.", 1024, 364, _A1024, True),
    _ngc("ffhq-512", "Faces (FFHQ, 512)", "Photographs of human faces, aligned and cropped.", 512, 363, _A1024),
    _ngc("ffhq-256", "Faces (FFHQ, 256)", "Photographs of human faces, aligned and cropped.", 256, 298, _P256),
    _ngc("metfaces-1024", "Art faces (MetFaces)",
         "Faces from paintings, drawings and sculptures in the Metropolitan Museum of Art.", 1024, 364, _A1024),
    _ngc("afhqcat-512", "Cats (AFHQ)", "Close-up photographs of cat faces.", 512, 363, _A1024),
    _ngc("afhqdog-512", "Dogs (AFHQ)", "Close-up photographs of dog faces.", 512, 363, _A1024),
    _ngc("afhqwild-512", "Wild animals (AFHQ)",
         "Close-up photographs of wild animal faces: lions, tigers, foxes, wolves...", 512, 363, _A1024),
    _ngc("afhqv2-512", "Animal faces (AFHQv2)", "Cat, dog and wild animal faces (improved AFHQ).", 512, 363, _A1024),
    _ngc("brecahad-512", "Histology (BreCaHAD)",
         "Microscope images of breast cancer tissue (a small dataset).", 512, 363, _A1024),
    _ngc("celebahq-256", "Celebrity faces (CelebA-HQ)", "Photographs of celebrity faces.", 256, 298, _P256),
    _ngc("lsundog-256", "Dogs (LSUN)", "Photographs of dogs in all kinds of scenes.", 256, 298, _P256),
    _ngc("cifar10-32", "Tiny objects (CIFAR-10)",
         "Tiny 32 px images of 10 classes: planes, cars, birds, cats, deer, dogs, frogs, horses, "
         "ships, trucks.", 32, 246, _CIFAR, note="class-conditional: samples pick a class"),
    _tf("car-512", "Cars (LSUN)", "Photographs of cars.", 512, 363,
        note="512x384 images letterboxed into 512x512 (black bars top and bottom)"),
    _tf("cat-256", "Cats (LSUN)", "Photographs of cats, often indoors.", 256, 361),
    _tf("church-256", "Churches (LSUN)", "Photographs of church buildings outdoors.", 256, 361),
    _tf("horse-256", "Horses (LSUN)", "Photographs of horses, often with riders.", 256, 361),
]
_CATALOG: dict[str, CatalogEntry] = {e.name: e for e in _ENTRIES}


def catalog() -> list[CatalogEntry]:
    """Every catalog entry: the bundled default first, then the official checkpoints."""
    return list(_CATALOG.values())


def get_entry(name: str) -> CatalogEntry:
    try:
        return _CATALOG[name]
    except KeyError:
        raise CheckpointsError(f"Unknown checkpoint {name!r}: see `python -m core.cli checkpoints list`") from None


def register_catalog_entry(entry: CatalogEntry) -> CatalogEntry:
    """Add (or replace) a catalog entry: for tests against a local server, or a site's own mirror."""
    _check_name(entry.name)
    _CATALOG[entry.name] = entry
    return entry


def unregister_catalog_entry(name: str) -> None:
    _CATALOG.pop(name, None)


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


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise CheckpointsError(
            f"Invalid checkpoint name {str(name)[:40]!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


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


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


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
# HTTP: resumable fetch into a .part file

def _host(url: str) -> str:
    return urllib.parse.urlparse(url).hostname or url


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "Atelier/1 (checkpoint download)"}
    if start:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:
            return e  # range not satisfiable: the caller decides (complete, or restart)
        raise DownloadError(f"{_host(url)} answered HTTP {e.code} {e.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"Could not reach {_host(url)}: no network? ({reason}). "
                            "Everything else keeps working; the bundled `default` checkpoint needs no download.") from None


def _total_from(resp, start: int) -> tuple[int, int | None]:
    """(offset the body starts at, total size or None) from a 200 or 206 response."""
    if resp.status == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != start:
            return -1, None  # a range we did not ask for: restart from scratch
        return start, None if m.group(3) == "*" else int(m.group(3))
    length = resp.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def fetch_to_part(url: str, part: Path, progress_fn: ProgressFn | None = None,
                  timeout: float = DEFAULT_TIMEOUT, max_bytes: int | None = None,
                  size_check: Callable[[int], None] | None = None) -> int:
    """Download ``url`` into ``part``, resuming from its current size; return the total bytes.

    A 206 answer appends; a 200 answer (a server that ignores Range) starts over. A connection
    that ends early raises :class:`DownloadError` and keeps ``part`` for the next attempt.
    ``size_check(n)`` may raise to refuse: it is called with the announced size before anything
    is written, and with the bytes received so far after each block.
    """
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise DownloadError(f"Only http(s) URLs can be downloaded: {url}")
    start = part.stat().st_size if part.exists() else 0
    resp = _open(url, start, timeout)
    if getattr(resp, "status", getattr(resp, "code", 0)) == 416:
        total = re.match(r"bytes \*/(\d+)", resp.headers.get("Content-Range", "") or "")
        resp.close()
        if total and int(total.group(1)) == start:
            return start  # the .part was already complete
        part.unlink(missing_ok=True)
        start, resp = 0, _open(url, 0, timeout)
    with resp:
        offset, total = _total_from(resp, start)
        if offset < 0:  # a 206 for a range we did not ask for: start over
            resp.close()
            part.unlink(missing_ok=True)
            return fetch_to_part(url, part, progress_fn, timeout, max_bytes, size_check)
        if max_bytes is not None and total is not None and total > max_bytes:
            raise DownloadError(f"{url} is {_mb(total)}, more than the {_mb(max_bytes)} allowed")
        if size_check is not None and total is not None:
            size_check(total)
        done = offset
        with open(part, "r+b" if offset and part.exists() else "wb") as f:
            f.seek(offset)
            f.truncate()
            if progress_fn:
                progress_fn(done, total)
            while True:
                try:
                    block = resp.read(CHUNK)
                except (OSError, ValueError, http.client.HTTPException) as e:
                    raise DownloadError(f"Download of {url} was interrupted at {_mb(done)} ({e or type(e).__name__}); "
                                        "run the same command again to resume") from None
                if not block:
                    break
                f.write(block)
                done += len(block)
                if max_bytes is not None and done > max_bytes:
                    raise DownloadError(f"{url} is larger than the {_mb(max_bytes)} allowed")
                if size_check is not None:
                    size_check(done)
                if progress_fn:
                    progress_fn(done, total)
    if total is not None and done != total:
        raise DownloadError(f"Download of {url} was interrupted at {_mb(done)} of {_mb(total)}; "
                            "run the same command again to resume")
    return done


# ----------------------------------------------------------------------------------------------
# Downloads

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


def download_checkpoint(name: str, progress_fn: ProgressFn | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                        retries: int = 2, thumbnail: bool = True) -> Path:
    """Make sure catalog entry ``name`` is in the cache and return its path.

    Streams to ``<name>.part`` (resuming after an interruption, ``retries`` times here and on
    the next call), checks the sha256 against the catalog's when it lists one, validates the
    content with ``load_checkpoint``, records size and sha256 in ``<name>.json``, and only then
    renames the file into place. A file already in the cache is verified against its recorded
    sha256 instead. Corrupted content is removed with a :class:`DownloadError`.
    """
    entry = get_entry(name)
    if entry.bundled_path:
        return resolve_checkpoint(name)
    dest, part = _cached_path(entry), _part_path(name)
    with _lock(name):
        if dest.is_file():
            if verify_checkpoint(name):
                return dest
            dest.unlink()
            _sidecar_path(name).unlink(missing_ok=True)
            raise DownloadError(f"{name} in the cache did not match its recorded sha256 (damaged on disk?); "
                                "it was removed: download it again")
        for attempt in range(retries + 1):
            try:
                fetch_to_part(entry.url, part, progress_fn, timeout)
                break
            except DownloadError as e:
                if "interrupted" not in str(e) or attempt == retries:
                    raise
                time.sleep(min(2.0 ** attempt, 10.0) * 0.1)
        digest = sha256_file(part)
        if entry.sha256 and digest != entry.sha256:
            part.unlink()
            raise DownloadError(f"{name}: the downloaded file is corrupted (sha256 {digest[:12]}... is not the "
                                f"expected {entry.sha256[:12]}...); it was removed: download it again")
        try:
            ckpt = _validate(part)
        except ImportRefused as e:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{name}: the downloaded file is not a usable checkpoint ({e}); "
                                "it was removed: download it again") from None
        _write_sidecar(entry, part, digest, getattr(ckpt, "source_format", None), getattr(ckpt, "resolution", None))
        os.replace(part, dest)
    if thumbnail:
        _try_thumbnail(name, ckpt)
    return dest


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


# ----------------------------------------------------------------------------------------------
# Imports

def _default_import_name(source: str, taken) -> str:
    stem = Path(urllib.parse.urlparse(source).path if "://" in source else source).stem
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:56] or "imported"
    if not base[0].isalnum():
        base = "m" + base
    name, n = base, 2
    while name in _CATALOG or name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def import_checkpoint(path_or_url: str | os.PathLike, name: str | None = None, user: str | None = None,
                      progress_fn: ProgressFn | None = None, timeout: float = DEFAULT_TIMEOUT, *,
                      thumbnail: bool = True) -> dict:
    """Copy a local file or download an http(s) URL into the imports, validated by ``load_checkpoint``.

    Returns the index record plus ``name`` and ``path``. A refused file is deleted and raises
    :class:`ImportRefused`; a name that is taken or not plain raises :class:`CheckpointsError`.
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
            raise ImportRefused(f"{src.name} is {_mb(src.stat().st_size)}, more than the {_mb(MAX_IMPORT_BYTES)} allowed")
    taken = _imported(user)
    if name is None:
        name = _default_import_name(source, taken)
    _check_name(name)
    if name in _CATALOG:
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
    dest = _imported_dir() / f"{cid}{suffix}"
    tmp = _imported_dir() / f"{cid}.part"
    try:
        if is_url:
            fetch_to_part(source, tmp, progress_fn, timeout, max_bytes=MAX_IMPORT_BYTES, size_check=room.check)
        else:
            shutil.copyfile(src, tmp)
        try:
            ckpt = _validate(tmp)
        except ImportRefused as e:
            shown = source if is_url else Path(source).name
            raise ImportRefused(f"{shown} is not a usable StyleGAN2 checkpoint ({e}); nothing was kept") from None
        digest = sha256_file(tmp)
        os.replace(tmp, dest)
    except quota.QuotaExceeded as e:
        tmp.unlink(missing_ok=True)
        raise ImportRefused(str(e)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    rec = {"id": cid, "ext": suffix, "source": source if is_url else Path(source).name,
           "url": source if is_url else None, "bytes": dest.stat().st_size, "sha256": digest,
           "format": getattr(ckpt, "source_format", None), "resolution": getattr(ckpt, "resolution", None),
           "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with _lock("imported-index"):
        index = read_json(_index_path(), {})
        if name in index.get(user, {}):
            dest.unlink(missing_ok=True)
            raise CheckpointsError(f"You already have a checkpoint named {name!r}: remove it or choose another name")
        index.setdefault(user, {})[name] = rec
        atomic_write_json(_index_path(), index)
    if thumbnail:
        _try_thumbnail(name, ckpt, user)
    return {**rec, "name": name, "path": str(dest)}


# ----------------------------------------------------------------------------------------------
# Thumbnails

THUMB_SEEDS = (0, 1, 2, 3)
THUMB_PSI = 0.7      # a little truncation: the card shows typical samples
THUMB_CELL = 128     # pixels per cell of the 2x2 grid


def _render_grid(ckpt, device: str = "cpu"):
    import numpy as np
    import torch
    from PIL import Image

    G = ckpt.G_ema
    c_dim = int(getattr(ckpt, "c_dim", 0) or getattr(G, "c_dim", 0) or 0)
    # seeds mean what they mean in the official tools: one RandomState per seed
    z = np.concatenate([np.random.RandomState(seed).randn(1, ckpt.z_dim) for seed in THUMB_SEEDS])
    z = torch.from_numpy(z).float().to(device)
    c = None
    if c_dim:  # class-conditional: one class per cell
        c = torch.zeros(len(THUMB_SEEDS), c_dim, device=device)
        c[torch.arange(len(THUMB_SEEDS)), torch.arange(len(THUMB_SEEDS)) % c_dim] = 1
    with torch.no_grad():
        imgs = G(z, c, truncation_psi=THUMB_PSI, noise_mode="const")  # [4, C, R, R] in [-1, 1]
    imgs = (imgs * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    cells = []
    for img in imgs:
        cell = Image.fromarray(img[..., :3] if img.shape[2] >= 3 else img[..., 0])
        cells.append(cell.convert("RGB").resize((THUMB_CELL, THUMB_CELL), Image.LANCZOS))
    grid = Image.new("RGB", (2 * THUMB_CELL, 2 * THUMB_CELL))
    for i, cell in enumerate(cells):
        grid.paste(cell, ((i % 2) * THUMB_CELL, (i // 2) * THUMB_CELL))
    return grid


def make_thumbnail(name: str, user: str | None = None, device: str = "cpu", ckpt=None) -> Path:
    """Render a 2x2 grid of seeds 0-3 with the model and cache it as the entry's thumbnail."""
    if ckpt is None:
        from core.stylegan import load_checkpoint  # lazy: torch
        ckpt = load_checkpoint(resolve_checkpoint(name, user, allow_paths=False), device=device)
    grid = _render_grid(ckpt, device)
    dest = _thumb_path(_thumb_key(name, user))
    with atomic_path(dest) as tmp:
        grid.save(tmp, format="PNG")
    return dest


def _try_thumbnail(name: str, ckpt, user: str | None = None) -> None:
    """Best effort after a download or import: a failed render leaves the card without a sample."""
    try:
        make_thumbnail(name, user, ckpt=ckpt)
    except Exception:  # noqa: BLE001 - a missing thumbnail must not fail the download
        pass


# ----------------------------------------------------------------------------------------------
# Training-time estimate (a thin hook; the measurement lives in core.jobs)

def estimate_training_seconds(name: str, steps: int, device: str | None = None, *, batch: int | None = None,
                              user: str | None = None) -> float | None:
    """Seconds to train ``steps`` steps from checkpoint ``name``, or None when no estimate exists.

    Delegates to ``core.jobs.estimate_seconds_per_step(resolution, arch_kwargs, batch, device)``
    when that function exists; this module measures nothing itself.
    """
    try:
        from core import jobs
    except ImportError:
        return None
    fn = getattr(jobs, "estimate_seconds_per_step", None)
    if fn is None:
        return None
    if name in _CATALOG:
        entry = _CATALOG[name]
        resolution, arch = entry.resolution, dict(entry.arch)
    else:
        rec = _imported(user).get(name)
        if rec is None or not rec.get("resolution"):
            return None
        resolution, arch = int(rec["resolution"]), {}
    per_step = fn(resolution, arch, batch, device)
    return None if per_step is None else float(per_step) * int(steps)
