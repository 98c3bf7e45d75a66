"""``project``: find the latent that makes a model draw your photo; write what it found.

Writes ``OUT/projected.png`` (the model's rendering of the latent, at its resolution),
``OUT/vector.npy`` (w for every layer, [num_ws, w_dim]), ``OUT/target.png`` (the cropped photo),
``OUT/projection.json`` (PSNR, steps, time, options) and, with ``--noise``, ``OUT/noise.safetensors``.
Ctrl-C stops the search and writes the best result so far.
"""
from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from . import UserError
from .playground_common import add_model_args, model_of, user_errors


def _center(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"bad --center {text!r}: use X,Y as fractions, e.g. 0.5,0.4") from None
    return x, y


def run(args) -> int:
    from PIL import Image
    from tqdm import tqdm

    from ..playground import ProjectionOptions, library, load_model, prepare_target, project
    from ..playground.refs import model_fingerprint
    path, label = model_of(args.checkpoint, args.user)
    out = Path(args.out)
    cx, cy = _center(args.center)
    stop = threading.Event()
    with user_errors():
        ckpt = load_model(path, args.device)
        target = prepare_target(Path(args.image), ckpt.resolution, args.crop, args.zoom, cx, cy)
        options = ProjectionOptions(space=args.space, noise=args.noise, steps=args.steps, loss=args.loss,
                                    seed=args.seed, lpips_weights=tuple(args.lpips_weights or ())).validate()
        out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=options.steps, unit="step", desc="project")
        previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            res = project(path, target, options, args.device, abort_fn=stop.is_set,
                          progress_fn=lambda step, total, loss, _img: (bar.update(step - bar.n),
                                                                       bar.set_postfix(loss=f"{loss:.4f}")))
        finally:
            signal.signal(signal.SIGINT, previous)
            bar.close()
        import numpy as np
        Image.fromarray(res.image).save(out / "projected.png")
        Image.fromarray(res.target).save(out / "target.png")
        np.save(out / "vector.npy", res.ws, allow_pickle=False)
        if res.noise:
            from safetensors.numpy import save_file
            save_file(res.noise, str(out / "noise.safetensors"))
        info = {"psnr_db": round(res.psnr, 2), "steps": res.steps_done, "seconds": round(res.seconds, 1),
                "stopped": res.stopped, "model": label, "space": res.space, "noise": bool(res.noise),
                "loss": options.loss, "resolution": ckpt.resolution}
        (out / "projection.json").write_text(json.dumps(info, indent=2))
        if args.save_vector:
            from ..playground.vectors import vector_to_latent
            check = lambda a, s: vector_to_latent(a, s, ckpt.z_dim, ckpt.w_dim, ckpt.num_ws)  # noqa: E731
            rec = library.save_vector(args.user, args.save_vector, res.ws, "w", model_fp=model_fingerprint(path),
                                      model_label=label, shape_check=check, source="projection", noise=res.noise)
            print(f"kept as vector {rec['id']} “{rec['name']}”")
    print(f"{'stopped' if res.stopped else 'done'}: {res.psnr:.2f} dB PSNR after {res.steps_done} steps "
          f"({res.seconds:.1f} s); wrote {out / 'projected.png'} and {out / 'vector.npy'}")
    return 0


def register(sub) -> None:
    from ..playground.common import LOSSES
    from ..playground.photo import CROPS
    p = sub.add_parser("project", help="find the latent that reproduces a photo",
                       description=__doc__.split("\n\n")[0])
    add_model_args(p)
    p.add_argument("--image", required=True, help="the photo (JPEG, PNG, ...)")
    p.add_argument("--out", required=True, help="folder for projected.png, vector.npy, target.png, projection.json")
    p.add_argument("--steps", type=int, default=500, help="optimisation steps (default 500)")
    p.add_argument("--space", choices=("w", "w+"), default="w+", help="one w for all layers, or one per layer (default)")
    p.add_argument("--noise", action="store_true", help="also fit the noise maps")
    p.add_argument("--loss", choices=LOSSES, default="pixel+ssim",
                   help="what 'close' means (default pixel+ssim: the best in bench/playground.py)")
    p.add_argument("--lpips-weights", nargs="+", metavar="FILE", help="VGG16 / LPIPS weights for --loss lpips+pixel")
    p.add_argument("--crop", choices=CROPS, default="center", help="center square, whole image squeezed, or padded")
    p.add_argument("--zoom", type=float, default=1.0, help="center crop: 1 = the short side, 2 = half of it")
    p.add_argument("--center", default="0.5,0.5", help="center crop: X,Y of its centre as fractions (default 0.5,0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search's randomness")
    p.add_argument("--save-vector", metavar="NAME", help="also keep the latent in the user's vector library")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)
