"""Keyframe walks and noise loops: frames for previews and videos.

A walk visits keyframes in order: in Z by slerp (every keyframe a z: seeds, z vectors), or in W by
lerp or a Catmull-Rom cubic (z keyframes are mapped first, with the walk's ψ). ``easing`` shapes
each leg (``linear``, ``smooth`` = ease in and out, ``ease-in``, ``ease-out``). Frame i of n sits
at i / (n - 1) of the way: a walk starts on its first keyframe and ends on its last one, and a
loop walks back to the first, so its first and last frames are the same picture.

A noise loop is a closed random curve in Z: z(θ) = Σ_h (a_h cos hθ + b_h sin hθ) / √H with
a_h, b_h ~ N(0, I) drawn from a seed: every point is itself a standard normal z, and θ = 2π closes it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .common import PlaygroundError, check_common, load_model, threads_for
from .grids import slerp

INTERPOLATIONS = ("z-slerp", "w-lerp", "w-cubic")
EASINGS = ("linear", "smooth", "ease-in", "ease-out")
MAX_KEYFRAMES = 64
MAX_WALK_FRAMES = 10_000
MAX_WANDER = 4


@dataclass(frozen=True)
class Keyframe:
    """A point of a walk: ``space`` 'z' (array [z_dim]) or 'w' (array [num_ws, w_dim]); a label to show."""
    space: str
    array: np.ndarray
    label: str = ""


def ease(s: float, easing: str) -> float:
    if easing == "linear":
        return s
    if easing == "smooth":
        return 0.5 - 0.5 * math.cos(math.pi * s)
    if easing == "ease-in":
        return s * s
    if easing == "ease-out":
        return 1 - (1 - s) * (1 - s)
    raise PlaygroundError(f"Easing is one of {', '.join(EASINGS)}")


def frame_positions(n_keys: int, frames: int, loop: bool, easing: str = "linear") -> list[tuple[int, float]]:
    """(leg, eased fraction) of each frame: leg j runs from keyframe j to keyframe j + 1 (mod n with a loop)."""
    legs = n_keys if loop else n_keys - 1
    out = []
    for i in range(frames):
        u = legs * i / (frames - 1) if frames > 1 else 0.0
        j = min(int(u), legs - 1)
        out.append((j, ease(u - j, easing)))
    return out


def catmull_rom(p0, p1, p2, p3, t: float):
    t2, t3 = t * t, t * t * t
    return 0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t3)


def _check_walk(keyframes, frames: int, interpolation: str, easing: str) -> None:
    if not 2 <= len(keyframes) <= MAX_KEYFRAMES:
        raise PlaygroundError(f"A walk needs 2 to {MAX_KEYFRAMES} keyframes")
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or not 2 <= frames <= MAX_WALK_FRAMES:
        raise PlaygroundError(f"A walk has 2 to {MAX_WALK_FRAMES:,} frames")
    if interpolation not in INTERPOLATIONS:
        raise PlaygroundError(f"Interpolation is one of {', '.join(INTERPOLATIONS)}")
    ease(0.5, easing)
    if interpolation == "z-slerp" and any(k.space != "z" for k in keyframes):
        raise PlaygroundError("A walk in Z needs seeds or z vectors only: walk in W to use w vectors or photos")


def _anchors_w(ckpt, keyframes, psi, cutoff, device) -> np.ndarray:
    """Every keyframe as ws [K, num_ws, w_dim], truncated with ψ like the preview."""
    import torch

    from .preview import truncate
    out = []
    with torch.no_grad():
        for k in keyframes:
            if k.space == "z":
                z = torch.from_numpy(np.array(k.array, np.float32).reshape(1, -1)).to(device)
                ws = ckpt.G_ema.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
            else:
                ws = truncate(ckpt, torch.from_numpy(np.array(k.array, np.float32)).reshape(1, ckpt.num_ws, -1)
                               .to(device), psi, cutoff)
            out.append(ws[0].cpu().numpy())
    return np.stack(out)


def walk_frames(model_path, keyframes: list[Keyframe], frames: int, interpolation: str = "w-lerp",
                easing: str = "linear", loop: bool = True, psi: float = 1.0, cutoff: int | None = None,
                noise_mode: str = "const", device: str = "cpu", batch: int = 8, only=None):
    """Yield ``frames`` HWC uint8 images (or, with ``only``, just those frame indices). Checks run
    at the call, so a bad argument raises before any frame."""
    _check_walk(keyframes, frames, interpolation, easing)
    ckpt = load_model(model_path, device)
    check_common(ckpt, psi, cutoff, noise_mode)
    positions = frame_positions(len(keyframes), frames, loop, easing)
    picked = range(frames) if only is None else [i for i in only if 0 <= i < frames]
    n = len(keyframes)
    if interpolation == "z-slerp":
        zs = [np.asarray(k.array, np.float64).reshape(-1) for k in keyframes]
        point = lambda j, s: zs[(j + 1) % n] if s == 1 else slerp(zs[j], zs[(j + 1) % n], s)  # noqa: E731
        return _render(ckpt, (point(*positions[i]) for i in picked), "z", psi, cutoff, noise_mode, device, batch)
    anchors = _anchors_w(ckpt, keyframes, psi, cutoff, device)

    def point(j, s):
        if s in (0, 1):  # exactly on a keyframe: no rounding, so a loop's last frame is its first
            return anchors[(j + int(s)) % n]
        if interpolation == "w-lerp":
            return (1 - s) * anchors[j] + s * anchors[(j + 1) % n]
        at = (lambda k: anchors[k % n]) if loop else (lambda k: anchors[min(max(k, 0), n - 1)])
        return catmull_rom(at(j - 1), at(j), at(j + 1), at(j + 2), s)
    return _render(ckpt, (point(*positions[i]) for i in picked), "w", 1.0, None, noise_mode, device, batch)


def noise_loop_frames(model_path, frames: int, seed: int = 0, wander: int = 1, psi: float = 1.0,
                      cutoff: int | None = None, noise_mode: str = "const", device: str = "cpu", batch: int = 8):
    """Yield ``frames`` HWC uint8 images of a closed random walk in Z (first frame == last frame)."""
    from .common import check_seed
    seed = check_seed(seed)
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or not 2 <= frames <= MAX_WALK_FRAMES:
        raise PlaygroundError(f"A loop has 2 to {MAX_WALK_FRAMES:,} frames")
    if isinstance(wander, bool) or not isinstance(wander, (int, np.integer)) or not 1 <= wander <= MAX_WANDER:
        raise PlaygroundError(f"Wander is a whole number from 1 to {MAX_WANDER}")
    ckpt = load_model(model_path, device)
    check_common(ckpt, psi, cutoff, noise_mode)
    rng = np.random.RandomState(seed)
    a, b = rng.randn(wander, ckpt.z_dim), rng.randn(wander, ckpt.z_dim)
    h = np.arange(1, wander + 1)[:, None]

    def z_at(i):
        theta = 2 * math.pi * (i % (frames - 1)) / (frames - 1)   # the last frame is the first
        return ((a * np.cos(h * theta) + b * np.sin(h * theta)).sum(0) / math.sqrt(wander))
    return _render(ckpt, (z_at(i) for i in range(frames)), "z", psi, cutoff, noise_mode, device, batch)


def _render(ckpt, points, space: str, psi, cutoff, noise_mode, device, batch):
    import torch

    from ..stylegan.images import to_uint8

    def generate():
        # A point equal to the first one (a loop's last frame) reuses its picture: a batch of
        # another size may round the same latent differently in the last bit.
        chunk, first = [], None
        for p in points:
            chunk.append(np.asarray(p))
            if len(chunk) == batch:
                first = yield from _flush(chunk, first)
                chunk = []
        if chunk:
            yield from _flush(chunk, first)

    def _flush(chunk, first):
        images = list(_batch(chunk))
        if first is None:
            first = (chunk[0], images[0])
        for p, img in zip(chunk, images):
            yield first[1] if np.array_equal(p, first[0]) else img
        return first

    def _batch(chunk):
        x = torch.from_numpy(np.stack(chunk).astype(np.float32)).to(device)
        with torch.no_grad(), threads_for(ckpt):
            ws = ckpt.G_ema.mapping(x, None, truncation_psi=psi, truncation_cutoff=cutoff) if space == "z" else x
            images = to_uint8(ckpt.G_ema.synthesize(ws, noise_mode=noise_mode))
        yield from images
    return generate()


def preview_frames(model_path, keyframes, frames: int, count: int = 8, **walk) -> list[tuple[int, np.ndarray]]:
    """``count`` frames spread evenly over the walk (first and last included), with their indices."""
    count = max(2, min(int(count), frames))
    idx = sorted({round(i * (frames - 1) / (count - 1)) for i in range(count)})
    return list(zip(idx, walk_frames(model_path, keyframes, frames, only=idx, **walk)))


def frames_for(seconds: float, fps: float) -> int:
    from ..video import MAX_FPS
    if not isinstance(fps, (int, float)) or not 0 < fps <= MAX_FPS:
        raise PlaygroundError(f"Frame rate must be between 1 and {MAX_FPS}")
    if not isinstance(seconds, (int, float)) or not 0 < seconds <= 600:
        raise PlaygroundError("Length must be between 0 and 600 seconds")
    frames = int(round(seconds * fps))
    if not 2 <= frames <= MAX_WALK_FRAMES:
        raise PlaygroundError(f"That makes {frames:,} frames; a video has 2 to {MAX_WALK_FRAMES:,}")
    return frames


def walk_video(model_path, keyframes, dest, seconds: float = 10, fps: float = 24, size: int | None = None,
               progress_fn=None, **walk):
    """mp4 of a keyframe walk: ``seconds`` long at ``fps``, ``size`` px square (default: the model's)."""
    from ..video import write_mp4
    frames = frames_for(seconds, fps)
    it = walk_frames(model_path, keyframes, frames, **walk)
    return write_mp4(it, dest, fps=fps, size=_video_size(size), total=frames, progress_fn=progress_fn)


def noise_loop_video(model_path, dest, seconds: float = 10, fps: float = 24, size: int | None = None,
                     progress_fn=None, **loop):
    from ..video import write_mp4
    frames = frames_for(seconds, fps)
    it = noise_loop_frames(model_path, frames, **loop)
    return write_mp4(it, dest, fps=fps, size=_video_size(size), total=frames, progress_fn=progress_fn)


def _video_size(size):
    if size in (None, 0, ""):
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 16 <= size <= 2048:
        raise PlaygroundError("Video size must be 16 to 2,048 px")
    return (int(size), int(size))
