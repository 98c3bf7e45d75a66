"""Projection: the latent that makes a model draw a given photo (Karras et al. 2020, §5 and appendix).

``project(model_path, target, options)`` optimises one w (space 'w', broadcast to every layer) or
one w per layer (space 'w+'), and on request the model's noise maps, with Adam: the learning rate
ramps up over the first 5% of the steps and down (cosine) over the last 25%; Gaussian noise of
5% of W's spread, fading out by 75% of the steps, is added to w so that the search does not
settle early; noise maps are regularised towards white noise (their autocorrelation at every
scale, weight 1e5) and renormalised after each step. The start is w_avg, or the best of a few
mapped samples when the model is small enough to try them at once.

It runs anywhere (a worker thread, the CLI): ``progress_fn(step, total, loss, image_or_None)`` gets
a preview image about twice a second; ``abort_fn()`` returning True stops it after the current step
with the best latent so far. The cached model is only read, never changed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .common import LOSSES, PlaygroundError, load_model, threads_for

MAX_STEPS = 5000
W_SAMPLES = 10_000
CANDIDATE_PIXELS = 64 * 64 * 32      # start candidates tried in one batch: 32 at 64 px, 2 at 256 px
NOISE_REG_WEIGHT = 1e5
PREVIEW_EVERY_S = 0.5


@dataclass(frozen=True)
class ProjectionOptions:
    """What a projection searches and how long. ``loss`` is one of ``losses.LOSSES``."""
    space: str = "w+"            # 'w': one w for every layer (most editable); 'w+': one w per layer
    noise: bool = False          # also fit the noise maps (closest result; edits may show them)
    steps: int = 500
    loss: str = "pixel+ssim"
    lr: float = 0.1
    seed: int = 0
    lpips_weights: tuple = ()    # VGG16 / LPIPS weights files for loss 'lpips+pixel'

    def validate(self) -> "ProjectionOptions":
        if self.space not in ("w", "w+"):
            raise PlaygroundError("Project into 'w' or 'w+'")
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) \
                or not 1 <= self.steps <= MAX_STEPS:
            raise PlaygroundError(f"Steps must be a whole number from 1 to {MAX_STEPS:,}")
        if self.loss not in LOSSES:
            raise PlaygroundError(f"The loss is one of {', '.join(LOSSES)}")
        if self.loss == "lpips+pixel" and not self.lpips_weights:
            raise PlaygroundError("The LPIPS loss needs a VGG16 / LPIPS weights file: supply one, or choose another loss")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr <= 1:
            raise PlaygroundError("The learning rate must be above 0 and at most 1")
        return self


@dataclass
class ProjectionResult:
    ws: np.ndarray                      # [num_ws, w_dim] float32 (identical rows for space 'w')
    image: np.ndarray                   # HWC uint8: the model's rendering of ws (and noise)
    target: np.ndarray                  # HWC uint8: what was projected
    psnr: float                         # dB between image and target
    steps_done: int
    seconds: float
    stopped: bool
    space: str
    noise: dict | None = None           # {buffer name: [r, r] float32} when fitted
    model_fp: str = ""                  # the model's fingerprint (refs.model_fingerprint), set by the caller
    losses: list = field(default_factory=list)


def noise_buffer_names(G) -> list[str]:
    """Names (relative to G.synthesis) of every noise_const buffer, in synthesis order."""
    return [name for name, _ in G.synthesis.named_buffers() if name.endswith("noise_const")]


def synthesize_with_noise(G, ws, noise: dict | None):
    """G's rendering of ws with 'const' noise, the given maps replacing the model's own (no copy of G)."""
    import torch
    if not noise:
        return G.synthesize(ws, noise_mode="const", fused=ws.shape[0] == 1, channels_last=False)
    from torch.func import functional_call
    maps = {k: (v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v))).to(ws.device)
            for k, v in noise.items()}
    return functional_call(G.synthesis, maps, (ws,), dict(noise_mode="const", fused=ws.shape[0] == 1,
                                                           force_fp32=False, channels_last=False))


def _w_stats(ckpt, device):
    import torch
    gen = torch.Generator().manual_seed(123)
    z = torch.randn(W_SAMPLES, ckpt.z_dim, generator=gen).to(device)
    with torch.no_grad():
        w = ckpt.G_ema.mapping(z, None)[:, 0]                              # [S, w_dim]
    w_avg = w.mean(0)
    return w_avg, float((w - w_avg).square().sum(1).mean().sqrt()), w


def _start(ckpt, loss_fn, w_avg, w_samples, seed: int):
    """w_avg, or a better mapped sample when a batch of candidates is cheap at this resolution."""
    import torch
    n = CANDIDATE_PIXELS // (ckpt.resolution ** 2)
    if n < 2:
        return w_avg[None]
    idx = torch.from_numpy(np.random.RandomState(seed).choice(len(w_samples), n - 1, replace=False))
    cand = torch.cat([w_avg[None], w_samples[idx]])                         # [n, w_dim]
    with torch.no_grad():
        imgs = ckpt.G_ema.synthesize(cand[:, None].repeat(1, ckpt.num_ws, 1), noise_mode="const")
        scores = torch.stack([loss_fn(imgs[i:i + 1]) for i in range(n)])
    return cand[int(scores.argmin())][None]


def _noise_regularisation(maps) -> "torch.Tensor":
    import torch.nn.functional as F
    reg = 0.0
    for v in maps:
        v = v[None, None]
        while True:
            reg = reg + (v * v.roll(1, dims=3)).mean().square() + (v * v.roll(1, dims=2)).mean().square()
            if v.shape[-1] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


def _learning_rate(t: float, base: float) -> float:
    ramp = min(1.0, (1.0 - t) / 0.25)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / 0.05)


def project(model_path, target: np.ndarray, options: ProjectionOptions = ProjectionOptions(), device: str = "cpu",
            progress_fn=None, abort_fn=None) -> ProjectionResult:
    """Find the latent whose rendering is closest to ``target`` (HWC uint8 at the model's resolution)."""
    options.validate()
    ckpt = load_model(model_path, device)
    with threads_for(ckpt):
        return _project(ckpt, target, options, device, progress_fn, abort_fn)


def _project(ckpt, target, options: ProjectionOptions, device, progress_fn, abort_fn) -> ProjectionResult:
    import torch

    from ..stylegan.images import to_uint8
    from .losses import make_loss, psnr
    G, res = ckpt.G_ema, ckpt.resolution
    target = np.array(target)
    if target.shape != (res, res, 3) or target.dtype != np.uint8:
        raise PlaygroundError(f"The target must be a {res}x{res} RGB image for this model (got {target.shape})")
    if ckpt.c_dim:
        raise PlaygroundError("Projection into class-conditional models is not supported")
    t0 = time.monotonic()
    target_t = torch.from_numpy(target).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1
    loss_fn = make_loss(options.loss, target_t, ckpt, options.lpips_weights)
    w_avg, w_std, w_samples = _w_stats(ckpt, device)
    w_start = _start(ckpt, loss_fn, w_avg, w_samples, options.seed)         # [1, w_dim]
    rows = ckpt.num_ws if options.space == "w+" else 1
    w_opt = w_start[:, None].repeat(1, rows, 1).detach().clone().requires_grad_(True)
    names = noise_buffer_names(G) if options.noise else []
    buffers = dict(G.synthesis.named_buffers())
    maps = [buffers[n].detach().clone().requires_grad_(True) for n in names]
    opt = torch.optim.Adam([w_opt] + maps, lr=options.lr, betas=(0.9, 0.999))
    gen = torch.Generator(device=device).manual_seed(int(options.seed))
    best = (float("inf"), w_opt.detach().clone(), [m.detach().clone() for m in maps])
    losses, last_preview, step, stopped = [], 0.0, 0, False
    for step in range(1, options.steps + 1):
        t = (step - 1) / options.steps
        for group in opt.param_groups:
            group["lr"] = _learning_rate(t, options.lr)
        noise_scale = w_std * 0.05 * max(0.0, 1 - t / 0.75) ** 2
        w_noisy = w_opt + torch.randn(w_opt.shape, generator=gen, device=device) * noise_scale
        ws = w_noisy.expand(1, ckpt.num_ws, -1) if rows == 1 else w_noisy
        img = synthesize_with_noise(G, ws, dict(zip(names, maps)) if maps else None)
        loss = loss_fn(img)
        total = loss + NOISE_REG_WEIGHT * _noise_regularisation(maps) if maps else loss
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        with torch.no_grad():
            for m in maps:
                m.sub_(m.mean()).mul_(m.square().mean().rsqrt())
        value = float(loss.detach())
        losses.append(value)
        if value < best[0] and noise_scale == 0:
            best = (value, w_opt.detach().clone(), [m.detach().clone() for m in maps])
        now = time.monotonic()
        if progress_fn is not None:
            show = now - last_preview >= PREVIEW_EVERY_S or step == options.steps
            progress_fn(step, options.steps, value, to_uint8(img)[0] if show else None)
            if show:
                last_preview = now
        if abort_fn is not None and abort_fn():
            stopped = True
            break
    w_final = best[1] if best[0] < float("inf") else w_opt.detach()
    noise = {n: m for n, m in zip(names, best[2] if best[0] < float("inf") else maps)} or None
    with torch.no_grad():
        ws_final = w_final.expand(1, ckpt.num_ws, -1) if rows == 1 else w_final
        image = synthesize_with_noise(G, ws_final, noise)
    return ProjectionResult(
        ws=ws_final[0].cpu().numpy().astype(np.float32), image=to_uint8(image)[0], target=target,
        psnr=psnr(image, target_t), steps_done=step, seconds=time.monotonic() - t0, stopped=stopped,
        space=options.space, noise={k: v.detach().cpu().numpy().astype(np.float32) for k, v in noise.items()}
        if noise else None, losses=losses)
