"""``upscale``: images x2 or x4 with the Lanczos resampler or a super-resolution network you supply."""
from __future__ import annotations

from pathlib import Path

from . import UserError
from .playground_common import user_errors

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_PIXELS = 4096 * 4096


def run(args) -> int:
    import numpy as np
    from PIL import Image, ImageOps

    from ..playground import upscale
    out = Path(args.out)
    single = len(args.images) == 1 and out.suffix.lower() in IMAGE_SUFFIXES
    if not single:
        out.mkdir(parents=True, exist_ok=True)
    for src in args.images:
        try:
            with Image.open(src) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise UserError(f"{src}: {im.width}x{im.height} is too large to upscale")
                rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        except (OSError, Image.DecompressionBombError) as e:
            raise UserError(f"{src}: not a readable image ({getattr(e, 'strerror', None) or e})") from None
        with user_errors():
            big = upscale(rgb, args.factor, weights=args.weights, device=args.device)
            dest = out if single else out / f"{Path(src).stem}-x{args.factor}.png"
            Image.fromarray(big).save(dest)
        print(f"wrote {dest} ({big.shape[1]}x{big.shape[0]})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("upscale", help="images x2 or x4 (Lanczos, or your super-resolution network)",
                       description="A network's weights are read as data only (safetensors, or a torch.save file of "
                                   "tensors): RRDBNet (ESRGAN / Real-ESRGAN x4plus, x2plus) and SRVGGNetCompact.")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", required=True, help="a file (one image) or a folder")
    p.add_argument("--factor", type=int, choices=(2, 4), default=2)
    p.add_argument("--weights", help="super-resolution weights (.safetensors or .pth); default: Lanczos")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)
