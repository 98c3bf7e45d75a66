"""Playground figures on this machine, for the bundled model (or --checkpoint):

    python bench/playground.py [--checkpoint default] [--images 8] [--steps 500] [--losses pixel,pixel+ssim,d+pixel]

1. Projection of images the model itself generated (seeds 1000-1007, ψ = 1): PSNR and SSIM of the
   found latent's rendering against the image, time per image, for each loss; then the same for
   photos of the sample 'landscapes' dataset (64 px, not drawn by the model). LPIPS needs weights
   the user supplies and is not measured here.
2. SeFa directions: time per layer group with the model loaded (the closed form), and with loading.
3. Smoothness: the mean absolute pixel change (0-255) per unit step along the top SeFa direction,
   in steps of 0.5 from -5 to +5, for 8 seeds: its mean, and its largest step against the median
   step (1 = every step changes the image by the same amount); a random unit direction beside it.
4. A 10-second loop through 4 keyframes (seeds 0-3, W, smooth) at 24 fps: time to render the mp4,
   and whether its first and last frames are the same picture (before and after H.264).
5. Upscaling x4 of 16 px crops back to 64 px: PSNR of Lanczos, bicubic and bilinear against the 64 px original.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def ssim_of(a: np.ndarray, b: np.ndarray) -> float:
    import torch

    from core.playground.losses import ssim
    t = lambda x: torch.from_numpy(np.array(x)).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
    return float(ssim(t(a), t(b))[0])


def psnr_of(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def projections(model, targets, losses, steps, space):
    from core.playground import ProjectionOptions, project
    print(f"\n| loss | space | steps | median PSNR (dB) | min PSNR | median SSIM | median s/image |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for loss in losses:
        ps, ss, ts = [], [], []
        for target in targets:
            res = project(model, target, ProjectionOptions(space=space, steps=steps, loss=loss))
            ps.append(res.psnr)
            ss.append(ssim_of(res.image, target))
            ts.append(res.seconds)
        print(f"| {loss} | {space} | {steps} | {statistics.median(ps):.1f} | {min(ps):.1f} | "
              f"{statistics.median(ss):.3f} | {statistics.median(ts):.1f} |", flush=True)


def sefa_times(model) -> None:
    from core.playground import clear_caches, found_directions, load_model
    from core.playground.directions import layer_groups
    clear_caches()
    t0 = time.perf_counter()
    ckpt = load_model(model)
    load_s = time.perf_counter() - t0
    print("\n| layer group | SeFa (model loaded), median of 5 | with loading the model |")
    print("|---|---:|---:|")
    for group in layer_groups(ckpt):
        times = []
        for _ in range(5):
            clear_caches()
            load_model(model)
            t0 = time.perf_counter()
            found_directions(model, "sefa", group, k=6)
            times.append(time.perf_counter() - t0)
        print(f"| {group} | {statistics.median(times) * 1000:.1f} ms | {load_s + statistics.median(times):.2f} s |")


def smoothness(model) -> None:
    from core.playground import Edit, RenderArgs, Vector, found_directions, load_model, render
    top = found_directions(model, "sefa", "all", k=1)[0]
    rng = np.random.default_rng(0)
    rand = rng.standard_normal(load_model(model).w_dim).astype(np.float32)
    rand /= np.linalg.norm(rand)
    strengths = np.arange(-5, 5.01, 0.5)
    print("\n| direction | mean change per unit step | largest / median step | change over -5..+5 |")
    print("|---|---:|---:|---:|")
    for label, d in (("top SeFa (all layers)", top["direction"]), ("a random unit direction", rand)):
        per_unit, span = [], []
        for seed in range(8):
            imgs = [render(RenderArgs(model, seed=seed, psi=0.7,
                                      edits=(Edit(Vector.of(d), 0, load_model(model).num_ws, float(s)),) if s else ()))
                    ["image"].astype(np.float64) for s in strengths]
            steps = [np.abs(b - a).mean() / 0.5 for a, b in zip(imgs, imgs[1:])]
            per_unit.append(steps)
            span.append(np.abs(imgs[-1] - imgs[0]).mean())
        steps = np.array(per_unit)                                     # [seeds, steps]
        ratio = np.median(steps.max(1) / np.median(steps, axis=1))
        print(f"| {label} | {steps.mean():.2f} | {ratio:.2f} | {np.mean(span):.1f} |")


def loop_video(model, out: Path) -> None:
    import imageio

    from core.playground.walks import Keyframe, walk_frames, walk_video
    keys = [Keyframe("z", np.random.RandomState(s).randn(load_z(model)), f"seed {s}") for s in range(4)]
    t0 = time.perf_counter()
    walk_video(model, keys, out, seconds=10, fps=24, interpolation="w-lerp", easing="smooth", loop=True, psi=0.7)
    took = time.perf_counter() - t0
    frames = list(walk_frames(model, keys, 240, "w-lerp", "smooth", loop=True, psi=0.7))
    reader = imageio.get_reader(out)
    first, count = reader.get_data(0), reader.count_frames()
    last = reader.get_data(count - 1)
    reader.close()
    diff = lambda a, b: np.abs(a.astype(int) - b.astype(int)).mean()  # noqa: E731
    print(f"\n10 s loop, 4 keyframes, 24 fps: {count} frames, {out.stat().st_size / 1000:.0f} kB, rendered in {took:.1f} s; "
          f"first == last frame as rendered: {np.array_equal(frames[0], frames[-1])}; decoded from the mp4, "
          f"mean |first - last| {diff(first, last):.2f}, against what was rendered: first {diff(first, frames[0]):.2f}, "
          f"last {diff(last, frames[-1]):.2f} (H.264's own loss)")


def load_z(model) -> int:
    from core.playground import load_model
    return load_model(model).z_dim


def upscaling(photos) -> None:
    from PIL import Image
    print("\n| x4 from 16 px to 64 px | median PSNR (dB) |")
    print("|---|---:|")
    for name, f in (("Lanczos (Atelier)", Image.Resampling.LANCZOS), ("bicubic", Image.Resampling.BICUBIC),
                    ("bilinear", Image.Resampling.BILINEAR)):
        ps = [psnr_of(np.asarray(Image.fromarray(p).resize((16, 16), Image.Resampling.BOX).resize((64, 64), f)), p)
              for p in photos]
        print(f"| {name} | {statistics.median(ps):.2f} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="default")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--losses", default="pixel,pixel+ssim,d+pixel")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: generated,photos,sefa,smooth,loop,upscale")
    args = ap.parse_args()
    os.environ.setdefault("ATELIER_HOME", tempfile.mkdtemp(prefix="atelier-bench-"))
    from PIL import Image

    from bench.common import machine
    from core.playground import RenderArgs, cli_model, render
    from bench.synthetic import landscape
    model = str(cli_model(args.checkpoint, "local")[0])
    skip = set(args.skip.split(","))
    losses = args.losses.split(",")
    print(f"{machine()}; load average {os.getloadavg()[0]:.2f}; model {args.checkpoint}")
    generated = [render(RenderArgs(model, seed=1000 + i, psi=1.0))["image"] for i in range(args.images)]
    photos = [np.asarray(landscape(np.random.default_rng(7000 + i), 128).convert("RGB")
                         .resize((64, 64), Image.Resampling.LANCZOS)) for i in range(args.images)]
    if "generated" not in skip:
        print(f"\nProjection of {args.images} images generated by the model:")
        projections(model, generated, losses, args.steps, "w+")
        projections(model, generated, ["pixel"], args.steps, "w")
    if "photos" not in skip:
        print(f"\nProjection of {args.images} sample-dataset photos (landscapes, not drawn by the model):")
        projections(model, photos, losses, args.steps, "w+")
    if "sefa" not in skip:
        sefa_times(model)
    if "smooth" not in skip:
        smoothness(model)
    if "loop" not in skip:
        loop_video(model, Path(tempfile.mkdtemp()) / "loop.mp4")
    if "upscale" not in skip:
        upscaling(photos)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
