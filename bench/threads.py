"""Threads on a shared CPU: training steps with OpenMP's waiting threads spinning or sleeping.

    python bench/threads.py [--steps 8] [--rounds 3] [--busy 0,1]
                            [--variants OMP_WAIT_POLICY=ACTIVE,OMP_WAIT_POLICY=PASSIVE,GOMP_SPINCOUNT=20000]

torch's CPU threads (OpenMP, as many as cores) wait for each other between operations. By default
they spin; with ``OMP_WAIT_POLICY=PASSIVE`` (what ``core/__init__.py`` sets unless the user set it)
they sleep; ``GOMP_SPINCOUNT`` (libgomp, torch's OpenMP on Linux) spins that many rounds first and
overrides the policy. These are read once when torch loads, so each variant runs in a fresh process:
``--steps`` training steps of the 64 px default-model architecture (batch 16, fp32, CPU), timed
after one warm-up step. ``--busy N`` runs N other processes that keep one core each busy (a
browser, the app's other thread, another job) during the timing. Variants alternate, round after
round; medians of the per-step wall time are printed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STEPS = r"""
import sys, time, torch
from core.stylegan.networks import Discriminator, Generator
from core.stylegan.train_config import TrainConfig
from core.stylegan.trainer import Trainer
steps = int(sys.argv[1])
torch.manual_seed(0)
G = Generator(img_resolution=64, channel_base=2048, channel_max=64, mapping_layers=4, z_dim=128, w_dim=128)
D = Discriminator(img_resolution=64, channel_base=2048, channel_max=64)
trainer = Trainer(TrainConfig(device="cpu", precision="fp32"), G, D, device=torch.device("cpu"), batch=16)
reals = torch.rand(16, 3, 64, 64) * 2 - 1
trainer.train_step(reals)
t0 = time.perf_counter()
for _ in range(steps):
    trainer.train_step(reals)
print((time.perf_counter() - t0) / steps)
"""


def burn() -> None:
    while True:
        sum(i * i for i in range(10_000))


def one_run(variant: str, steps: int, busy: int) -> float:
    burners = [subprocess.Popen([sys.executable, "-c", "import bench.threads as t; t.burn()"], cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO))) for _ in range(busy)]
    try:
        name, value = variant.split("=", 1)
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
        env.update(PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")  # as core/__init__ sets it
        env[name] = value
        out = subprocess.run([sys.executable, "-c", STEPS, str(steps)], cwd=REPO, env=env, check=True,
                             capture_output=True, text=True).stdout
        return float(out.strip().splitlines()[-1])
    finally:
        for p in burners:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--busy", default="0,1", help="numbers of busy processes beside the training, comma-separated")
    ap.add_argument("--variants", default="OMP_WAIT_POLICY=ACTIVE,OMP_WAIT_POLICY=PASSIVE,GOMP_SPINCOUNT=20000",
                    help="environment settings to compare, comma-separated NAME=VALUE (the first is the baseline)")
    a = ap.parse_args()
    variants = a.variants.split(",")
    print(f"{os.cpu_count()} CPUs, torch threads = cores; load average before: {os.getloadavg()[0]:.1f}")
    print(f"busy  {'setting':28s}  s/step (median)  vs {variants[0]}  all rounds")
    for busy in (int(b) for b in a.busy.split(",")):
        times = {v: [] for v in variants}
        for _ in range(a.rounds):
            for v in times:
                times[v].append(one_run(v, a.steps, busy))
                time.sleep(0.5)
        base = statistics.median(times[variants[0]])
        for v, ts in times.items():
            m = statistics.median(ts)
            print(f"{busy:4d}  {v:28s}  {m:15.3f}  {base / m:8.2f}x  {', '.join(f'{t:.3f}' for t in ts)}")

if __name__ == "__main__":
    main()
