"""The data root, atomic file writes and cross-process locks shared by every part of Atelier.

All state lives under one folder, ``ATELIER_HOME`` (default ``./data``). Every write goes to a
temporary file in the destination folder and is renamed into place, so a kill at any moment
leaves either the old file or the new one, never a torn one. A read-modify-write of a shared
file holds ``file_lock`` around it.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

DEFAULT_USER = "local"


def data_root() -> Path:
    """The folder that holds all of Atelier's state (created on first use)."""
    root = Path(os.environ.get("ATELIER_HOME", "data")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def user_root(user: str) -> Path:
    """``<root>/users/<user>``, checked to be a plain folder name (not created here)."""
    if not isinstance(user, str) or not user or "/" in user or "\\" in user or user.startswith(".") or "\0" in user:
        raise ValueError(f"Invalid user name: {user!r}")
    return data_root() / "users" / user


def user_dir(user: str, kind: str) -> Path:
    """``<root>/users/<user>/<kind>``: the per-user folder for datasets, experiments or models."""
    path = user_root(user) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def human_bytes(n: int) -> str:
    """``532 bytes``, ``1.2 MB``, ``48.2 GB``: decimal units, as the sizes shown everywhere."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


@contextmanager
def atomic_path(dest: str | os.PathLike):
    """Yield a temporary path beside ``dest``; on success it is fsynced and renamed onto ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def file_lock(path: str | os.PathLike, *, wait: bool = True):
    """Hold an exclusive lock on the file ``path`` (created if missing) for a ``with`` block; yields True.

    Threads of one process and other processes alike wait for each other (``flock`` locks an open
    file, and each call opens its own); a killed holder frees it. ``wait=False``: yields False at
    once, without the lock, when someone else holds it."""
    with open(path, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_json(dest: str | os.PathLike, obj) -> None:
    atomic_write_bytes(dest, json.dumps(obj, indent=2, sort_keys=True).encode())


def read_json(path: str | os.PathLike, default=None):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return default


def download_name(*parts, ext: str, limit: int = 100) -> str:
    """A file name for a download made of what the user named it: 'Ink v1.safetensors',
    'Blobs, first try - progress over 400 steps.mp4' (a long first part is shortened, the rest kept).
    Letters of any script, digits, spaces and ',.-_()' stay; anything else becomes '_'."""
    def clean(text) -> str:
        return re.sub(r"\s+", " ", re.sub(r"[^\w ,.()-]+", "_", str(text))).strip(" ._-")
    cleaned = [c for c in map(clean, parts) if c]
    tail = " - ".join(cleaned[1:])
    head = cleaned[0][:max(20, limit - len(tail) - 3)].rstrip(" ._-") if cleaned else ""
    return f"{' - '.join(p for p in (head, tail) if p) or 'atelier'}.{ext}"
