"""The start-up consistency check: find half-written records under the data root, move them aside.

    for line in check_data_root():       # the app and the worker call this once on start
        print(line)

Writes are atomic (temp file or ``.tmp-<id>`` folder, then rename), so a kill leaves at worst a
leftover temp beside whole records. This check finds

- leftover temp files (``.<name>.<random>.tmp`` of ``atomic_path``, ``*.tmp``, ``.tmp*``) and
  build folders (``.tmp-*``), and unfinished checkpoint imports (``checkpoints/imported/*.part``);
- dataset folders without readable ``meta.json``, packs without ``pack.json``;
- model folders without ``model.safetensors`` or a readable ``model.json``;
- run folders of experiments that have no record, and records whose run folder vanished;
- JSON indexes that cannot be read (datasets, models, public models, imported checkpoints);

and moves each to ``<root>/quarantine/<UTC timestamp>/<its path under the root>``. Nothing is
deleted, except that deletes a user asked for and a kill interrupted (``.trash-*``) are finished.
Indexes are then repaired from the records that are whole (``core.models.check_models`` does
this for models). Every action is one line of the returned report; an empty list means all is well.

Temp items that changed in the last ``grace_s`` seconds are left alone: another live process
(a worker, a CLI import) may be writing them. After a crash, pass ``grace_s=0``.
Resumable checkpoint downloads (``checkpoints/<name>.part``, ``checkpoints/imported/partial-*.part``)
are kept: they are meant to be resumed.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from .storage import atomic_write_json, data_root

__all__ = ["check_data_root", "DEFAULT_GRACE_S"]

DEFAULT_GRACE_S = 600.0
SKIP_TOP = {"quarantine", "queue"}      # quarantine itself; diskcache keeps its own SQLite journal


class _Quarantine:
    """Moves paths into one ``quarantine/<stamp>`` folder, created on first use, and keeps the report."""

    def __init__(self, root: Path):
        self.root, self.dest, self.lines = root, None, []

    def move(self, path: Path, why: str) -> None:
        if self.dest is None:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            base = self.root / "quarantine" / stamp
            dest, k = base, 1
            while dest.exists():
                k += 1
                dest = base.with_name(f"{stamp}-{k}")
            self.dest = dest
        rel = path.relative_to(self.root)
        target = self.dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, target)
        except FileNotFoundError:
            return   # gone meanwhile (finished by its writer)
        self.lines.append(f"quarantined {rel} ({why}) -> {target.relative_to(self.root)}")

    def say(self, line: str) -> None:
        self.lines.append(line)


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for n in dirnames + filenames:
                try:
                    newest = max(newest, os.lstat(os.path.join(dirpath, n)).st_mtime)
                except FileNotFoundError:
                    pass
    return newest


def _idle(path: Path, grace_s: float) -> bool:
    try:
        return time.time() - _newest_mtime(path) >= grace_s
    except FileNotFoundError:
        return False


def _is_temp(name: str) -> bool:
    return name.startswith(".tmp") or name.endswith(".tmp") or (name.startswith(".") and ".tmp" in name)


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---- generic: temp leftovers anywhere ----------------------------------------------------------

def _sweep_temps(root: Path, q: _Quarantine, grace_s: float) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d not in SKIP_TOP]
        for d in list(dirnames):
            if _is_temp(d) and _idle(here / d, grace_s):
                dirnames.remove(d)
                q.move(here / d, "half-written folder")
        for f in filenames:
            p = here / f
            if _is_temp(f) and _idle(p, grace_s):
                q.move(p, "half-written file")
            elif here.name == "imported" and here.parent.name == "checkpoints" and here.parent.parent == root \
                    and f.endswith(".part") and not f.startswith("partial-") and _idle(p, grace_s):
                q.move(p, "unfinished checkpoint import")


def _finish_trash(folder: Path, q: _Quarantine, grace_s: float) -> None:
    for p in sorted(folder.glob(".trash-*")):
        if _idle(p, grace_s):
            shutil.rmtree(p, ignore_errors=True)
            q.say(f"finished deleting {p.relative_to(q.root)} (a delete that was interrupted)")


# ---- datasets ----------------------------------------------------------------------------------

def _check_datasets(user: str, folder: Path, q: _Quarantine, grace_s: float) -> None:
    from .datasets import store
    from .datasets.common import DatasetError, validate_name
    _finish_trash(folder, q, grace_s)
    with store.locked(user):
        index_path = folder / "index.json"
        raw = _read(index_path) if index_path.exists() else {"names": {}}
        if not isinstance(raw, dict) or not isinstance(raw.get("names", {}), dict):
            q.move(index_path, "unreadable dataset index")
            raw = None
        names = {n: i for n, i in (raw or {}).get("names", {}).items() if isinstance(n, str) and isinstance(i, str)}
        whole = {}
        for p in sorted(folder.iterdir()):
            if not p.is_dir() or not store.ID_RE.fullmatch(p.name):
                continue
            meta = _read(p / "meta.json")
            if not isinstance(meta, dict) or meta.get("id") not in (None, p.name) \
                    or not isinstance(meta.get("name"), str):
                q.move(p, "dataset without readable meta.json")
                continue
            for pack in sorted((p / "packs").glob("*")) if (p / "packs").is_dir() else []:
                if pack.is_dir() and not pack.name.startswith(".") and not isinstance(_read(pack / "pack.json"), dict):
                    q.move(pack, "pack without pack.json")
            whole[p.name] = meta["name"]
        kept = {n: i for n, i in names.items() if i in whole}
        for n, i in names.items():
            if i not in whole:
                q.say(f"dropped dataset index entry {n!r} of user {user} ({i}: no whole dataset)")
        for i, name in whole.items():
            if i in kept.values():
                continue
            try:
                name = validate_name(name)
            except DatasetError:
                name = i
            base, k = name, 1
            while name in kept:
                k += 1
                name = f"{base} (recovered {k})"[:100]
            kept[name] = i
            q.say(f"re-indexed dataset {i} of user {user} as {name!r}")
        if raw is None or kept != names:
            atomic_write_json(index_path, {"names": kept})


# ---- models --------------------------------------------------------------------------------------

def _check_models(user: str, folder: Path, q: _Quarantine, grace_s: float) -> None:
    from . import models
    index_path = folder / "index.json"
    raw = _read(index_path) if index_path.exists() else {}
    if not isinstance(raw, dict) or not isinstance(raw.get("ids", []), list):
        q.move(index_path, "unreadable models index")
    for p in sorted(folder.iterdir()):
        if p.is_dir() and models.ID_RE.fullmatch(p.name):
            rec = _read(p / models.RECORD)
            if not isinstance(rec, dict) or rec.get("id") != p.name or not (p / models.WEIGHTS).is_file():
                q.move(p, f"model without {models.WEIGHTS} or a readable {models.RECORD}")
    for line in models.check_models(user, grace_s):
        q.say(f"models of {user}: {line}")


def _check_public_index(root: Path, users_dir: Path, q: _Quarantine) -> None:
    from . import models
    path = root / "public_models.json"
    if not path.exists() or isinstance(_read(path), dict):
        return
    with models.index_lock():
        q.move(path, "unreadable public models index")
        pub = {}
        for rec_path in sorted(users_dir.glob(f"*/models/*/{models.RECORD}")):
            rec = _read(rec_path)
            owner = rec_path.parent.parent.parent.name
            if isinstance(rec, dict) and rec.get("public") is True and rec.get("owner") == owner:
                pub[rec_path.parent.name] = owner
        atomic_write_json(path, pub)
    q.say(f"rebuilt public_models.json from the model records ({len(pub)} public)")


# ---- experiments ---------------------------------------------------------------------------------

def _check_experiments(root: Path, users_dir: Path, q: _Quarantine, grace_s: float) -> None:
    from .jobs import api, store
    if not store.queue_dir().is_dir():
        return  # no queue here (a fresh root, or ATELIER_QUEUE_DIR elsewhere): no record to judge run folders by
    records = store.all_records(store.cache())
    known = {(r.get("owner"), r.get("id")) for r in records}
    for run in sorted(users_dir.glob("*/experiments/*")):
        user = run.parent.parent.name
        if run.is_dir() and not run.name.startswith(".") and (user, run.name) not in known and _idle(run, grace_s):
            q.move(run, "run folder of an experiment that has no record")
    for rec in records:
        owner, exp_id = rec.get("owner"), rec.get("id")
        try:
            rd = store.run_dir(str(owner), str(exp_id))
        except ValueError:  # not a user name: nothing of it can be under the root
            continue
        if rd.is_dir():
            continue
        if rec.get("state") == "queued" and not rec.get("step"):
            rd.mkdir(parents=True, exist_ok=True)  # killed between queueing and making its folder: nothing lost
            q.say(f"made the missing run folder of queued experiment {exp_id} of {owner}")
            continue
        if rec.get("state") in store.RUNNING and not store.is_orphan(rec):
            continue  # a live worker holds it and makes its folder itself

        def mark(r):
            if r.get("state") in store.RUNNING and not store.is_orphan(r):
                return False
            r.update(state="failed", worker=None, eta_seconds=None, finished=time.time(),
                     error="Its run folder is missing (found by the start-up check): its snapshots are lost.")
        if store.update(exp_id, mark) is not None:
            rd.mkdir(parents=True, exist_ok=True)
            api.append_log(rec, "marked failed: the run folder was missing at start-up")
            q.say(f"marked experiment {exp_id} of {owner} failed: its run folder vanished")


# ---- imported checkpoints and the auth file ------------------------------------------------------

def _check_other_indexes(root: Path, q: _Quarantine) -> None:
    index = root / "checkpoints" / "imported" / "index.json"
    if index.exists() and not isinstance(_read(index), dict):
        q.move(index, "unreadable index of imported checkpoints; the files stay in users/<user>/checkpoints")
    auth = root / "users.json"
    if auth.exists() and not isinstance(_read(auth), dict):
        q.say("users.json (the auth file) cannot be read: left in place; nobody can sign in until it is fixed")


def check_data_root(*, grace_s: float = DEFAULT_GRACE_S) -> list[str]:
    """Quarantine half-written records under the data root and repair the indexes; report each action."""
    root = data_root()
    q = _Quarantine(root)
    _sweep_temps(root, q, grace_s)
    _check_other_indexes(root, q)
    users_dir = root / "users"
    _check_public_index(root, users_dir, q)   # before the models: their check reads it
    user_names = sorted(p.name for p in users_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if users_dir.is_dir() else []
    for user in user_names:
        if (users_dir / user / "datasets").is_dir():
            _check_datasets(user, users_dir / user / "datasets", q, grace_s)
        if (users_dir / user / "models").is_dir():
            _check_models(user, users_dir / user / "models", q, grace_s)
    _check_experiments(root, users_dir, q, grace_s)
    return q.lines


def main() -> int:  # python -m core.integrity
    lines = check_data_root()
    for line in lines:
        print(line)
    print(f"{len(lines)} repair(s) under {data_root()}" if lines else f"{data_root()}: all records whole")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
