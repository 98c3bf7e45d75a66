"""Experiments as the UI and CLI see them: submit, list, show, stop, continue, delete, files.

Every function takes the acting user and checks ownership: another user's id raises the same
:class:`NotFound` as a missing one. Training itself happens only in a worker (``core.jobs.worker``).
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import time
from pathlib import Path

from .. import quota
from . import store
from .store import ACTIVE, RUNNING, JobsError, LimitReached, NotFound

DEFAULT_MAX_JOBS_PER_USER = 5
LOG_KEEP = 500
LOG_FILE = "log.txt"


def max_jobs_per_user() -> int:
    return int(os.environ.get("ATELIER_MAX_JOBS_PER_USER", DEFAULT_MAX_JOBS_PER_USER))


def _whole_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, (int, float)) or \
            (isinstance(steps, float) and not steps.is_integer()):
        raise JobsError(f"Steps must be a whole number, not {str(steps)[:40]!r}.")
    return int(steps)


def _options(options: dict | None, steps: int) -> dict:
    from ..stylegan.train_config import ConfigError, TrainConfig
    if options is not None and not isinstance(options, dict):
        raise JobsError("Training options must be a mapping of option names to values.")
    try:
        return TrainConfig.from_dict(dict(options or {}, steps=_whole_steps(steps))).to_dict()
    except (ConfigError, TypeError, ValueError) as e:
        raise JobsError(f"Invalid training option {str(e)[:200]}") from None


def _auto_snapshots(options, user: str, checkpoint, steps, allow_paths: bool):
    """``snapshot_every: 0`` = automatic: a snapshot every few minutes by the measured step time
    (``eta.auto_snapshot_every``); 250 steps while this machine has no figure for the model."""
    if not isinstance(options, dict) or options.get("snapshot_every") != 0:
        return options
    from ..checkpoints import CheckpointsError
    from . import eta
    try:
        est = eta.estimate_experiment(user, checkpoint, _whole_steps(steps), batch=options.get("batch") or None,
                                      precision=options.get("precision") or "auto", allow_paths=allow_paths)
        every = est["snapshot_every"]
    except (CheckpointsError, JobsError, TypeError, ValueError):
        every = eta.FALLBACK_SNAPSHOT_EVERY  # the checkpoint is refused below with its own message
    return dict(options, snapshot_every=every)


def _generator_bytes(checkpoint: Path) -> int:
    """Bytes of a checkpoint's G_ema without loading it: from a native file's header, else a third
    of the file (official files hold G, G_ema and D of about the same size). The header is read here
    rather than by stylegan.native.read_safetensors_header, which would load torch into the web app."""
    try:
        with open(checkpoint, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n)) if n <= 100_000_000 else {}
        sizes = [v["data_offsets"][1] - v["data_offsets"][0] for k, v in header.items() if k.startswith("G_ema.")]
        if sizes:
            return sum(sizes)
    except (OSError, struct.error, ValueError, KeyError, TypeError, AttributeError, IndexError):
        pass
    try:
        return checkpoint.stat().st_size // 3
    except OSError:
        return 0


def run_bytes_estimate(run_dir: Path, checkpoint: Path | None, done: int, total: int, snapshot_every: int) -> int:
    """About what training from step ``done`` to ``total`` adds to a run folder: a snapshot every
    ``snapshot_every`` steps, at the last step, and at step 0 of a new run, and the resumable state."""
    from ..stylegan import run_files
    ahead = total // snapshot_every - done // snapshot_every + (1 if total % snapshot_every else 0)
    new_run = not run_files.list_snapshots(run_dir)
    generator = _generator_bytes(checkpoint) if checkpoint is not None else 0
    return run_files.snapshot_bytes(run_dir, generator, snapshots=ahead + (1 if new_run else 0))


def _check_room(user: str, need_bytes: int, what: str) -> None:
    try:
        quota.check_room(user, need_bytes, what)
    except quota.QuotaError as e:
        raise JobsError(str(e)) from None


def submit_experiment(user: str, *, title: str, dataset: str, checkpoint: str, steps: int = 3000,
                      crop: str = "center", options: dict | None = None, max_jobs: int | None = None,
                      allow_paths: bool = False) -> str:
    """Queue a new experiment for ``user``; returns its opaque id. Raises LimitReached or JobsError.

    ``checkpoint`` is a catalog or imported name; a file path only with ``allow_paths=True`` (the CLI,
    run by whoever owns the server): a client must never point the worker at a file of its choice.
    A run whose snapshots would not fit in the user's storage quota is refused (JobsError)."""
    from .. import datasets
    from ..checkpoints import CheckpointsError, resolve_checkpoint
    if title is not None and not isinstance(title, str):
        raise JobsError("A title must be text.")
    title = (title or "").strip() or "Untitled experiment"
    if len(title) > 200:
        raise JobsError("A title can have at most 200 characters.")
    if not title.isprintable():
        raise JobsError("A title cannot contain control characters.")
    try:
        datasets.validate_crop(crop)
    except datasets.DatasetError as e:
        raise JobsError(str(e)) from None
    if not isinstance(checkpoint, str) or not isinstance(dataset, str):
        raise JobsError("Choose a dataset and a pre-trained model by name.")
    opts = _options(_auto_snapshots(options, user, checkpoint, steps, allow_paths), steps)
    try:
        ds = datasets.get_dataset(dataset, user)
    except datasets.DatasetError as e:
        raise JobsError(str(e)) from None
    try:
        checkpoint_path = resolve_checkpoint(checkpoint, user=user, allow_paths=allow_paths)
    except CheckpointsError as e:
        raise JobsError(str(e)) from None
    exp_id = store.new_id()
    _check_room(user, run_bytes_estimate(store.run_dir(user, exp_id), checkpoint_path, 0, opts["steps"],
                                         opts["snapshot_every"]), "this experiment")
    limit = max_jobs_per_user() if max_jobs is None else max_jobs
    now = time.time()
    rec = {"id": exp_id, "owner": user, "title": title, "dataset": ds["id"], "dataset_name": ds["name"],
           "checkpoint": str(checkpoint), "crop": crop, "steps": opts["steps"], "options": opts, "state": "queued",
           "step": 0, "eta_seconds": None, "sec_per_step": None, "created": now, "started": None,
           "finished": None, "error": None, "worker": None, "heartbeat": None, "resolution": None}
    with store.transaction() as c:
        active = sum(1 for r in store.all_records(c) if r["owner"] == user and r["state"] in ACTIVE)
        if active >= limit:
            raise LimitReached(f"You already have {active} experiments queued or running (the limit is {limit}): "
                               "wait for one to finish, or stop one.")
        rec["seq"] = store.next_seq(c)
        store.put(c, rec)
    store.run_dir(user, rec["id"]).mkdir(parents=True, exist_ok=True)
    append_log(rec, f"queued: {opts['steps']:,} steps from {checkpoint} on dataset {ds['name']!r}")
    return rec["id"]


def _public(rec: dict, positions: dict[str, int]) -> dict:
    out = {k: v for k, v in rec.items() if k not in ("seq",)}
    out["queue_position"] = positions.get(rec["id"])
    out["progress"] = rec["step"] / rec["steps"] if rec["steps"] else 0.0
    out["run_dir"] = str(store.run_dir(rec["owner"], rec["id"]))
    return out


def _owned(c, exp_id: str, user: str) -> dict:
    rec = store.get(c, str(exp_id)) if isinstance(exp_id, str) and exp_id.isalnum() else None
    if rec is None or rec["owner"] != user:
        raise NotFound(f"No experiment {str(exp_id)[:40]!r}.")
    return rec


def list_experiments(user: str) -> list[dict]:
    """Every experiment of ``user``, newest first, with ``queue_position`` for queued ones."""
    c = store.cache()
    records = store.all_records(c)
    positions = store.queue_positions(records)
    mine = [_public(r, positions) for r in records if r["owner"] == user]
    return sorted(mine, key=lambda r: r["created"], reverse=True)


def get_experiment(exp_id: str, user: str) -> dict:
    c = store.cache()
    rec = _owned(c, exp_id, user)
    positions = store.queue_positions(store.all_records(c)) if rec["state"] == "queued" else {}
    return _public(rec, positions)


def stop_experiment(exp_id: str, user: str) -> dict:
    """Queued: stopped at once. Running: the worker is asked to stop (state ``stopping``), writes a
    final snapshot and marks it ``stopped``. Already stopped/finished/failed: JobsError."""
    with store.transaction() as c:
        rec = _owned(c, exp_id, user)
        if rec["state"] == "queued":
            rec.update(state="stopped", finished=time.time(), eta_seconds=None)
        elif rec["state"] in ("preparing", "training"):
            store.set_abort(c, rec["id"])
            rec["state"] = "stopping"
        elif rec["state"] != "stopping":
            raise JobsError(f"The experiment is {rec['state']}, not running.")
        store.put(c, rec)
    append_log(rec, "stop requested")
    return get_experiment(exp_id, user)


def _check_room_to_continue(exp_id: str, user: str, steps) -> None:
    from ..checkpoints import CheckpointsError, resolve_checkpoint
    rec = get_experiment(exp_id, user)
    total = _whole_steps(steps if steps is not None else rec["steps"])
    if total <= rec["step"]:
        return  # refused below with its own message
    try:
        checkpoint = resolve_checkpoint(rec["checkpoint"], user=user)
    except CheckpointsError:
        checkpoint = None
    need = run_bytes_estimate(Path(rec["run_dir"]), checkpoint, rec["step"], total,
                              int(rec["options"].get("snapshot_every") or 1))
    _check_room(user, need, f"{total - rec['step']:,} more steps")


def continue_experiment(exp_id: str, user: str, steps: int | None = None, *, max_jobs: int | None = None) -> dict:
    """Requeue a stopped, finished or failed experiment; ``steps`` is the new total (more than done).
    More steps whose snapshots would not fit in the user's storage quota are refused (JobsError)."""
    _check_room_to_continue(exp_id, user, steps)
    limit = max_jobs_per_user() if max_jobs is None else max_jobs
    with store.transaction() as c:
        rec = _owned(c, exp_id, user)
        if rec["state"] in ACTIVE:
            raise JobsError(f"The experiment is already {rec['state']}.")
        total = _whole_steps(steps if steps is not None else rec["steps"])
        if total <= rec["step"]:
            raise JobsError(f"It has done {rec['step']:,} steps already: ask for more than that.")
        opts = _options(rec["options"], total)
        active = sum(1 for r in store.all_records(c) if r["owner"] == user and r["state"] in ACTIVE)
        if active >= limit:
            raise LimitReached(f"You already have {active} experiments queued or running (the limit is {limit}): "
                               "wait for one to finish, or stop one.")
        store.set_abort(c, rec["id"], False)
        rec.update(state="queued", steps=total, options=opts, error=None, finished=None, eta_seconds=None,
                   worker=None, seq=store.next_seq(c))
        store.put(c, rec)
    append_log(rec, f"continued: queued for {total:,} steps in all")
    return get_experiment(exp_id, user)


def delete_experiment(exp_id: str, user: str, *, stop: bool = False, wait_s: float = 60.0) -> dict:
    """Delete the record and every file of it. Refused while running unless ``stop``: then it is
    stopped first (waiting up to ``wait_s`` for the final snapshot). Returns what was deleted."""
    if stop and get_experiment(exp_id, user)["state"] in RUNNING:
        stop_experiment(exp_id, user)
        deadline = time.monotonic() + wait_s
        while get_experiment(exp_id, user)["state"] in RUNNING:
            if time.monotonic() > deadline:
                raise JobsError("The experiment did not stop in time; try deleting it again in a moment.")
            time.sleep(0.2)
    with store.transaction() as c:
        rec = _owned(c, exp_id, user)
        if rec["state"] in RUNNING:
            raise JobsError(f"The experiment is {rec['state']}: stop it before deleting it.")
        c.delete(f"exp:{rec['id']}")
        store.set_abort(c, rec["id"], False)
    shutil.rmtree(store.run_dir(user, rec["id"]), ignore_errors=True)
    return _public(rec, {})


# ---- files of a run ---------------------------------------------------------------------------

def experiment_snapshots(exp_id: str, user: str) -> list[dict]:
    """[{step, image_path, weights_path, wall_time}] ascending; wall_time is the grid file's mtime."""
    from ..stylegan import run_files
    rd = Path(get_experiment(exp_id, user)["run_dir"])
    out = []
    for step in run_files.list_snapshots(rd):
        weights, png = run_files.snapshot_paths(rd, step)
        try:
            out.append({"step": step, "image_path": str(png), "weights_path": str(weights),
                        "wall_time": png.stat().st_mtime})
        except FileNotFoundError:  # removed by a resume meanwhile
            continue
    return out


def nearest_snapshot(snaps: list[dict], step: int) -> dict | None:
    """The snapshot of ``snaps`` (as experiment_snapshots gives them) closest to ``step``; the later one on a tie."""
    return min(snaps, key=lambda s: (abs(s["step"] - step), -s["step"])) if snaps else None


def experiment_snapshot(exp_id: str, user: str, step: int) -> dict | None:
    """The experiment's snapshot closest to ``step`` (None before the first one)."""
    return nearest_snapshot(experiment_snapshots(exp_id, user), int(step))


def experiment_stats(exp_id: str, user: str) -> list[dict]:
    """The stats.jsonl records (loss_G, loss_D, r1, ada_p, sec_per_step by step)."""
    from ..stylegan import run_files
    return run_files.read_stats(Path(get_experiment(exp_id, user)["run_dir"]))


def experiment_log(exp_id: str, user: str, tail: int = 200) -> list[str]:
    path = Path(get_experiment(exp_id, user)["run_dir"]) / LOG_FILE
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return lines[-tail:] if tail else lines


def append_log(rec: dict, line: str) -> None:
    """Append a timestamped line to the run's log.txt, keeping about the last LOG_KEEP lines."""
    from ..storage import atomic_write_bytes
    path = store.run_dir(rec["owner"], rec["id"]) / LOG_FILE
    if not path.parent.exists():
        return  # deleted meanwhile
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    text = "".join(f"{stamp} {part}\n" for part in str(line).splitlines() or [""])
    with open(path, "a") as f:
        f.write(text)
    if path.stat().st_size > LOG_KEEP * 400:
        lines = path.read_text(errors="replace").splitlines(keepends=True)
        if len(lines) > 2 * LOG_KEEP:
            atomic_write_bytes(path, "".join(lines[-LOG_KEEP:]).encode())


__all__ = ["submit_experiment", "list_experiments", "get_experiment", "stop_experiment", "continue_experiment",
           "delete_experiment", "experiment_snapshots", "nearest_snapshot", "experiment_snapshot", "experiment_stats",
           "experiment_log", "append_log", "JobsError", "NotFound", "LimitReached", "max_jobs_per_user"]
