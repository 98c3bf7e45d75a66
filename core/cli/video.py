"""``video``: a run's progress video, or a looping interpolation between seeds (mp4)."""
from __future__ import annotations

import re
from pathlib import Path

from . import UserError


def _size(text: str | None):
    if text is None:
        return None
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    if not m:
        raise UserError(f"bad --size {text!r}: use WIDTHxHEIGHT, e.g. 512x512")
    return int(m.group(1)), int(m.group(2))


class _Bar:
    """A tqdm bar that appears with the first frame, so an early one-line error stays one line."""

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="frame", desc=self.desc)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_video(make, desc: str, out: str):
    from ..playground import PlaygroundError
    from ..video import VideoError
    bar = _Bar(desc)
    try:
        path = make(bar)
    except (VideoError, PlaygroundError) as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    finally:
        bar.close()
    print(f"wrote {path}")
    return 0


def run_progress(args) -> int:
    from ..video import progress_video
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"no such run folder: {run_dir}")
    size = _size(args.size)
    return _run_video(lambda fn: progress_video(run_dir, args.out, fps=args.fps, size=size, progress_fn=fn),
                      "progress video", args.out)


def _model_path(value: str, user: str) -> Path:
    """A My Models id the user may read, else a checkpoint name or file."""
    from ..models import ID_RE, ModelError, model_weights_path
    if ID_RE.fullmatch(value):
        try:
            return model_weights_path(value, user)
        except ModelError:
            pass
    from .generate import resolve_checkpoint_arg
    return resolve_checkpoint_arg(value)


def run_interpolate(args) -> int:
    from ..playground import interpolation_video
    from .generate import parse_seeds
    seeds = parse_seeds(args.seeds)
    path = _model_path(args.checkpoint, args.user)
    return _run_video(lambda fn: interpolation_video(path, seeds, args.out, seconds_per_transition=args.seconds,
                                                     fps=args.fps, psi=args.trunc, space=args.space,
                                                     noise_mode=args.noise_mode, device=args.device,
                                                     progress_fn=fn),
                      "interpolation", args.out)


def register(sub) -> None:
    from ..storage import DEFAULT_USER
    p = sub.add_parser("video", help="progress videos of runs and interpolation videos (mp4)")
    vsub = p.add_subparsers(dest="video_command", required=True, metavar="KIND")
    q = vsub.add_parser("progress", help="every snapshot grid of a run, in step order")
    q.add_argument("run_dir", help="the run folder (holds snapshots/)")
    q.add_argument("--out", required=True, help="the .mp4 to write")
    q.add_argument("--fps", type=float, default=8)
    q.add_argument("--size", help="WIDTHxHEIGHT (default: the grids' size)")
    q.set_defaults(func=run_progress)
    q = vsub.add_parser("interpolate", help="a looping walk between seeds")
    q.add_argument("--checkpoint", required=True, help="a My Models id, a file, 'default' or a catalog name")
    q.add_argument("--seeds", required=True, help="e.g. 0-3 or 1,5,9 (at least two)")
    q.add_argument("--out", required=True, help="the .mp4 to write")
    q.add_argument("--seconds", type=float, default=1.0, help="seconds per transition (default 1)")
    q.add_argument("--fps", type=float, default=24)
    q.add_argument("--trunc", type=float, default=1.0, help="truncation psi")
    q.add_argument("--space", choices=("z", "w"), default="z", help="slerp in z or lerp in w")
    q.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    q.add_argument("--device", default="cpu")
    q.add_argument("--user", default=DEFAULT_USER, help="whose My Models ids to accept")
    q.set_defaults(func=run_interpolate)
