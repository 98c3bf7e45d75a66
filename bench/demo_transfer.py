"""The newcomer's first transfer: the bundled default model fine-tuned on the demo sample dataset.

    python bench/demo_transfer.py [--steps 600] [--snapshot-every 100] [--n 1000] [--strip docs/demo-transfer.png]

Runs what the app runs for "Use the sample dataset" then "Start training" with the suggested
steps and snapshot interval (core/sample_data.py: DEMO_SAMPLE, DEMO_STEPS, DEMO_SNAPSHOT_EVERY),
on the CPU with the app's default options (batch automatic, ADA, x-flips). Prints the wall time
at each snapshot and the SWD (x1e3, per-set normalisation) of n G_ema samples against the demo
set at each snapshot, and writes a strip: seeds 0-7 of every snapshot, one row each, pixel-doubled.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
from default_model import ROOT, model_images, sample_images, split_half_floor


def main() -> None:
    from core.sample_data import DEMO_SAMPLE, DEMO_SNAPSHOT_EVERY, DEMO_STEPS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ROOT / "static/models/default.safetensors"))
    ap.add_argument("--sample", default=DEMO_SAMPLE)
    ap.add_argument("--steps", type=int, default=DEMO_STEPS)
    ap.add_argument("--snapshot-every", type=int, default=DEMO_SNAPSHOT_EVERY)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--work", default="/tmp/atelier-demo-transfer")
    ap.add_argument("--strip", default="")
    a = ap.parse_args()
    from PIL import Image

    from core.datasets import open_packed
    from core.stylegan import load_checkpoint
    from core.stylegan.images import generate_images, make_grid
    from core.stylegan.metrics import swd
    from core.stylegan.run_files import list_snapshots, snapshot_paths
    from core.stylegan.train import train
    from core.stylegan.train_config import TrainConfig

    source = load_checkpoint(a.checkpoint)
    reals = sample_images(a.sample, source.resolution)
    cfg = TrainConfig(steps=a.steps, batch=0, snapshot_every=a.snapshot_every, device="cpu", aug="ada", mirror=True)
    run_dir = Path(a.work) / "run"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh run each time, never a resumed one
    clock = {0: 0.0}
    t0 = time.monotonic()
    train(cfg, run_dir, dataset=open_packed(a.sample, source.resolution), checkpoint=source, log=lambda m: None,
          progress_fn=lambda p: clock.setdefault(p["step"], time.monotonic() - t0) if p.get("snapshot") else None)
    print(f"{a.steps} steps from {Path(a.checkpoint).name} on '{a.sample}' ({len(reals)} images) in "
          f"{time.monotonic() - t0:.0f} s; split-half floor of the set {split_half_floor(reals):.1f}")
    print("step  wall s  SWD to the set")
    rows = []
    for step in list_snapshots(run_dir):
        G = load_checkpoint(snapshot_paths(run_dir, step)[0]).G_ema
        value = swd(model_images(G, a.n), reals)["mean"]
        print(f"{step:5d}  {clock.get(step, float('nan')):6.0f}  {value:8.1f}")
        rows.append(make_grid(np.stack([img for _, img in generate_images(G, range(8))]), cols=8))
    if a.strip:
        strip = Image.new("RGB", (rows[0].width, rows[0].height * len(rows)))
        for i, row in enumerate(rows):
            strip.paste(row, (0, i * row.height))
        strip.resize((strip.width * 2, strip.height * 2), Image.Resampling.NEAREST).save(a.strip)
        print(f"wrote {a.strip}")


if __name__ == "__main__":
    main()
