"""Worker processes for decoding: an ordered map with a bounded number of tasks in flight."""
from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque

from .images import process_item

PARALLEL_FROM = 24          # fewer items than this are processed in this process (no pool start-up)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def run_tasks(tasks, workers: int | None = None, expected: int = 0):
    """Yield ``process_item(task)`` for every task, in order, using worker processes.

    At most ``8 * workers`` tasks are in flight, so lazily made tasks (video frames) stay bounded.
    Workers are forked: the fork start method needs no re-import of ``__main__`` and starts fast.
    """
    workers = workers or default_workers()
    if workers <= 1 or expected < PARALLEL_FROM:
        for t in tasks:
            yield process_item(t)
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers) as pool:
        pending: deque = deque()
        for t in tasks:
            pending.append(pool.apply_async(process_item, (t,)))
            if len(pending) >= 8 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
