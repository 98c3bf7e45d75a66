"""Which devices a worker may run an experiment on: one worker per device shares the queue.

An experiment asks for ``devices`` (its options; default 1) of a kind (its ``device`` option:
``auto`` takes the worker's kind; ``cpu``, ``cuda``, ``mps`` only workers of that kind).

- A CPU worker runs any CPU experiment: ``devices: N`` is N processes on its CPU.
- A GPU worker (``worker --device cuda:K``) runs a one-device experiment on its own GPU, and an
  N-device one on its GPU and N - 1 others of this machine that no running experiment holds.
  Another worker whose GPU is so taken claims nothing until the experiment ends.
- Workers claim in the queue's claim order (fair share across users: store.claim_order), and
  hold the line: when the next experiment this worker could run on this machine waits for
  devices, it claims nothing behind it (a multi-device experiment is not starved by one-device
  ones). Experiments it can never run (another kind,
  more GPUs than this machine has) are left to other workers.
"""
from __future__ import annotations

import os
import socket
from functools import lru_cache

from .store import RUNNING


@lru_cache(maxsize=1)
def machine_devices() -> tuple[str, ...]:
    """This machine's training devices: its CUDA GPUs, else Apple's MPS, else the CPU."""
    import torch
    if torch.cuda.is_available():
        return tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    if torch.backends.mps.is_available():
        return ("mps",)
    return ("cpu",)


def normalise(device: str) -> str:
    """A worker's device with its index: ``cuda`` is ``cuda:0``."""
    return "cuda:0" if device == "cuda" else device


def wanted(rec: dict) -> tuple[str, int]:
    """(kind, count) an experiment asks for."""
    options = rec.get("options") or {}
    return str(options.get("device") or "auto").split(":")[0], int(options.get("devices") or 1)


def held_devices(records: list[dict], host: str | None = None) -> set[str]:
    """Devices of ``host`` (this machine) that running experiments hold."""
    host = host or socket.gethostname()
    held = set()
    for rec in records:
        w = rec.get("worker") or {}
        if rec["state"] in RUNNING and w.get("host") == host:
            held.update(w.get("devices") or [normalise(str(w.get("device")))])
    return held


def plan(rec: dict, device: str, held: set[str], gpus: int) -> list[str] | None | bool:
    """The devices a worker on ``device`` would run ``rec`` on now; None when it must wait for
    them; False when it can never run it on this machine."""
    kind, count = wanted(rec)
    mine = device.split(":")[0]
    if kind not in ("auto", mine) or (mine == "mps" and count > 1) or (mine == "cuda" and count > gpus):
        return False
    if mine == "cpu":
        return ["cpu"]
    if device in held:
        return None
    free = [f"cuda:{i}" for i in range(gpus) if f"cuda:{i}" not in held and f"cuda:{i}" != device]
    if mine != "cuda" or count == 1:
        return [device]
    return [device] + free[:count - 1] if len(free) >= count - 1 else None


def first_fit(order: list[dict], device: str, records: list[dict], gpus: int) -> tuple | None:
    """(record, devices) of the first experiment in ``order`` a worker on ``device`` may run now
    (``gpus``: this machine's), or None."""
    held = held_devices(records)
    for rec in order:
        devices = plan(rec, device, held, gpus)
        if devices is False:
            continue
        return (rec, devices) if devices else None
    return None


def visible_indices(devices: list[str]) -> str:
    """CUDA_VISIBLE_DEVICES for a group on ``devices`` (indices as this process sees them)."""
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.split(":")[1] for d in devices]
    if seen:
        physical = [s.strip() for s in seen.split(",")]
        ids = [physical[int(i)] for i in ids]
    return ",".join(ids)
