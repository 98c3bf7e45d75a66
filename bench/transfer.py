"""Transfer learning on CPU: does a tiny model trained on one kind of image learn another quickly?

    python bench/transfer.py [--source-steps 400] [--steps 300] [--precisions fp32,bf16] [--work DIR]

1. Trains a tiny 32 px StyleGAN2 from scratch on the 'emoji-faces' sample dataset (the source model).
2. Transfers it to the clearly different 'flags' sample dataset.
Prints the sliced Wasserstein distance between G_ema samples and the flags at each snapshot
of the transfer run (ProGAN per-set normalisation, and joint normalisation), and the ratio of the
last to step 0. The target is a ratio of 0.5 or less within a few hundred steps. With
--precisions fp32,bf16 the transfer runs once per precision from the same source model (trained in
fp32), and the last SWDs are compared.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ARCH = dict(img_resolution=32, channel_base=1024, channel_max=128, mapping_layers=2, z_dim=64, w_dim=64)


def swd_at_snapshots(run_dir: Path, dataset, n: int = 256) -> list[tuple[int, float, float]]:
    import numpy as np

    from core.stylegan import load_checkpoint
    from core.stylegan.images import generate_images
    from core.stylegan.metrics import swd
    from core.stylegan.run_files import list_snapshots, snapshot_paths
    rng = np.random.default_rng(5)
    reals = np.stack([dataset.get(int(i), rng) for i in rng.integers(0, len(dataset), n)])
    rows = []
    for step in list_snapshots(run_dir):
        G = load_checkpoint(snapshot_paths(run_dir, step)[0]).G_ema
        fakes = np.stack([img for _, img in generate_images(G, range(1000, 1000 + n), noise_mode="random", batch=64)])
        rows.append((step, swd(fakes, reals)["mean"], swd(fakes, reals, normalise="joint")["mean"]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-steps", type=int, default=400)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--work", default="/tmp/atelier-transfer-bench")
    ap.add_argument("--precisions", default="fp32", help="transfer once per precision from the same source model, "
                                                        "e.g. fp32,bf16")
    a = ap.parse_args()
    os.environ.setdefault("ATELIER_HOME", str(Path(a.work) / "home"))
    from core.datasets import import_dataset, open_packed
    from core.sample_data import sample_dataset
    from core.stylegan import load_checkpoint
    from core.stylegan.train import train
    from core.stylegan.train_config import TrainConfig
    data = {}
    for kind in ("emoji-faces", "flags"):
        try:
            import_dataset([sample_dataset(kind).path], kind, resolution=32)
        except Exception as e:
            print(f"{kind}: {e}")
        data[kind] = open_packed(kind, 32)
    quiet = dict(log=lambda m: None)
    t0 = time.time()
    source_cfg = TrainConfig(steps=a.source_steps, batch=a.batch, snapshot_every=a.source_steps, device="cpu",
                             scratch_arch=ARCH, grid_seeds=tuple(range(16)), precision="fp32")
    train(source_cfg, Path(a.work) / "source", dataset=data["emoji-faces"], **quiet)
    print(f"source model: {a.source_steps} steps on emoji-faces in {time.time() - t0:.0f} s")
    last = {}
    for precision in a.precisions.split(","):
        t0 = time.time()
        cfg = TrainConfig(steps=a.steps, batch=a.batch, snapshot_every=max(a.steps // 6, 1), device="cpu",
                          precision=precision)
        run = Path(a.work) / f"transfer-{precision}"
        source = load_checkpoint(Path(a.work) / "source" / "state.safetensors")  # training changes it in place
        train(cfg, run, dataset=data["flags"], checkpoint=source, **quiet)
        wall = time.time() - t0
        rows = swd_at_snapshots(run, data["flags"])
        print(f"\ntransfer in {precision}: {a.steps} steps on flags in {wall:.0f} s "
              f"({a.steps * a.batch / wall:.1f} img/s, snapshots included)")
        print("step  SWD(per-set)  SWD(joint)")
        for step, s1, s2 in rows:
            print(f"{step:5d}  {s1:12.1f}  {s2:10.1f}")
        print(f"ratio last/step0: per-set {rows[-1][1] / rows[0][1]:.2f}, joint {rows[-1][2] / rows[0][2]:.2f}",
              flush=True)
        last[precision] = rows[-1][1]
    for precision, value in last.items():
        if precision != "fp32" and "fp32" in last:
            print(f"last SWD (per-set), {precision} / fp32: {value / last['fp32']:.3f}")


if __name__ == "__main__":
    main()
