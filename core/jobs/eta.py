"""ETA before training: measured seconds per step for an architecture, resolution, batch and device.

The first time a combination is asked for, a few real steps run on random data (a warm-up step
with lazy R1, three plain steps, one more R1 step) plus one snapshot; the figures are cached in
the queue cache (``eta:<key>``) and refreshed by the worker from finished runs. The estimate of
an experiment = preparation (checkpoint load, dataset packing, warm-up) + steps x s/step +
snapshots x s/snapshot. During training the worker reports train()'s running average instead.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from . import store

ARCH_DEFAULTS = {"z_dim": 512, "w_dim": 512, "c_dim": 0, "mapping_layers": 8, "channel_base": 32768,
                 "channel_max": 512, "architecture": "skip"}
LOAD_MB_PER_S = 150.0       # reading + converting a checkpoint file
PACK_S_PER_MPIXEL = 0.03    # decoding, cropping and packing one stored image, per megapixel out
STARTUP_S = 1.0             # building the trainer, the loader thread, config files


def arch_of(kwargs: dict | None) -> dict:
    """The architecture fields that decide the cost of a step, with the official defaults filled in."""
    kwargs = dict(kwargs or {})
    return {k: kwargs.get(k, v) for k, v in ARCH_DEFAULTS.items()}


def _device_name(device: str | None) -> tuple[str, str]:
    """(torch device string, the key/label part: 'cpu' or 'cuda:<GPU name>')."""
    from ..stylegan.trainer import resolve_device
    import torch
    dev = resolve_device(device or "auto")
    if dev.type == "cuda":
        return str(dev), f"cuda:{torch.cuda.get_device_name(dev)}"
    return "cpu", "cpu"


def cache_key(resolution: int, arch: dict, batch: int, device_label: str) -> str:
    return "eta:" + json.dumps({"res": int(resolution), "arch": arch_of(arch), "batch": int(batch),
                                "device": device_label}, sort_keys=True)


def _auto_batch(resolution: int, device: str) -> int:
    import torch

    from ..stylegan.trainer import auto_batch
    return auto_batch(resolution, torch.device(device))


def measure(resolution: int, arch: dict, batch: int, device: str) -> dict:
    """Time a few real steps and one snapshot of a fresh model of that shape on random data."""
    import torch

    from ..stylegan import train as train_mod
    from ..stylegan.networks import Generator
    from ..stylegan.train_config import TrainConfig
    from ..stylegan.trainer import Trainer, resolve_device
    a = arch_of(arch)
    dev = resolve_device(device)
    G = Generator(img_resolution=resolution, img_channels=3, **a)
    D = train_mod._matching_discriminator(G)
    cfg = TrainConfig(batch=batch, device=str(dev))
    trainer = Trainer(cfg, G, D, device=dev, batch=batch)
    reals = torch.rand(batch, 3, resolution, resolution, device=dev) * 2 - 1

    def timed_step() -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        trainer.train_step(reals)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0

    first = timed_step()                                  # step 0: warm-up, with R1
    plain = min(timed_step() for _ in range(3))            # steps 1-3: fastest plain step (least disturbed)
    trainer.step = cfg.r1_interval                        # one more step with lazy R1
    r1 = timed_step()
    per_step = (plain * (cfg.r1_interval - 1) + r1) / cfg.r1_interval
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        # The same snapshot train() writes (grid of the fixed seeds, G_ema file, resumable state).
        train_mod._snapshot(trainer, cfg, Path(tmp), {}, None)
        snapshot_s = time.perf_counter() - t0
    return {"sec_per_step": per_step, "snapshot_s": snapshot_s, "warmup_s": max(first - r1, 0.0),
            "measured_at": time.time(), "source": "measured"}


def lookup(resolution: int, arch: dict, batch: int | None, device: str | None, *, measure_missing: bool = True):
    """(figures dict or None, batch, torch device, device label, measured just now)."""
    dev, label = _device_name(device)
    batch = int(batch or _auto_batch(resolution, dev))
    key = cache_key(resolution, arch, batch, label)
    c = store.cache()
    figures = c.get(key)
    fresh = False
    if figures is None and measure_missing:
        figures = measure(resolution, arch, batch, dev)
        c.set(key, figures)
        fresh = True
    return figures, batch, dev, label, fresh


def estimate_seconds_per_step(resolution: int, arch_kwargs: dict | None, batch: int | None = None,
                              device: str | None = None) -> float | None:
    """Measured (or cached) seconds per training step; the hook ``core.checkpoints`` calls."""
    figures = lookup(resolution, arch_kwargs or {}, batch, device)[0]
    return None if figures is None else float(figures["sec_per_step"])


def record_observed(resolution: int, g_kwargs: dict, run_dir, device: str, sec_per_step: float) -> None:
    """After a real run: blend its running s/step into the cached figure (measured on this machine)."""
    from ..storage import read_json
    batch = (read_json(Path(run_dir) / "config.json", {}) or {}).get("batch")
    if not batch:
        return
    _, label = _device_name(device)
    key = cache_key(resolution, g_kwargs, batch, label)
    with store.transaction() as c:
        figures = c.get(key)
        if figures is None:
            return  # the snapshot and warm-up figures come from a measurement only
        figures = dict(figures, sec_per_step=0.5 * figures["sec_per_step"] + 0.5 * float(sec_per_step),
                       source="measured and observed")
        c.set(key, figures)


_kwargs_cache: dict[tuple, tuple[int, dict, float]] = {}


def _checkpoint_shape(checkpoint: str, user: str | None, allow_paths: bool = False) -> tuple[int, dict, float]:
    """(resolution, generator kwargs, file MB) from the catalog entry or the file itself."""
    from ..checkpoints import _CATALOG, resolve_checkpoint
    path = resolve_checkpoint(checkpoint, user=user, allow_paths=allow_paths)
    mb = path.stat().st_size / 1e6
    entry = _CATALOG.get(str(checkpoint))
    if entry is not None and entry.arch:
        return entry.resolution, dict(entry.arch), mb
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _kwargs_cache:
        from ..stylegan import load_checkpoint
        ckpt = load_checkpoint(path)
        _kwargs_cache[key] = (ckpt.resolution, dict(ckpt.g_kwargs), mb)
    return _kwargs_cache[key]


def _pack_seconds(dataset: str | None, user: str, resolution: int, crop: str) -> float:
    if not dataset:
        return 0.0
    from .. import datasets
    try:
        info = datasets.get_dataset(dataset, user)
    except datasets.DatasetError:
        return 0.0
    if any(p["resolution"] == resolution and p["crop"] == crop for p in info["packs"]):
        return 0.0
    return info["training_images"] * PACK_S_PER_MPIXEL * max(resolution * resolution / 1e6, 0.05)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    h, m = divmod((seconds + 30) // 60, 60)
    return f"{h} h {m} min" if h else f"{m} min"


def estimate_experiment(user: str | None = None, checkpoint: str = "default", steps: int = 3000,
                        batch: int | None = None, device: str | None = None, *, dataset: str | None = None,
                        crop: str = "center", snapshot_every: int = 250, grid_seeds: int = 16,
                        measure_missing: bool = True, allow_paths: bool = False) -> dict:
    """{eta_seconds, sec_per_step, measured, measured_now, basis, text, prep_seconds, ...} before starting.

    ``measured`` is False (and eta_seconds None) only when no figure exists and
    ``measure_missing`` is off; ``measured_now`` says a measurement ran for this call. ``checkpoint`` is a
    name; a file path only with ``allow_paths`` (the CLI), as in ``submit_experiment``."""
    from ..storage import DEFAULT_USER
    user = user or DEFAULT_USER
    resolution, arch, mb = _checkpoint_shape(checkpoint, user, allow_paths)
    figures, batch, dev, label, fresh = lookup(resolution, arch, batch, device, measure_missing=measure_missing)
    where = "CUDA" if label.startswith("cuda") else "CPU"
    if figures is None:
        return {"eta_seconds": None, "sec_per_step": None, "measured": False, "measured_now": False,
                "batch": batch, "device": dev, "basis": f"not measured yet for {resolution} px on {where}",
                "text": "no estimate yet"}
    steps = int(steps)
    n_snapshots = 1 + steps // snapshot_every + (1 if steps % snapshot_every else 0)
    snapshot_scale = grid_seeds / 16
    snapshots_s = n_snapshots * figures["snapshot_s"] * (0.5 + 0.5 * snapshot_scale)
    prep_s = STARTUP_S + mb / LOAD_MB_PER_S + figures.get("warmup_s", 0.0) + _pack_seconds(dataset, user, resolution, crop)
    train_s = steps * figures["sec_per_step"]
    total = prep_s + train_s + snapshots_s
    basis = (f"{'measured now' if fresh else 'measured'} {figures['sec_per_step']:.2g} s/step for {resolution} px "
             f"on {where} (batch {batch})")
    return {"eta_seconds": round(total, 1), "sec_per_step": figures["sec_per_step"], "measured": True,
            "measured_now": fresh, "batch": batch, "device": dev, "prep_seconds": round(prep_s, 1),
            "train_seconds": round(train_s, 1), "snapshot_seconds": round(snapshots_s, 1), "snapshots": n_snapshots,
            "basis": basis, "text": f"about {_duration(total)} on this {'GPU' if where == 'CUDA' else 'CPU'}"}
