"""``models``: My Models from the command line (list, show, save, rename, delete, public, private, export)."""
from __future__ import annotations

import json
from pathlib import Path

from . import UserError


def _call(fn, *args, **kwargs):
    from ..models import ModelError
    try:
        return fn(*args, **kwargs)
    except ModelError as e:
        raise UserError(str(e)) from None


def _line(m: dict) -> str:
    badge = "public " if m.get("public") else "private"
    owner = "" if m.get("mine") else f"  (by {m['owner']})"
    return f"{m['id']}  {badge}  {m.get('resolution') or '?'} px  {m['name']}{owner}"


def run_list(args) -> int:
    from .. import models
    rows = _call(models.list_models, args.user, include_public=not args.mine)
    if not rows:
        print("no models yet: save one from an experiment's snapshot (`models save`)")
    for m in rows:
        print(_line(m))
    return 0


def run_show(args) -> int:
    from .. import models
    rec = _call(models.get_model, args.id, args.user)
    print(json.dumps(rec, indent=2, sort_keys=True))
    return 0


def run_save(args) -> int:
    from .. import models
    flags = {"experiment": args.experiment, "dataset": args.dataset, "base_model": args.base_model}
    flags = {k: v for k, v in flags.items() if v is not None}
    source = None
    if flags:  # the flags correct what the snapshot says of itself
        from ..stylegan import CheckpointError, read_native_metadata
        try:
            source = dict(models.snapshot_provenance(read_native_metadata(Path(args.snapshot))), **flags)
        except (CheckpointError, OSError):
            source = flags  # save_model says what is wrong with the file
    model_id = _call(models.save_model, args.user, weights_path=Path(args.snapshot), name=args.name, source=source)
    print(model_id)
    return 0


def run_rename(args) -> int:
    from .. import models
    print(_line(_call(models.rename_model, args.id, args.user, args.name)))
    return 0


def run_public(args) -> int:
    from .. import models
    print(_line(_call(models.set_public, args.id, args.user, args.command_name == "public")))
    return 0


def run_delete(args) -> int:
    from .. import models
    rec = _call(models.get_model, args.id, args.user)
    if not args.yes:
        answer = input(f"Delete model {rec['name']!r} and its files? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise UserError("not deleted")
    _call(models.delete_model, args.id, args.user)
    print(f"deleted {args.id}")
    return 0


def run_export(args) -> int:
    from .. import models
    try:
        out = _call(models.export_model, args.id, args.user, Path(args.out))
    except OSError as e:
        raise UserError(f"cannot write to {args.out}: {e.strerror}") from None
    print(f"wrote {out}")
    return 0


def register(sub) -> None:
    from ..storage import DEFAULT_USER
    p = sub.add_parser("models", help="My Models: list, show, rename, delete, public/private, export")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    def add(name, func, help_, with_id=True):
        q = msub.add_parser(name, help=help_)
        if with_id:
            q.add_argument("id", help="the model id (see `models list`)")
        q.add_argument("--user", default=DEFAULT_USER, help=f"act as this user (default {DEFAULT_USER})")
        q.set_defaults(func=func, command_name=name)
        return q

    add("list", run_list, "your models and everyone's public ones", with_id=False).add_argument(
        "--mine", action="store_true", help="only your own models")
    add("show", run_show, "the record of one model (JSON)")
    q = add("save", run_save, "save a snapshot (step-N.safetensors) to My Models", with_id=False)
    q.add_argument("snapshot", help="a snapshot's .safetensors file")
    q.add_argument("--name", required=True)
    q.add_argument("--experiment", help="instead of what the snapshot says (the trainer writes its provenance in)")
    q.add_argument("--dataset", help="instead of what the snapshot says")
    q.add_argument("--base-model", help="instead of what the snapshot says")
    add("rename", run_rename, "give a model a new name").add_argument("name")
    add("delete", run_delete, "delete a model and free its files").add_argument(
        "--yes", action="store_true", help="do not ask for confirmation")
    add("public", run_public, "make a model readable by every user")
    add("private", run_public, "make a model private again")
    add("export", run_export, "copy a model's native file out").add_argument(
        "--out", required=True, help="destination folder")
