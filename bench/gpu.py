"""The first thing to run on a machine with a GPU: does training work, and how fast is it?

    python bench/gpu.py                      # the first CUDA device; under 8 minutes; no downloads
    python bench/gpu.py --device cpu --tiny  # the same code at toy sizes (CI, under 2 minutes)

(a) Smoke: a 256 px StyleGAN2 with config-F widths trains 200 steps from scratch through train()
    (snapshots, resumable state, SWD at each snapshot) on generated flowers, once per precision
    (fp16 as the original and bf16 on CUDA; fp32 and bf16 on the CPU): losses must stay finite
    and the SWD of the last snapshot must be below step 0's.
(b) Throughput of the training step (Trainer.train_step, lazy R1 every 16 steps amortised) at
    256 px with the original's `cfg auto` widths, batch 16 and 32, and at 1024 px, batch 4:
    images/s, s/kimg, peak device memory, and achieved TFLOPS (FLOPs counted by torch's
    FlopCounterMode on one step) as a fraction of the device's dense bf16 peak, measured here by
    a large bf16 matmul.
(c) The original's published figures next to ours.
Prints markdown tables for docs/benchmarks.md; exit status 1 when the smoke fails.
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine, median  # noqa: E402
from bench.synthetic import flower  # noqa: E402
from core.stylegan.networks import Discriminator, Generator  # noqa: E402
from core.stylegan.run_files import read_stats  # noqa: E402
from core.stylegan.train import train  # noqa: E402
from core.stylegan.train_config import TrainConfig  # noqa: E402
from core.stylegan.trainer import Trainer  # noqa: E402

CONFIG_F = dict(channel_base=32768, channel_max=512, mapping_layers=8)
AUTO_256 = dict(channel_base=16384, channel_max=512, mapping_layers=2)   # train.py --cfg=auto: fmaps 0.5 below 512 px
AUTO_1024 = dict(channel_base=32768, channel_max=512, mapping_layers=2)  # fmaps 1 from 512 px
TINY = dict(channel_base=512, channel_max=64, mapping_layers=2)
PUBLISHED = {  # stylegan2-ada-pytorch, one GPU, s/kimg
    ("256 px", 16): "V100 21.6-24.2, A100 12.53",
    ("1024 px", 4): "A100 90.39",
}


class GeneratedFlowers:
    """Procedural flowers (bench/synthetic.py) at one resolution, in memory: nothing to download."""

    def __init__(self, n: int, size: int):
        self.images = np.stack([np.asarray(flower(np.random.default_rng([7, i]), size)).transpose(2, 0, 1)
                                for i in range(n)])

    def __len__(self):
        return len(self.images)

    def get(self, i, rng):
        return self.images[i]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def smoke(device, precision: str, res: int, arch: dict, steps: int, batch: int, data, work: Path) -> dict:
    """train() from scratch for ``steps`` steps; finite losses and a falling SWD make it pass."""
    arch = dict(arch, img_resolution=res, z_dim=512 if res >= 128 else 64, w_dim=512 if res >= 128 else 64)
    cfg = TrainConfig(steps=steps, batch=batch, snapshot_every=steps // 2, device=str(device), precision=precision,
                      scratch_arch=arch, metrics=("swd",), metric_images=min(256, len(data)), grid_seeds=(0, 1),
                      aug="ada", mirror=True)
    t0 = time.perf_counter()
    result = train(cfg, work / f"smoke-{precision}", dataset=data, log=lambda line: None)
    seconds = time.perf_counter() - t0
    records = read_stats(work / f"smoke-{precision}")
    losses = [v for r in records for k, v in r.items() if k in ("loss_G", "loss_D", "r1")]
    swd = [r["swd"] for r in records if r.get("snapshot")]
    finite = all(math.isfinite(v) for v in losses)
    return dict(finished=result["state"] == "finished", finite=finite, falling=swd[-1] < swd[0], swd=swd,
                seconds=seconds)


def dense_bf16_peak(device) -> float:
    """TFLOPS of a large bf16 matmul: what this device reaches on dense bf16 work."""
    n = 8192 if device.type == "cuda" else 1024
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(2):
        a @ b
    sync(device)
    reps = 20 if device.type == "cuda" else 3
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12


def step_flops(tr: Trainer, reals) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    tr.step = 1
    with counter:
        tr.train_step(reals)
    return float(counter.get_total_flops())


def throughput(device, precision: str, res: int, arch: dict, batch: int, steps: int) -> dict:
    """Plain steps and steps with lazy R1 of a fresh net on random reals; R1 amortised over 16."""
    torch.manual_seed(0)
    G = Generator(z_dim=512, w_dim=512, img_resolution=res, img_channels=3, **arch)
    D = Discriminator(img_resolution=res, channel_base=arch["channel_base"], channel_max=arch["channel_max"])
    tr = Trainer(TrainConfig(batch=batch, device=str(device), precision=precision, aug="ada"), G, D, device=device,
                 batch=batch)
    reals = torch.rand(batch, 3, res, res, device=device) * 2 - 1
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def timed(step: int) -> float:
        tr.step = step
        sync(device)
        t0 = time.perf_counter()
        tr.train_step(reals)
        sync(device)
        return time.perf_counter() - t0
    timed(0), timed(1)  # warm-up (cuDNN autotuning, allocator)
    plain = median([timed(1) for _ in range(steps)])
    with_r1 = median([timed(0) for _ in range(max(steps // 4, 1))])
    per_step = (15 * plain + with_r1) / 16
    tr.read_stats()
    memory = torch.cuda.max_memory_allocated(device) / 2 ** 30 if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    tflops = step_flops(tr, reals) / plain / 1e12
    return dict(ips=batch / per_step, s_per_kimg=per_step * 1000 / batch, memory_gb=memory, tflops=tflops)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="toy sizes: checks the code path in CI, measures nothing")
    ap.add_argument("--work", default=None, help="folder for the smoke runs (default: a temporary one)")
    a = ap.parse_args(argv)
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device here (use --device cpu --tiny to check the code path)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    precisions = ("fp16", "bf16") if device.type == "cuda" else ("fp32", "bf16")
    if a.tiny:
        smoke_cfg = dict(res=32, arch=TINY, steps=16, batch=4)
        configs = [("32 px", 32, TINY, 4), ("32 px", 32, TINY, 8), ("64 px", 64, TINY, 4)]
        rounds, n_images = 2, 32
    else:
        smoke_cfg = dict(res=256, arch=CONFIG_F, steps=200, batch=8)
        configs = [("256 px", 256, AUTO_256, 16), ("256 px", 256, AUTO_256, 32), ("1024 px", 1024, AUTO_1024, 4)]
        rounds, n_images = 12, 256
    print(f"# {machine()}; device {device} ({name}); {time.strftime('%Y-%m-%d')}; "
          f"load average {os.getloadavg()[0]:.1f}" + ("; --tiny: toy sizes, figures mean nothing" if a.tiny else ""))
    data = GeneratedFlowers(n_images, smoke_cfg["res"])
    ok = True
    with tempfile.TemporaryDirectory(dir=a.work) as work:
        print(f"\n(a) smoke: {smoke_cfg['res']} px, {smoke_cfg['steps']} steps from scratch, batch {smoke_cfg['batch']}")
        print("| precision | losses | SWD by snapshot | verdict | seconds |\n|---|---|---|---|---|")
        for precision in precisions:
            r = smoke(device, precision, data=data, work=Path(work), **smoke_cfg)
            passed = r["finished"] and r["finite"] and (r["falling"] or a.tiny)  # a few toy steps prove no trend
            ok &= passed
            swd = " → ".join(f"{v:.1f}" for v in r["swd"]) + ("" if r["falling"] else " (not falling)")
            print(f"| {precision} | {'finite' if r['finite'] else 'NOT finite'} | {swd} | "
                  f"{'pass' if passed else 'FAIL'} | {r['seconds']:.0f} |", flush=True)
    peak = dense_bf16_peak(device)
    print(f"\n(b) throughput; dense bf16 peak measured here: {peak:.3g} TFLOPS"
          f"\n| config | batch | precision | img/s | s/kimg | peak memory GB | TFLOPS | % of bf16 peak "
          f"| original, published s/kimg |\n|---|---|---|---|---|---|---|---|---|")
    for label, res, arch, batch in configs:
        for precision in precisions:
            r = throughput(device, precision, res, arch, batch, rounds)
            print(f"| {label} | {batch} | {precision} | {r['ips']:.1f} | {r['s_per_kimg']:.2f} | {r['memory_gb']:.2f} | "
                  f"{r['tflops']:.3g} | {100 * r['tflops'] / peak:.2g}% | {PUBLISHED.get((label, batch), '-')} |",
                  flush=True)
    print("\n(c) published figures: stylegan2-ada-pytorch README (cfg auto, 1 GPU, fp16 top 4 resolutions); "
          "memory on the CPU is the process's peak RSS")
    print("smoke:", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
