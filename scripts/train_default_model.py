"""Reproduce the bundled default model: static/models/default.safetensors.

    python scripts/train_default_model.py --steps 1500 --work /tmp/atelier-default

Draws the 'flowers' sample dataset (1,000 images, seed 0), imports it at 64 px center crop into
a private data root under --work, trains a small StyleGAN2 from scratch with Atelier's trainer
on the CPU, and writes G, D and G_ema of the last step to --dest in the native format.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_ARCH = dict(img_resolution=64, channel_base=1024, channel_max=128, mapping_layers=4, z_dim=128, w_dim=128)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--work", default="/tmp/atelier-default")
    ap.add_argument("--dest", default=str(Path(__file__).resolve().parents[1] / "static/models/default.safetensors"))
    args = ap.parse_args()
    os.environ["ATELIER_HOME"] = str(Path(args.work) / "home")

    from core.datasets import import_dataset, open_packed
    from core.sample_data import make_sample_dataset
    from core.stylegan import load_checkpoint, save_checkpoint
    from core.stylegan.train import train
    from core.stylegan.train_config import TrainConfig

    images = make_sample_dataset("flowers", Path(args.work) / "flowers", n=1000, size=128, seed=0)
    try:
        import_dataset([images], "flowers", crop="center", resolution=64)
    except Exception as e:  # already imported by an earlier run of this script
        print(f"dataset: {e}")
    dataset = open_packed("flowers", 64)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, snapshot_every=250, device="cpu", mirror=True,
                      aug="ada", ada_kimg=100, scratch_arch=DEFAULT_ARCH, seed=0)
    run_dir = Path(args.work) / "run"
    train(cfg, run_dir, dataset=dataset, checkpoint=None,
          progress_fn=lambda p: print(f"step {p['step']} G {p['loss_G']:.3f} D {p['loss_D']:.3f} "
                                      f"p {p.get('ada_p', 0):.3f} {p['sec_per_step']:.2f}s/step", flush=True)
          if p["step"] % 25 == 0 else None,
          provenance=dict(dataset="flowers sample dataset (1,000 images, seed 0)", base="from scratch"))
    state = load_checkpoint(run_dir / "state.safetensors")
    meta = dict(name="default", description="Flowers: a small model trained by Atelier on its sample dataset",
                steps=state.metadata["step"], dataset="flowers sample dataset (1,000 images, seed 0)",
                command=f"python scripts/train_default_model.py --steps {args.steps} --batch {args.batch}")
    save_checkpoint(args.dest, G_ema=state.G_ema, G=state.G, D=state.D, metadata=meta)
    print(f"wrote {args.dest} ({Path(args.dest).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
