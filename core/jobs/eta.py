"""ETA before training, from figures the worker measured: never a training step inside a web request.

Figures live in the queue cache under ``eta:<key>``, one record per (architecture and resolution,
batch, device): seconds per step, per snapshot, and the start-up of a run (building the trainer,
the step-0 snapshot, the first step's warm-up), with where they come from. They are measured in
the worker only, in two ways:

- a calibration: when the page asks about a combination that has no figures yet, it leaves a
  request (``eta-want:<key>``) and says "not measured yet"; the worker, when it has no job, runs
  the real ``train()`` for a few steps (a fresh model of that shape, a synthetic dataset,
  CALIBRATION_STEPS steps or about CALIBRATION_S seconds) and stores what it timed;
- every real run: the trainer's own ``sec_per_step`` in its progress records, the time to its
  first step and the time of its snapshots are blended into the figures (``RunTimer``).

The estimate of an experiment = checkpoint load + dataset packing (from their sizes) + start-up
+ steps x s/step + snapshots x s/snapshot, with a sentence saying what it rests on.
"""
from __future__ import annotations

import json
import logging
import math
import statistics
import tempfile
import time
from pathlib import Path

from ..stylegan.train_config import MAX_STEPS, TrainConfig
from . import store

log = logging.getLogger("atelier.eta")

ARCH_DEFAULTS = {"z_dim": 512, "w_dim": 512, "c_dim": 0, "mapping_layers": 8, "channel_base": 32768,
                 "channel_max": 512, "architecture": "skip"}
GENERATOR_KEYS = (*ARCH_DEFAULTS, "img_channels", "num_fp16_res", "conv_clamp")
LOAD_MB_PER_S = 150.0        # reading + converting a checkpoint file
PACK_S_PER_MPIXEL = 0.03     # decoding, cropping and packing one stored image, per megapixel out
CALIBRATION_STEPS = 17       # steps 0..16: the timed ones (1..16) hold one lazy R1 step in 16, as a run does
CALIBRATION_S = 30.0         # ... or fewer when the machine is slow for that model (at least 2 steps)
CALIBRATION_IMAGES = 16
SNAPSHOT_EVERY_S = 180.0     # the automatic snapshot interval: a crash loses at most a few minutes
SNAPSHOTS_PER_RUN = 10       # ... and a short run still shows its progress in about this many snapshots
SNAPSHOT_SHARE = 0.1         # ... but snapshots take at most about this share of the training time
FALLBACK_SNAPSHOT_EVERY = TrainConfig.snapshot_every   # while nothing is measured: the config's interval
WORKER_SEEN_S = 600.0        # a worker that announced its device this recently decides the estimate's device
FIGURE_PREFIX, WANT_PREFIX, WORKERS_KEY = "eta:", "eta-want:", "eta-workers"


def arch_of(kwargs: dict | None) -> dict:
    """The architecture fields that decide the cost of a step, with the official defaults filled in."""
    kwargs = dict(kwargs or {})
    return {k: kwargs.get(k, v) for k, v in ARCH_DEFAULTS.items()}


def human_duration(seconds) -> str:
    """'0.5 s', '45 s', '12 min', '2 h 5 min' (what a person reads)."""
    if seconds is None:
        return "unknown"
    if 0 < float(seconds) < 1:
        return f"{round(float(seconds), 1):g} s"
    seconds = int(round(float(seconds)))
    if seconds < 90:
        return f"{seconds} s"
    h, m = divmod((seconds + 30) // 60, 60)
    return f"{h} h {m} min" if h else f"{m} min"


# ---- devices --------------------------------------------------------------------------------------

def device_label(device: str | None) -> str:
    """'cpu', or 'cuda:<GPU name>' for a CUDA device (the part of the key that says which machine part)."""
    if str(device or "auto") == "cpu":
        return "cpu"
    import torch

    from ..stylegan.trainer import resolve_device
    dev = resolve_device(device or "auto")
    return f"cuda:{torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else dev.type


def announce_worker(label: str) -> None:
    """A worker says which device it trains on (so the page estimates for that device)."""
    with store.transaction() as c:
        seen = dict(c.get(WORKERS_KEY) or {})
        seen[label] = time.time()
        c.set(WORKERS_KEY, seen)


def estimate_device(device: str | None) -> str:
    """The label to estimate for: the given device, else the device a worker announced most recently."""
    if device:
        return device_label(device)
    seen = store.cache().get(WORKERS_KEY) or {}
    recent = [(t, label) for label, t in seen.items() if time.time() - t < WORKER_SEEN_S]
    return max(recent)[1] if recent else device_label("auto")


def auto_batch_for(resolution: int, label: str) -> int:
    import torch

    from ..stylegan.trainer import auto_batch
    return auto_batch(resolution, torch.device("cuda" if label.startswith("cuda") else "cpu"))


def precision_for(requested: str | None, label: str) -> str:
    """The precision a run asking for ``requested`` trains in on the device ``label``: its step time
    differs by up to 1.6x between fp32 and bf16 on a CPU, so the figures are kept apart."""
    requested = requested or "auto"
    if label.startswith("cuda"):  # the page's process need not touch CUDA: the worker checks the GPU
        return "fp16" if requested == "auto" else requested
    import torch

    from ..stylegan.trainer import resolve_precision
    try:
        return resolve_precision(requested, torch.device("cpu"))
    except ValueError as e:
        raise store.JobsError(str(e)) from None


def cache_key(resolution: int, arch: dict, batch: int, label: str, precision: str) -> str:
    return json.dumps({"res": int(resolution), "arch": arch_of(arch), "batch": int(batch), "device": label,
                       "precision": precision}, sort_keys=True)


def figures_for(key: str) -> dict | None:
    return store.cache().get(FIGURE_PREFIX + key)


# ---- what the worker measures ----------------------------------------------------------------------

class RunTimer:
    """Times one run of ``train()`` as its progress records arrive: ``tick(record)`` from progress_fn.

    ``first_s``: from the timer's start to the first step's record (start-up and that step); the
    gaps between later records are plain steps, or a step and a snapshot when the record says so."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.last: float | None = None
        self.first_s: float | None = None
        self.trainer_sec_per_step: list[float] = []
        self.plain: list[float] = []
        self.snapshots: list[float] = []

    def tick(self, record: dict) -> None:
        now = time.monotonic()
        if self.last is None:
            self.first_s = now - self.t0
        else:
            (self.snapshots if record.get("snapshot") else self.plain).append(now - self.last)
        self.last = now
        if record.get("sec_per_step"):
            self.trainer_sec_per_step.append(float(record["sec_per_step"]))

    @property
    def steps_timed(self) -> int:
        return len(self.plain) + len(self.snapshots)

    def figures(self, per_step: float | None, end_snapshot_s: float | None = None) -> dict:
        """{sec_per_step, startup_s, snapshot_s} given the step time (keys absent when unknown)."""
        if not per_step:
            return {}
        out = {"sec_per_step": per_step}
        if self.first_s is not None:
            out["startup_s"] = max(self.first_s - per_step, 0.0)
        snaps = [s - per_step for s in self.snapshots] + ([end_snapshot_s] if end_snapshot_s is not None else [])
        if snaps:
            out["snapshot_s"] = max(statistics.median(snaps), 0.0)
        return out

    def run_figures(self) -> dict:
        """A real run: the step time is the trainer's own ``sec_per_step`` (the median of the second half
        of its records, after the first step's warm-up has left its running average)."""
        late = self.trainer_sec_per_step[len(self.trainer_sec_per_step) // 2:]
        return self.figures(statistics.median(late) if late else None)

    def calibration_figures(self, end_snapshot_s: float | None) -> dict:
        """A calibration: too short for a running average to forget the warm-up step, so the step time
        is the mean of the timed gaps (they hold one lazy R1 step in CALIBRATION_STEPS - 1, as a run does)."""
        return self.figures(statistics.fmean(self.plain) if self.plain else None, end_snapshot_s)


def record_run(resolution: int, g_kwargs: dict, batch: int, device: str, timer: RunTimer, *, fresh: bool,
               precision: str = "auto") -> None:
    """After a real run: blend its figures in (half old, half new). ``fresh``: it started at step 0,
    so its start-up includes the step-0 snapshot as a new run's does."""
    seen = timer.run_figures()
    if not fresh:
        seen.pop("startup_s", None)
    if "sec_per_step" not in seen or timer.steps_timed < 5:
        return
    label = device_label(device)
    key = cache_key(resolution, g_kwargs, batch, label, precision_for(precision, label))
    with store.transaction() as c:
        old = c.get(FIGURE_PREFIX + key) or {}
        merged = {k: (0.5 * old[k] + 0.5 * v if k in old else v) for k, v in seen.items()}
        c.set(FIGURE_PREFIX + key, dict(old, **merged, runs=int(old.get("runs", 0)) + 1, updated=time.time()))
        c.delete(WANT_PREFIX + key)


class _SyntheticImages:
    """A dataset of random uint8 images for a calibration (the pixels do not change the cost)."""

    def __init__(self, resolution: int, channels: int):
        import numpy as np
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, (CALIBRATION_IMAGES, channels, resolution, resolution), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def get(self, i: int, rng=None):
        return self.images[i].copy()


def calibrate(resolution: int, g_kwargs: dict, batch: int, device: str, should_stop=lambda: False,
              precision: str = "auto") -> dict | None:
    """A short real run of ``train()`` (default options, a fresh model of that shape) timed as a run
    is: {sec_per_step, startup_s, snapshot_s}; None when stopped before two steps."""
    from types import SimpleNamespace

    from ..stylegan.networks import Generator
    from ..stylegan.train import train
    kwargs = {k: v for k, v in dict(ARCH_DEFAULTS, **(g_kwargs or {})).items() if k in GENERATOR_KEYS}
    G = Generator(img_resolution=resolution, **kwargs)
    timer = RunTimer()
    started = time.monotonic()

    def enough() -> bool:
        if timer.steps_timed >= CALIBRATION_STEPS - 1 or should_stop():
            return True
        return timer.steps_timed >= 1 and time.monotonic() - started > CALIBRATION_S

    cfg = TrainConfig(steps=1000, batch=batch, snapshot_every=1000, device=device, precision=precision)
    with tempfile.TemporaryDirectory(prefix="atelier-eta-") as tmp:
        timer.t0 = time.monotonic()
        result = train(cfg, Path(tmp), dataset=_SyntheticImages(resolution, G.img_channels),
                       checkpoint=SimpleNamespace(G_ema=G, G=None, D=None), progress_fn=timer.tick,
                       abort_fn=enough, log=lambda line: None)
        end_snapshot_s = time.monotonic() - timer.last if timer.last is not None else None
    if result["step"] < 2 or timer.steps_timed < 1:
        return None
    return timer.calibration_figures(end_snapshot_s)


def request_calibration(key: str, resolution: int, g_kwargs: dict, batch: int, label: str, precision: str) -> dict:
    """Leave a request for the worker (once); returns the request as stored."""
    with store.transaction() as c:
        want = c.get(WANT_PREFIX + key)
        if want is None:
            want = {"resolution": int(resolution), "g_kwargs": dict(g_kwargs), "batch": int(batch), "device": label,
                    "precision": precision, "asked": time.time()}
            c.set(WANT_PREFIX + key, want)
        return want


def _take_request(label: str) -> tuple[str, dict] | None:
    c = store.cache()
    wants = []
    for k in list(c.iterkeys()):
        if isinstance(k, str) and k.startswith(WANT_PREFIX):
            w = c.get(k)
            if w and w.get("device") == label and not w.get("failed"):
                wants.append((w["asked"], k, w))
    for _, k, w in sorted(wants, reverse=True):  # the newest first: what the page shows now
        if c.get(FIGURE_PREFIX + k[len(WANT_PREFIX):]) is not None:
            c.delete(k)
            continue
        return k[len(WANT_PREFIX):], w
    return None


def _queued_job() -> bool:
    return any(r["state"] == "queued" for r in store.all_records(store.cache()))


def calibrate_pending(device: str, stop=None, *, announce: bool = True) -> bool:
    """The worker's idle task: announce its device, then measure the oldest combination the page asked
    about for it. Returns True when it measured (or tried to). It gives way to a queued job or ``stop``."""
    label = device_label(device)
    if announce:
        announce_worker(label)
    taken = _take_request(label)
    if taken is None:
        return False
    key, want = taken
    checked = [0.0, False]

    def should_stop() -> bool:
        if stop is not None and stop.is_set():
            return True
        if time.monotonic() - checked[0] > 1.0:
            checked[:] = [time.monotonic(), _queued_job()]
        return checked[1]

    try:
        seen = calibrate(want["resolution"], want["g_kwargs"], want["batch"], device, should_stop,
                         want.get("precision", "auto"))
    except Exception as e:  # noqa: BLE001 - say why on the page instead of retrying forever
        log.exception("ETA calibration failed")
        store.cache().set(WANT_PREFIX + key, dict(want, failed=str(e).strip().splitlines()[0][:200] if str(e) else
                                                   type(e).__name__))
        return True
    if seen is None:
        return True  # gave way to a job: the request stays for the next idle moment
    with store.transaction() as c:
        old = c.get(FIGURE_PREFIX + key) or {}
        c.set(FIGURE_PREFIX + key, dict(seen, **old, calibrated=True, updated=time.time()))  # a real run's win
        c.delete(WANT_PREFIX + key)
    return True


# ---- what the page reads -----------------------------------------------------------------------

_shape_cache: dict[tuple, tuple[int, dict, float]] = {}


def checkpoint_shape(checkpoint: str, user: str | None, allow_paths: bool = False) -> tuple[int, dict, float]:
    """(resolution, generator kwargs, file MB) from the catalog entry or the file itself."""
    from ..checkpoints import CheckpointsError, get_entry, resolve_checkpoint
    path = resolve_checkpoint(checkpoint, user=user, allow_paths=allow_paths)
    mb = path.stat().st_size / 1e6
    try:
        entry = get_entry(str(checkpoint))
    except CheckpointsError:
        entry = None
    if entry is not None and entry.arch:
        return entry.resolution, dict(entry.arch), mb
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _shape_cache:
        from ..stylegan import load_checkpoint
        ckpt = load_checkpoint(path)
        _shape_cache[key] = (ckpt.resolution, dict(ckpt.g_kwargs), mb)
    return _shape_cache[key]


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


def _nice(n: float) -> int:
    """The largest of 1, 2, 5, 10, 20, 50, ... not above n (at least 1)."""
    best = 1
    for scale in (1, 10, 100, 1000, 10_000):
        for m in (1, 2, 5):
            if m * scale <= n:
                best = m * scale
    return best


def auto_snapshot_every(steps: int, sec_per_step: float | None, snapshot_s: float | None) -> int:
    """A snapshot every few minutes (SNAPSHOT_EVERY_S), at least about SNAPSHOTS_PER_RUN in a run,
    and never so often that snapshots take more than SNAPSHOT_SHARE of the time."""
    if not sec_per_step:  # not measured yet: the old fixed interval, or about SNAPSHOTS_PER_RUN in a short run
        return max(1, min(FALLBACK_SNAPSHOT_EVERY, _nice(steps / SNAPSHOTS_PER_RUN)))
    every = min(SNAPSHOT_EVERY_S / sec_per_step, max(steps / SNAPSHOTS_PER_RUN, 1))
    every = max(every, (snapshot_s or 0.0) / (SNAPSHOT_SHARE * sec_per_step))
    return max(1, min(_nice(every), steps))


def _basis(figures: dict) -> str:
    runs = int(figures.get("runs", 0))
    if runs:
        return f"measured on this machine from {runs:,} run{'s' if runs != 1 else ''}"
    return "measured on this machine by a short calibration run"


def _whole(value, name: str, low: int, high: int) -> int:
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or int(value) != value or not low <= value <= high:
        shown = f"{value:,}" if number else "empty" if value is None else repr(value)[:20]
        raise store.JobsError(f"{name} must be a whole number from {low:,} to {high:,}, not {shown}.")
    return int(value)


def check_numbers(steps, batch, snapshot_every) -> tuple[int, int, int]:
    """The numbers a person types on the page, checked with one sentence naming the one that is wrong."""
    return (_whole(steps, "Training steps", 1, MAX_STEPS), _whole(batch or 0, "The batch (0 = automatic)", 0, 256),
            _whole(snapshot_every or 0, "The snapshot interval (0 = automatic)", 0, MAX_STEPS))


def estimate_experiment(user: str | None = None, checkpoint: str = "default", steps: int = 3000,
                        batch: int | None = None, device: str | None = None, *, dataset: str | None = None,
                        crop: str = "center", snapshot_every: int | None = None, grid_seeds: int = 16,
                        precision: str | None = "auto", allow_paths: bool = False) -> dict:
    """What the page shows before starting; reads stored figures only (never trains).

    Returns {eta_seconds (None when not measured), measured, pending, basis, text, sec_per_step,
    batch, device, snapshot_every, prep_seconds, ...}. ``snapshot_every`` None or 0 = automatic
    (a snapshot every few minutes). A combination without figures is left for the worker to
    measure (``pending``). ``checkpoint`` is a name; a file path only with ``allow_paths`` (the CLI)."""
    from ..storage import DEFAULT_USER
    user = user or DEFAULT_USER
    steps, batch, snapshot_every = check_numbers(steps, batch, snapshot_every)
    resolution, arch, mb = checkpoint_shape(checkpoint, user, allow_paths)
    label = estimate_device(device)
    batch = int(batch or auto_batch_for(resolution, label))
    prec = precision_for(precision, label)
    key = cache_key(resolution, arch, batch, label, prec)
    figures = figures_for(key)
    where = "GPU" if label.startswith("cuda") else "CPU"
    shape = f"{resolution} px, batch {batch}, {prec} on {where}"
    out = {"batch": batch, "device": label, "resolution": resolution, "steps": steps, "precision": prec}
    if figures is None:
        want = request_calibration(key, resolution, arch, batch, label, prec)
        every = int(snapshot_every or auto_snapshot_every(steps, None, None))
        if want.get("failed"):
            basis = f"no estimate: measuring {shape} failed ({want['failed']})"
        elif any(r["state"] in store.RUNNING for r in store.all_records(store.cache())):
            basis = (f"estimate: not measured yet for {shape} — measuring in the background once the "
                     "experiment training now is done")
        else:
            basis = f"estimate: not measured yet for {shape} — measuring in the background"
        return dict(out, eta_seconds=None, sec_per_step=None, measured=False, pending=not want.get("failed"),
                    snapshot_every=every, basis=basis, text="not measured yet")
    sps = float(figures["sec_per_step"])
    snap_s = float(figures.get("snapshot_s", 0.0))
    every = int(snapshot_every or auto_snapshot_every(steps, sps, snap_s))
    n_snapshots = steps // every + (1 if steps % every else 0)
    snapshots_s = n_snapshots * snap_s * (0.5 + 0.5 * grid_seeds / 16)
    prep_s = mb / LOAD_MB_PER_S + float(figures.get("startup_s", 0.0)) + _pack_seconds(dataset, user, resolution, crop)
    train_s = steps * sps
    total = prep_s + train_s + snapshots_s
    return dict(out, eta_seconds=round(total, 1), sec_per_step=sps, measured=True, pending=False,
                snapshot_every=every, snapshots=n_snapshots, prep_seconds=round(prep_s, 1),
                train_seconds=round(train_s, 1), snapshot_seconds=round(snapshots_s, 1),
                basis=f"{_basis(figures)}: {sps:.2g} s/step for {shape}",
                text=f"about {human_duration(total)} on this {where}")
