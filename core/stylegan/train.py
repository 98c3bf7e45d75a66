"""Transfer learning (or training from scratch) with snapshots and exact resume.

    result = train(cfg, run_dir, dataset=ds, checkpoint=ckpt, progress_fn=print, abort_fn=lambda: False)

Re-running with the same run_dir continues from its state file; `cfg.steps` may be raised to
continue a finished run. abort_fn is polled every step; an abort (or Ctrl-C, or the time budget)
still writes a final snapshot, so nothing but the current step is lost. check_storage, when given,
is asked before every snapshot; a refusal stops the run at its last snapshot.
"""
from __future__ import annotations

import copy
import errno
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..quota import QuotaExceeded
from ..storage import atomic_write_json
from . import run_files
from .checkpoint import load_checkpoint, save_checkpoint
from .data import BatchLoader
from .images import generate_images, make_grid
from .networks import Discriminator, Generator
from .train_config import TrainConfig
from .trainer import Trainer, auto_batch, resolve_device

STATE_FILE = "state.safetensors"
LOG_EVERY = 10


class TrainingError(RuntimeError):
    """A run cannot go on (disk full, bad data); the last good snapshot is intact."""


def _matching_discriminator(G: Generator) -> Discriminator:
    g = G.init_kwargs
    return Discriminator(c_dim=g["c_dim"], img_resolution=g["img_resolution"], img_channels=g["img_channels"],
                         channel_base=g["channel_base"], channel_max=g["channel_max"], conv_clamp=g["conv_clamp"])


def _build_trainer(cfg: TrainConfig, run_dir: Path, checkpoint, log) -> Trainer:
    device = resolve_device(cfg.device)
    state_path = run_dir / STATE_FILE
    source = load_checkpoint(state_path) if state_path.exists() else checkpoint
    if source is None:
        G = Generator(**cfg.scratch_arch)
        D, G_ema = _matching_discriminator(G), None
        log("training from scratch")
    else:
        G_ema = source.G_ema
        G = source.G if source.G is not None else copy.deepcopy(G_ema)  # G_ema-only files
        D = source.D
        if D is None:
            D = _matching_discriminator(G)
            log("the checkpoint has no discriminator: starting D from scratch")
    batch = cfg.batch or auto_batch(G.img_resolution, device)
    trainer = Trainer(cfg, G, D, G_ema, device=device, batch=batch, batch_gpu=cfg.batch_gpu or None)
    if state_path.exists():
        counters = source.metadata["train_counters"]
        trainer.load_state(source.extra_tensors, counters)
        run_files.truncate_stats(run_dir, trainer.step)
        run_files.remove_snapshots_after(run_dir, trainer.step)
        log(f"resumed at step {trainer.step:,}")
    return trainer


def _snapshot(trainer: Trainer, cfg: TrainConfig, run_dir: Path, provenance: dict, dataset) -> dict:
    """Write the grid, the G_ema snapshot and the resumable state; return the stats of the snapshot."""
    step = trainer.step
    weights_path, grid_path = run_files.snapshot_paths(run_dir, step)
    images = [img for _, img in generate_images(trainer.G_ema, cfg.grid_seeds, noise_mode="const")]
    meta = dict(provenance, step=step, kimg=trainer.run_nimg / 1000, config=cfg.to_dict())
    try:
        run_files.save_grid(make_grid(np.stack(images)), grid_path)
        save_checkpoint(weights_path, G_ema=trainer.G_ema, metadata=meta)
        save_checkpoint(run_dir / STATE_FILE, G_ema=trainer.G_ema, G=trainer.G, D=trainer.D,
                        metadata=dict(meta, train_counters=trainer.counters()), extra_tensors=trainer.extra_tensors())
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise TrainingError(f"disk full while writing the snapshot of step {step:,}; "
                                "the previous snapshot is intact") from e
        raise
    record = {"step": step, "snapshot": True, "kimg": trainer.run_nimg / 1000}
    if cfg.metrics:
        record.update(_metrics(trainer, cfg, dataset))
    return record


def _tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _snapshot_growth(trainer: Trainer, cfg: TrainConfig, run_dir: Path) -> int:
    """About how many bytes the next snapshot adds to the run folder: the files of the last one;
    for the first, G_ema, a raw-size grid, and the resumable state (G, G_ema, D, Adam's two moments)."""
    steps = run_files.list_snapshots(run_dir)
    if steps:
        try:
            return sum(p.stat().st_size for p in run_files.snapshot_paths(run_dir, steps[-1]))
        except FileNotFoundError:
            pass
    weights = _tensor_bytes(trainer.G_ema.state_dict().values())
    grid = 3 * trainer.resolution ** 2 * len(cfg.grid_seeds)
    trained = [p for net in (trainer.G, trainer.D) for p in net.parameters()]
    state = weights + _tensor_bytes(trainer.G.state_dict().values()) + _tensor_bytes(trainer.D.state_dict().values()) \
        + 2 * _tensor_bytes(trained)
    state_path = run_dir / STATE_FILE
    return weights + grid + max(0, state - (state_path.stat().st_size if state_path.exists() else 0))


def _refusal(check_storage, trainer: Trainer, cfg: TrainConfig, run_dir: Path) -> str | None:
    """None when the next snapshot may be written, else check_storage's one-line refusal."""
    if check_storage is None:
        return None
    try:
        check_storage(_snapshot_growth(trainer, cfg, run_dir))
    except QuotaExceeded as e:
        return str(e)
    return None


def _metrics(trainer: Trainer, cfg: TrainConfig, dataset) -> dict:
    """The metrics asked for in cfg.metrics, between G_ema samples and the training images."""
    from . import metrics
    n = min(cfg.metric_images, max(len(dataset), 16))
    fakes = np.stack([img for _, img in generate_images(trainer.G_ema, range(10_000, 10_000 + n), noise_mode="random")])
    rng = np.random.default_rng(123)
    reals = np.stack([dataset.get(int(i), rng) for i in rng.integers(0, len(dataset), n)])
    out = {}
    if "swd" in cfg.metrics:
        out["swd"] = float(metrics.swd(fakes, reals)["mean"])
    if "memorisation" in cfg.metrics:  # samples nearly identical to a training image
        everything = np.stack([dataset.get(i, rng) for i in range(min(len(dataset), 2048))])
        report = metrics.memorisation_flags(fakes, everything)
        out["memorised"] = int(np.sum(report.flags))
        out["memorised_fraction"] = float(np.mean(report.flags))
    if {"fid", "kid"} & set(cfg.metrics):
        extract = metrics.InceptionFeatureExtractor.from_file(cfg.inception_path, device=trainer.device)
        f_fake, f_real = extract(fakes), extract(reals)
        if "fid" in cfg.metrics:
            out["fid"] = metrics.fid_from_features(f_fake, f_real)
        if "kid" in cfg.metrics:
            out["kid"] = metrics.kid_from_features(f_fake, f_real)
    return out


def _step_fitting_memory(trainer: Trainer, cfg: TrainConfig, reals, log) -> dict:
    """With an automatic per-pass batch, a CUDA out-of-memory error halves it (gradient
    accumulation keeps the batch) and retries the step; a step that had already updated G
    before running out of memory updates it twice, once."""
    while True:
        try:
            return trainer.train_step(reals)
        except torch.cuda.OutOfMemoryError:
            half = trainer.batch_gpu // 2
            if cfg.batch_gpu or half < 4 or trainer.batch % half:
                raise
            torch.cuda.empty_cache()
            trainer.batch_gpu = half
            log(f"out of GPU memory: {half} images per pass, {trainer.batch // half} passes per step")


def train(cfg: TrainConfig, run_dir, *, dataset, checkpoint=None, progress_fn=None, abort_fn=None,
          provenance: dict | None = None, log=print, check_storage=None) -> dict:
    """Train until cfg.steps, an abort, or the time budget. Returns {state, step}.

    ``check_storage(need_bytes)`` is called before each snapshot and may raise
    :class:`core.quota.QuotaExceeded`: the run then ends without writing it, at its last complete
    snapshot, and returns ``{state: "storage_full", step: <that snapshot's step>, reason: <message>}``.
    """
    cfg = cfg.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    provenance = dict(provenance or {})
    trainer = _build_trainer(cfg, run_dir, checkpoint, log)
    sample = dataset.get(0, np.random.default_rng(0))
    want = (trainer.G.img_channels, trainer.resolution, trainer.resolution)
    if tuple(sample.shape) != want:
        raise TrainingError(f"the dataset gives images of shape {tuple(sample.shape)}, the model needs {want}: "
                            f"pack the dataset at {trainer.resolution} px")
    atomic_write_json(run_dir / "config.json", dict(config=cfg.to_dict(), provenance=provenance, **trainer.lr_info()))
    if not run_files.list_snapshots(run_dir):
        refused = _refusal(check_storage, trainer, cfg, run_dir)
        if refused:
            return _out_of_storage(run_dir, refused)
        run_files.append_stats(run_dir, _snapshot(trainer, cfg, run_dir, provenance, dataset))
    loader = BatchLoader(dataset, trainer.batch, seed=cfg.seed, mirror=cfg.mirror, device=trainer.device,
                         start_step=trainer.step)
    started, done_steps, avg = time.monotonic(), 0, None
    outcome, refused = "finished", None
    try:
        while trainer.step < cfg.steps:
            if abort_fn is not None and abort_fn():
                outcome = "stopped"
                break
            if cfg.time_budget_s and time.monotonic() - started > cfg.time_budget_s:
                outcome = "time_budget"
                break
            t0 = time.monotonic()
            stats = _step_fitting_memory(trainer, cfg, loader.next(), log)
            dt = time.monotonic() - t0
            avg = dt if avg is None else 0.9 * avg + 0.1 * dt
            done_steps += 1
            record = dict(stats, step=trainer.step, sec_per_step=round(avg, 4), kimg=trainer.run_nimg / 1000)
            if trainer.step % cfg.snapshot_every == 0 or trainer.step == cfg.steps:
                refused = _refusal(check_storage, trainer, cfg, run_dir)
                if refused:
                    break
                record.update(_snapshot(trainer, cfg, run_dir, provenance, dataset))
            if record.get("snapshot") or trainer.step % LOG_EVERY == 0:
                run_files.append_stats(run_dir, record)
            if progress_fn is not None:
                progress_fn(dict(record, steps=cfg.steps, eta_seconds=avg * (cfg.steps - trainer.step)))
    except KeyboardInterrupt:
        outcome = "stopped"
    finally:
        loader.close()
    if not refused and trainer.step not in run_files.list_snapshots(run_dir):
        refused = _refusal(check_storage, trainer, cfg, run_dir)
        if not refused:
            run_files.append_stats(run_dir, _snapshot(trainer, cfg, run_dir, provenance, dataset))
    if refused:
        return _out_of_storage(run_dir, refused)
    return {"state": outcome, "step": trainer.step}


def _out_of_storage(run_dir: Path, reason: str) -> dict:
    """End a run refused by check_storage at its last complete snapshot (stats after it dropped)."""
    steps = run_files.list_snapshots(run_dir)
    last = steps[-1] if steps else 0
    if steps:
        run_files.truncate_stats(run_dir, last)
    return {"state": "storage_full", "step": last, "reason": reason}


def read_config(run_dir) -> dict:
    return json.loads((Path(run_dir) / "config.json").read_text())


__all__ = ["train", "TrainingError", "read_config"]
