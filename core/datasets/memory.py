"""How much memory decoding may take: a byte budget per import shared by its workers, how many
workers the machine's memory allows, and how many imports run at once.

    ATELIER_DECODE_MEMORY_MB   decoding budget of one import or pack, shared by its workers (512 MB)
    ATELIER_IMPORTS_AT_ONCE    imports running at once on one data root; more wait their turn (2)

A decoded image takes about 4 bytes a pixel in Pillow (RGB is kept as RGBX), so one 81 MP PNG
holds ~330 MB while it is normalised. Before a worker decodes an image it reserves what that image
will take (:func:`decode_cost`) from its pool's budget, and waits while the other workers'
reservations leave too little; an image larger than the whole budget is decoded alone, so nothing
valid is refused. Small images (most photos are decoded at a reduced JPEG scale) never wait.
Decoding in the calling process (imports of few images, crop previews) reserves from one budget
that all its threads share.
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from contextlib import contextmanager

from core.storage import data_root, file_lock

from .common import DatasetError

DEFAULT_DECODE_MB = 512        # one 100 MP image (the per-image cap) at 4 bytes a pixel fits
DEFAULT_IMPORTS_AT_ONCE = 2
WORKER_BYTES = 256 * 1024**2   # a worker process with a usual photo in hand; workers are capped by this
SLOT_POLL_S = 0.5
MB = 1024**2
TRIM_FROM = 64 * MB            # images reserving this much give their freed memory back when done


def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise DatasetError(f"{name} must be a whole number from {low} to {high:,}, not {raw[:40]!r}.")
    return value


def decode_budget_bytes() -> int:
    """The decoding budget of one import (``ATELIER_DECODE_MEMORY_MB``, default 512 MB)."""
    return _env_int("ATELIER_DECODE_MEMORY_MB", DEFAULT_DECODE_MB, 64, 1024**2) * MB


def imports_at_once() -> int:
    """How many imports may decode at once on this data root (``ATELIER_IMPORTS_AT_ONCE``, default 2)."""
    return _env_int("ATELIER_IMPORTS_AT_ONCE", DEFAULT_IMPORTS_AT_ONCE, 1, 64)


def available_memory() -> int | None:
    """Bytes this process may still use: the kernel's MemAvailable, or less under a cgroup limit."""
    avail = None
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read())
        if limit != "max":
            room = max(0, int(limit) - used)
            avail = room if avail is None else min(avail, room)
    except (OSError, ValueError):
        pass
    return avail


def workers_for(cores: int) -> int:
    """Worker processes for decoding: one per core, but no more than memory allows (WORKER_BYTES each)."""
    avail = available_memory()
    by_memory = cores if avail is None else max(1, avail // WORKER_BYTES)
    return max(1, min(cores, by_memory))


_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "LA": 4, "La": 4, "PA": 4}


def decode_cost(mode: str, width: int, height: int, file_bytes: int = 0) -> int:
    """Bytes one image takes at most while it is decoded and normalised: the file, the decoded
    image, its RGB copy when the mode needs converting (and the layers alpha compositing needs),
    and the 2x-reduced copy a large downscale makes."""
    pixels = width * height
    per_pixel = _MODE_BYTES.get(mode, 4) + 1              # decoded image + the reduced copy
    if mode not in ("RGB", "YCbCr"):
        per_pixel += 4                                     # the RGB (or RGBA) copy
    if "A" in mode or mode in ("P", "PA", "La", "RGBa"):
        per_pixel += 5                                     # alpha compositing: RGB canvas + the mask
    if mode.startswith("I") or mode == "F":
        per_pixel += 4                                     # the 16-bit/float scaling, done in bands
    return file_bytes + pixels * per_pixel


class _Count:
    """What DecodeBudget needs of a shared number, for threads of one process."""

    def __init__(self):
        self.value = 0


class DecodeBudget:
    """A byte budget shared by the threads of this process, or (with a multiprocessing ``ctx``) by
    the worker processes of one pool, made before they start.

    ``with budget.hold(n):`` waits until ``n`` more bytes fit (or nothing else is held), then keeps
    them until the block ends. ``peak`` is the most ever held at once.
    """

    def __init__(self, limit_bytes: int, ctx=None):
        self.limit = int(limit_bytes)
        if ctx is None:
            self._cond, self._used, self._peak = threading.Condition(), _Count(), _Count()
        else:
            self._cond = ctx.Condition(ctx.Lock())
            self._used = ctx.Value("q", 0, lock=False)
            self._peak = ctx.Value("q", 0, lock=False)

    @property
    def peak(self) -> int:
        return int(self._peak.value)

    @contextmanager
    def hold(self, nbytes: int):
        n = max(0, int(nbytes))
        with self._cond:
            while self._used.value and self._used.value + n > self.limit:
                self._cond.wait()
            self._used.value += n
            self._peak.value = max(self._peak.value, self._used.value)
        try:
            yield
        finally:
            with self._cond:
                self._used.value -= n
                self._cond.notify_all()


_installed: list[DecodeBudget] = []     # a pool worker's budget (set by its initializer)
_in_process: list[DecodeBudget] = []    # else: this process's own, shared by its threads
_in_process_lock = threading.Lock()


def install_budget(budget: DecodeBudget | None) -> None:
    """Pool initializer: the budget this worker process reserves from."""
    _installed[:] = [budget] if budget is not None else []


def current_budget() -> DecodeBudget:
    """The budget ``hold`` reserves from: the pool's in a pool worker, else one shared by every
    thread of this process (imports of few images and crop previews decode in the caller)."""
    if _installed:
        return _installed[0]
    with _in_process_lock:
        if not _in_process:
            _in_process.append(DecodeBudget(decode_budget_bytes()))
        return _in_process[0]


@contextmanager
def hold(nbytes: int):
    """Reserve ``nbytes`` from :func:`current_budget` for a ``with`` block. After a large image the
    freed heap is handed back to the system before the reservation ends (:func:`trim_heap`)."""
    with current_budget().hold(nbytes):
        try:
            yield
        finally:
            if nbytes >= TRIM_FROM:
                trim_heap()


_libc: list = []


def trim_heap() -> None:
    """Return freed heap memory to the system (glibc's ``malloc_trim``; nothing elsewhere).

    Pillow allocates a large image in 16 MB blocks that malloc takes from its heap, and a freed
    heap is kept by the process: without this, each worker would keep the size of the largest
    image it ever decoded, however small the budget."""
    try:
        if not _libc:
            _libc.append(ctypes.CDLL("libc.so.6"))
        _libc[0].malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---- imports at once -----------------------------------------------------------------------------

@contextmanager
def import_slot(wait_fn=None):
    """Hold one of ``imports_at_once()`` slots of this data root for a ``with`` block.

    Slots are lock files (``<root>/.import-slot-<k>.lock``) held with ``storage.file_lock``, so imports in
    threads of one process and in other processes (the app, the CLI) share them, and a killed
    process frees its slot. When all are taken, ``wait_fn(message)`` is called once and the
    import waits its turn.
    """
    n = imports_at_once()
    root = data_root()
    told = False
    while True:
        for k in range(n):
            with file_lock(root / f".import-slot-{k}.lock", wait=False) as held:
                if held:
                    yield
                    return
        if not told and wait_fn is not None:
            wait_fn(f"Waiting for another import to finish (at most {n} run at once)…")
            told = True
        time.sleep(SLOT_POLL_S)
