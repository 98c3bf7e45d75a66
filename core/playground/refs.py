"""Which model a user means: keys the app and the API use, names the CLI takes, and a model's identity.

Keys: ``model:<id>`` (My Models, own or public) and ``checkpoint:<name>`` (the bundled default,
downloaded catalog files, the user's imported checkpoints). The CLI also takes a file path.
Vectors and directions belong to a model by its *fingerprint*: the SHA-256 of the weights file
(first 20 hex digits), so a model saved to My Models from a snapshot, or the same file reached
by another key, keeps its vectors and directions.
"""
from __future__ import annotations

import threading
from pathlib import Path

from .common import PlaygroundError, file_stamp

_fingerprints: dict = {}
_fp_lock = threading.Lock()


def resolve_model(key: str, user: str) -> Path:
    """The weights file of a key the user may read; PlaygroundError (one line) otherwise."""
    from .. import checkpoints as ck
    from .. import models
    kind, _, name = (key or "").partition(":")
    try:
        if kind == "model":
            return models.model_weights_path(name, user)
        if kind == "checkpoint":
            return ck.resolve_checkpoint(name, user, allow_paths=False)
    except (models.ModelError, ck.CheckpointsError) as e:
        raise PlaygroundError(str(e)) from None
    raise PlaygroundError("Choose a model first.")


def model_key(model_id: str) -> str:
    """The key of a model of My Models (what ``model_choices`` lists and ``resolve_model`` reads)."""
    return f"model:{model_id}"


def model_choices(user: str) -> list[tuple[str, str]]:
    """(label, key) of every model the user may open: the bundled default first, then My Models
    (own, then public), then downloaded and imported checkpoints."""
    from .. import checkpoints as ck
    from .. import models
    cks = [c for c in ck.list_checkpoints(user) if c["state"] in ("bundled", "downloaded", "imported")]
    label = lambda c: f"{c['title']} · {c['resolution'] or '?'} px"  # noqa: E731
    mine = [(f"{m['name']} ({'mine' if m['mine'] else 'public, by ' + m['owner']})", model_key(m["id"]))
            for m in models.list_models(user)]
    return ([(label(c), f"checkpoint:{c['name']}") for c in cks if c["kind"] == "bundled"] + mine +
            [(label(c), f"checkpoint:{c['name']}") for c in cks if c["kind"] != "bundled"])


def model_label(key: str, user: str) -> str:
    for label, k in model_choices(user):
        if k == key:
            return label
    return key


def cli_model(value: str, user: str) -> tuple[Path, str]:
    """(weights file, label) for the CLI's ``--checkpoint``: a My Models id the user may read, else a
    checkpoint name ('default', a catalog or imported name) or a file."""
    from .. import checkpoints as ck
    from .. import models
    if models.ID_RE.fullmatch(value or ""):
        try:
            return models.model_weights_path(value, user), models.get_model(value, user)["name"]
        except models.ModelError:
            pass
    try:
        path = Path(ck.resolve_checkpoint(value, user))
    except ck.CheckpointsError as e:
        raise PlaygroundError(str(e)) from None
    return path, value if not Path(value).exists() else path.name


def model_fingerprint(path) -> str:
    """SHA-256 (20 hex digits) of the weights file, memoised on its path, size and mtime."""
    key = file_stamp(path)
    with _fp_lock:
        if key in _fingerprints:
            return _fingerprints[key]
    from ..checkpoints import sha256_file
    fp = sha256_file(Path(key[0]))[:20]
    with _fp_lock:
        _fingerprints[key] = fp
    return fp
