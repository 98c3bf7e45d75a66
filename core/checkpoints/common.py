"""Shared by the modules of ``core.checkpoints``: the errors, the download and import limits, small helpers."""
from __future__ import annotations

from typing import Callable

ProgressFn = Callable[[int, "int | None"], None]

DEFAULT_TIMEOUT = 30.0            # seconds without a byte before a download gives up
CHUNK = 1 << 20
MAX_IMPORT_BYTES = 4 << 30        # an imported checkpoint larger than this is refused
IMPORT_SUFFIXES = (".pkl", ".pt", ".pth", ".safetensors")


class CheckpointsError(Exception):
    """A problem to report to the user as one line (unknown name, not downloaded, offline...)."""


class NotDownloaded(CheckpointsError):
    """A catalog entry was asked for by name but is not in the cache yet."""


class DownloadError(CheckpointsError):
    """A download failed (offline, HTTP error, corrupted content); no complete-looking file is left."""


class ImportRefused(CheckpointsError):
    """An imported file was refused; nothing of it is kept."""


def mb_text(n: int | None) -> str:
    """``12.3 MB``: sizes of checkpoint files, in megabytes (``-`` when unknown)."""
    return "-" if n is None else f"{n / 1e6:,.1f} MB"
