"""Tiny models and image folders for tests: 32 px, few channels, CPU only, seconds to train."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

TINY_G = dict(img_resolution=32, channel_base=256, channel_max=64, mapping_layers=2, z_dim=32, w_dim=32)


def tiny_networks(seed: int = 0):
    import torch

    from core.stylegan.networks import Discriminator, Generator
    torch.manual_seed(seed)
    G = Generator(**TINY_G)
    D = Discriminator(img_resolution=32, channel_base=256, channel_max=64)
    return G, D


def write_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    import copy

    from core.stylegan import save_checkpoint
    G, D = tiny_networks(seed)
    save_checkpoint(path, G_ema=copy.deepcopy(G), G=G, D=D, metadata={"note": "tiny test model"})
    return Path(path)


def write_blob_images(folder: Path, n: int = 16, size: int = 64, seed: int = 0, kind: str = "blobs") -> Path:
    """Coloured discs (kind='blobs') or diagonal stripes (kind='stripes') on plain backgrounds."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[:] = rng.integers(0, 80, 3)
        if kind == "blobs":
            cy, cx, r = rng.integers(size // 4, size - size // 4, 2).tolist() + [int(rng.integers(size // 8, size // 3))]
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(150, 256, 3)
        else:
            period = int(rng.integers(6, 12))
            img[((xx + yy) // (period // 2)) % 2 == 0] = rng.integers(150, 256, 3)
        Image.fromarray(img).save(folder / f"img{i:03d}.png")
    return folder
