"""Seeds and image conversion exactly as the official tools do them, and image grids."""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image


def z_from_seeds(seeds, z_dim: int) -> torch.Tensor:
    """z = RandomState(seed).randn(1, z_dim) per seed -> [N, z_dim] float32."""
    return torch.from_numpy(np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds])).float()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """NCHW images in [-1, 1] scale -> NHWC uint8 via (x * 127.5 + 128).clamp(0, 255)."""
    x = (images.detach().float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def to_pil(array_hwc: np.ndarray) -> Image.Image:
    if array_hwc.shape[2] == 1:
        return Image.fromarray(array_hwc[:, :, 0], "L")
    return Image.fromarray(array_hwc, "RGB")


def grid_shape(n: int) -> tuple[int, int]:
    cols = int(math.ceil(math.sqrt(n)))
    return int(math.ceil(n / cols)), cols


def make_grid(images_nhwc: np.ndarray, cols: int | None = None) -> Image.Image:
    n, h, w, c = images_nhwc.shape
    rows, auto_cols = grid_shape(n)
    cols = cols or auto_cols
    rows = int(math.ceil(n / cols))
    canvas = np.zeros((rows * h, cols * w, c), dtype=np.uint8)
    for i, img in enumerate(images_nhwc):
        r, q = divmod(i, cols)
        canvas[r * h:(r + 1) * h, q * w:(q + 1) * w] = img
    return to_pil(canvas)


@torch.no_grad()
def generate_images(G, seeds, *, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                    noise_mode: str = "const", batch: int = 8, device=None, class_idx: int | None = None):
    """Yield (seed, HWC uint8 image) for each seed, in order, batch by batch."""
    device = torch.device(device) if device is not None else next(G.parameters()).device
    seeds = list(seeds)
    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        z = z_from_seeds(chunk, G.z_dim).to(device)
        c = None
        if G.c_dim > 0:
            c = torch.zeros(len(chunk), G.c_dim, device=device)
            c[:, class_idx or 0] = 1
        out = to_uint8(G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                         noise_mode=noise_mode))
        yield from zip(chunk, out)
