"""Tiny material for the job tests: a 32 px native checkpoint and a 16-image dataset."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
TINY_OPTIONS = {"batch": 4, "snapshot_every": 2, "grid_seeds": [0, 1, 2, 3], "aug": "none"}


def make_checkpoint(path: Path) -> Path:
    from core.stylegan import save_checkpoint
    from core.stylegan.networks import Discriminator, Generator
    arch = dict(img_resolution=32, channel_base=256, channel_max=64)
    G = Generator(z_dim=32, w_dim=32, mapping_layers=2, **arch)
    save_checkpoint(path, G_ema=G, G=G, D=Discriminator(**arch))
    return path


def make_dataset(root: Path, user: str, n: int = 16) -> str:
    from core.datasets import import_folder_of_images_for_training
    folder = root / f"images-{user}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return import_folder_of_images_for_training(folder, user, resolution=32)


def start_worker(home: Path, *extra: str, lease: float = 30.0) -> subprocess.Popen:
    env = dict(os.environ, ATELIER_HOME=str(home), ATELIER_JOB_LEASE_S=str(lease), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--device", "cpu", "--poll", "0.1", *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_process(proc: subprocess.Popen, kill: bool = False) -> str:
    if proc.poll() is None:
        proc.kill() if kill else proc.terminate()
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
    return out or ""


def wait_for(predicate, timeout: float = 90.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s")
