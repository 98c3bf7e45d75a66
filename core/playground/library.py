"""Each user's vectors and named directions, private like their datasets and models.

    <root>/users/<user>/playground/vectors/<id>.json     record: name, space, shape, model, created, source
    <root>/users/<user>/playground/vectors/<id>.npy      the latent (z [z_dim] or w [num_ws, w_dim])
    <root>/users/<user>/playground/vectors/<id>.noise.safetensors   noise maps of a projection (optional)
    <root>/users/<user>/playground/directions/<id>.json  record: name, model, method, layers, created
    <root>/users/<user>/playground/directions/<id>.npy   the unit direction [w_dim]

Ids are opaque (uuid4 hex) and checked against ``^[0-9a-f]{32}$`` before any path is built; every
function takes the user, and only that user's folder is ever read: someone else's id reads as a
missing one. A record belongs to a model by the model's fingerprint (``refs.model_fingerprint``).
The arrays are written first and the record last (each atomically), so a kill leaves an item whole
or absent (at worst an orphan array that nothing lists). Names are unique per user and kind.
"""
from __future__ import annotations

import io
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import quota
from ..storage import atomic_path, atomic_write_bytes, atomic_write_json, file_lock, read_json, user_dir
from .common import PlaygroundError, VectorError

ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_NAME = 80
MAX_ITEMS = 2000
KINDS = ("vectors", "directions")


class NotFound(PlaygroundError):
    """No such vector or direction for this user (someone else's reads the same)."""


def check_name(name, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise PlaygroundError(f"Give the {what} a name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise PlaygroundError(f"The {what} name is too long ({len(name)} characters; at most {MAX_NAME})")
    if not name.isprintable():
        raise PlaygroundError(f"The {what} name holds control characters")
    return name


def _dir(user: str, kind: str) -> Path:
    """``<root>/users/<user>/playground/<kind>``, created on first use; a bad user name finds nothing."""
    assert kind in KINDS, kind
    try:
        path = user_dir(user, "playground") / kind
    except ValueError:
        raise NotFound("No such item") from None
    path.mkdir(parents=True, exist_ok=True)
    return path


def _locked(user: str):
    return file_lock(_dir(user, "vectors").parent / ".lock")


def records(user: str, kind: str) -> list[dict]:
    out = []
    for p in _dir(user, kind).glob("*.json"):
        rec = read_json(p) if ID_RE.fullmatch(p.stem) else None
        if isinstance(rec, dict) and rec.get("id") == p.stem and (p.parent / f"{p.stem}.npy").is_file():
            out.append(rec)
    return sorted(out, key=lambda r: r.get("created", ""), reverse=True)


def _record(user: str, kind: str, item_id) -> dict:
    what = kind[:-1]
    if not isinstance(item_id, str) or not ID_RE.fullmatch(item_id):
        raise NotFound(f"No such {what}")
    rec = read_json(_dir(user, kind) / f"{item_id}.json")
    if not isinstance(rec, dict) or rec.get("id") != item_id or not (_dir(user, kind) / f"{item_id}.npy").is_file():
        raise NotFound(f"No such {what}")
    return rec


def find(user: str, kind: str, ref) -> dict:
    """The record named by an id or, failing that, by its exact name."""
    if isinstance(ref, str) and ID_RE.fullmatch(ref):
        try:
            return _record(user, kind, ref)
        except NotFound:
            pass
    for rec in records(user, kind):
        if rec["name"] == (ref.strip() if isinstance(ref, str) else ref):
            return rec
    raise NotFound(f"No such {kind[:-1]}")


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def _add(user: str, kind: str, record: dict, array: np.ndarray, extra: dict | None = None) -> dict:
    """Write array (and extra files) then the record; names unique per user and kind."""
    what = kind[:-1]
    data = _npy_bytes(array)
    extra = extra or {}
    try:
        quota.check_room(user, len(data) + sum(len(b) for b in extra.values()) + 1024, f"this {what}")
    except quota.QuotaError as e:
        raise PlaygroundError(str(e)) from None
    with _locked(user):
        existing = records(user, kind)
        if len(existing) >= MAX_ITEMS:
            raise PlaygroundError(f"You have {MAX_ITEMS:,} {kind} already: delete some first")
        scope = [r for r in existing if kind == "vectors" or r.get("model") == record.get("model")]
        if any(r["name"] == record["name"] for r in scope):
            raise PlaygroundError(f"A {what} named “{record['name']}” exists already: choose another name")
        item_id = uuid.uuid4().hex
        folder = _dir(user, kind)
        record = {**record, "id": item_id, "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_bytes(folder / f"{item_id}.npy", data)
        for suffix, blob in extra.items():
            atomic_write_bytes(folder / f"{item_id}{suffix}", blob)
        atomic_write_json(folder / f"{item_id}.json", record)
    return record


def rename(user: str, kind: str, ref, name: str) -> dict:
    name = check_name(name, kind[:-1])
    with _locked(user):
        rec = find(user, kind, ref)
        scope = [r for r in records(user, kind) if kind == "vectors" or r.get("model") == rec.get("model")]
        if any(r["name"] == name and r["id"] != rec["id"] for r in scope):
            raise PlaygroundError(f"A {kind[:-1]} named “{name}” exists already: choose another name")
        rec["name"] = name
        atomic_write_json(_dir(user, kind) / f"{rec['id']}.json", rec)
    return rec


def delete(user: str, kind: str, ref) -> dict:
    """Remove the record first (the item is gone), then its files."""
    with _locked(user):
        rec = find(user, kind, ref)
        folder = _dir(user, kind)
        (folder / f"{rec['id']}.json").unlink()
        for p in folder.glob(f"{rec['id']}.*"):
            p.unlink(missing_ok=True)
    return rec


def _array(user: str, kind: str, rec: dict) -> np.ndarray:
    from .vectors import load_vector
    return load_vector(_dir(user, kind) / f"{rec['id']}.npy")


# ---- vectors --------------------------------------------------------------------------------

def save_vector(user: str, name: str, array, space: str, *, model_fp: str, model_label: str, shape_check,
                source: str = "", noise: dict | None = None) -> dict:
    """Keep a latent under a name. ``shape_check(array, space)`` refuses shapes the model cannot take."""
    from .vectors import check_array
    name = check_name(name, "vector")
    if space not in ("z", "w"):
        raise VectorError("A vector is in space 'z' or 'w'")
    array = check_array(np.asarray(array))
    shape_check(array, space)
    extra = {}
    if noise:
        from safetensors.numpy import save
        extra[".noise.safetensors"] = save({k: np.ascontiguousarray(v, np.float32) for k, v in noise.items()})
    return _add(user, "vectors", {"name": name, "space": space, "shape": list(array.shape), "model": model_fp,
                                  "model_label": str(model_label)[:120], "source": str(source)[:200],
                                  "noise": bool(noise)}, array, extra)


def list_vectors(user: str, model_fp: str | None = None) -> list[dict]:
    recs = records(user, "vectors")
    return [r for r in recs if model_fp is None or r.get("model") == model_fp]


def get_vector(user: str, ref) -> tuple[dict, np.ndarray, dict | None]:
    """(record, array, noise maps or None) of one of the user's vectors."""
    rec = find(user, "vectors", ref)
    noise = None
    if rec.get("noise"):
        from safetensors.numpy import load_file
        try:
            noise = load_file(str(_dir(user, "vectors") / f"{rec['id']}.noise.safetensors"))
        except Exception:  # noqa: BLE001 - a lost noise file leaves a usable latent
            noise = None
    return rec, _array(user, "vectors", rec), noise


def export_vector(user: str, ref, dest_dir) -> Path:
    """The vector as ``<name>.npy`` in ``dest_dir`` (the latent only; noise maps stay in the library)."""
    rec, array, _ = get_vector(user, ref)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", rec["name"]).strip("._-")[:60] or "vector"
    dest = Path(dest_dir) / f"{stem}-{rec['space']}.npy"
    with atomic_path(dest) as tmp:
        tmp.write_bytes(_npy_bytes(array))
    return dest


# ---- directions -----------------------------------------------------------------------------

def save_direction(user: str, name: str, direction, *, model_fp: str, method: str, layers, index: int | None = None) -> dict:
    name = check_name(name, "direction")
    d = np.asarray(direction, dtype=np.float32).reshape(-1)
    if not np.isfinite(d).all() or not d.any():
        raise PlaygroundError("A direction must be finite and not zero")
    lo, hi = (int(x) for x in layers)
    return _add(user, "directions", {"name": name, "model": model_fp, "method": str(method)[:40],
                                     "layers": [lo, hi], "index": index}, d / np.linalg.norm(d))


def list_directions(user: str, model_fp: str) -> list[dict]:
    """The user's directions saved with this model, oldest first (the order of their sliders)."""
    return [r for r in reversed(records(user, "directions")) if r.get("model") == model_fp]


def get_direction(user: str, ref) -> tuple[dict, np.ndarray]:
    rec = find(user, "directions", ref)
    return rec, _array(user, "directions", rec)
