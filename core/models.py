"""My Models: snapshots a user keeps, with provenance, private by default, public on request.

    <root>/users/<user>/models/index.json          {"ids": [model ids]}: the user's own models
    <root>/users/<user>/models/<id>/model.safetensors   the native G_ema file (a copy of the snapshot)
    <root>/users/<user>/models/<id>/grid.png       the sample grid
    <root>/users/<user>/models/<id>/model.json     the record: name, created, provenance, public
    <root>/public_models.json                      {"<id>": "<owner>"}: every public model
    <root>/public_copies/<id>.safetensors          what others download of a public model (see below)

Ids are opaque (uuid4 hex). An id from a client is checked against ``^[0-9a-f]{32}$`` and looked up
in the user's own index or in the public index before any path is built from it. A model the
user may not read is reported exactly like a missing one (:class:`ModelNotFound`). A model folder
is written in full under a temporary name and renamed into place, then added to the index, so a
kill leaves either no model or a whole one (at worst an unindexed folder, see ``check_models``).

Others see of a public model only ``PUBLIC_FIELDS`` (and its base model when that is a catalog
checkpoint): never the owner's experiment id, dataset, crop or imported checkpoint names. What
they download is a copy whose metadata keeps only ``PUBLIC_FILE_METADATA`` (made on the first
download, removed when the model is made private or deleted); the owner downloads the native file.
"""
from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from . import quota
from .storage import (DEFAULT_USER, atomic_path, atomic_write_json, data_root, download_name, file_lock, read_json,
                      user_dir)

__all__ = ["ModelError", "ModelNotFound", "ModelNotOwner", "save_model", "save_snapshot", "snapshot_provenance",
           "list_models", "get_model", "index_lock", "PROVENANCE",
           "rename_model", "set_public", "delete_model", "model_weights_path", "model_grid_path",
           "download_path", "export_model", "validate_name", "check_models", "DEFAULT_USER", "PUBLIC_FIELDS"]

ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_NAME = 80
TEMP_GRACE_S = 600        # a temp folder younger than this may be a save in progress elsewhere
WEIGHTS, GRID, RECORD = "model.safetensors", "grid.png", "model.json"
GRID_SEEDS = (0, 1, 2, 3)
# What someone else sees of a public model, and what its downloaded file keeps of the training metadata.
PUBLIC_FIELDS = ("id", "name", "owner", "public", "created", "resolution", "step", "steps", "bytes")
PUBLIC_FILE_METADATA = ("step", "kimg", "w_avg_missing", "w_avg_estimated")


class ModelError(Exception):
    """A refused model operation; the message is one line for the user."""


class ModelNotFound(ModelError):
    """No such model, or one the user may not read (the same error for both)."""


class ModelNotOwner(ModelError):
    """A public model of someone else: readable, but only its owner may change it."""


# ----------------------------------------------------------------------------------------------
# Names, ids, locations

def validate_name(name) -> str:
    """The trimmed display name; 1-80 printable characters. Path-like text is fine: never a path."""
    if not isinstance(name, str):
        raise ModelError("The model name must be text")
    name = name.strip()
    if not name:
        raise ModelError("The model name is empty")
    if len(name) > MAX_NAME:
        raise ModelError(f"The model name is too long ({len(name)} characters; at most {MAX_NAME})")
    if "\0" in name or not name.isprintable():
        raise ModelError("The model name holds control characters")
    return name


def _check_id(model_id) -> str:
    if not isinstance(model_id, str) or not ID_RE.fullmatch(model_id):
        raise ModelNotFound("No such model")
    return model_id


def _models_dir(user: str) -> Path:
    try:
        return user_dir(user, "models")
    except ValueError:
        raise ModelNotFound("No such model") from None


def _index_path(user: str) -> Path:
    return _models_dir(user) / "index.json"


def _public_index_path() -> Path:
    return data_root() / "public_models.json"


def _own_ids(user: str) -> list[str]:
    ids = (read_json(_index_path(user), {}) or {}).get("ids", [])
    return [i for i in ids if isinstance(i, str) and ID_RE.fullmatch(i)]


def _public_copy_path(model_id: str) -> Path:
    return data_root() / "public_copies" / f"{model_id}.safetensors"


def _public_index() -> dict[str, str]:
    idx = read_json(_public_index_path(), {}) or {}
    return {k: v for k, v in idx.items() if isinstance(k, str) and ID_RE.fullmatch(k) and isinstance(v, str)}


def _untouched_for(folder: Path, seconds: float) -> bool:
    """Nothing in ``folder`` (one level: a model folder is flat) changed in the last ``seconds``."""
    try:
        newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.iterdir()])
    except FileNotFoundError:
        return False
    return time.time() - newest >= seconds


def index_lock():
    """One writer at a time for the model indexes, own and public (threads and processes alike)."""
    return file_lock(data_root() / ".models.lock")


def _folder(owner: str, model_id: str) -> Path:
    return _models_dir(owner) / _check_id(model_id)


def _read_record(owner: str, model_id: str) -> dict:
    rec = read_json(_folder(owner, model_id) / RECORD)
    if not isinstance(rec, dict) or rec.get("id") != model_id:
        raise ModelNotFound("No such model")
    return rec


def _locate(model_id, user: str) -> tuple[str, dict]:
    """(owner, record) of a model ``user`` may read; ModelNotFound otherwise."""
    model_id = _check_id(model_id)
    if model_id in _own_ids(user):
        return user, _read_record(user, model_id)
    owner = _public_index().get(model_id)
    if owner is not None and owner != user:
        try:
            rec = _read_record(owner, model_id)
        except (ModelNotFound, ValueError):
            raise ModelNotFound("No such model") from None
        if rec.get("public") is True and rec.get("owner") == owner:
            return owner, rec
    raise ModelNotFound("No such model")


def _own(model_id, user: str) -> dict:
    """The record of a model ``user`` owns; ModelNotOwner for someone else's public one."""
    model_id = _check_id(model_id)
    if model_id in _own_ids(user):
        return _read_record(user, model_id)
    _locate(model_id, user)  # raises ModelNotFound unless readable
    raise ModelNotOwner("Only the owner can change this model")


def _shown(rec: dict, mine: bool) -> dict:
    """The record as its reader may see it: all of it for the owner, the public fields for others."""
    if mine:
        return dict(rec)
    from .checkpoints import find_entry
    out = {k: rec[k] for k in PUBLIC_FIELDS if k in rec}
    if find_entry(rec.get("base_model")) is not None:  # an imported checkpoint's name is private
        out["base_model"] = rec["base_model"]
    return out


def _view(rec: dict, owner: str, user: str) -> dict:
    out = _shown(rec, owner == user)
    folder = _folder(owner, rec["id"])
    out.update(owner=owner, mine=(owner == user), weights_path=str(folder / WEIGHTS),
               grid_path=str(folder / GRID) if (folder / GRID).is_file() else None)
    return out


# ----------------------------------------------------------------------------------------------
# Save

def _render_grid(weights_path: Path, dest: Path) -> None:
    import numpy as np

    from .stylegan import load_checkpoint
    from .stylegan.images import generate_images, make_grid
    ckpt = load_checkpoint(weights_path, "cpu")
    imgs = [img for _, img in generate_images(ckpt.G_ema, GRID_SEEDS, noise_mode="const", batch=4)]
    with atomic_path(dest) as tmp:
        make_grid(np.stack(imgs)).save(tmp, format="PNG")


PROVENANCE = ("base_model", "dataset", "dataset_id", "steps", "step", "experiment")


def _scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool))


def snapshot_provenance(meta: dict) -> dict:
    """The PROVENANCE fields of a model from a snapshot's ``read_native_metadata``: the trainer writes
    the run's provenance at the top of every snapshot's metadata (``checkpoint`` is the base model),
    with its step and config."""
    file_meta = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
    config = file_meta.get("config") if isinstance(file_meta.get("config"), dict) else {}
    found = dict(file_meta, base_model=file_meta.get("checkpoint"), steps=config.get("steps"))
    return {k: found[k] if _scalar(found.get(k)) else None for k in PROVENANCE}


def save_model(user: str, *, weights_path, name: str, source: dict | None = None,
               grid_path=None) -> str:
    """Copy a native snapshot into the user's models; return the new model id.

    The provenance (``experiment`` id, ``step``, ``dataset``, ``dataset_id``, ``base_model``,
    ``steps``: the run's planned steps) is what the trainer wrote into the snapshot
    (:func:`snapshot_provenance`), or, for a file that does not say, ``source`` as given (its
    other keys are kept under ``source``). The sample grid is ``grid_path``, else the snapshot's
    own ``step-N.png`` beside it, else rendered here. A copy that would take the user past their
    storage quota is refused before anything is written.
    """
    from .stylegan import CheckpointError, read_native_metadata
    name = validate_name(name)
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise ModelError("The snapshot's weights file is missing")
    try:
        meta = read_native_metadata(weights_path)
    except CheckpointError as e:
        raise ModelError(f"Not a model snapshot: {e}") from None
    source = dict(source or {})
    provenance = snapshot_provenance(meta) if not source else \
        {k: source[k] if _scalar(source.get(k)) else None for k in PROVENANCE}
    model_id = uuid.uuid4().hex
    record = {
        "id": model_id, "owner": user, "name": name, "public": False,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "resolution": (meta.get("g_kwargs") or {}).get("img_resolution"), **provenance,
        "bytes": weights_path.stat().st_size,
        "source": {k: v for k, v in source.items() if v is None or _scalar(v)},
    }
    models = _models_dir(user)
    grid = Path(grid_path) if grid_path else weights_path.with_suffix(".png")
    try:
        quota.check_room(user, record["bytes"] + (grid.stat().st_size if grid.is_file() else 0), "this model")
    except quota.QuotaError as e:
        raise ModelError(str(e)) from None
    tmp = models / f".tmp-{model_id}"
    tmp.mkdir()
    try:
        shutil.copyfile(weights_path, tmp / WEIGHTS)
        with open(tmp / WEIGHTS, "rb+") as f:
            os.fsync(f.fileno())
        if grid.is_file():
            shutil.copyfile(grid, tmp / GRID)
        else:
            _render_grid(tmp / WEIGHTS, tmp / GRID)
        atomic_write_json(tmp / RECORD, record)
        os.rename(tmp, models / model_id)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    with index_lock():
        ids = _own_ids(user)  # a concurrent check_models may have indexed the new folder already
        atomic_write_json(_index_path(user), {"ids": ids + [model_id] if model_id not in ids else ids})
    return model_id


def save_snapshot(exp_id: str, step: int, name: str, user: str) -> dict:
    """Save the snapshot of the user's experiment ``exp_id`` nearest ``step`` to their models, with the
    provenance the trainer wrote into it; returns the new model as :func:`get_model` does. Raises
    ``core.jobs.NotFound`` for an experiment that is not the user's, ModelError when it has no snapshot."""
    from .jobs import experiment_snapshot
    snap = experiment_snapshot(exp_id, user, step)
    if snap is None:
        raise ModelError("There is no snapshot to save yet.")
    return get_model(save_model(user, weights_path=snap["weights_path"], name=name), user)


# ----------------------------------------------------------------------------------------------
# Read

def list_models(user: str, include_public: bool = True) -> list[dict]:
    """The user's models, then (``include_public``) others' public ones; newest first in each."""
    mine, others = [], []
    for model_id in _own_ids(user):
        try:
            mine.append(_view(_read_record(user, model_id), user, user))
        except ModelNotFound:
            continue
    if include_public:
        for model_id, owner in _public_index().items():
            if owner == user:
                continue
            try:
                owner_, rec = _locate(model_id, user)
            except ModelNotFound:
                continue
            others.append(_view(rec, owner_, user))
    key = lambda r: r.get("created") or ""  # noqa: E731
    return sorted(mine, key=key, reverse=True) + sorted(others, key=key, reverse=True)


def get_model(model_id, user: str) -> dict:
    """The record (plus owner, mine, weights_path, grid_path) of a model the user may read."""
    owner, rec = _locate(model_id, user)
    return _view(rec, owner, user)


def model_weights_path(model_id, user: str) -> Path:
    owner, rec = _locate(model_id, user)
    path = _folder(owner, rec["id"]) / WEIGHTS
    if not path.is_file():
        raise ModelNotFound("No such model")
    return path


def model_grid_path(model_id, user: str) -> Path | None:
    owner, rec = _locate(model_id, user)
    path = _folder(owner, rec["id"]) / GRID
    return path if path.is_file() else None


def download_path(model_id, user: str) -> tuple[Path, str]:
    """The file ``user`` may download and a file name for it: the native file for its owner; for
    anyone else, a copy whose metadata holds the architecture and step only (made once)."""
    from .stylegan import CheckpointError, copy_native_keeping
    owner, rec = _locate(model_id, user)
    src = _folder(owner, rec["id"]) / WEIGHTS
    if not src.is_file():
        raise ModelNotFound("No such model")
    name = download_name(rec["name"], ext="safetensors")
    if owner == user:
        return src, name
    dest = _public_copy_path(rec["id"])
    if not dest.is_file():
        try:
            copy_native_keeping(src, dest, PUBLIC_FILE_METADATA)
        except CheckpointError as e:
            raise ModelError(f"This model's file cannot be shared: {e}") from None
    return dest, name


def export_model(model_id, user: str, dest_dir) -> Path:
    """Copy a readable model's file (``download_path``) and its record as the user sees it (JSON) into
    ``dest_dir``."""
    owner, rec = _locate(model_id, user)
    src, _ = download_path(model_id, user)
    rec = _shown(rec, owner == user)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / download_name(rec["name"], ext="safetensors")
    if dest.exists():
        dest = dest_dir / download_name(rec["name"], rec["id"][:8], ext="safetensors")
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    atomic_write_json(dest.with_suffix(".json"),
                      {k: v for k, v in rec.items() if k not in ("weights_path", "grid_path")})
    return dest


# ----------------------------------------------------------------------------------------------
# Change (owner only)

def rename_model(model_id, user: str, name: str) -> dict:
    name = validate_name(name)
    with index_lock():
        rec = _own(model_id, user)
        rec["name"] = name
        atomic_write_json(_folder(user, rec["id"]) / RECORD, rec)
    return _view(rec, user, user)


def set_public(model_id, user: str, public: bool) -> dict:
    """Make a model public (readable by every user) or private again."""
    with index_lock():
        rec = _own(model_id, user)
        rec["public"] = bool(public)
        pub = _public_index()
        if public:  # record first, then index: a stale index entry is never trusted (see _locate)
            atomic_write_json(_folder(user, rec["id"]) / RECORD, rec)
            pub[rec["id"]] = user
            atomic_write_json(_public_index_path(), pub)
        else:
            pub.pop(rec["id"], None)
            atomic_write_json(_public_index_path(), pub)
            atomic_write_json(_folder(user, rec["id"]) / RECORD, rec)
            _public_copy_path(rec["id"]).unlink(missing_ok=True)
    return _view(rec, user, user)


def delete_model(model_id, user: str) -> None:
    """Remove the model from the indexes, then free its files."""
    with index_lock():
        rec = _own(model_id, user)
        pub = _public_index()
        if pub.pop(rec["id"], None) is not None:
            atomic_write_json(_public_index_path(), pub)
        atomic_write_json(_index_path(user), {"ids": [i for i in _own_ids(user) if i != rec["id"]]})
        folder = _folder(user, rec["id"])
        trash = folder.with_name(f".trash-{rec['id']}")
        os.rename(folder, trash)
        _public_copy_path(rec["id"]).unlink(missing_ok=True)
    shutil.rmtree(trash, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Consistency

def check_models(user: str, grace_s: float = TEMP_GRACE_S) -> list[str]:
    """Repair one user's models after a crash; return one line per thing done.

    Half-written folders (``.tmp-*``, ``.trash-*``) untouched for ``grace_s`` seconds are removed
    (a younger one may be a save in progress in another process; after a crash pass 0); index
    entries without a whole record are dropped; whole but unindexed model folders are indexed
    again; public-index entries that point at a missing or private model are dropped.
    """
    done = []
    models = _models_dir(user)
    with index_lock():
        for p in sorted(models.iterdir()):
            if p.is_dir() and (p.name.startswith(".tmp-") or p.name.startswith(".trash-")) \
                    and _untouched_for(p, grace_s):
                shutil.rmtree(p, ignore_errors=True)
                done.append(f"removed half-written {p.name}")
        ids = _own_ids(user)
        whole = []
        for p in sorted(models.iterdir()):
            rec = read_json(p / RECORD) if p.is_dir() and ID_RE.fullmatch(p.name) else None
            if isinstance(rec, dict) and rec.get("id") == p.name and (p / WEIGHTS).is_file():
                whole.append(p.name)
        kept = [i for i in ids if i in whole] + [i for i in whole if i not in ids]
        for i in set(ids) - set(kept):
            done.append(f"dropped index entry {i} (no whole model)")
        for i in set(kept) - set(ids):
            done.append(f"re-indexed model {i}")
        if kept != ids:
            atomic_write_json(_index_path(user), {"ids": kept})
        pub = _public_index()
        stale = [i for i, o in pub.items() if o == user and
                 (i not in kept or (read_json(models / i / RECORD) or {}).get("public") is not True)]
        for i in stale:
            pub.pop(i)
            done.append(f"dropped stale public entry {i}")
        if stale:
            atomic_write_json(_public_index_path(), pub)
    return done
