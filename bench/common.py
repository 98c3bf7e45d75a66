"""Shared helpers of the benchmarks: timing with warm-up, medians, optional official reference.

The official implementation is never part of Atelier: pass ``--official CHECKOUT`` (a local
checkout of NVlabs/stylegan2-ada-pytorch) to time it in the same process for a ratio.
"""
from __future__ import annotations

import statistics
import sys
import time


def timeit(fn, *, repeat: int = 5, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def timeit_pairs(fa, fb, *, repeat: int = 5, warmup: int = 1) -> tuple[list[float], list[float]]:
    """Times of ``fa`` and ``fb`` run in turn (A B A B ...), so a drift in the machine's speed
    touches both alike; compare them pair by pair."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    for _ in range(repeat):
        for fn, times in ((fa, ta), (fb, tb)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return ta, tb


def timeit_rounds(fns: dict, *, repeat: int = 5, warmup: int = 1) -> dict[str, dict[str, list[float]]]:
    """Each of ``fns`` ({name: fn}) run in turn, round after round, like timeit_pairs: for each,
    its wall times and its process CPU times (all threads; on a shared machine the CPU time is
    what the work costs, the wall time also holds the waits for a core)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name]["wall"].append(time.perf_counter() - t0)
            times[name]["cpu"].append(time.process_time() - c0)
    return times


def median(xs) -> float:
    return statistics.median(xs)


def official_networks(checkout: str):
    """The official networks module from a local checkout (imported for timing only)."""
    sys.path.insert(0, checkout)
    from training import networks  # noqa: E402
    return networks


def machine() -> str:
    import os
    import platform

    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {dev}"
