"""``train``: transfer learning (or training from scratch) into an output folder, resumable."""
from __future__ import annotations

from pathlib import Path

from ..stylegan.train_config import AUG_MODES, MAX_STEPS, PRECISIONS, TrainConfig
from . import UserError


def add_train_options(p) -> None:
    """The options shared by ``train`` and ``jobs submit``; their defaults are TrainConfig's."""
    from ..datasets.common import CROP_MODES
    p.add_argument("--dataset", required=True, help="a dataset name, or a folder of images (imported on the fly)")
    p.add_argument("--checkpoint", default="default", help="'default', a catalog name, an imported name or a file")
    d = TrainConfig()
    p.add_argument("--steps", type=int, default=d.steps, help=f"training steps (default {d.steps:,}; at most {MAX_STEPS:,})")
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every, help="steps between snapshots")
    p.add_argument("--batch", type=int, default=d.batch, help="batch size (default: automatic)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--crop", choices=CROP_MODES, default="center")
    p.add_argument("--freeze-d", type=int, default=d.freeze_d, help="freeze the first N discriminator layers")
    p.add_argument("--aug", choices=AUG_MODES, default=d.aug)
    p.add_argument("--mirror", action="store_true", default=d.mirror, help="random x-flips of the training images")
    p.add_argument("--lr", type=float, default=d.lr_g, help="learning rate of G and D (default: automatic)")
    p.add_argument("--r1-gamma", type=float, default=d.r1_gamma, help="R1 weight (default: automatic)")
    p.add_argument("--time-budget", type=float, default=d.time_budget_s / 60, help="stop cleanly after this many minutes")
    p.add_argument("--metrics", default="",
                   help="comma-separated metrics at snapshots: swd, memorisation, fid, kid (fid/kid need --inception)")
    p.add_argument("--inception", default="", help="a TorchScript Inception weights file you supply, for fid/kid")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="fp32, fp16 (the original's mixed precision, CUDA only), bf16 (CUDA and CPU), "
                        "or auto: chosen for the device and named in the run's log")
    p.add_argument("--compile", action="store_true", help="torch.compile the discriminator (falls back with a "
                                                          "log line where no compiler works)")


def config_from_args(args):
    from ..stylegan.train_config import ConfigError, TrainConfig
    try:
        return TrainConfig(steps=args.steps, snapshot_every=args.snapshot_every, batch=args.batch, device=args.device,
                           freeze_d=args.freeze_d, aug=args.aug, mirror=args.mirror, lr_g=args.lr, lr_d=args.lr,
                           r1_gamma=args.r1_gamma, time_budget_s=args.time_budget * 60, seed=args.seed,
                           metrics=tuple(m for m in args.metrics.split(",") if m),
                           inception_path=getattr(args, "inception", ""), precision=args.precision,
                           compile=args.compile).validate()
    except ConfigError as e:
        raise UserError(f"--{str(e).split(':')[0].replace('_', '-')}:{str(e).split(':', 1)[1]}") from None


def open_dataset(value: str, resolution: int, crop: str, user: str):
    from .. import datasets
    try:
        if Path(value).is_dir() and not (Path(value) / "meta.json").exists():
            value = datasets.import_folder_of_images_for_training(value, user, resolution=resolution, crop=crop)
        return datasets.open_packed(value, resolution, user, crop=crop)
    except datasets.DatasetError as e:
        raise UserError(str(e)) from None


def run(args) -> int:
    from tqdm import tqdm

    from ..storage import DEFAULT_USER
    from ..stylegan.train import TrainingError, train
    from .generate import load_for_cli
    cfg = config_from_args(args)
    ckpt = load_for_cli(args.checkpoint)
    dataset = open_dataset(args.dataset, ckpt.resolution, args.crop, DEFAULT_USER)
    if args.dry_run:
        print(cfg.to_json())
        print(f"dataset: {len(dataset):,} images at {ckpt.resolution} px; checkpoint: {ckpt.source_format}")
        return 0
    bar = tqdm(total=cfg.steps, unit="step", desc="train")

    def progress(p):
        bar.n = p["step"]
        if "loss_G" in p:  # the statistics come every few steps (read from the device then)
            bar.set_postfix(G=f"{p['loss_G']:.2f}", D=f"{p['loss_D']:.2f}", p=f"{p.get('ada_p', 0):.2f}", refresh=False)
        bar.refresh()

    provenance = dict(checkpoint=args.checkpoint, dataset=args.dataset, crop=args.crop)
    try:
        result = train(cfg, Path(args.out), dataset=dataset, checkpoint=ckpt, progress_fn=progress,
                       provenance=provenance, log=bar.write)
    except TrainingError as e:
        raise UserError(str(e)) from None
    finally:
        bar.close()
    print(f"{result['state']} at step {result['step']:,}; snapshots in {Path(args.out) / 'snapshots'}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a checkpoint on a dataset",
                       description="Transfer learning with snapshots. Re-run the same command to resume; "
                                   "Ctrl-C saves a snapshot and exits.")
    add_train_options(p)
    p.add_argument("--out", required=True, help="run folder (snapshots, stats.jsonl, resumable state)")
    p.add_argument("--dry-run", action="store_true", help="validate the options and print them")
    p.set_defaults(func=run)
