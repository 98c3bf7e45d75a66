"""Speed of one run on 1 and on N processes (torchrun; gloo on the CPU, NCCL on GPUs), same global batch.

    python bench/scaling.py [--device cpu|cuda] [--processes 2] [--repeat 3] [--steps 16]

Each repetition starts the run once on 1 process and once on N (in turn, so a drift in the
machine's load touches both), and times --steps full training steps (G and D updates, lazy R1
every 16 steps, EMA, ADA) after one warm-up step, from a barrier to a barrier. Printed: steps/s
of each run, and the median images/s of each, the speed-up and the scaling efficiency
(speed-up / N).

CPU: 64 px, channel_base 4096, channel_max 256, batch 16. Each of N processes has cores / N
threads (OMP_NUM_THREADS); one process is timed with every core (the whole machine, as the N
processes) and with cores / N threads (the same threads per process: on a machine busy with
other work, threads that wait for each other can make the first much slower).
CUDA: 256 px config F (channel_base 16384, channel_max 512), batch 16 per GPU, fp16 as the
original; N GPUs of this machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def one_run(a) -> None:
    """One process of the timed run (under torchrun): rank 0 prints {"sec_per_step": ...}."""
    import torch
    import torch.distributed as dist

    from core.stylegan import distributed
    from core.stylegan.networks import Discriminator, Generator
    from core.stylegan.train_config import TrainConfig
    from core.stylegan.trainer import Trainer
    group, device = distributed.start(a.device) if distributed.launched() else (distributed.SINGLE, a.device)
    dev = torch.device(device)
    res, base, cmax = (256, 16384, 512) if dev.type == "cuda" else (64, 4096, 256)
    batch = a.batch * (group.world if dev.type == "cuda" else 1)
    torch.manual_seed(0)
    G = Generator(z_dim=512, w_dim=512, img_resolution=res, img_channels=3, mapping_layers=8, channel_base=base,
                  channel_max=cmax)
    D = Discriminator(img_resolution=res, channel_base=base, channel_max=cmax)
    cfg = TrainConfig(batch=batch, aug="ada", device=device, precision="auto")
    tr = Trainer(cfg, G, D, device=dev, batch=batch, group=group)
    reals = torch.rand(len(tr.rows), 3, res, res, device=dev) * 2 - 1

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if group.world > 1:
            dist.barrier(group=group.control)
    tr.train_step(reals)  # warm-up (step 0: every phase)
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        tr.train_step(reals)
    sync()
    if group.main:
        print(json.dumps({"sec_per_step": (time.perf_counter() - t0) / a.steps, "batch": batch, "res": res}),
              flush=True)
    distributed.finish(group)


def timed(processes: int, threads: int, a) -> dict:
    from core.stylegan import distributed
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads))
    args = ["bench.scaling", "--timed-run", "--device", a.device, "--steps", str(a.steps), "--batch", str(a.batch)]
    command = distributed.torchrun_command(processes, args) if processes > 1 else [sys.executable, "-m", *args]
    out = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16, help="the batch (on CUDA: per GPU)")
    ap.add_argument("--timed-run", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.timed_run:
        return one_run(a)
    from bench.common import machine, median
    print(f"# {machine()}; load average {os.getloadavg()[0]:.1f}; {a.processes} processes on {a.device}")
    cores = os.cpu_count() or 1
    runs = {"1 process, every core": (1, cores), f"1 process, {max(cores // a.processes, 1)} thread(s)":
            (1, max(cores // a.processes, 1)), f"{a.processes} processes": (a.processes, max(cores // a.processes, 1))}
    speeds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(a.repeat):
        line = []
        for name, (processes, threads) in runs.items():
            info = timed(processes, threads, a)
            speeds[name].append(info["batch"] / info["sec_per_step"])
            line.append(f"{name}: {1 / info['sec_per_step']:.3f} steps/s (batch {info['batch']})")
        print("  " + " | ".join(line), flush=True)
    medians = {name: median(v) for name, v in speeds.items()}
    multi = medians[f"{a.processes} processes"]
    print(f"{info['res']} px, medians of {a.repeat} (img/s): " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))
    for name, value in list(medians.items())[:-1]:
        print(f"  {a.processes} processes vs {name}: speed-up {multi / value:.2f}x, "
              f"efficiency {multi / value / a.processes:.0%}")
    print(f"  load average now {os.getloadavg()[0]:.1f}")

if __name__ == "__main__":
    main()
