"""Per-user storage quotas: how much of the data root one user's datasets, experiments, models
and imported checkpoints may take, so that one user of a shared Atelier cannot fill the disk.

    check_room("alice", 2_000_000_000, "this dataset")   # QuotaExceeded (one sentence) if it does not fit
    usage_bytes("alice")                                 # what her files take now
    set_quota("alice", 200)                              # GB; 0 = no limit; None = back to the default

The quota is ``ATELIER_USER_QUOTA_GB`` (default 50, ``0`` = no limit) unless the user has an
override in ``<data root>/quotas.json``. Usage is the apparent size of every file under
``users/<user>/`` (datasets, experiments, models, imported checkpoints), each inode once (hard
links count once, symbolic links are not followed). A check is made before each write, not a reservation: two
operations started at the same moment may both pass and together overshoot by one operation.
Standard library only: the UI imports this.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .storage import atomic_write_json, data_root, file_lock, human_bytes, read_json, user_root

__all__ = ["QuotaError", "QuotaExceeded", "Room", "ENV_VAR", "DEFAULT_GB", "quota_bytes", "default_quota_bytes",
           "usage_bytes", "room", "check_room", "set_quota", "overrides", "parse_gb", "limit_text", "usage_text",
           "storage_line"]

ENV_VAR = "ATELIER_USER_QUOTA_GB"
DEFAULT_GB = 50.0
GB = 1000 ** 3
OVERRIDES_FILE = "quotas.json"


class QuotaError(ValueError):
    """A quota setting that cannot be used; the message is one line."""


class QuotaExceeded(QuotaError):
    """An operation would take a user past their quota; the message is one sentence for them."""


# ----------------------------------------------------------------------------------------------
# The quota

def parse_gb(value, label: str = "The quota") -> float:
    """A quota in GB from text or a number: finite and >= 0 (0 = no limit)."""
    try:
        gb = float(value)
    except (TypeError, ValueError):
        gb = math.nan
    if not math.isfinite(gb) or gb < 0:
        raise QuotaError(f"{label} must be a number of GB, 0 or more (0 = no limit), not {str(value)[:40]!r}")
    return gb


def _bytes_or_unlimited(gb: float) -> int | None:
    return None if gb == 0 else int(round(gb * GB))


def default_quota_bytes() -> int | None:
    """``ATELIER_USER_QUOTA_GB`` in bytes (default 50 GB); None for no limit."""
    text = os.environ.get(ENV_VAR, "").strip()
    return _bytes_or_unlimited(parse_gb(text, ENV_VAR) if text else DEFAULT_GB)


def _overrides_path() -> Path:
    return data_root() / OVERRIDES_FILE


def _read_overrides(strict: bool) -> dict[str, int]:
    try:
        data = read_json(_overrides_path(), {})
    except (OSError, ValueError):
        if strict:
            raise QuotaError(f"{_overrides_path()} cannot be read: fix or remove it first") from None
        return {}
    users = data.get("users") if isinstance(data, dict) else None
    return {name: n for name, n in (users if isinstance(users, dict) else {}).items()
            if isinstance(name, str) and isinstance(n, int) and not isinstance(n, bool) and n >= 0}


def overrides() -> dict[str, int]:
    """{user: bytes} of every per-user quota (0 = no limit). An unreadable file counts as none."""
    return _read_overrides(strict=False)


def quota_bytes(user: str) -> int | None:
    """The user's quota in bytes, None for no limit."""
    own = overrides().get(user)
    if own is not None:
        return None if own == 0 else own
    return default_quota_bytes()


def set_quota(user: str, gb: float | None) -> None:
    """Give ``user`` their own quota in GB (0 = no limit), or ``None`` to go back to the default."""
    user_root(user)  # the same name check as every per-user folder
    limit = None if gb is None else int(round(parse_gb(gb) * GB))
    with file_lock(data_root() / ".quotas.lock"):
        users = _read_overrides(strict=True)
        if limit is None:
            users.pop(user, None)
        else:
            users[user] = limit
        atomic_write_json(_overrides_path(), {"format_version": 1, "users": users})


# ----------------------------------------------------------------------------------------------
# Usage

def _count_once(st: os.stat_result, seen: set) -> int:
    key = (st.st_dev, st.st_ino)
    if key in seen:
        return 0
    seen.add(key)
    return st.st_size


def _tree_bytes(top: Path, seen: set) -> int:
    total, folders = 0, [str(top)]
    while folders:
        try:
            with os.scandir(folders.pop()) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed while we walked
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += _count_once(entry.stat(follow_symlinks=False), seen)
            except FileNotFoundError:
                continue
    return total


def usage_bytes(user: str) -> int:
    """Bytes of the user's files (everything under ``users/<user>/``), each inode once."""
    return _tree_bytes(user_root(user), set())


# ----------------------------------------------------------------------------------------------
# Checks

def limit_text(limit: int) -> str:
    """``50 GB`` rather than ``50.0 GB`` for a round quota."""
    return human_bytes(limit).replace(".0 ", " ")


@dataclass(frozen=True)
class Room:
    """A user's usage and quota, measured once; ``check(need)`` refuses what would not fit.

    Measure once and check many times when an operation learns its size as it goes (a download
    without a length, an import that decodes videos)."""
    what: str
    used: int
    limit: int | None

    def fits(self, need_bytes: int) -> bool:
        return self.limit is None or self.used + max(int(need_bytes), 0) <= self.limit

    def check(self, need_bytes: int) -> None:
        if not self.fits(need_bytes):
            raise QuotaExceeded(f"Not enough storage for {self.what} (it needs about {human_bytes(max(int(need_bytes), 0))}): "
                                f"you use {human_bytes(self.used)} of your {limit_text(self.limit)}; "
                                "delete a dataset, experiment or model first.")


def room(user: str, what: str) -> Room:
    """The user's room for ``what`` (a phrase such as "this dataset"); no disk walk without a limit."""
    limit = quota_bytes(user)
    return Room(what, usage_bytes(user) if limit is not None else 0, limit)


def check_room(user: str, need_bytes: int, what: str) -> None:
    """Raise :class:`QuotaExceeded` when ``need_bytes`` more would take ``user`` past their quota."""
    room(user, what).check(need_bytes)


def snapshot_guard(user: str):
    """train()'s ``before_snapshot`` for a run of ``user``: the reason the next snapshot would not fit
    their quota, or None."""
    def before_snapshot(need_bytes: int) -> str | None:
        try:
            check_room(user, need_bytes, "the next snapshot")
        except QuotaExceeded as e:
            return str(e)
        return None
    return before_snapshot


def usage_text(user: str) -> str:
    """``1.2 GB of 50 GB``, or ``1.2 GB (no limit)``."""
    limit = quota_bytes(user)
    used = human_bytes(usage_bytes(user))
    return f"{used} (no limit)" if limit is None else f"{used} of {limit_text(limit)}"


def storage_line(user: str) -> str:
    """``Storage: 1.2 GB of 50 GB``: the user's one line in the app."""
    return f"Storage: {usage_text(user)}"
