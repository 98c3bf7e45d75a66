"""``python -m core.cli dataset import|list|show|delete|pack``: datasets from the command line."""
from __future__ import annotations

import json
import sys

from core.cli import UserError


def register(subparsers) -> None:
    from ..datasets.common import CROP_MODES
    p = subparsers.add_parser("dataset", help="import, list, show, pack and delete datasets",
                              description="Import images (folders, zips, videos) as datasets and manage them.")
    sub = p.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")

    imp = sub.add_parser("import", help="import folders, zips, videos or images as one dataset")
    imp.add_argument("sources", nargs="+", metavar="SRC", help="folder, .zip, video or image (several are merged)")
    imp.add_argument("--name", required=True, help="dataset name (shown in the app)")
    imp.add_argument("--crop", default="center", help=f"{' | '.join(CROP_MODES)} (default: center)")
    imp.add_argument("--resolution", type=int, default=None, help="also pack at this size: 32, 64, ... 1024")
    imp.add_argument("--min-size", type=int, default=None, help="smallest short side in px (default: 64)")
    imp.add_argument("--background", default="255,255,255", help="R,G,B behind transparent pixels (default: white)")
    imp.add_argument("--fps", type=float, default=2.0, help="frames taken per second of video (default: 2)")
    imp.add_argument("--mirror", action="store_true", help="inflate: add a mirrored copy of every image")
    imp.add_argument("--rotate", action="store_true", help="inflate: add 90/180/270 degree rotations")
    imp.add_argument("--zoom", type=int, default=0, metavar="N", help="inflate: add N zoomed crops per image")
    imp.add_argument("--replace", action="store_true", help="replace an existing dataset of that name")
    imp.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    imp.add_argument("--user", default=None, help=argparse_hidden())
    imp.add_argument("--json", action="store_true", help="print the report as one JSON object")
    imp.set_defaults(func=cmd_import)

    ls = sub.add_parser("list", help="list datasets")
    ls.add_argument("--user", default=None, help=argparse_hidden())
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="show one dataset and its import report")
    show.add_argument("name", metavar="NAME", help="dataset name or id")
    show.add_argument("--user", default=None, help=argparse_hidden())
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    pack = sub.add_parser("pack", help="pack a dataset at another resolution")
    pack.add_argument("name", metavar="NAME", help="dataset name or id")
    pack.add_argument("--resolution", type=int, required=True)
    pack.add_argument("--crop", default=None, help="crop mode (default: the dataset's)")
    pack.add_argument("--user", default=None, help=argparse_hidden())
    pack.set_defaults(func=cmd_pack)

    rm = sub.add_parser("delete", help="delete a dataset and its packs")
    rm.add_argument("name", metavar="NAME", help="dataset name or id")
    rm.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rm.add_argument("--user", default=None, help=argparse_hidden())
    rm.set_defaults(func=cmd_delete)


def argparse_hidden():
    import argparse
    return argparse.SUPPRESS


def _user(args) -> str:
    from core.storage import DEFAULT_USER
    return args.user or DEFAULT_USER


class _Bar:
    """A tqdm bar on stderr fed by ``progress_fn(done, total)``."""

    def __init__(self, desc: str):
        from tqdm import tqdm
        self.bar = tqdm(desc=desc, unit="img", file=sys.stderr, disable=None, dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        if self.bar.total != total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)

    def say(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self):
        self.bar.close()


def cmd_import(args) -> int:
    from core.datasets import DatasetError, MIN_SIZE, import_dataset
    try:
        bg = tuple(int(c) for c in args.background.split(","))
    except ValueError:
        raise UserError(f"--background must be R,G,B (for example 255,255,255), not {args.background!r}") from None
    bar = _Bar("importing")
    try:
        report = import_dataset(args.sources, args.name, user=_user(args), crop=args.crop, resolution=args.resolution,
                                min_size=MIN_SIZE if args.min_size is None else args.min_size, background=bg,
                                inflate={"mirror": args.mirror, "rotate": args.rotate, "zoom": args.zoom},
                                replace=args.replace, progress_fn=bar, video_fps=args.fps, workers=args.workers,
                                wait_fn=bar.say)
    except DatasetError as e:
        bar.close()
        if args.json and e.report is not None:
            print(json.dumps({**e.report.to_dict(), "error": str(e)}))
        raise UserError(str(e)) from None
    bar.close()
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print(f"Imported {report.name!r} ({report.dataset_id}): {report.accepted:,} of {report.total:,} images accepted "
          f"in {report.seconds:.1f} s.")
    if report.rejected:
        print(f"Rejected {len(report.rejected):,}:")
        for r in report.rejected:
            print(f"  {r['file']}: {r['reason']}")
    if report.converted:
        print("Converted: " + ", ".join(f"{k} {v}" for k, v in sorted(report.converted.items())))
    for group in report.near_duplicates:
        print("Near-duplicates (kept): " + ", ".join(group))
    for w in report.warnings:
        print(f"Note: {w}")
    return 0


def cmd_list(args) -> int:
    from core.datasets import list_datasets
    items = list_datasets(_user(args))
    if args.json:
        print(json.dumps(items))
        return 0
    if not items:
        print("No datasets yet: import one with `python -m core.cli dataset import FOLDER --name NAME`.")
        return 0
    for d in items:
        res = ",".join(str(r) for r in d["resolutions"]) or "-"
        print(f"{d['name']}\t{d['id']}\t{d['count']:,} images\t{d['size']}\t{d['crop']}\tpacked: {res}\t{d['created']}")
    return 0


def cmd_show(args) -> int:
    from core.datasets import DatasetError, get_dataset, get_report
    try:
        info = get_dataset(args.name, _user(args))
        report = get_report(info["id"], _user(args))
    except DatasetError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps({**info, "report": report}))
        return 0
    for key in ("name", "id", "count", "training_images", "size", "created", "crop", "resolutions", "mosaic", "path"):
        print(f"{key}: {info[key]}")
    rej = report.get("rejected", [])
    print(f"rejected: {len(rej)}")
    for r in rej:
        print(f"  {r['file']}: {r['reason']}")
    return 0


def cmd_pack(args) -> int:
    from core.datasets import DatasetError, pack_dataset
    bar = _Bar("packing")
    try:
        path = pack_dataset(args.name, args.resolution, _user(args), crop=args.crop, progress_fn=bar)
    except DatasetError as e:
        raise UserError(str(e)) from None
    finally:
        bar.close()
    print(path)
    return 0


def cmd_delete(args) -> int:
    from core.datasets import DatasetError, delete_dataset, get_dataset
    try:
        info = get_dataset(args.name, _user(args))
        if not args.yes and sys.stdin.isatty():
            answer = input(f"Delete {info['name']!r}: {info['count']:,} images, {info['size']}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Kept.")
                return 1
        delete_dataset(info["id"], _user(args))
    except DatasetError as e:
        raise UserError(str(e)) from None
    print(f"Deleted {info['name']!r} ({info['count']:,} images, {info['size']}).")
    return 0
