"""``train``: transfer learning (or training from scratch) into an output folder, resumable."""
from __future__ import annotations

import sys
from pathlib import Path

from ..stylegan.train_config import AUG_MODES, MAX_STEPS, PRECISIONS, TrainConfig
from . import UserError
from ..storage import DEFAULT_USER


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
    p.add_argument("--devices", type=int, default=d.devices,
                   help="processes that train together through torchrun: GPUs of this machine, or CPU "
                        "processes with --device cpu (default 1; see docs/scaling.md)")
    p.add_argument("--crop", choices=CROP_MODES, default="center")
    p.add_argument("--freeze-d", type=int, default=d.freeze_d, help="freeze the first N discriminator layers")
    p.add_argument("--aug", choices=AUG_MODES, default=d.aug)
    p.add_argument("--mirror", action="store_true", default=d.mirror, help="random x-flips of the training images")
    p.add_argument("--lr", type=float, default=d.lr_g, help="learning rate of G and D (default: automatic)")
    p.add_argument("--r1-gamma", type=float, default=d.r1_gamma, help="R1 weight (default: automatic)")
    p.add_argument("--pl-weight", type=float, default=d.pl_weight,
                   help="path length regularisation weight (default 0: off)")
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
    from ..stylegan.train_config import ConfigError
    try:
        return TrainConfig(steps=args.steps, snapshot_every=args.snapshot_every, batch=args.batch, device=args.device,
                           devices=args.devices, freeze_d=args.freeze_d, aug=args.aug, mirror=args.mirror, lr_g=args.lr,
                           lr_d=args.lr, r1_gamma=args.r1_gamma, pl_weight=args.pl_weight,
                           time_budget_s=args.time_budget * 60, seed=args.seed,
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


def _launch(args, cfg) -> int:
    """Start this same command as cfg.devices processes of one run (torchrun on this machine)."""
    import signal
    import subprocess

    import torch

    from ..stylegan import distributed
    if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()):
        if torch.cuda.device_count() < cfg.devices:
            raise UserError(f"--devices {cfg.devices}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif cfg.device not in ("cpu", "auto"):
        raise UserError(f"--devices {cfg.devices} runs on CUDA GPUs or on the CPU, not on {cfg.device}")
    proc = subprocess.Popen(distributed.torchrun_command(cfg.devices, ["core.cli", *args.argv]))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _: proc.send_signal(signum))
    code = proc.wait()
    if code:
        print(f"error: a process of the run failed (torchrun exit code {code}); the same command resumes the run "
              "from its last snapshot", file=sys.stderr)
    return code


def run(args) -> int:
    from ..stylegan import distributed
    from .generate import load_for_cli
    cfg = config_from_args(args)
    ckpt = load_for_cli(args.checkpoint)
    if cfg.devices > 1 and not distributed.launched() and not args.dry_run:
        open_dataset(args.dataset, ckpt.resolution, args.crop, DEFAULT_USER)  # imported and packed once, here
        return _launch(args, cfg)
    group, device = distributed.start(cfg.device) if distributed.launched() else (distributed.SINGLE, cfg.device)
    try:
        code = _train(args, cfg.replace(device=device), ckpt, group)
    except BaseException:
        distributed.finish(group, done=False)
        raise
    distributed.finish(group)
    return code


def _train(args, cfg, ckpt, group) -> int:
    """One process of the run (the only one, or one torchrun started): rank 0 shows the progress."""
    from tqdm import tqdm

    from ..stylegan import distributed
    from ..stylegan.train import TrainingError, train
    if not group.main:
        distributed.barrier(group)  # rank 0 imports and packs the dataset first
    dataset = open_dataset(args.dataset, ckpt.resolution, args.crop, DEFAULT_USER)
    if group.main:
        distributed.barrier(group)
    if args.dry_run:
        print(cfg.to_json())
        print(f"dataset: {len(dataset):,} images at {ckpt.resolution} px; checkpoint: {ckpt.source_format}")
        return 0
    bar = tqdm(total=cfg.steps, unit="step", desc="train", disable=not group.main)

    def progress(p):
        bar.n = p["step"]
        if "loss_G" in p:  # the statistics come every few steps (read from the device then)
            bar.set_postfix(G=f"{p['loss_G']:.2f}", D=f"{p['loss_D']:.2f}", p=f"{p.get('ada_p', 0):.2f}", refresh=False)
        bar.refresh()

    provenance = dict(checkpoint=args.checkpoint, dataset=args.dataset, crop=args.crop)
    try:
        result = train(cfg, Path(args.out), dataset=dataset, checkpoint=ckpt, progress_fn=progress,
                       provenance=provenance, log=bar.write if group.main else (lambda line: None), group=group)
    except TrainingError as e:
        raise UserError(str(e)) from None
    finally:
        bar.close()
    if group.main:
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
