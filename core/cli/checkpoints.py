"""``python -m core.cli checkpoints list|download|import|remove``: the pre-trained model catalog."""
from __future__ import annotations

import json

from core.cli import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("checkpoints", help="list, download, import or remove pre-trained checkpoints",
                              description="The catalog of pre-trained StyleGAN2 checkpoints, downloads and imports.")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    q = sub.add_parser("list", help="list the catalog, downloads and imports")
    q.add_argument("--json", action="store_true", help="print a JSON list (one object per checkpoint)")
    q.add_argument("--user", default=None, help="whose imports to list (default: the local user)")
    q.set_defaults(func=_list)

    q = sub.add_parser("download", help="download a catalog checkpoint into the cache (resumable)")
    q.add_argument("name", help="a catalog name such as ffhq-256 (see `checkpoints list`)")
    q.add_argument("--timeout", type=float, default=30.0, help="seconds without data before giving up (default 30)")
    q.add_argument("--no-thumbnail", action="store_true", help="skip rendering the sample grid afterwards")
    q.set_defaults(func=_download)

    q = sub.add_parser("import", help="import a checkpoint file or http(s) URL (.pkl, .pt, native)")
    q.add_argument("source", metavar="PATH_OR_URL")
    q.add_argument("--name", default=None, help="the name to use it by (default: from the file name)")
    q.add_argument("--user", default=None, help="the user who owns the import (default: the local user)")
    q.add_argument("--timeout", type=float, default=30.0, help="seconds without data before giving up (default 30)")
    q.add_argument("--no-thumbnail", action="store_true", help="skip rendering the sample grid afterwards")
    q.set_defaults(func=_import)

    q = sub.add_parser("remove", help="delete a downloaded or imported checkpoint")
    q.add_argument("name")
    q.add_argument("--user", default=None, help="whose import to remove (default: the local user)")
    q.set_defaults(func=_remove)


def _errors(fn):
    """Turn the module's one-line errors into UserError (exit 2, no traceback)."""
    def wrapped(args):
        from core.checkpoints import CheckpointsError
        try:
            return fn(args)
        except CheckpointsError as e:
            raise UserError(str(e)) from None
    return wrapped


def _bar(desc: str):
    """A tqdm bar and the progress_fn that drives it."""
    from tqdm import tqdm
    bar = tqdm(desc=desc, unit="B", unit_scale=True, unit_divisor=1024, dynamic_ncols=True)

    def progress(done: int, total: int | None) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)
    return bar, progress


@_errors
def _list(args) -> int:
    from core.checkpoints import list_checkpoints
    from core.checkpoints.common import mb_text
    rows = list_checkpoints(args.user)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'NAME':<16} {'RES':>5}  {'STATE':<15} {'SIZE':<14} DEPICTS")
    for r in rows:
        size = r["size_text"] if r["state"] in ("not downloaded", "missing") else mb_text(r["local_bytes"])
        res = r["resolution"] or "?"
        print(f"{r['name']:<16} {res:>5}  {r['state']:<15} {size:<14} {r['title']}")
    return 0


@_errors
def _download(args) -> int:
    from core.checkpoints import download_checkpoint
    bar, progress = _bar(args.name)
    try:
        path = download_checkpoint(args.name, progress, timeout=args.timeout, thumbnail=not args.no_thumbnail)
    finally:
        bar.close()
    print(path)
    return 0


@_errors
def _import(args) -> int:
    from core.checkpoints import import_checkpoint
    if "://" in args.source:  # a download: show its progress
        bar, progress = _bar("import")
    else:
        bar, progress = None, None
    try:
        rec = import_checkpoint(args.source, name=args.name, user=args.user, progress_fn=progress,
                                timeout=args.timeout, thumbnail=not args.no_thumbnail)
    finally:
        if bar is not None:
            bar.close()
    print(f"imported {rec['name']} ({rec.get('resolution') or '?'} px, {rec.get('format') or 'checkpoint'})")
    return 0


@_errors
def _remove(args) -> int:
    from core.checkpoints import remove_checkpoint
    removed = remove_checkpoint(args.name, user=args.user)
    print(f"removed {args.name} ({len(removed)} file{'s' if len(removed) != 1 else ''})")
    return 0
