"""Downloads of catalog entries: a resumable HTTP fetch into ``<name>.part``, checked, then moved into place."""
from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from .cache import (cache_lock, cached_path, load_validated, part_path, resolve_checkpoint, sha256_file, sidecar_path,
                    verify_checkpoint, write_sidecar)
from .common import CHUNK, DEFAULT_TIMEOUT, DownloadError, ImportRefused, ProgressFn, mb_text
from .entries import get_entry
from .thumbnails import try_thumbnail


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
            raise DownloadError(f"{url} is {mb_text(total)}, more than the {mb_text(max_bytes)} allowed")
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
                    raise DownloadError(f"Download of {url} was interrupted at {mb_text(done)} ({e or type(e).__name__}); "
                                        "run the same command again to resume") from None
                if not block:
                    break
                f.write(block)
                done += len(block)
                if max_bytes is not None and done > max_bytes:
                    raise DownloadError(f"{url} is larger than the {mb_text(max_bytes)} allowed")
                if size_check is not None:
                    size_check(done)
                if progress_fn:
                    progress_fn(done, total)
    if total is not None and done != total:
        raise DownloadError(f"Download of {url} was interrupted at {mb_text(done)} of {mb_text(total)}; "
                            "run the same command again to resume")
    return done


def fetch_resuming(url: str, part: Path, progress_fn: ProgressFn | None = None, timeout: float = DEFAULT_TIMEOUT,
                   *, retries: int = 2, **limits) -> int:
    """``fetch_to_part``, retried ``retries`` times after an interruption, each time resuming from what
    ``part`` holds (a Range request); other errors are raised at once. ``part`` stays on a final
    interruption, so the next call resumes too."""
    for attempt in range(retries + 1):
        try:
            return fetch_to_part(url, part, progress_fn, timeout, **limits)
        except DownloadError as e:
            if "interrupted" not in str(e) or attempt == retries:
                raise
            time.sleep(min(2.0 ** attempt, 10.0) * 0.1)
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------------------------
# Downloads

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
    dest, part = cached_path(entry), part_path(name)
    with cache_lock(name):
        if dest.is_file():
            if verify_checkpoint(name):
                return dest
            dest.unlink()
            sidecar_path(name).unlink(missing_ok=True)
            raise DownloadError(f"{name} in the cache did not match its recorded sha256 (damaged on disk?); "
                                "it was removed: download it again")
        fetch_resuming(entry.url, part, progress_fn, timeout, retries=retries)
        digest = sha256_file(part)
        if entry.sha256 and digest != entry.sha256:
            part.unlink()
            raise DownloadError(f"{name}: the downloaded file is corrupted (sha256 {digest[:12]}... is not the "
                                f"expected {entry.sha256[:12]}...); it was removed: download it again")
        try:
            ckpt = load_validated(part)
        except ImportRefused as e:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{name}: the downloaded file is not a usable checkpoint ({e}); "
                                "it was removed: download it again") from None
        write_sidecar(entry, part, digest, getattr(ckpt, "source_format", None), getattr(ckpt, "resolution", None))
        os.replace(part, dest)
    if thumbnail:
        try_thumbnail(name, ckpt)
    return dest
