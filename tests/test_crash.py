"""kill -9 at random moments during dataset imports, training snapshots and model saves.

After each kill the start-up check (``check_data_root``) quarantines whatever was half-written,
a second check finds nothing, and every record that remains loads whole. A training run never
goes back past a snapshot it completed and loses at most the steps since its last snapshot.
21 trials in all, on tiny data (about 2 minutes on a loaded 2-core machine).
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tiny import write_blob_images, write_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent
IMPORT_TRIALS, MODEL_TRIALS, TRAIN_TRIALS = 10, 6, 5
SNAPSHOT_EVERY = 2

SAVE_LOOP = """
import sys
from core.models import save_model
i = 0
while True:
    save_model("local", weights_path=sys.argv[1], name=f"m{i}")
    i += 1
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    home = base / "home"
    old = os.environ.get("ATELIER_HOME")
    os.environ["ATELIER_HOME"] = str(home)
    from core import datasets
    imgs = write_blob_images(base / "imgs", n=12)
    datasets.import_dataset([imgs], "Blobs", resolution=32)
    ckpt = write_tiny_checkpoint(base / "tiny.safetensors")
    # a snapshot with its grid beside it, as the trainer writes them (save_model copies both)
    from PIL import Image
    Image.new("RGB", (64, 64)).save(ckpt.with_suffix(".png"))
    yield {"base": base, "home": home, "imgs": imgs, "ckpt": ckpt, "rng": random.Random(1234)}
    if old is None:
        os.environ.pop("ATELIER_HOME", None)
    else:
        os.environ["ATELIER_HOME"] = old


def _start(world, args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, ATELIER_HOME=str(world["home"]), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, *args], cwd=world["base"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _kill9(proc: subprocess.Popen) -> bytes:
    """SIGKILL the whole process group (the server and any worker processes it started)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _, err = proc.communicate(timeout=30)
    return err or b""


def _wait(predicate, proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def _check_repairs() -> list[str]:
    from core.integrity import check_data_root
    lines = check_data_root(grace_s=0)
    assert check_data_root(grace_s=0) == [], "a second check must find nothing"
    return lines


def _no_temps(root: Path) -> None:
    left = [p for p in root.rglob("*") if "quarantine" not in p.parts and "queue" not in p.parts
            and (p.name.startswith(".tmp") or p.name.endswith(".tmp") or p.name.startswith(".trash-"))]
    assert not left, left


def test_kill_during_dataset_imports(world):
    from core import datasets
    rng, outcomes = world["rng"], []
    for k in range(IMPORT_TRIALS):
        name = f"Crash {k}"
        proc = _start(world, ["-m", "core.cli", "dataset", "import", str(world["imgs"]), "--name", name,
                              "--resolution", "32", "--workers", "1"])
        time.sleep(rng.uniform(0.3, 1.2))
        _kill9(proc)
        lines = _check_repairs()
        _no_temps(world["home"])
        listed = {d["name"]: d for d in datasets.list_datasets()}
        outcomes.append((name in listed, lines))
        for d in listed.values():   # every dataset that is listed is whole
            assert d["count"] == 12, d
            pack = datasets.open_packed(d["id"], 32)
            assert len(pack) == 12
            for i in range(len(pack)):
                assert pack.get(i, rng=None).shape == (3, 32, 32)
    assert "Blobs" in {d["name"] for d in datasets.list_datasets()}
    print("dataset import kills (finished?, repairs):", outcomes)


def test_kill_during_model_saves(world):
    from core import models
    from core.stylegan import load_checkpoint
    rng = world["rng"]
    script = world["base"] / "save_loop.py"
    script.write_text(SAVE_LOOP)
    index = world["home"] / "users" / "local" / "models" / "index.json"
    for _ in range(MODEL_TRIALS):
        before = len(models.list_models("local", include_public=False))
        proc = _start(world, [str(script), str(world["ckpt"])])
        _wait(lambda: index.exists() and len(json.loads(index.read_text())["ids"]) > before, proc)
        time.sleep(rng.uniform(0.0, 0.5))
        err = _kill9(proc)
        assert b"Traceback" not in err, err.decode()[-2000:]
        _check_repairs()
        _no_temps(world["home"])
        mine = models.list_models("local", include_public=False)
        assert len(mine) > before
        folders = [p for p in index.parent.iterdir() if p.is_dir()]
        assert sorted(p.name for p in folders) == sorted(m["id"] for m in mine)  # nothing unindexed or torn
        for m in mine:
            assert Path(m["grid_path"]).is_file()
            assert load_checkpoint(m["weights_path"]).resolution == 32


def _state_step(run: Path) -> int:
    from core.stylegan import read_native_metadata
    state = run / "state.safetensors"
    return int(read_native_metadata(state)["metadata"]["train_counters"]["step"]) if state.exists() else -1


def test_kill_during_training_snapshots(world):
    from core.stylegan import load_checkpoint, run_files
    rng = world["rng"]
    run = world["home"] / "runs" / "crash"          # under the data root, so the check sweeps it too
    stats = run / "stats.jsonl"
    last_state = -1
    for k in range(TRAIN_TRIALS):
        proc = _start(world, ["-m", "core.cli", "train", "--dataset", "Blobs", "--checkpoint", str(world["ckpt"]),
                              "--steps", "500", "--snapshot-every", str(SNAPSHOT_EVERY), "--batch", "4",
                              "--device", "cpu", "--aug", "none", "--out", str(run)])
        start_lines = len(stats.read_text().splitlines()) if stats.exists() else 0
        _wait(lambda: stats.exists() and len(stats.read_text().splitlines()) > start_lines, proc, timeout=90)
        time.sleep(rng.uniform(0.0, 2.0))
        err = _kill9(proc).decode(errors="replace")
        assert proc.returncode == -signal.SIGKILL, err[-2000:]
        seen = [int(s) for s in re.findall(r"(\d+)/500", err)]
        _check_repairs()
        _no_temps(world["home"])
        state_step = _state_step(run)
        assert state_step >= last_state, "a completed snapshot was lost"
        last_state = state_step
        if seen:   # the steps the run had reported when it was killed, minus what a resume starts from
            assert max(seen) - state_step <= SNAPSHOT_EVERY, (max(seen), state_step)
        snaps = run_files.list_snapshots(run)
        assert snaps and snaps[0] == 0
        for step in snaps:
            weights, png = run_files.snapshot_paths(run, step)
            assert load_checkpoint(weights).resolution == 32 and png.stat().st_size > 0
        if state_step >= 0:
            assert load_checkpoint(run / "state.safetensors").D is not None
        print(f"training kill {k}: reported step {max(seen, default=None)}, resumes from {state_step}")
    assert last_state >= SNAPSHOT_EVERY, "the runs never got past their first snapshot"
