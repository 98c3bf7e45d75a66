"""``python -m core.cli jobs submit|list|show|stop|continue|delete|estimate``: the experiment queue."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..stylegan.train_config import PRECISIONS
from . import UserError


def _user(args) -> str:
    from ..storage import DEFAULT_USER
    return getattr(args, "user", None) or DEFAULT_USER


def _call(fn, *a, **kw):
    from ..jobs import JobsError
    try:
        return fn(*a, **kw)
    except JobsError as e:
        raise UserError(str(e)) from None


def _options_from_args(args) -> dict:
    try:
        from .train import config_from_args
    except ImportError:  # pragma: no cover - the train CLI ships with the trainer
        raise UserError("the train options are not available in this installation") from None
    opts = config_from_args(args).to_dict()
    opts["snapshot_every"] = args.snapshot_every
    return opts


def _dataset_id(value: str, crop: str, user: str) -> str:
    from .. import datasets
    try:
        if Path(value).is_dir() and not (Path(value) / "meta.json").exists():
            return datasets.import_folder_of_images_for_training(value, user, crop=crop)
        return datasets.get_dataset(value, user)["id"]
    except datasets.DatasetError as e:
        raise UserError(str(e)) from None


def cmd_submit(args) -> int:
    from ..jobs import submit_experiment
    user = _user(args)
    opts = _options_from_args(args)
    ds = _dataset_id(args.dataset, args.crop, user)
    exp_id = _call(submit_experiment, user, title=args.title or Path(str(args.dataset)).name, dataset=ds,
                   checkpoint=args.checkpoint, steps=args.steps, crop=args.crop, options=opts,
                   allow_paths=True)
    print(json.dumps({"id": exp_id}) if args.json else exp_id)
    return 0


def _eta(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _badge(rec: dict) -> str:
    if rec["state"] == "queued" and rec.get("queue_position"):
        return f"queued #{rec['queue_position']}"
    if rec["state"] == "training":
        return f"training {100 * rec['progress']:.0f}%"
    return rec["state"]


def cmd_list(args) -> int:
    from ..jobs import list_experiments
    recs = list_experiments(_user(args))
    if args.json:
        print(json.dumps(recs, indent=2))
        return 0
    if not recs:
        print("no experiments: submit one with `python -m core.cli jobs submit --dataset NAME`")
    for r in recs:
        print(f"{r['id']}  {_badge(r):<14} {r['step']:>6,}/{r['steps']:<6,} eta {_eta(r['eta_seconds']):>7}  {r['title']}"
              + (f"  ({r['error']})" if r.get("error") else ""))
    return 0


def cmd_show(args) -> int:
    from ..jobs import experiment_log, get_experiment
    rec = _call(get_experiment, args.id, _user(args))
    if args.json:
        print(json.dumps(rec, indent=2))
        return 0
    for key in ("id", "title", "state", "queue_position", "step", "steps", "eta_seconds", "sec_per_step",
                "checkpoint", "dataset_name", "crop", "error", "run_dir"):
        if rec.get(key) is not None:
            print(f"{key:>15}: {rec[key]}")
    tail = experiment_log(args.id, _user(args), tail=10)
    if tail:
        print("\n".join(["", "log (last lines):"] + tail))
    return 0


def cmd_stop(args) -> int:
    from ..jobs import stop_experiment
    rec = _call(stop_experiment, args.id, _user(args))
    print(f"{rec['id']}: {rec['state']}")
    return 0


def cmd_continue(args) -> int:
    from ..jobs import continue_experiment
    rec = _call(continue_experiment, args.id, _user(args), args.steps)
    print(f"{rec['id']}: queued #{rec['queue_position']} for {rec['steps']:,} steps")
    return 0


def cmd_delete(args) -> int:
    from ..jobs import delete_experiment
    rec = _call(delete_experiment, args.id, _user(args), stop=args.stop)
    print(f"deleted {rec['id']} ({rec['title']})")
    return 0


def cmd_estimate(args) -> int:
    from ..checkpoints import CheckpointsError
    from ..jobs import JobsError, estimate_experiment
    from ..jobs.eta import calibrate_pending
    t0 = time.monotonic()
    try:
        def estimate():
            return estimate_experiment(_user(args), args.checkpoint, args.steps, batch=args.batch or None,
                                       device=args.device, snapshot_every=args.snapshot_every,
                                       precision=args.precision, allow_paths=True)
        est = estimate()
        while args.measure and est["pending"] and calibrate_pending(args.device, announce=False):
            est = estimate()
    except (CheckpointsError, JobsError, RuntimeError) as e:
        raise UserError(str(e).splitlines()[0]) from None
    if args.json:
        print(json.dumps(dict(est, took_seconds=round(time.monotonic() - t0, 2))))
    else:
        print(f"{est['text']} ({est['basis']})")
    return 0


def register(subparsers) -> None:
    from .train import add_train_options
    p = subparsers.add_parser("jobs", help="queue, list, stop, continue and delete training experiments",
                              description="Experiments run by a worker (`python -m core.cli worker`) from a "
                                          "queue under the data root; they survive restarts.")
    sub = p.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    def add(name, func, help_text):
        q = sub.add_parser(name, help=help_text, description=help_text)
        q.add_argument("--user", default=None, help="act as this user (default: the local user)")
        q.set_defaults(func=func)
        return q

    s = add("submit", cmd_submit, "queue a new experiment (the options of `train`)")
    add_train_options(s)
    s.add_argument("--title", default=None, help="shown in lists (default: the dataset's name)")
    s.add_argument("--json", action="store_true", help='print {"id": ...}')
    add("list", cmd_list, "list experiments with state, progress and ETA").add_argument("--json", action="store_true")
    for name, func, text in (("show", cmd_show, "one experiment's record and log tail"),
                             ("stop", cmd_stop, "stop (a final snapshot is kept; continue later)"),
                             ("delete", cmd_delete, "delete an experiment and its files")):
        q = add(name, func, text)
        q.add_argument("id", metavar="ID")
        if name == "show":
            q.add_argument("--json", action="store_true")
        if name == "delete":
            q.add_argument("--stop", action="store_true", help="stop it first if it is running")
    c = add("continue", cmd_continue, "requeue a stopped or finished experiment for more steps")
    c.add_argument("id", metavar="ID")
    c.add_argument("--steps", type=int, default=None, help="new total number of steps (default: the same)")
    e = add("estimate", cmd_estimate, "time to train a checkpoint for N steps on this machine")
    e.add_argument("--checkpoint", default="default")
    e.add_argument("--steps", type=int, default=3000)
    e.add_argument("--batch", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--snapshot-every", type=int, default=0, help="0 = automatic (a snapshot every few minutes)")
    e.add_argument("--precision", choices=PRECISIONS, default="auto", help="as in `train` (the step time depends on it)")
    e.add_argument("--measure", action="store_true",
                   help="measure here now (a short training run) when this machine has no figure for it yet")
    e.add_argument("--json", action="store_true")
