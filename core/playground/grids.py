"""Many images from one model: seed grids, and interpolation walks (slerp in z, lerp in w) and their videos."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import PlaygroundError, check_common, check_seed, class_vector, load_model, threads_for

MAX_GRID_SEEDS = 64
MAX_FRAMES = 5000


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between z vectors (linear where they are nearly parallel)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(np.clip(np.dot(a / max(na, 1e-12), b / max(nb, 1e-12)), -1.0, 1.0))
    omega = math.acos(cos)
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def seed_grid(model_path, seeds, psi: float = 1.0, cutoff: int | None = None, noise_mode: str = "const",
              class_idx: int | None = None, cols: int | None = None, device: str = "cpu", batch: int = 8):
    """(PIL grid image, seeds) for up to MAX_GRID_SEEDS seeds; PlaygroundError on bad input."""
    from ..stylegan.images import generate_images, make_grid
    seeds = [check_seed(s) for s in seeds]
    if not 1 <= len(seeds) <= MAX_GRID_SEEDS:
        raise PlaygroundError(f"A grid holds 1 to {MAX_GRID_SEEDS} seeds")
    ckpt = load_model(model_path, device)
    check_common(ckpt, psi, cutoff, noise_mode)
    class_vector(ckpt, class_idx, 1, device)
    with threads_for(ckpt):
        imgs = [img for _, img in generate_images(ckpt.G_ema, seeds, truncation_psi=psi, truncation_cutoff=cutoff,
                                                  noise_mode=noise_mode, batch=batch, device=device,
                                                  class_idx=class_idx)]
    return make_grid(np.stack(imgs), cols=cols), seeds


def interpolation_frames(model_path, seeds, frames_per_transition: int = 8, psi: float = 1.0, space: str = "z",
                         noise_mode: str = "const", cutoff: int | None = None, class_idx: int | None = None,
                         device: str = "cpu", batch: int = 8):
    """Yield HWC uint8 frames seeds[0] -> seeds[1] -> ... -> seeds[0]: len(seeds) * frames_per_transition.

    Each transition's first frame is its start seed and its end is left to the next, so played on a
    loop the video has no repeated or skipped frame. ``space`` 'z' slerps z; 'w' lerps mapped w.
    Checks run before the first frame, so a bad argument raises at the call.
    """
    import torch

    from ..stylegan.images import to_uint8, z_from_seeds
    seeds = [check_seed(s) for s in seeds]
    if len(seeds) < 2:
        raise PlaygroundError("Interpolation needs at least two seeds")
    fpt = int(frames_per_transition)
    if not 1 <= fpt or fpt * len(seeds) > MAX_FRAMES:
        raise PlaygroundError(f"At most {MAX_FRAMES:,} frames in all")
    if space not in ("z", "w"):
        raise PlaygroundError("Interpolate in 'z' (slerp) or 'w' (lerp)")
    ckpt = load_model(model_path, device)
    check_common(ckpt, psi, cutoff, noise_mode)
    class_vector(ckpt, class_idx, 1, device)
    G = ckpt.G_ema
    zs = z_from_seeds(seeds, ckpt.z_dim).double().numpy()
    if space == "w":
        with torch.no_grad():
            c = class_vector(ckpt, class_idx, len(seeds), device)
            anchors = G.mapping(torch.from_numpy(zs).float().to(device), c, truncation_psi=psi,
                                truncation_cutoff=cutoff).cpu().numpy()     # [S, num_ws, w_dim]
    points = [(i, t / fpt) for i in range(len(seeds)) for t in range(fpt)]

    def generate():
        for start in range(0, len(points), batch):
            chunk = points[start:start + batch]
            with torch.no_grad(), threads_for(ckpt):
                if space == "z":
                    z = np.stack([slerp(zs[i], zs[(i + 1) % len(seeds)], t) for i, t in chunk])
                    c = class_vector(ckpt, class_idx, len(chunk), device)
                    ws = G.mapping(torch.from_numpy(z).float().to(device), c, truncation_psi=psi,
                                   truncation_cutoff=cutoff)
                else:
                    ws = torch.from_numpy(np.stack([(1 - t) * anchors[i] + t * anchors[(i + 1) % len(seeds)]
                                                    for i, t in chunk])).float().to(device)
                images = to_uint8(G.synthesize(ws, noise_mode=noise_mode))
            yield from images

    return generate()


def interpolation_video(model_path, seeds, dest, seconds_per_transition: float = 1.0, fps: float = 24,
                        psi: float = 1.0, space: str = "z", noise_mode: str = "const", device: str = "cpu",
                        progress_fn=None) -> Path:
    """Looping mp4 through ``seeds`` and back to the first (see ``interpolation_frames``)."""
    from ..video import MAX_FPS, VideoError, write_mp4
    if not 0 < float(fps) <= MAX_FPS:
        raise VideoError(f"fps must be between 1 and {MAX_FPS}")
    if not 0 < float(seconds_per_transition) <= 60:
        raise VideoError("Seconds per transition must be between 0 and 60")
    fpt = max(1, int(round(float(seconds_per_transition) * float(fps))))
    seeds = list(seeds)
    frames = interpolation_frames(model_path, seeds, frames_per_transition=fpt, psi=psi, space=space,
                                  noise_mode=noise_mode, device=device)
    return write_mp4(frames, dest, fps=fps, total=fpt * len(seeds), progress_fn=progress_fn)
