"""``vectors``: the user's library of named latents (z or w, with the model they belong to)."""
from __future__ import annotations

from pathlib import Path

from .playground_common import add_model_args, library_delete, library_rename, model_of, user_errors


def run_list(args) -> int:
    from ..playground import library, model_fingerprint
    fp = None
    if args.checkpoint:
        path, _ = model_of(args.checkpoint, args.user)
        fp = model_fingerprint(path)
    with user_errors():
        rows = library.list_vectors(args.user, fp)
    if not rows:
        print("no vectors yet (`vectors save`, `vectors import`, `project --save-vector`)")
    for r in rows:
        shape = "x".join(str(s) for s in r["shape"])
        print(f"{r['id']}  {r['space']} {shape:<8} {r['created'][:16]}  {r['name']}  ({r['model_label']})")
    return 0


def _keep(args, path, label: str, ckpt, array, space: str, source: str) -> int:
    """Save ``array`` under ``--name`` in the user's library, checked against the model's shapes."""
    from ..playground import library, model_fingerprint
    from ..playground.vectors import vector_to_latent
    check = lambda a, s: vector_to_latent(a, s, ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)  # noqa: E731
    with user_errors():
        rec = library.save_vector(args.user, args.name, array, space, model_fp=model_fingerprint(path),
                                  model_label=label, shape_check=check, source=source)
    print(f"{rec['id']}  {rec['space']}  {rec['name']}")
    return 0


def run_save(args) -> int:
    from ..playground import PlaygroundError, RenderArgs, load_model, render
    path, label = model_of(args.checkpoint, args.user)
    with user_errors():
        ckpt = load_model(path)
        out = render(RenderArgs(path, seed=args.seed, psi=1.0))
        if out["error"]:
            raise PlaygroundError(out["error"])
    return _keep(args, path, label, ckpt, out["z"] if args.space == "z" else out["w"], args.space,
                 f"seed {args.seed}")


def run_import(args) -> int:
    from ..playground import load_model, load_vector
    path, label = model_of(args.checkpoint, args.user)
    with user_errors():
        ckpt = load_model(path)
        array = load_vector(Path(args.file))
    space = args.space
    if space == "auto":
        space = "z" if array.ndim == 1 and array.size == ckpt.z_dim else "w"
    return _keep(args, path, label, ckpt, array, space, "import")


def run_export(args) -> int:
    import numpy as np

    from ..playground import library
    with user_errors():
        _, array, _ = library.get_vector(args.user, args.ref)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, array, allow_pickle=False)
    print(f"wrote {out}")
    return 0


run_rename, run_delete = library_rename("vectors"), library_delete("vectors")


def register(sub) -> None:
    from ..storage import DEFAULT_USER
    p = sub.add_parser("vectors", help="the vector library: list, save, import, export, rename, delete")
    vsub = p.add_subparsers(dest="vectors_command", required=True, metavar="ACTION")
    q = vsub.add_parser("list", help="the user's vectors (of one model with --checkpoint)")
    add_model_args(q, required=False)
    q.set_defaults(func=run_list)
    q = vsub.add_parser("save", help="keep a seed's latent under a name")
    add_model_args(q)
    q.add_argument("--seed", type=int, required=True)
    q.add_argument("--name", required=True)
    q.add_argument("--space", choices=("z", "w"), default="z", help="z (default) or w (mapped, untruncated)")
    q.set_defaults(func=run_save)
    q = vsub.add_parser("import", help="a .npy file (z or w) into the library")
    add_model_args(q)
    q.add_argument("file", help="the .npy file")
    q.add_argument("--name", required=True)
    q.add_argument("--space", choices=("auto", "z", "w"), default="auto")
    q.set_defaults(func=run_import)
    q = vsub.add_parser("export", help="write a vector as .npy")
    q.add_argument("ref", help="its id or name")
    q.add_argument("--out", required=True, help="the .npy to write")
    q.add_argument("--user", default=DEFAULT_USER)
    q.set_defaults(func=run_export)
    for name, fn, helptext in (("rename", run_rename, "rename a vector"), ("delete", run_delete, "delete a vector")):
        q = vsub.add_parser(name, help=helptext)
        q.add_argument("ref", help="its id or name")
        if name == "rename":
            q.add_argument("name", help="the new name")
        q.add_argument("--user", default=DEFAULT_USER)
        q.set_defaults(func=fn)
