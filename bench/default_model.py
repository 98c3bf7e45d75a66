"""How close is a model to a sample dataset? SWD of its samples against the set, beside the set's floor.

    python bench/default_model.py [--checkpoint static/models/default.safetensors] [--sample emoji-faces]
                                  [--n 1000] [--grid docs/default-model-samples.png]

SWD (x1e3, ProGAN per-set normalisation, mean over Laplacian levels; core.stylegan.metrics.swd)
of n G_ema samples (seeds 0..n-1, psi 1, random noise) against every image of the sample set,
and the set's split-half floor: the SWD between two random halves of the set (mean of 4 splits),
what a model indistinguishable from the data would score against half of it. Optionally writes a
grid of seeds 0-31, pixel-doubled (nearest neighbour, no blur).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sample_images(key: str, resolution: int) -> np.ndarray:
    """Every image of a sample set as uint8 NHWC at ``resolution``, imported into a throwaway data root."""
    os.environ.setdefault("ATELIER_HOME", tempfile.mkdtemp(prefix="atelier-bench-"))
    from core.datasets import DatasetExists, import_dataset, open_packed
    from core.sample_data import sample_dataset
    try:
        import_dataset([sample_dataset(key).path], key, resolution=resolution)
    except DatasetExists:
        pass
    ds = open_packed(key, resolution)
    rng = np.random.default_rng(0)
    return np.stack([ds.get(i, rng) for i in range(len(ds))])


def model_images(G, n: int, first_seed: int = 0) -> np.ndarray:
    from core.stylegan.images import generate_images
    return np.stack([img for _, img in generate_images(G, range(first_seed, first_seed + n), noise_mode="random",
                                                       batch=64)])


def split_half_floor(reals: np.ndarray, splits: int = 4) -> float:
    from core.stylegan.metrics import swd
    values = []
    for s in range(splits):
        order = np.random.default_rng(1000 + s).permutation(len(reals))
        half = len(reals) // 2
        values.append(swd(reals[order[:half]], reals[order[half:2 * half]])["mean"])
    return float(np.mean(values))


def pixel_doubled_grid(G, seeds, cols: int, scale: int = 2):
    from PIL import Image

    from core.stylegan.images import generate_images, make_grid
    grid = make_grid(np.stack([img for _, img in generate_images(G, seeds)]), cols=cols)
    return grid.resize((grid.width * scale, grid.height * scale), Image.Resampling.NEAREST)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "static/models/default.safetensors"))
    ap.add_argument("--sample", default="emoji-faces")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--grid", default="", help="write seeds 0-31 (pixel-doubled) to this PNG")
    a = ap.parse_args()
    from core.stylegan import load_checkpoint
    from core.stylegan.metrics import swd
    ckpt = load_checkpoint(a.checkpoint)
    reals = sample_images(a.sample, ckpt.resolution)
    fakes = model_images(ckpt.G_ema, a.n)
    value, floor = swd(fakes, reals)["mean"], split_half_floor(reals)
    step = ckpt.metadata.get("step", ckpt.metadata.get("steps", "?"))
    print(f"{Path(a.checkpoint).name} at step {step}: SWD of {a.n} samples vs the "
          f"{len(reals)} images of '{a.sample}' = {value:.1f}; split-half floor {floor:.1f}; ratio {value / floor:.2f}")
    if a.grid:
        pixel_doubled_grid(ckpt.G_ema, range(32), cols=8).save(a.grid)
        print(f"wrote {a.grid}")


if __name__ == "__main__":
    main()
