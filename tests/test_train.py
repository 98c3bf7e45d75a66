"""Trainer: a 2-tick run, snapshots, stats, exact resume, kill -9 recovery and the CLI."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.stylegan import load_checkpoint
from core.stylegan.run_files import list_snapshots, read_stats
from core.stylegan.train import train
from core.stylegan.train_config import ConfigError, TrainConfig
from tests.tiny import tiny_networks, write_blob_images, write_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


class ArrayDataset:
    def __init__(self, n=8, res=32, seed=0):
        self.images = np.random.default_rng(seed).integers(0, 256, (n, 3, res, res), dtype=np.uint8)

    def __len__(self):
        return len(self.images)

    def get(self, i, rng):
        return self.images[i]


def _ckpt(tmp_path):
    return load_checkpoint(write_tiny_checkpoint(tmp_path / "tiny.safetensors"))


def _cfg(**kw):
    return TrainConfig(batch=4, snapshot_every=2, device="cpu", grid_seeds=(0, 1, 2, 3), **kw)


def test_two_tick_run_writes_snapshots_grids_and_stats(tmp_path):
    seen = []
    result = train(_cfg(steps=4), tmp_path / "run", dataset=ArrayDataset(), checkpoint=_ckpt(tmp_path),
                   progress_fn=seen.append, log=lambda m: None)
    assert result == {"state": "finished", "step": 4}
    assert list_snapshots(tmp_path / "run") == [0, 2, 4]
    steps = [r["step"] for r in read_stats(tmp_path / "run")]
    assert steps == sorted(set(steps)) and steps[-1] == 4
    assert [p["step"] for p in seen] == [1, 2, 3, 4]
    assert all(np.isfinite(p["loss_G"]) and np.isfinite(p["loss_D"]) for p in seen)
    snap = load_checkpoint(tmp_path / "run" / "snapshots" / "step-000004.safetensors")
    assert snap.metadata["step"] == 4 and snap.G is None


def test_resume_is_exact(tmp_path):
    ds, ckpt = ArrayDataset(), _ckpt(tmp_path)
    train(_cfg(steps=4), tmp_path / "a", dataset=ds, checkpoint=ckpt, log=lambda m: None)
    train(_cfg(steps=2), tmp_path / "b", dataset=ds, checkpoint=_ckpt(tmp_path), log=lambda m: None)
    train(_cfg(steps=4), tmp_path / "b", dataset=ds, checkpoint=None, log=lambda m: None)  # continue
    a = load_checkpoint(tmp_path / "a" / "state.safetensors")
    b = load_checkpoint(tmp_path / "b" / "state.safetensors")
    for (name, x), (_, y) in zip(a.G_ema.state_dict().items(), b.G_ema.state_dict().items()):
        assert torch.equal(x, y), name
    for key in a.extra_tensors:
        assert torch.equal(a.extra_tensors[key], b.extra_tensors[key]), key
    assert [r["step"] for r in read_stats(tmp_path / "b")] == [r["step"] for r in read_stats(tmp_path / "a")]


def test_abort_writes_a_final_snapshot(tmp_path):
    calls = iter(range(100))
    result = train(_cfg(steps=50), tmp_path / "run", dataset=ArrayDataset(), checkpoint=_ckpt(tmp_path),
                   abort_fn=lambda: next(calls) >= 3, log=lambda m: None)
    assert result == {"state": "stopped", "step": 3}
    assert list_snapshots(tmp_path / "run") == [0, 2, 3]


def test_options_are_validated_by_name():
    with pytest.raises(ConfigError, match="steps"):
        TrainConfig(steps=25_001).validate()
    with pytest.raises(ConfigError, match="aug"):
        TrainConfig(aug="mixup").validate()


def test_freeze_d_freezes_the_first_layers(tmp_path):
    from core.stylegan.trainer import Trainer
    G, D = tiny_networks()
    tr = Trainer(_cfg(freeze_d=2), G, D, device=torch.device("cpu"), batch=4)
    before = {k: v.clone() for k, v in D.state_dict().items()}
    tr.train_step(torch.rand(4, 3, 32, 32) * 2 - 1)
    frozen = [n for n in before if n.startswith(tuple(tr.frozen_d))]
    assert frozen and all(torch.equal(before[n], D.state_dict()[n]) for n in frozen)
    assert not torch.equal(before["b4.out.weight"], D.state_dict()["b4.out.weight"])


def _cli(*args, env):
    return [sys.executable, "-m", "core.cli", *args]


def test_cli_kill_and_rerun_completes_without_gaps(tmp_path):
    env = dict(os.environ, ATELIER_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    images = write_blob_images(tmp_path / "imgs", n=12)
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.safetensors")
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "core.cli", "train", "--dataset", str(images), "--checkpoint", str(ckpt),
           "--steps", "30", "--snapshot-every", "3", "--batch", "4", "--device", "cpu", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list_snapshots(out)) < 2:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list_snapshots(out)) >= 2
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list_snapshots(out) == list(range(0, 31, 3))
    steps = [r["step"] for r in read_stats(out)]
    assert len(steps) == len(set(steps)) and max(steps) == 30
    assert json.loads((out / "config.json").read_text())["config"]["steps"] == 30


def test_cli_rejects_bad_input_with_one_line(tmp_path):
    env = dict(os.environ, ATELIER_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.safetensors")
    for args, needle in [(["--steps", "30000"], "steps"), (["--dataset", str(tmp_path / "missing")], "")]:
        base = ["train", "--dataset", "nope", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")]
        cmd = [sys.executable, "-m", "core.cli", *base, *args]
        r = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2
        assert r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script/save
def test_metrics_at_snapshots_with_a_user_supplied_inception_file(tmp_path):
    from tests.test_metrics import _FakeInception
    inception = tmp_path / "inception.pt"
    torch.jit.save(torch.jit.script(_FakeInception()), str(inception))
    cfg = _cfg(steps=2, metrics=("swd", "memorisation", "fid", "kid"), metric_images=16,
               inception_path=str(inception))
    train(cfg, tmp_path / "run", dataset=ArrayDataset(), checkpoint=_ckpt(tmp_path), log=lambda m: None)
    snaps = [r for r in read_stats(tmp_path / "run") if r.get("snapshot")]
    assert [r["step"] for r in snaps] == [0, 2]
    for r in snaps:
        assert r["swd"] > 0 and r["fid"] >= 0 and np.isfinite(r["kid"]) and 0 <= r["memorised_fraction"] <= 1
    with pytest.raises(ConfigError, match="inception_path"):
        TrainConfig(metrics=("fid",)).validate()


def test_a_refused_snapshot_keeps_the_steps_in_the_state_when_that_fits(tmp_path):
    """After the step-2 snapshot only small writes are allowed: the step-4 snapshot is refused, the
    state alone (it replaces the previous one) is written. Continuing writes the missing step-4
    snapshot first and ends equal, bit for bit, to a run never stopped."""
    ds, ckpt = ArrayDataset(), _ckpt(tmp_path)
    asked = []

    def small_writes_only(need_bytes):
        asked.append(need_bytes)
        return "no room for the next snapshot" if len(list_snapshots(tmp_path / "b")) >= 2 and need_bytes > 1000 \
            else None
    result = train(_cfg(steps=4), tmp_path / "b", dataset=ds, checkpoint=ckpt, log=lambda m: None,
                   before_snapshot=small_writes_only)
    assert result == {"state": "storage_full", "step": 4, "reason": "no room for the next snapshot"}
    assert list_snapshots(tmp_path / "b") == [0, 2] and asked[-1] <= 1000 < asked[-2]
    assert max(r["step"] for r in read_stats(tmp_path / "b")) == 4
    assert load_checkpoint(tmp_path / "b" / "state.safetensors").metadata["step"] == 4
    assert train(_cfg(steps=6), tmp_path / "b", dataset=ds, checkpoint=None, log=lambda m: None)["step"] == 6
    assert list_snapshots(tmp_path / "b") == [0, 2, 4, 6]
    train(_cfg(steps=6), tmp_path / "a", dataset=ds, checkpoint=_ckpt(tmp_path), log=lambda m: None)
    a, b = (load_checkpoint(tmp_path / run / "state.safetensors") for run in "ab")
    for key in a.extra_tensors:
        assert torch.equal(a.extra_tensors[key], b.extra_tensors[key]), key


def test_a_refused_snapshot_with_no_room_at_all_stops_at_the_last_one(tmp_path):
    from core.stylegan.train import SnapshotRefused

    def refuse_after_two(need_bytes):
        if len(list_snapshots(tmp_path / "run")) >= 2:
            raise SnapshotRefused("the disk is for someone else")
    result = train(_cfg(steps=4), tmp_path / "run", dataset=ArrayDataset(), checkpoint=_ckpt(tmp_path),
                   log=lambda m: None, before_snapshot=refuse_after_two)
    assert result == {"state": "storage_full", "step": 2, "reason": "the disk is for someone else"}
    assert list_snapshots(tmp_path / "run") == [0, 2]
    assert max(r["step"] for r in read_stats(tmp_path / "run")) == 2
    assert load_checkpoint(tmp_path / "run" / "state.safetensors").metadata["step"] == 2
