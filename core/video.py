"""Videos: mp4 from frames, and a run's progress (every snapshot grid in step order).

mp4 through imageio-ffmpeg (its bundled ffmpeg): H.264 (libx264), yuv420p, even width and height,
``+faststart`` so browsers play it while it loads. Written to a temporary file beside ``dest`` and
renamed into place, so a kill never leaves a torn video under the final name.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

__all__ = ["VideoError", "write_mp4", "progress_video"]

ProgressFn = Callable[[int, int], None]
MAX_SIDE = 4096
MAX_FPS = 60


class VideoError(ValueError):
    """A video that cannot be made; the message is one line for the user."""


def _even_size(size) -> tuple[int, int]:
    w, h = (int(s) for s in size)
    if not (2 <= w <= MAX_SIDE and 2 <= h <= MAX_SIDE):
        raise VideoError(f"Video size must be between 2 and {MAX_SIDE} pixels a side (got {w}x{h})")
    return w - w % 2, h - h % 2


def _fit(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HWC uint8 RGB resized (when needed) to ``size`` = (width, height)."""
    from PIL import Image
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    frame = frame[:, :, :3]
    if (frame.shape[1], frame.shape[0]) != size:
        frame = np.asarray(Image.fromarray(frame).resize(size, Image.LANCZOS))
    return np.ascontiguousarray(frame, dtype=np.uint8)


def write_mp4(frames: Iterable[np.ndarray], dest, fps: float = 24, size=None, total: int | None = None,
              progress_fn: ProgressFn | None = None) -> Path:
    """Encode HWC uint8 frames to ``dest`` atomically; size = (w, h) or the first frame's, made even."""
    import imageio_ffmpeg
    if not 0 < float(fps) <= MAX_FPS:
        raise VideoError(f"fps must be between 1 and {MAX_FPS}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=".mp4", dir=dest.parent)
    os.close(fd)
    writer, count = None, 0
    try:
        for frame in frames:
            frame = np.asarray(frame)
            if writer is None:
                size = _even_size(size or (frame.shape[1], frame.shape[0]))
                writer = imageio_ffmpeg.write_frames(
                    tmp, size, fps=float(fps), codec="libx264", pix_fmt_out="yuv420p", macro_block_size=1,
                    quality=7, output_params=["-movflags", "+faststart", "-f", "mp4"], ffmpeg_log_level="error")
                writer.send(None)
            writer.send(_fit(frame, size).tobytes())
            count += 1
            if progress_fn:
                progress_fn(count, total or count)
        if writer is None:
            raise VideoError("No frames to make a video of")
        writer.close()
        writer = None
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def progress_video(run_dir, dest, fps: float = 8, size=None, hold_last_s: float = 1.0,
                   progress_fn: ProgressFn | None = None) -> Path:
    """mp4 of every snapshot grid of ``run_dir`` in step order (the last one held ``hold_last_s``)."""
    from PIL import Image

    from .stylegan.run_files import list_snapshots, snapshot_paths
    steps = list_snapshots(Path(run_dir))
    if not steps:
        raise VideoError("This experiment has no snapshots yet")
    hold = max(0, int(round(hold_last_s * float(fps)))) if 0 < float(fps) <= MAX_FPS else 0
    total = len(steps) + hold

    def frames():
        last = None
        for step in steps:
            try:
                with Image.open(snapshot_paths(Path(run_dir), step)[1]) as im:
                    last = np.asarray(im.convert("RGB"))
            except OSError:
                if last is None:
                    continue  # a grid removed or torn under us: skip it
            yield last
        for _ in range(hold if last is not None else 0):
            yield last

    return write_mp4(frames(), dest, fps=fps, size=size, total=total, progress_fn=progress_fn)
