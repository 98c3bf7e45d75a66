"""Experiment records in the diskcache queue under the data root, and worker leases.

    <root>/queue/                       diskcache: exp:<id> -> record, abort:<id> -> True, seq -> int,
                                        served -> {owner: time of their last claim} (fair share)
    <root>/users/<owner>/experiments/<id>/   run folder (snapshots, stats, state, log.txt)

Every read-modify-write of a record happens in ``cache.transact()`` (an SQLite ``BEGIN IMMEDIATE``),
so claims, stops and deletes by several processes never interleave.

The queue's backend is what ``cache()`` returns: a transactional key-value store with ``get``,
``set``, ``delete``, ``incr``, ``iterkeys`` and ``transact()`` (diskcache's Cache, embedded, in
``<root>/queue`` or ``ATELIER_QUEUE_DIR``). SQLite needs a local disk: with the data root on a
network file system, put the queue on a local one (ATELIER_QUEUE_DIR) and run the workers on
that machine, or put a server-grade store with this interface here (docs/scaling.md). A record whose worker is
gone (its pid is dead on this host, or its heartbeat is older than the lease) is an orphan.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import diskcache

from ..storage import data_root, user_dir

STATES = ("queued", "preparing", "training", "stopping", "stopped", "finished", "failed")
ACTIVE = ("queued", "preparing", "training", "stopping")   # count against the per-user limit
RUNNING = ("preparing", "training", "stopping")            # held by a worker
DEFAULT_LEASE_S = 60.0
_caches: dict[str, diskcache.Cache] = {}
_caches_lock = threading.Lock()
LIVE_WORKERS: set[str] = set()   # ids of Worker objects running in this process


class JobsError(Exception):
    """A request about an experiment that cannot be done; the message is one line for a person."""


class NotFound(JobsError, LookupError):
    """No such experiment for this user (another user's id reads the same as a missing one)."""


class LimitReached(JobsError):
    """The user already has the maximum number of experiments queued or running."""


def queue_dir() -> Path:
    """Where the queue lives: ATELIER_QUEUE_DIR, else <data root>/queue."""
    return Path(os.environ.get("ATELIER_QUEUE_DIR") or data_root() / "queue")


def cache() -> diskcache.Cache:
    """The queue cache of the current data root (one handle per root and process)."""
    path = str(queue_dir())
    with _caches_lock:
        c = _caches.get(path)
        if c is None:
            c = _caches[path] = diskcache.Cache(path, timeout=60)
        return c


def new_id() -> str:
    return uuid.uuid4().hex


def run_dir(owner: str, exp_id: str) -> Path:
    return user_dir(owner, "experiments") / exp_id


def lease_seconds() -> float:
    return float(os.environ.get("ATELIER_JOB_LEASE_S", DEFAULT_LEASE_S))


@contextmanager
def transaction():
    c = cache()
    with c.transact():
        yield c


def get(c, exp_id: str) -> dict | None:
    return c.get(f"exp:{exp_id}")


def put(c, rec: dict) -> None:
    rec["updated"] = time.time()
    c.set(f"exp:{rec['id']}", rec)


def all_records(c) -> list[dict]:
    out = []
    for key in list(c.iterkeys()):
        if isinstance(key, str) and key.startswith("exp:"):
            rec = c.get(key)
            if rec is not None:
                out.append(rec)
    return out


def next_seq(c) -> int:
    return int(c.incr("seq", 1, default=0))


def update(exp_id: str, fn) -> dict | None:
    """Apply ``fn(rec)`` (which edits in place, or returns False to leave it) atomically."""
    with transaction() as c:
        rec = get(c, exp_id)
        if rec is None or fn(rec) is False:
            return rec
        put(c, rec)
        return rec


def set_abort(c, exp_id: str, on: bool = True) -> None:
    if on:
        c.set(f"abort:{exp_id}", True)
    else:
        c.delete(f"abort:{exp_id}")


def abort_requested(exp_id: str) -> bool:
    return bool(cache().get(f"abort:{exp_id}", False))


# ---- fair share --------------------------------------------------------------------------------

def served_times(c) -> dict[str, float]:
    """{owner: when a worker last claimed one of their experiments}."""
    return dict(c.get("served", None) or {})


def mark_served(c, owner: str, when: float) -> None:
    served = served_times(c)
    served[owner] = when
    c.set("served", served)


def claim_order(records: list[dict], served: dict[str, float]) -> list[dict]:
    """The queued records in the order workers claim them: round-robin across users (fair share).

    The next claim goes to the user with the fewest experiments running now; among equals, to the
    user served longest ago (``served``: never served comes first), then to the user whose oldest
    queued experiment is oldest. Within a user, experiments go first in, first out (queue number).
    Past the first, the order assumes one worker: users take turns in the same way.
    """
    by_user: dict[str, list[dict]] = {}
    for r in sorted((r for r in records if r["state"] == "queued"), key=lambda r: r["seq"]):
        by_user.setdefault(r["owner"], []).append(r)
    running: dict[str, int] = {}
    for r in records:
        if r["state"] in RUNNING:
            running[r["owner"]] = running.get(r["owner"], 0) + 1
    last = {u: float(t) for u, t in served.items()}
    turn = max(last.values(), default=0.0)
    order: list[dict] = []
    while by_user:
        first = not order

        def key(user: str) -> tuple:
            return (running.get(user, 0) if first else 0, last.get(user, float("-inf")), by_user[user][0]["seq"])

        user = min(by_user, key=key)
        order.append(by_user[user].pop(0))
        if not by_user[user]:
            del by_user[user]
        turn += 1.0
        last[user] = turn
    return order


def queue_positions(records: list[dict], served: dict[str, float] | None = None) -> dict[str, int]:
    """1-based position of each queued record in the claim order (:func:`claim_order`)."""
    order = claim_order(records, served_times(cache()) if served is None else served)
    return {r["id"]: i for i, r in enumerate(order, 1)}


# ---- worker identity and liveness -------------------------------------------------------------

def proc_start(pid: int) -> str | None:
    """The process start time from /proc (to tell a reused pid apart), or None off Linux."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def worker_identity(worker_id: str, device: str) -> dict:
    pid = os.getpid()
    return {"id": worker_id, "pid": pid, "host": socket.gethostname(), "start": proc_start(pid), "device": device}


def pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start is None or proc_start(pid) in (None, start)


def is_orphan(rec: dict, now: float | None = None, lease_s: float | None = None) -> bool:
    """A running record whose worker is dead (same host) or silent for longer than the lease."""
    if rec["state"] not in RUNNING:
        return False
    w = rec.get("worker") or {}
    now = time.time() if now is None else now
    if now - float(rec.get("heartbeat") or 0) > (lease_s or lease_seconds()):
        return True
    if w.get("host") == socket.gethostname() and w.get("pid"):
        if w["pid"] == os.getpid():
            return w.get("id") not in LIVE_WORKERS
        return not pid_alive(int(w["pid"]), w.get("start"))
    return False


def one_line(e: BaseException) -> str:
    text = f"{e}".strip().splitlines()
    msg = text[0] if text else type(e).__name__
    if "out of memory" in msg.lower() or type(e).__name__ == "OutOfMemoryError":
        return "Out of memory on the device: try a smaller batch (Advanced options)."
    if isinstance(e, (KeyError, AttributeError, TypeError, IndexError, NameError, AssertionError)):
        return f"{type(e).__name__}: {msg}"
    return msg
