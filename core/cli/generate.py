"""``generate``: images from seeds, named and converted exactly as the official tools do."""
from __future__ import annotations

import re
from pathlib import Path

from . import UserError

MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """'0-7', '1,5,9', '0-3,10' -> seeds; one-line errors on anything else."""
    seeds = []
    for part in str(text).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UserError(f"bad seed range {part!r}: use forms like 0-7 or 1,5,9")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise UserError(f"bad seed range {part!r}: the end is before the start")
        if hi >= 2 ** 32:
            raise UserError(f"seed {hi} is too large: seeds go up to {2 ** 32 - 1}")
        seeds.extend(range(lo, hi + 1))
        if len(seeds) > MAX_SEEDS:
            raise UserError(f"too many seeds: at most {MAX_SEEDS:,} at once")
    return seeds


def resolve_checkpoint_arg(value: str) -> Path:
    from ..checkpoints import CheckpointsError, resolve_checkpoint
    try:
        return Path(resolve_checkpoint(value))
    except CheckpointsError as e:
        raise UserError(str(e)) from None


def load_for_cli(value: str, device: str = "cpu"):
    from ..stylegan import CheckpointError, load_checkpoint
    path = resolve_checkpoint_arg(value)
    try:
        return load_checkpoint(path, device=device)
    except CheckpointError as e:
        raise UserError(f"{path.name}: {e}") from None


def run(args) -> int:
    from tqdm import tqdm

    from ..stylegan.images import generate_images, make_grid, to_pil
    seeds = parse_seeds(args.seeds)
    if not 0 <= args.trunc <= 2:
        raise UserError("--trunc must be between 0 and 2")
    ckpt = load_for_cli(args.checkpoint, args.device)
    if args.trunc_cutoff is not None and not 0 <= args.trunc_cutoff <= ckpt.num_ws:
        raise UserError(f"--trunc-cutoff must be between 0 and {ckpt.num_ws} for this model")
    if args.class_idx is not None and not 0 <= args.class_idx < max(ckpt.c_dim, 1):
        raise UserError(f"--class must be between 0 and {ckpt.c_dim - 1}" if ckpt.c_dim else "this model has no classes")
    outdir = Path(args.outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create {outdir}: {e.strerror}") from None
    images = []
    gen = generate_images(ckpt.G_ema, seeds, truncation_psi=args.trunc, truncation_cutoff=args.trunc_cutoff,
                          noise_mode=args.noise_mode, batch=args.batch, class_idx=args.class_idx)
    for seed, img in tqdm(gen, total=len(seeds), unit="img", desc="generate"):
        to_pil(img).save(outdir / f"seed{seed:04d}.png")
        if args.grid:
            images.append(img)
    if args.grid:
        import numpy as np
        make_grid(np.stack(images)).save(outdir / "grid.png")
    print(f"wrote {len(seeds)} image(s) to {outdir}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate images from seeds",
                       description="Generate images from a checkpoint. Seeds give z exactly as the official tools.")
    p.add_argument("--checkpoint", required=True, help="a file, 'default', a catalog name or an imported name")
    p.add_argument("--seeds", required=True, help="e.g. 0-7 or 1,5,9")
    p.add_argument("--trunc", type=float, default=1.0, help="truncation psi (default 1)")
    p.add_argument("--trunc-cutoff", type=int, default=None, help="truncate only the first N ws")
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    p.add_argument("--class", dest="class_idx", type=int, default=None, help="class index of a conditional model")
    p.add_argument("--outdir", default="out")
    p.add_argument("--grid", action="store_true", help="also write grid.png")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)
