"""``directions``: SeFa / GANSpace directions of a model, per layer group; named ones saved with it."""
from __future__ import annotations

import time
from pathlib import Path

from . import UserError
from .playground_common import add_model_args, library_delete, library_rename, model_of, user_errors

GROUPS = ("all", "coarse", "middle", "fine")


def run_find(args) -> int:
    import numpy as np

    from ..playground import found_directions, load_model
    path, label = model_of(args.checkpoint, args.user)
    with user_errors():
        load_model(path, args.device)
        t0 = time.perf_counter()
        found = found_directions(path, args.method, args.layers, k=args.k, device=args.device)
        took = time.perf_counter() - t0
        print(f"{len(found)} {args.method} directions of {label} for {args.layers} layers "
              f"(ws {found[0]['layers'][0]}-{found[0]['layers'][1] - 1}) in {took:.2f} s")
        for d in found:
            print(f"  {d['index']}: {d['name']}")
        if args.out:
            np.save(args.out, np.stack([d["direction"] for d in found]), allow_pickle=False)
            print(f"wrote {args.out} ({len(found)} x {found[0]['direction'].size})")
        if args.render:
            _render_strips(path, found, Path(args.render), args.seed, args.strength, args.trunc)
    return 0


def _render_strips(path, found, out: Path, seed: int, strength: float, psi: float) -> None:
    """One strip per direction: the seed moved by -strength, -strength/2, 0, +strength/2, +strength."""
    import numpy as np
    from PIL import Image

    from ..playground import Edit, RenderArgs, Vector, render
    out.mkdir(parents=True, exist_ok=True)
    for d in found:
        cells = []
        for s in np.linspace(-strength, strength, 5):
            edit = Edit(Vector.of(d["direction"]), d["layers"][0], d["layers"][1], float(s))
            r = render(RenderArgs(path, seed=seed, psi=psi, edits=(edit,) if s else ()))
            if r["error"]:
                from ..playground import PlaygroundError
                raise PlaygroundError(r["error"])
            cells.append(r["image"])
        Image.fromarray(np.concatenate(cells, axis=1)).save(out / f"direction{d['index']:02d}.png")
    print(f"wrote {len(found)} strips to {out}")


def run_save(args) -> int:
    from ..playground import found_directions, library, model_fingerprint
    path, _ = model_of(args.checkpoint, args.user)
    with user_errors():
        found = found_directions(path, args.method, args.layers, k=max(args.index, 0) + 1)
        if not 0 <= args.index < len(found):
            raise UserError(f"--index must be between 0 and {len(found) - 1}")
        d = found[args.index]
        rec = library.save_direction(args.user, args.name, d["direction"], model_fp=model_fingerprint(path),
                                     method=f"{args.method}:{args.layers}", layers=d["layers"], index=args.index)
    print(f"{rec['id']}  {rec['name']}")
    return 0


def run_list(args) -> int:
    from ..playground import library, model_fingerprint
    path, label = model_of(args.checkpoint, args.user)
    with user_errors():
        rows = library.list_directions(args.user, model_fingerprint(path))
    if not rows:
        print(f"no directions saved with {label} yet (`directions save`)")
    for r in rows:
        print(f"{r['id']}  {r['method']:<16} ws {r['layers'][0]}-{r['layers'][1] - 1}  {r['name']}")
    return 0


run_rename, run_delete = library_rename("directions"), library_delete("directions")


def register(sub) -> None:
    from ..storage import DEFAULT_USER
    p = sub.add_parser("directions", help="SeFa / GANSpace directions; named directions saved with a model")
    dsub = p.add_subparsers(dest="directions_command", required=True, metavar="ACTION")
    q = dsub.add_parser("find", help="the strongest directions of a layer group")
    add_model_args(q)
    q.add_argument("--method", choices=("sefa", "ganspace"), default="sefa")
    q.add_argument("--layers", choices=GROUPS, default="all", help="coarse 4-8 px, middle 16-32 px, fine 64 px up")
    q.add_argument("-k", type=int, default=6, help="how many (default 6)")
    q.add_argument("--out", help="write them as a .npy [k, w_dim]")
    q.add_argument("--render", metavar="DIR", help="write a strip per direction (5 strengths) for --seed")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--strength", type=float, default=5.0)
    q.add_argument("--trunc", type=float, default=0.7)
    q.add_argument("--device", default="cpu")
    q.set_defaults(func=run_find)
    q = dsub.add_parser("save", help="save one found direction with the model, under a name")
    add_model_args(q)
    q.add_argument("--method", choices=("sefa", "ganspace"), default="sefa")
    q.add_argument("--layers", choices=GROUPS, default="all")
    q.add_argument("--index", type=int, default=0, help="which one (0 = the strongest)")
    q.add_argument("--name", required=True)
    q.set_defaults(func=run_save)
    q = dsub.add_parser("list", help="the directions saved with a model")
    add_model_args(q)
    q.set_defaults(func=run_list)
    for name, fn, helptext in (("rename", run_rename, "rename a saved direction"),
                               ("delete", run_delete, "delete a saved direction")):
        q = dsub.add_parser(name, help=helptext)
        q.add_argument("ref", help="its id or name")
        if name == "rename":
            q.add_argument("name", help="the new name")
        q.add_argument("--user", default=DEFAULT_USER)
        q.set_defaults(func=fn)
