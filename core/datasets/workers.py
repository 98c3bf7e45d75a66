"""Worker processes for decoding: an ordered map with a bounded number of tasks in flight.

Safe in a threaded process (the app, the job worker with its heartbeat and torch threads):

- Workers are never forked from the calling process. A fork copies the locks other threads hold
  and the Python signal handlers: the job worker's SIGTERM handler, copied into forked pool
  children, made ``Pool.terminate()`` unable to end them, and the pool hung for good in ``join``.
  Workers come from multiprocessing's fork server instead: a single-threaded process started once
  per process (by fork and exec), with the decoding modules already imported, so a worker still
  starts in milliseconds.
- Pools are never terminated. When all results are in, the pool is shut down and its workers exit
  on their own; after an error or a stop, the work not yet started is cancelled and the caller
  does not wait for the image each worker is on. A worker that dies (out of memory) fails the
  decoding with a clear error instead of leaving it waiting.
- The workers of one pool share a decoding memory budget (``memory.DecodeBudget``).

Fewer than ``PARALLEL_FROM`` items are decoded in the calling process (no pool start-up).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from . import images, memory
from .common import DatasetError

PARALLEL_FROM = 24          # fewer items than this are processed in this process (no pool start-up)
IN_FLIGHT_PER_WORKER = 8    # tasks handed out ahead per worker (bounds lazily made tasks: video frames)
STOP_POLL_S = 1.0           # how often ``should_stop`` is asked while waiting for a result
OWNER_POLL_S = 1.0          # how often a worker looks whether the process that started it still lives


class DecodingStopped(Exception):
    """``should_stop`` asked the decoding to stop; nothing was kept."""


def default_workers() -> int:
    """One worker per core this process may run on, as far as memory allows."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        cores = max(1, os.cpu_count() or 1)
    return memory.workers_for(cores)


def pool_context():
    """The multiprocessing context of decoding pools: the fork server, with the decoding modules
    preloaded (spawn where there is no fork server)."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([images.__name__])
    return ctx


class _Stopper:
    """Asks ``should_stop`` at most every STOP_POLL_S seconds; raises DecodingStopped on yes."""

    def __init__(self, should_stop):
        self.should_stop, self.last = should_stop, 0.0

    def check(self, force: bool = False) -> None:
        if self.should_stop is None:
            return
        now = time.monotonic()
        if force or now - self.last >= STOP_POLL_S:
            self.last = now
            if self.should_stop():
                raise DecodingStopped("decoding stopped")


def run_tasks(tasks, workers: int | None = None, expected: int = 0, *, should_stop=None, budget=None):
    """Yield ``process_item(task)`` for every task, in order, using worker processes.

    At most ``IN_FLIGHT_PER_WORKER * workers`` tasks are in flight. ``should_stop()``, when given,
    is asked about once a second (also while waiting for a worker); when it says yes the decoding
    ends with :class:`DecodingStopped`. ``budget`` is the pool's :class:`memory.DecodeBudget`
    (default: a new one of ``memory.decode_budget_bytes()``). Use it in a ``with
    contextlib.closing(...)`` block, so an error in the caller's loop releases the pool at once.
    """
    workers = workers or default_workers()
    limit = memory.decode_budget_bytes()            # a bad setting is one line, before any work
    stopper = _Stopper(should_stop)
    if workers <= 1 or expected < PARALLEL_FROM:
        for t in tasks:
            stopper.check()
            yield images.process_item(t)
        return
    ctx = pool_context()
    budget = budget if budget is not None else memory.DecodeBudget(limit, ctx)
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_start_worker, initargs=(budget, os.getpid()))
    complete = False
    try:
        pending: deque = deque()
        for t in tasks:
            pending.append(_submit(pool, t))
            if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                yield _result(pending.popleft(), stopper)
        while pending:
            yield _result(pending.popleft(), stopper)
        complete = True
    finally:
        pool.shutdown(wait=complete, cancel_futures=True)


def _start_worker(budget: memory.DecodeBudget, owner: int) -> None:
    """Pool initializer: the pool's budget, and an exit when the process that made the pool is gone
    (killed): its workers and the fork server would otherwise wait for work for ever."""
    memory.install_budget(budget)
    threading.Thread(target=_exit_with, args=(owner,), name="exit-with-owner", daemon=True).start()


def _exit_with(pid: int) -> None:
    while True:
        time.sleep(OWNER_POLL_S)
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            state = None if os.path.isdir("/proc/self") else "?"   # no /proc: nothing to watch
        if state in (None, "Z", "X"):
            os._exit(0)
        if state == "?":
            return


_DIED = "A decoding process ended unexpectedly (out of memory?); nothing was kept: try again."


def _submit(pool: ProcessPoolExecutor, task):
    try:
        return pool.submit(images.process_item, task)
    except BrokenProcessPool:
        raise DatasetError(_DIED) from None


def _result(future, stopper: _Stopper):
    while True:
        stopper.check()
        try:
            return future.result(timeout=STOP_POLL_S if stopper.should_stop else None)
        except TimeoutError:
            continue
        except BrokenProcessPool:
            raise DatasetError(_DIED) from None
