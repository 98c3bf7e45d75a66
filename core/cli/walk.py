"""``walk``: a keyframe walk (seeds, ``.npy`` files, saved vectors) or a random noise loop, as mp4."""
from __future__ import annotations

from pathlib import Path

from . import UserError
from .playground_common import add_model_args, model_of, user_errors


def keyframes(items: list[str], path, user: str, npy_space: str):
    """Seeds, ``.npy`` files and the user's saved vectors (by name or id), in order."""
    from ..playground import library, load_model, load_vector
    from ..playground.vectors import vector_to_latent
    from ..playground.view import keyframes_of
    from ..playground.walks import Keyframe
    ckpt = load_model(path)
    out = []
    for item in items:
        if item.lower().endswith(".npy"):
            array = load_vector(Path(item))
            space = npy_space if npy_space != "auto" else ("z" if array.ndim == 1 and array.size == ckpt.z_dim else "w")
            out.append(Keyframe(space, vector_to_latent(array, space, ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)[0], item))
        elif item.isdigit():
            out += keyframes_of(user, path, [item])
        else:
            rec = library.find(user, "vectors", item)
            out += keyframes_of(user, path, [f"vector:{rec['id']}"])
    return out


def _items(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    expanded = []
    for t in items:
        if "-" in t and all(p.isdigit() for p in t.split("-", 1)):
            lo, hi = (int(p) for p in t.split("-", 1))
            if hi < lo or hi - lo > 64:
                raise UserError(f"bad keyframe range {t!r}")
            expanded += [str(s) for s in range(lo, hi + 1)]
        else:
            expanded.append(t)
    return expanded


def run(args) -> int:
    from tqdm import tqdm

    from ..playground import walks
    if bool(args.keyframes) == (args.noise_loop is not None):
        raise UserError("give --keyframes, or --noise-loop SEED for a random loop")
    path, _ = model_of(args.checkpoint, args.user)
    bar = tqdm(unit="frame", desc="walk")

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)
    try:
        with user_errors():
            if args.noise_loop is not None:
                dest = walks.noise_loop_video(path, args.out, args.seconds, args.fps, args.size, progress,
                                              seed=args.noise_loop, wander=args.wander, psi=args.trunc,
                                              device=args.device)
            else:
                keys = keyframes(_items(args.keyframes), path, args.user, args.npy_space)
                dest = walks.walk_video(path, keys, args.out, args.seconds, args.fps, args.size, progress,
                                        interpolation=args.interp, easing=args.easing, loop=args.loop,
                                        psi=args.trunc, device=args.device)
    finally:
        bar.close()
    print(f"wrote {dest}")
    return 0


def register(sub) -> None:
    from ..playground.walks import EASINGS, INTERPOLATIONS
    p = sub.add_parser("walk", help="a keyframe walk or a noise loop through a model, as mp4",
                       description="Keyframes are seeds (3, 0-4), .npy files (z or w) and names or ids of "
                                   "saved vectors, in order. A loop ends on its first keyframe.")
    add_model_args(p)
    p.add_argument("--keyframes", help="e.g. 1,2,3,4 or 0-3,face.npy,my vector")
    p.add_argument("--noise-loop", type=int, metavar="SEED", help="instead of keyframes: a random closed loop")
    p.add_argument("--wander", type=int, default=1, help="noise loop: 1 (a smooth circle) to 4 (more variety)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--loop", action="store_true", help="walk back to the first keyframe")
    p.add_argument("--interp", choices=INTERPOLATIONS, default="w-lerp", help="z-slerp, w-lerp (default), w-cubic")
    p.add_argument("--easing", choices=EASINGS, default="smooth", help="how each leg starts and ends")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi")
    p.add_argument("--size", type=int, help="video side in px (default: the model's resolution)")
    p.add_argument("--npy-space", choices=("auto", "z", "w"), default="auto",
                   help="what a 1-D .npy holds (auto: z when it has z_dim numbers)")
    p.add_argument("--out", required=True, help="the .mp4 to write")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)
