"""Thumbnails: a 2x2 grid of seeds 0-3 rendered with the model for its card (numpy, torch, PIL imported lazily)."""
from __future__ import annotations

from pathlib import Path

from core.storage import atomic_path

from .cache import resolve_checkpoint, thumbnail_path

THUMB_SEEDS = (0, 1, 2, 3)
THUMB_PSI = 0.7      # a little truncation: the card shows typical samples
THUMB_CELL = 128     # pixels per cell of the 2x2 grid


def _render_grid(ckpt, device: str = "cpu"):
    import numpy as np
    import torch
    from PIL import Image

    G = ckpt.G_ema
    c_dim = int(getattr(ckpt, "c_dim", 0) or getattr(G, "c_dim", 0) or 0)
    # seeds mean what they mean in the official tools: one RandomState per seed
    z = np.concatenate([np.random.RandomState(seed).randn(1, ckpt.z_dim) for seed in THUMB_SEEDS])
    z = torch.from_numpy(z).float().to(device)
    c = None
    if c_dim:  # class-conditional: one class per cell
        c = torch.zeros(len(THUMB_SEEDS), c_dim, device=device)
        c[torch.arange(len(THUMB_SEEDS)), torch.arange(len(THUMB_SEEDS)) % c_dim] = 1
    with torch.no_grad():
        imgs = G(z, c, truncation_psi=THUMB_PSI, noise_mode="const")  # [4, C, R, R] in [-1, 1]
    imgs = (imgs * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    cells = []
    for img in imgs:
        cell = Image.fromarray(img[..., :3] if img.shape[2] >= 3 else img[..., 0])
        resample = Image.NEAREST if cell.width < THUMB_CELL else Image.LANCZOS  # small models: crisp pixels
        cells.append(cell.convert("RGB").resize((THUMB_CELL, THUMB_CELL), resample))
    grid = Image.new("RGB", (2 * THUMB_CELL, 2 * THUMB_CELL))
    for i, cell in enumerate(cells):
        grid.paste(cell, ((i % 2) * THUMB_CELL, (i // 2) * THUMB_CELL))
    return grid


def make_thumbnail(name: str, user: str | None = None, device: str = "cpu", ckpt=None) -> Path:
    """Render a 2x2 grid of seeds 0-3 with the model and cache it as the entry's thumbnail."""
    if ckpt is None:
        from core.stylegan import load_checkpoint  # lazy: torch
        ckpt = load_checkpoint(resolve_checkpoint(name, user, allow_paths=False), device=device)
    grid = _render_grid(ckpt, device)
    dest = thumbnail_path(name, user)
    with atomic_path(dest) as tmp:
        grid.save(tmp, format="PNG")
    return dest


def try_thumbnail(name: str, ckpt, user: str | None = None) -> None:
    """Best effort after a download or import: a failed render leaves the card without a sample."""
    try:
        make_thumbnail(name, user, ckpt=ckpt)
    except Exception:  # noqa: BLE001 - a missing thumbnail must not fail the download
        pass
