"""Your photo in the model: read and crop it, run the projection as a task the page follows.

``prepare_target`` decodes an uploaded image with the dataset importer's checks (size limits,
decompression bombs, EXIF orientation, alpha on white) and crops it to the model's square:
``center`` (a square of the short side / ``zoom``, centred at (``cx``, ``cy``) as fractions of
the image, kept inside it), ``none`` (the whole image squeezed to 1:1) or ``pad`` (letterboxed).
"""
from __future__ import annotations

import numpy as np

from .common import PlaygroundError, load_model
from .projection import ProjectionOptions, ProjectionResult, project
from .refs import model_fingerprint
from .tasks import TaskRunner

MAX_UPLOAD_BYTES = 50 << 20
CROPS = ("center", "none", "pad")
PROJECTIONS = TaskRunner()


def prepare_target(source, resolution: int, crop: str = "center", zoom: float = 1.0, cx: float = 0.5,
                   cy: float = 0.5) -> np.ndarray:
    """HWC uint8 [resolution, resolution, 3] from an image file (path or bytes)."""
    from PIL import Image

    from ..datasets.images import Reject, decode, to_training
    if crop not in CROPS:
        raise PlaygroundError(f"Crop is one of {', '.join(CROPS)}")
    for name, v, lo, hi in (("Zoom", zoom, 1, 8), ("The centre x", cx, 0, 1), ("The centre y", cy, 0, 1)):
        if not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise PlaygroundError(f"{name} must be between {lo} and {hi}")
    if source is None or source == "":
        raise PlaygroundError("Upload a photo, or pick one from a dataset")
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as f:
                data = f.read(MAX_UPLOAD_BYTES + 1)
        except OSError:
            raise PlaygroundError("The photo cannot be read") from None
    if len(data) > MAX_UPLOAD_BYTES:
        raise PlaygroundError(f"The photo is too large (at most {MAX_UPLOAD_BYTES >> 20} MB)")
    try:
        img, *_ = decode(data, want=int(resolution), min_size=8)
    except Reject as e:
        raise PlaygroundError(f"This photo cannot be used: {e}") from None
    r = int(resolution)
    w, h = img.size
    if crop == "center":
        side = min(w, h) / float(zoom)
        x0 = min(max(cx * w - side / 2, 0), w - side)
        y0 = min(max(cy * h - side / 2, 0), h - side)
        out = img.resize((r, r), Image.Resampling.LANCZOS, box=(x0, y0, x0 + side, y0 + side), reducing_gap=2.0)
    else:  # squeezed or padded, as a dataset image is
        out = to_training(img, r, crop)
    return np.asarray(out.convert("RGB"), dtype=np.uint8).copy()


def start_projection(user: str, model_path, target: np.ndarray, options: ProjectionOptions, device: str = "cpu",
                     runner: TaskRunner = PROJECTIONS) -> str:
    """Check everything, then project in the background; the task id to follow."""
    options.validate()
    ckpt = load_model(model_path, device)
    target = np.asarray(target)
    if target.shape != (ckpt.resolution, ckpt.resolution, 3):
        raise PlaygroundError(f"The photo must be cropped to {ckpt.resolution} px for this model")
    if options.loss == "d+pixel" and ckpt.D is None:
        raise PlaygroundError("This model file has no discriminator: choose another loss")

    def work(task) -> ProjectionResult:
        task.preview = np.concatenate([target, np.zeros_like(target)], axis=1)

        def progress(step, total, loss, image):
            task.report(step, total, loss, None if image is None else np.concatenate([target, image], axis=1))
        result = project(model_path, target, options, device, progress_fn=progress, abort_fn=task.stopping)
        result.model_fp = model_fingerprint(model_path)
        return result

    return runner.start(user, "projection", work)


def for_display(image, side: int = 256):
    """A small image blown up by whole pixels (nearest) until its short side reaches ``side``: a
    64 px rendering stays crisp on the page instead of a blurry upscale or a thumbnail."""
    if image is None:
        return None
    image = np.asarray(image)
    k = max(1, side // max(1, min(image.shape[:2])))
    return image.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else image


def projection_view(user: str, task_id: str | None = None, runner: TaskRunner = PROJECTIONS) -> dict:
    """What the page shows: ``{"id", "state", "text", "image" (target | current, side by side), "active"}``."""
    s = runner.status(user, task_id)
    res: ProjectionResult | None = s["result"]
    state = s["state"]
    if res is not None:
        text = (f"{'Stopped' if res.stopped else 'Done'} after {res.steps_done:,} steps in {res.seconds:.0f} s: "
                f"{res.psnr:.1f} dB PSNR against your photo. Edit it with the sliders, keep it as a vector.")
        image = np.concatenate([res.target, res.image], axis=1)
    elif state in ("waiting", "running"):
        loss = f" · loss {s['loss']:.4f}" if s["loss"] is not None else ""
        text = s["message"] if state == "waiting" else f"Step {s['step']:,} of {s['total']:,}{loss}"
        image = s["preview"]
    else:
        text, image = s["message"] or state, s["preview"]
    return {"id": s["id"], "state": state, "text": text, "image": for_display(image),
            "active": state in ("waiting", "running")}


def projection_result(user: str, task_id: str, runner: TaskRunner = PROJECTIONS) -> ProjectionResult:
    s = runner.status(user, task_id)
    if s["result"] is None:
        raise PlaygroundError("That projection has no result (yet)")
    return s["result"]
