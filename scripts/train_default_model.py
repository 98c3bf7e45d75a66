"""Reproduce the bundled default model: static/models/default.safetensors.

    python scripts/train_default_model.py --steps 25000 --work /tmp/atelier-default

Imports the vendored 'emoji-faces' sample dataset (static/datasets/emoji-faces.zip, 64 px) into a
private data root under --work, trains a small StyleGAN2 from scratch with Atelier's trainer on
the CPU (SWD against the training images at each snapshot), and writes G, D and G_ema of the last
step to --dest in the native format, with its card's thumbnail beside it (.png). Running the same
command again, or with more --steps, resumes from --work/run exactly (Ctrl-C saves a snapshot
first); --export-only writes --dest from the run's last state. docs/default-model.md has the figures.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_ARCH = dict(img_resolution=64, channel_base=2048, channel_max=64, mapping_layers=4, z_dim=128, w_dim=128)


def parse_arch(text: str) -> dict:
    arch = dict(DEFAULT_ARCH)
    for item in filter(None, text.split(",")):
        key, value = item.split("=")
        arch[key] = int(value)
    return arch


def write_card(G, path: Path) -> None:
    """The card's thumbnail: seeds 0-3 at psi 0.7 (as the catalog renders them), pixel-doubled, 2x2."""
    import numpy as np
    from PIL import Image

    from core.stylegan.images import generate_images, make_grid
    grid = make_grid(np.stack([img for _, img in generate_images(G, range(4), truncation_psi=0.7)]), cols=2)
    grid.resize((grid.width * 2, grid.height * 2), Image.Resampling.NEAREST).save(path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sample", default="emoji-faces", help="key of the sample dataset (core/sample_data.py)")
    ap.add_argument("--arch", default="", help="changes to the architecture, e.g. channel_base=2048,channel_max=64")
    ap.add_argument("--aug", default="diffaugment", choices=("diffaugment", "ada", "none"),
                    help="DiffAugment costs next to nothing on a CPU; ADA's geometric pipeline doubles a step there")
    ap.add_argument("--snapshot-every", type=int, default=500)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                    help="fp32 (what the committed model was trained in) or bf16 (faster on CPUs with native bf16)")
    ap.add_argument("--hours", type=float, default=0.0, help="stop cleanly (with a snapshot) after this long")
    ap.add_argument("--work", default="/tmp/atelier-default")
    ap.add_argument("--export-only", action="store_true", help="write --dest from --work/run without training")
    ap.add_argument("--dest", default=str(Path(__file__).resolve().parents[1] / "static/models/default.safetensors"))
    args = ap.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C snapshots, also when started in the background
    os.environ["ATELIER_HOME"] = str(Path(args.work) / "home")

    from core.datasets import DatasetExists, import_dataset, open_packed
    from core.sample_data import sample_dataset
    from core.stylegan import load_checkpoint, save_checkpoint
    from core.stylegan.train import train
    from core.stylegan.train_config import TrainConfig

    sample = sample_dataset(args.sample)
    arch = parse_arch(args.arch)
    res = arch["img_resolution"]
    described = f"{sample.name[len('Sample '):]} sample dataset ({sample.count()} images: {sample.credit})"
    run_dir = Path(args.work) / "run"
    if not args.export_only:
        try:
            import_dataset([sample.path], args.sample, crop="center", resolution=res)
        except DatasetExists:  # imported by an earlier run of this script
            pass
        dataset = open_packed(args.sample, res)
        cfg = TrainConfig(steps=args.steps, batch=args.batch, snapshot_every=args.snapshot_every, device="cpu",
                          mirror=True, aug=args.aug, ada_kimg=100, scratch_arch=arch, seed=0, metrics=("swd",),
                          time_budget_s=args.hours * 3600, precision=args.precision)
        train(cfg, run_dir, dataset=dataset, checkpoint=None,
              progress_fn=lambda p: print(f"step {p['step']} G {p['loss_G']:.3f} D {p['loss_D']:.3f} "
                                          f"{p['sec_per_step']:.2f}s/step"
                                          + (f" SWD {p['swd']:.1f}" if "swd" in p else ""), flush=True)
              if p["step"] % 50 == 0 or "swd" in p else None,
              provenance=dict(dataset=described, base="from scratch"))
    state = load_checkpoint(run_dir / "state.safetensors")
    step = state.metadata["step"]
    command = f"python scripts/train_default_model.py --steps {args.steps} --batch {args.batch}"
    meta = dict(name="default", description=f"{sample.what.capitalize()}: a small model trained by Atelier "
                                            "on its sample dataset",
                steps=step, kimg=state.metadata.get("kimg"), dataset=described, command=command)
    save_checkpoint(args.dest, G_ema=state.G_ema, G=state.G, D=state.D, metadata=meta)
    write_card(state.G_ema, Path(args.dest).with_suffix(".png"))
    print(f"wrote {args.dest} at step {step:,} ({Path(args.dest).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
