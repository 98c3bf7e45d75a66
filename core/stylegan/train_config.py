"""Training options: one frozen dataclass with commented defaults, presets, and validation."""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, field

MAX_STEPS = 25_000
MAX_DEVICES = 64
GROUP = 4  # samples that share one random stream (streams.py): the unit a batch is cut into
MAX_GRID_SEEDS = 64
AUG_MODES = ("ada", "diffaugment", "none")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
METRICS = ("swd", "fid", "kid", "memorisation")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


class ConfigError(ValueError):
    """A training option is out of range; the message names the field."""


@dataclass(frozen=True)
class TrainConfig:
    # Length and batching. One step = one G update and one D update on one batch.
    steps: int = 3000                 # default of the original service; at most 25,000
    batch: int = 0                    # 0 = automatic from resolution, device and free memory
    batch_gpu: int = 0                # per-pass batch; < batch means gradient accumulation; 0 = auto
    snapshot_every: int = 250         # steps between snapshots (a final one is always written)
    # Optimiser (StyleGAN2-ADA): Adam (0, 0.99), lr 0.0025 (0.002 at 1024 px).
    lr_g: float = 0.0               # 0 = auto
    lr_d: float = 0.0               # 0 = auto
    # Regularisation.
    r1_gamma: float = -1.0            # < 0 = auto: 0.0002 * res^2 / batch
    r1_interval: int = 16             # lazy R1 every N steps
    pl_weight: float = 0.0            # path length regularisation (off for transfer)
    pl_interval: int = 4
    style_mixing: float = 0.9         # probability of mixing two ws in a G pass
    # Generator EMA: half-life in kimg; ramp-up caps it at ema_rampup * images seen in this run,
    # so that G_ema follows G in short transfer runs instead of showing the old domain.
    ema_kimg: float = -1.0            # < 0 = auto: 10 * batch / 32
    ema_rampup: float = 0.05
    # Augmentation for small datasets.
    aug: str = "ada"                  # ada | diffaugment | none
    ada_target: float = 0.6
    ada_kimg: float = 100.0           # p adjustment speed (100 when transferring, 500 from scratch)
    ada_interval: int = 4
    diffaugment_policy: str = "color,translation,cutout"
    mirror: bool = False              # random x-flips of the training images
    freeze_d: int = 0                 # Freeze-D: the first N discriminator layers are not trained
    # Machine.
    device: str = "auto"              # auto (CUDA, then Apple's MPS, then the CPU) | cpu | cuda | cuda:N | mps
    devices: int = 1                  # processes that train the run together (GPUs, or CPU processes; torchrun)
    precision: str = "auto"           # fp32 | fp16 (the original's, CUDA) | bf16 (autocast) | auto: per device
    compile: bool = False             # torch.compile D's first-order passes (see docs/benchmarks.md)
    time_budget_s: float = 0.0        # stop cleanly after this many seconds (0 = no cap)
    seed: int = 0
    # Snapshots and metrics.
    grid_seeds: tuple = tuple(range(16))  # fixed seeds of the snapshot grid (frames line up)
    metrics: tuple = ()               # any of swd, fid, kid, memorisation: computed at each snapshot
    metric_images: int = 256
    inception_path: str = ""          # a TorchScript Inception file the user supplies (fid, kid)
    # Model when training from scratch (ignored when transferring from a checkpoint).
    scratch_arch: dict = field(default_factory=dict)

    def validate(self) -> "TrainConfig":
        def need(ok: bool, name: str, msg: str):
            if not ok:
                raise ConfigError(f"{name}: {msg}")
        self._check_types()
        need(1 <= self.steps <= MAX_STEPS, "steps", f"must be between 1 and {MAX_STEPS:,}, got {self.steps}")
        need(self.batch >= 0 and self.batch <= 256, "batch", "must be between 1 and 256 (0 = auto)")
        need(self.batch_gpu >= 0 and (self.batch == 0 or self.batch_gpu <= self.batch), "batch_gpu",
             "must not exceed batch")
        need(self.batch == 0 or self.batch_gpu == 0 or self.batch % self.batch_gpu == 0, "batch_gpu",
             "must divide batch")
        need(self.batch_gpu == 0 or self.batch_gpu == self.batch or self.batch_gpu % GROUP == 0, "batch_gpu",
             f"must be a multiple of {GROUP} (the samples that share a random stream), or the whole batch")
        need(1 <= self.devices <= MAX_DEVICES, "devices", f"must be between 1 and {MAX_DEVICES}")
        need(self.devices == 1 or self.batch == 0 or self.batch >= GROUP * self.devices, "batch",
             f"must be at least {GROUP} per device: {GROUP * self.devices} or more on {self.devices} devices")
        need(self.snapshot_every >= 1, "snapshot_every", "must be at least 1")
        need(0 <= self.lr_g <= 1 and 0 <= self.lr_d <= 1, "lr", "learning rates must be in [0, 1] (0 = auto)")
        need(self.r1_interval >= 1 and self.pl_interval >= 1, "r1_interval", "intervals must be >= 1")
        need(0 <= self.style_mixing <= 1, "style_mixing", "must be a probability")
        need(self.aug in AUG_MODES, "aug", f"must be one of {', '.join(AUG_MODES)}")
        need(0 < self.ada_target < 1 and self.ada_kimg > 0, "ada_target", "must be in (0, 1)")
        need(0 <= self.freeze_d <= 64, "freeze_d", "must be between 0 and 64")
        need(self.precision in PRECISIONS, "precision", f"must be one of {', '.join(PRECISIONS)}")
        need(self.time_budget_s >= 0, "time_budget_s", "must be >= 0")
        need(len(self.grid_seeds) >= 1, "grid_seeds", "needs at least one seed")
        need(all(m in METRICS for m in self.metrics), "metrics", f"known metrics: {', '.join(METRICS)}")
        need(not ({"fid", "kid"} & set(self.metrics)) or bool(self.inception_path), "inception_path",
             "fid and kid need an Inception weights file (TorchScript), e.g. inception-2015-12-05.pt")
        # Values a client can send through the jobs API: bounded so a job cannot crash or stall the worker.
        need(0 <= self.seed < 2 ** 32, "seed", f"must be between 0 and {2 ** 32 - 1}")
        need(len(self.grid_seeds) <= MAX_GRID_SEEDS, "grid_seeds", f"at most {MAX_GRID_SEEDS} seeds")
        need(all(_is_int(s) and 0 <= s < 2 ** 32 for s in self.grid_seeds), "grid_seeds",
             f"seeds are whole numbers from 0 to {2 ** 32 - 1}")
        need(self.ada_interval >= 1, "ada_interval", "must be >= 1")
        need(1 <= self.metric_images <= 50_000, "metric_images", "must be between 1 and 50,000")
        need(self.pl_weight >= 0 and self.ema_rampup >= 0, "pl_weight", "weights must be >= 0")
        need(self.r1_gamma <= 1e6 and self.ema_kimg <= 1e6 and self.ada_kimg <= 1e6, "r1_gamma",
             "r1_gamma, ema_kimg and ada_kimg must be at most 1,000,000")
        need(len(self.device) <= 16 and self.device.replace(":", "").isalnum(), "device", "auto, cpu, cuda or cuda:N")
        need(len(self.diffaugment_policy) <= 100, "diffaugment_policy", "too long")
        need(len(self.scratch_arch) <= 16 and all(isinstance(k, str) and (_is_int(v) or isinstance(v, float))
                                                  for k, v in self.scratch_arch.items()), "scratch_arch",
             "must map architecture names to numbers")
        need(all(0 < v <= 1 << 20 for v in self.scratch_arch.values() if _is_int(v)), "scratch_arch",
             "numbers must be between 1 and 1,048,576")
        return self

    def _check_types(self) -> None:
        """Each field has its declared type (ints may stand for floats) and every float is finite."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if kind == "int" and not _is_int(v):
                raise ConfigError(f"{f.name}: must be a whole number, not {str(v)[:40]!r}")
            if kind == "float" and not ((_is_int(v) or isinstance(v, float)) and math.isfinite(v)):
                raise ConfigError(f"{f.name}: must be a finite number, not {str(v)[:40]!r}")
            if kind == "bool" and not isinstance(v, bool):
                raise ConfigError(f"{f.name}: must be true or false, not {str(v)[:40]!r}")
            if kind == "str" and not isinstance(v, str):
                raise ConfigError(f"{f.name}: must be text")
            if kind == "tuple" and not isinstance(v, tuple):
                raise ConfigError(f"{f.name}: must be a list")
            if kind == "dict" and not isinstance(v, dict):
                raise ConfigError(f"{f.name}: must be a mapping")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes).validate()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["grid_seeds"], d["metrics"] = list(self.grid_seeds), list(self.metrics)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}  # later fields keep their defaults
        for key in ("grid_seeds", "metrics"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d).validate()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# Transfer learning on a few hundred to a few thousand images, as a newcomer's page starts it:
# ADA at the transfer speed, and x-flips (a mirrored picture is a new one for most subjects).
# ``TrainConfig().replace(**TRANSFER_SMALL_DATA)``.
TRANSFER_SMALL_DATA = dict(aug="ada", ada_kimg=100, mirror=True, freeze_d=0)
