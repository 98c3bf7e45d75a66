"""Images drawn by code, deterministic for a seed, for benchmarks that need any resolution and no
files (the app's sample datasets are real artwork at 64 px: core/sample_data.py).

``flowers``: radial blossoms on soft gradient grounds. ``landscapes``: skies, sun, layered hills.
"""
from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image

KINDS = ("flowers", "landscapes")


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255


def flower(rng: np.random.Generator, size: int = 128) -> Image.Image:
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size * 2 - 1  # [-1, 1]
    top, bottom = _hsv(rng.random(), 0.3, 0.35 + 0.3 * rng.random()), _hsv(rng.random(), 0.4, 0.2 + 0.2 * rng.random())
    t = (yy + 1)[..., None] / 2
    img = top * (1 - t) + bottom * t
    cx, cy = rng.normal(0, 0.12, 2)
    r = np.hypot(xx - cx, yy - cy)
    theta = np.arctan2(yy - cy, xx - cx) + rng.random() * 2 * np.pi
    petals = int(rng.integers(4, 10))
    sharp = rng.uniform(0.5, 3.0)
    radius = rng.uniform(0.45, 0.8)
    edge = radius * (0.55 + 0.45 * np.abs(np.cos(petals * theta / 2)) ** sharp)
    hue = rng.random()
    inner, outer = _hsv(hue, rng.uniform(0.5, 1), 1.0), _hsv(hue + rng.normal(0, 0.08), rng.uniform(0.6, 1), 0.6)
    shade = np.clip(r / np.maximum(edge, 1e-3), 0, 1)[..., None]
    petal_col = inner * (1 - shade) + outer * shade
    mask = np.clip((edge - r) * size / 2, 0, 1)[..., None]
    img = img * (1 - mask) + petal_col * mask
    centre_r = radius * rng.uniform(0.12, 0.25)
    centre = np.clip((centre_r - r) * size / 2, 0, 1)[..., None]
    img = img * (1 - centre) + _hsv(rng.uniform(0.08, 0.16), 0.9, rng.uniform(0.5, 0.9)) * centre
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def landscape(rng: np.random.Generator, size: int = 128) -> Image.Image:
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    dusk = rng.random()
    sky_top, sky_low = _hsv(0.6 - 0.1 * dusk, 0.6, 0.5 + 0.4 * (1 - dusk)), _hsv(0.08 + 0.5 * (1 - dusk), 0.5 * dusk + 0.2, 0.95)
    img = sky_top * (1 - yy[..., None]) + sky_low * yy[..., None]
    sx, sy, sr = rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.5), rng.uniform(0.05, 0.1)
    sun = np.clip((sr - np.hypot(xx - sx, yy - sy)) * size / 2, 0, 1)[..., None]
    img = img * (1 - sun) + _hsv(0.12, 0.5 * dusk, 1.0) * sun
    base_hue = rng.uniform(0.2, 0.4) if rng.random() < 0.7 else rng.uniform(0.55, 0.7)
    for layer in range(3):
        height = 0.45 + 0.15 * layer + rng.uniform(-0.05, 0.05)
        ridge = height + sum(rng.uniform(0.01, 0.06) / (k + 1) * np.sin(2 * np.pi * (k + 1) * xx[0] * rng.uniform(0.5, 2)
                                                                        + rng.random() * 6) for k in range(4))
        mask = np.clip((yy - ridge[None, :]) * size, 0, 1)[..., None]
        colour = _hsv(base_hue + 0.03 * layer, 0.5, 0.25 + 0.2 * (2 - layer) * (1 - 0.5 * dusk))
        img = img * (1 - mask) + colour * mask
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def make_synthetic_dataset(kind: str, dest, n: int = 500, size: int = 128, seed: int = 0) -> Path:
    """Write n PNGs to dest (created); the same (kind, n, size, seed) always gives the same files."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic set {kind!r}: choose {', '.join(KINDS)}")
    draw = flower if kind == "flowers" else landscape
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rng = np.random.default_rng([seed, i, KINDS.index(kind)])
        draw(rng, size).save(dest / f"{kind}-{i:04d}.png")
    return dest
