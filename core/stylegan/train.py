"""Transfer learning (or training from scratch) with snapshots and exact resume.

    result = train(cfg, run_dir, dataset=ds, checkpoint=ckpt, progress_fn=print, abort_fn=lambda: False)

Re-running with the same run_dir continues from its state file; `cfg.steps` may be raised to
continue a finished run. abort_fn is polled every step; an abort (or Ctrl-C, or the time budget)
still writes a final snapshot, so nothing but the current step is lost. before_snapshot, when
given, is asked before every snapshot and may refuse it: the run then stops (see train()).

On several processes (``group``, see distributed.py) every process calls train() with the same
arguments: each reads the state to resume and trains its rows of each batch; rank 0 alone writes
the run folder (config, snapshots, stats, state), asks abort_fn and before_snapshot and reports
progress, and tells the others when to stop. The state holds nothing per process, so a run
resumes on any number of them.
"""
from __future__ import annotations

import copy
import errno
import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..storage import atomic_write_json
from . import distributed, run_files
from .checkpoint import load_checkpoint, save_checkpoint
from .data import BatchLoader
from .images import generate_images, make_grid
from .networks import Discriminator, Generator
from .run_files import STATE_FILE
from .train_config import TrainConfig
from .trainer import Trainer, auto_batch, resolve_device

LOG_EVERY = 10  # steps between two reads of the statistics (the only waits for the device)


class TrainingError(RuntimeError):
    """A run cannot go on (disk full, bad data); the last good snapshot is intact."""


class SnapshotRefused(Exception):
    """Raised by a before_snapshot callback to refuse a snapshot; the message says why."""


def _matching_discriminator(G: Generator) -> Discriminator:
    g = G.init_kwargs
    return Discriminator(c_dim=g["c_dim"], img_resolution=g["img_resolution"], img_channels=g["img_channels"],
                         channel_base=g["channel_base"], channel_max=g["channel_max"], conv_clamp=g["conv_clamp"])


def _build_trainer(cfg: TrainConfig, run_dir: Path, checkpoint, log, group: distributed.Group) -> Trainer:
    device = resolve_device(cfg.device)
    state_path = run_dir / STATE_FILE
    source = load_checkpoint(state_path) if state_path.exists() else checkpoint
    with torch.random.fork_rng(devices=[]):  # new weights follow the run's seed (torch's initialisers)
        torch.manual_seed(cfg.seed)
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
    counters = source.metadata["train_counters"] if state_path.exists() else {}
    # an automatic batch stays what the run started with, on any number of processes
    batch = cfg.batch or counters.get("batch") or auto_batch(G.img_resolution, device, group.world)
    try:
        trainer = Trainer(cfg, G, D, G_ema, device=device, batch=batch, batch_gpu=cfg.batch_gpu or None, log=log,
                          group=group)
    except ValueError as e:  # a precision the device cannot run, a batch too small for the processes
        raise TrainingError(str(e)) from None
    picked = "" if cfg.precision == trainer.precision else f" (auto on {device.type})"
    on = f" on {group.world} processes ({len(trainer.rows)} images each)" if group.world > 1 else ""
    log(f"device {device}, precision {trainer.precision}{picked}, batch {batch}{on}")
    if state_path.exists():
        trainer.load_state(source.extra_tensors, counters)
        if group.main:
            run_files.truncate_stats(run_dir, trainer.step)
            run_files.remove_snapshots_after(run_dir, trainer.step)
        log(f"resumed at step {trainer.step:,}")
    return trainer


def _snapshot(trainer: Trainer, cfg: TrainConfig, run_dir: Path, provenance: dict, dataset,
              group: distributed.Group | None = None) -> dict:
    """Write the grid, the G_ema snapshot and the resumable state; return the stats of the snapshot.
    Every process of ``group`` (default: the trainer's) calls it: they share the metrics' work,
    rank 0 writes."""
    group = trainer.group if group is None else group
    measured = _metrics(trainer, cfg, dataset, group) if cfg.metrics else {}
    if not group.main:
        return {}
    step = trainer.step
    weights_path, grid_path = run_files.snapshot_paths(run_dir, step)
    images = [img for _, img in generate_images(trainer.G_ema, cfg.grid_seeds, noise_mode="const")]
    meta = _metadata(trainer, cfg, provenance)
    with _disk_full_is_an_error(step):
        run_files.save_grid(make_grid(np.stack(images)), grid_path)
        save_checkpoint(weights_path, G_ema=trainer.G_ema, metadata=meta)
    _save_state(trainer, cfg, run_dir, provenance)
    return {"step": step, "snapshot": True, "kimg": trainer.run_nimg / 1000, **measured}


def _metadata(trainer: Trainer, cfg: TrainConfig, provenance: dict) -> dict:
    return dict(provenance, step=trainer.step, kimg=trainer.run_nimg / 1000, config=cfg.to_dict())


def _save_state(trainer: Trainer, cfg: TrainConfig, run_dir: Path, provenance: dict) -> None:
    """The resumable state: G, D, G_ema, Adam's moments, the random stream, ADA and the counters."""
    meta = dict(_metadata(trainer, cfg, provenance), train_counters=trainer.counters())
    with _disk_full_is_an_error(trainer.step):
        save_checkpoint(run_dir / STATE_FILE, G_ema=trainer.G_ema, G=trainer.G, D=trainer.D, metadata=meta,
                        extra_tensors=trainer.extra_tensors())


@contextmanager
def _disk_full_is_an_error(step: int):
    try:
        yield
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise TrainingError(f"disk full while writing the snapshot of step {step:,}; "
                                "the previous snapshot is intact") from e
        raise


def _metrics(trainer: Trainer, cfg: TrainConfig, dataset, group: distributed.Group) -> dict:
    """The metrics asked for in cfg.metrics, between G_ema samples and the training images (on rank
    0; each process of ``group`` makes its deal of the images and of their features)."""
    from . import metrics
    n = max(min(cfg.metric_images, max(len(dataset), 16)), group.world)
    seeds = group.deal(range(10_000, 10_000 + n))
    fakes = np.stack([img for _, img in generate_images(trainer.G_ema, seeds, noise_mode="random")])
    picks = group.deal(enumerate(np.random.default_rng(123).integers(0, len(dataset), n)))
    reals = np.stack([dataset.get(int(i), np.random.default_rng([123, j])) for j, i in picks])
    features = {}
    if {"fid", "kid"} & set(cfg.metrics):
        extract = metrics.InceptionFeatureExtractor.from_file(cfg.inception_path, device=trainer.device)
        features = {"fake": group.gather(extract(fakes)), "real": group.gather(extract(reals))}
    if {"swd", "memorisation"} & set(cfg.metrics):
        fakes, reals = group.gather(fakes), group.gather(reals)
    if not group.main:
        return {}
    rng = np.random.default_rng(123)
    out = {}
    if "swd" in cfg.metrics:
        out["swd"] = float(metrics.swd(fakes, reals)["mean"])
    if "memorisation" in cfg.metrics:  # samples nearly identical to a training image
        everything = np.stack([dataset.get(i, rng) for i in range(min(len(dataset), 2048))])
        report = metrics.memorisation_flags(fakes, everything)
        out["memorised"] = int(np.sum(report.flags))
        out["memorised_fraction"] = float(np.mean(report.flags))
    if features:
        f_fake, f_real = features["fake"], features["real"]
        if "fid" in cfg.metrics:
            out["fid"] = metrics.fid_from_features(f_fake, f_real)
        if "kid" in cfg.metrics:
            out["kid"] = metrics.kid_from_features(f_fake, f_real)
    return out


def _refusal(before_snapshot, need_bytes: int) -> str | None:
    """None when a write of ``need_bytes`` may go ahead, else before_snapshot's one-line reason."""
    if before_snapshot is None:
        return None
    try:
        reason = before_snapshot(need_bytes)
    except SnapshotRefused as e:
        return str(e)
    return str(reason) if reason else None


def _generator_bytes(trainer: Trainer) -> int:
    return sum(t.numel() * t.element_size() for t in trainer.G_ema.state_dict().values())


def _snapshot_refused(trainer: Trainer, cfg: TrainConfig, run_dir: Path, before_snapshot) -> str | None:
    grid = 3 * trainer.resolution ** 2 * len(cfg.grid_seeds)
    return _refusal(before_snapshot, run_files.snapshot_bytes(run_dir, _generator_bytes(trainer), grid_bytes=grid))


class _StepClock:
    """Seconds per step from the time spent in steps between two moments the host waited for the
    device (every step on the CPU; on CUDA or MPS, the statistics reads), smoothed as a running
    average. Snapshots are not counted."""

    def __init__(self):
        self.elapsed, self.steps, self.value = 0.0, 0, None

    def add(self, seconds: float, synced: bool) -> None:
        self.elapsed, self.steps = self.elapsed + seconds, self.steps + 1
        if synced:
            per_step, keep = self.elapsed / self.steps, 0.9 ** self.steps
            self.value = per_step if self.value is None else keep * self.value + (1 - keep) * per_step
            self.elapsed, self.steps = 0.0, 0


STOPS = {1: "stopped", 2: "time_budget"}


def _stop_code(abort_fn, cfg: TrainConfig, started: float) -> int:
    """Rank 0's reason to stop before the next step (a key of STOPS), or 0 to go on."""
    if abort_fn is not None and abort_fn():
        return 1
    return 2 if cfg.time_budget_s and time.monotonic() - started > cfg.time_budget_s else 0


def _agreed_refusal(trainer: Trainer, cfg: TrainConfig, run_dir: Path, before_snapshot,
                    group: distributed.Group | None = None) -> str | None:
    """_snapshot_refused as rank 0 answers it, on every process."""
    group = trainer.group if group is None else group
    return group.decide_text(_snapshot_refused(trainer, cfg, run_dir, before_snapshot) if group.main else None)


def _snapshot_if_missing(trainer: Trainer, cfg: TrainConfig, run_dir: Path, provenance: dict, dataset,
                         before_snapshot, group: distributed.Group) -> str | None:
    """The snapshot of this step unless the run has it (a new run, a stop between snapshots, one
    stopped without room); every process of ``group`` calls it. Returns a refusal, or None."""
    if not group.decide(group.main and trainer.step not in run_files.list_snapshots(run_dir)):
        return None
    refused = _agreed_refusal(trainer, cfg, run_dir, before_snapshot, group)
    if not refused:
        record = _snapshot(trainer, cfg, run_dir, provenance, dataset, group)
        if group.main:
            run_files.append_stats(run_dir, record)
    return refused


def train(cfg: TrainConfig, run_dir, *, dataset, checkpoint=None, progress_fn=None, abort_fn=None,
          provenance: dict | None = None, log=print, before_snapshot=None,
          group: distributed.Group = distributed.SINGLE) -> dict:
    """Train until cfg.steps, an abort, or the time budget. Returns {state, step}.

    ``before_snapshot(need_bytes)`` is called before each snapshot with about how many bytes it
    adds; it refuses by returning a one-line reason or raising SnapshotRefused. The run then stops
    with ``{state: "storage_full", step, reason}``: see _stop_refused for what it keeps.
    """
    cfg = cfg.validate()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    provenance = dict(provenance or {})
    trainer = _build_trainer(cfg, run_dir, checkpoint, log, group)
    sample = dataset.get(0, np.random.default_rng(0))
    want = (trainer.G.img_channels, trainer.resolution, trainer.resolution)
    if tuple(sample.shape) != want:
        raise TrainingError(f"the dataset gives images of shape {tuple(sample.shape)}, the model needs {want}: "
                            f"pack the dataset at {trainer.resolution} px")
    main = group.main
    if main:
        atomic_write_json(run_dir / "config.json", dict(config=cfg.to_dict(), provenance=provenance,
                                                        **trainer.lr_info()))
    refused = _snapshot_if_missing(trainer, cfg, run_dir, provenance, dataset, before_snapshot, group)
    if refused:
        return _stop_refused(trainer, cfg, run_dir, refused, before_snapshot, provenance, None, log) if main \
            else {"state": "storage_full", "step": trainer.step, "reason": refused}
    loader = BatchLoader(dataset, trainer.batch, seed=cfg.seed, mirror=cfg.mirror, device=trainer.device,
                         start_step=trainer.step, rows=trainer.rows)
    started, first_step, clock, latest = time.monotonic(), trainer.step, _StepClock(), {}
    outcome, refused, pending, interrupted = "finished", None, None, False
    try:
        while trainer.step < cfg.steps:
            stop = group.decide(_stop_code(abort_fn, cfg, started) if main else 0)
            if stop:
                outcome = STOPS[stop]
                break
            t0 = time.monotonic()
            trainer.train_step(loader.next())
            snapshot_due = trainer.step % cfg.snapshot_every == 0 or trainer.step == cfg.steps
            log_due = snapshot_due or trainer.step % LOG_EVERY == 0
            peek = trainer.device.type == "cpu" or trainer.step == first_step + 1  # a read costs nothing on the CPU
            record = dict(step=trainer.step, kimg=trainer.run_nimg / 1000)
            if log_due or peek:  # means since the last logged step
                latest = trainer.read_stats(reset=log_due)
                record.update(latest if log_due else {})
            clock.add(time.monotonic() - t0, synced=log_due or peek)
            record["sec_per_step"] = round(clock.value, 4)
            if snapshot_due:
                refused = _agreed_refusal(trainer, cfg, run_dir, before_snapshot)
                if refused:
                    pending = record  # its statistics, kept if the state may be written
                    break
                record.update(_snapshot(trainer, cfg, run_dir, provenance, dataset))
            if log_due and main:
                run_files.append_stats(run_dir, record)
            if progress_fn is not None and main:
                eta = clock.value * (cfg.steps - trainer.step)
                progress_fn(dict(latest, **record, steps=cfg.steps, eta_seconds=eta))
    except KeyboardInterrupt:
        outcome, interrupted = "stopped", True
    finally:
        loader.close()
    if not refused and (main or not interrupted):  # after an interrupt no collective: the others may be gone
        refused = _snapshot_if_missing(trainer, cfg, run_dir, provenance, dataset, before_snapshot,
                                       distributed.SINGLE if interrupted else group)
    if not main:
        return {"state": "storage_full" if refused else outcome, "step": trainer.step}
    if refused:
        return _stop_refused(trainer, cfg, run_dir, refused, before_snapshot, provenance, pending, log)
    return {"state": outcome, "step": trainer.step}


def _stop_refused(trainer: Trainer, cfg: TrainConfig, run_dir: Path, reason: str, before_snapshot,
                  provenance: dict, pending_record: dict | None, log) -> dict:
    """End a run whose next snapshot was refused, keeping what may still be written.

    The steps since the last snapshot are kept when the resumable state alone may be written (it
    replaces the previous state, so it adds next to nothing): no snapshot (weights, grid) is added,
    but the run continues from this step, and writes the missing snapshot first. When not even
    that is allowed, the run ends at its last complete snapshot and the statistics after it go."""
    steps = run_files.list_snapshots(run_dir)
    last = steps[-1] if steps else 0
    if trainer.step > last and not _refusal(before_snapshot, run_files.snapshot_bytes(
            run_dir, _generator_bytes(trainer), snapshots=0)):
        _save_state(trainer, cfg, run_dir, provenance)
        if pending_record is not None:
            run_files.append_stats(run_dir, pending_record)
        log(f"no room for the snapshot of step {trainer.step:,}: the resumable state keeps the "
            f"{trainer.step - last:,} steps since the last snapshot (step {last:,})")
        return {"state": "storage_full", "step": trainer.step, "reason": reason}
    if steps:
        run_files.truncate_stats(run_dir, last)
    return {"state": "storage_full", "step": last, "reason": reason}


def read_config(run_dir) -> dict:
    return json.loads((Path(run_dir) / "config.json").read_text())


__all__ = ["train", "TrainingError", "SnapshotRefused", "read_config"]
