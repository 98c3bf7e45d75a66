"""Decoding pools: safe in a threaded process, stoppable, within a shared memory budget; imports
beyond the limit wait their turn."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from jobs_fixtures import REPO, make_dataset, wait_for
from PIL import Image

from core import datasets
from core.datasets import memory, workers
from core.datasets.images import decode_cost, decoded_size, to_8bit

# The worker's packing path, many times, in a process like `python -m core.cli worker`: its SIGTERM and
# SIGINT handlers installed, a thread running queue transactions like the heartbeat, torch busy in another.
PACK_MANY = r"""
import shutil, sys, threading
from pathlib import Path
import torch
from core import datasets
from core.cli.worker import stop_on_signals
from core.datasets import workers
from core.jobs import store
from core.jobs.worker import StageClock, Worker

ds_id, rounds = sys.argv[1], int(sys.argv[2])
workers.default_workers = lambda: 2          # the pool path, also on a one-core machine
stop = threading.Event()
stop_on_signals(stop)

def heartbeat():
    while not stop.is_set():
        store.update("no-such-job", lambda rec: None)

def torch_busy():
    a = torch.randn(128, 128)
    while not stop.is_set():
        a = torch.tanh(a @ a)

busy = [threading.Thread(target=fn, daemon=True) for fn in (heartbeat, heartbeat, torch_busy)]
for t in busy:
    t.start()
rec = {"dataset": ds_id, "owner": "alice", "crop": "center"}
packs = Path(datasets.get_dataset(ds_id, "alice")["path"]) / "packs"
for k in range(rounds):
    shutil.rmtree(packs, ignore_errors=True)
    ds = Worker.pack(rec, 32, StageClock(), should_stop=lambda: False)
    assert len(ds) == 32, len(ds)
    print("packed", k + 1, flush=True)
stop.set()
for t in busy:   # torch must not be mid-op in a daemon thread while the interpreter exits (abort)
    t.join()
"""


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_packing_many_times_in_a_threaded_worker_process_never_hangs(home, tmp_path):
    ds_id = make_dataset(tmp_path, "alice", n=32)          # 32 images: above PARALLEL_FROM, so a pool
    assert 32 >= workers.PARALLEL_FROM
    rounds, log = 16, tmp_path / "out.txt"
    with open(log, "w") as f:       # a file, not a pipe: a hung pool child must not hold the test too
        proc = subprocess.Popen([sys.executable, "-c", PACK_MANY, ds_id, str(rounds)], cwd=REPO, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    try:
        proc.wait(timeout=300)                              # a hang guard, not a time limit
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)                 # the script and the pool children it made
        proc.wait()
        out = log.read_text()
        pytest.fail(f"packing hung after {out.count('packed')} of {rounds} rounds:\n{out[-2000:]}")
    out = log.read_text()
    assert proc.returncode == 0, out[-3000:]
    assert out.count("packed") == rounds


def _pngs(folder: Path, n: int, side: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(n):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC).save(folder / f"{i:02d}.png")
    return folder


def _tasks(folder: Path, store_dir: Path | None = None):
    opt = {"resolution": 32, "crop": "center", "inflate": datasets.common.validate_inflate(None),
           "background": (255, 255, 255), "min_size": 1, "store_dir": str(store_dir) if store_dir else None}
    return [{"index": i, "label": p.name, "ref": ("file", str(p)), "opt": opt}
            for i, p in enumerate(sorted(folder.iterdir()))]


def test_workers_share_one_decoding_budget(tmp_path):
    tasks = _tasks(_pngs(tmp_path / "src", 30, 400))
    one = decode_cost("RGB", 400, 400, (tmp_path / "src" / "00.png").stat().st_size)
    budget = memory.DecodeBudget(one * 3 // 2, workers.pool_context())   # room for one image at a time
    with contextlib.closing(workers.run_tasks(tasks, 3, len(tasks), budget=budget)) as results:
        out = list(results)
    assert [r["index"] for r in out] == list(range(30)) and all(r["ok"] for r in out)
    assert one <= budget.peak <= budget.limit      # the workers reserved from it, never two images at once


def test_budget_waits_for_room_and_lets_an_oversized_image_run_alone():
    budget = memory.DecodeBudget(100)
    order, entered = [], threading.Event()

    def second():
        with budget.hold(60):
            order.append("second")

    with budget.hold(60):
        t = threading.Thread(target=second)
        t.start()
        t.join(timeout=0.2)                          # it cannot have the room while we hold 60 of 100
        assert t.is_alive() and not order
        order.append("first")
    t.join()
    assert order == ["first", "second"]
    with budget.hold(1000):                          # larger than the whole budget: alone, not refused
        entered.set()
    assert entered.is_set() and budget.peak == 1000


def test_decoding_in_this_process_reserves_from_its_shared_budget(home, tmp_path):
    src = _pngs(tmp_path / "src", 3, 300)
    assert datasets.import_dataset([src], "Three", workers=1).accepted == 3      # decoded in this process
    assert memory.current_budget().peak >= decode_cost("RGB", 300, 300)


def test_stopping_a_pack_leaves_nothing(home, tmp_path):
    src = _pngs(tmp_path / "src", 30, 80)
    datasets.import_dataset([src], "Thirty", workers=1)
    with pytest.raises(datasets.DecodingStopped):
        datasets.pack_dataset("Thirty", 32, workers=2, should_stop=lambda: True)
    folder = Path(datasets.get_dataset("Thirty")["path"])
    assert list((folder / "packs").iterdir()) == []          # no pack, no temp folder
    assert datasets.get_dataset("Thirty")["resolutions"] == []


def test_an_import_beyond_the_limit_waits_its_turn(home, tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_IMPORTS_AT_ONCE", "1")
    src = _pngs(tmp_path / "src", 4, 80)
    told, done = threading.Event(), {}
    messages = []

    def importer():
        done["report"] = datasets.import_dataset([src], "Later", wait_fn=lambda m: (messages.append(m), told.set()))

    with memory.import_slot():                       # another import holds the only slot
        t = threading.Thread(target=importer)
        t.start()
        assert told.wait(60)
        assert "report" not in done and datasets.list_datasets() == []
    t.join(60)
    assert messages == ["Waiting for another import to finish (at most 1 run at once)…"]
    assert done["report"].accepted == 4


def test_bad_memory_settings_are_one_line_errors(monkeypatch):
    monkeypatch.setenv("ATELIER_DECODE_MEMORY_MB", "lots")
    with pytest.raises(datasets.DatasetError, match="ATELIER_DECODE_MEMORY_MB must be a whole number"):
        memory.decode_budget_bytes()
    monkeypatch.setenv("ATELIER_IMPORTS_AT_ONCE", "0")
    with pytest.raises(datasets.DatasetError, match="ATELIER_IMPORTS_AT_ONCE must be a whole number from 1"):
        memory.imports_at_once()


def test_workers_are_capped_by_memory(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 3 * memory.WORKER_BYTES)
    assert memory.workers_for(64) == 3
    monkeypatch.setattr(memory, "available_memory", lambda: 0)
    assert memory.workers_for(64) == 1
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    assert memory.workers_for(4) == 4


def test_sixteen_bit_conversion_in_bands_matches_the_whole_image():
    rng = np.random.default_rng(0)
    a16 = rng.integers(0, 65536, (37, 29), dtype=np.uint16)
    whole = np.clip(np.rint(a16.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    assert np.array_equal(to_8bit(a16, unit_range=False, band_pixels=100), whole)
    f = rng.random((13, 11)).astype(np.float32)
    assert np.array_equal(to_8bit(f, unit_range=True, band_pixels=7),
                          np.clip(np.rint(f.astype(np.float64) * 255.0), 0, 255).astype(np.uint8))


def test_decoding_cost_is_counted_at_the_jpeg_draft_size_or_more():
    import io
    for size in [(500, 300), (3000, 2000), (4100, 2100), (9000, 9000), (2047, 4096)]:
        buf = io.BytesIO()
        Image.new("RGB", size, (9, 9, 9)).save(buf, "JPEG")
        img = Image.open(buf)
        estimate = decoded_size(img)
        img.draft(None, (datasets.common.STORE_SHORT_SIDE,) * 2)     # what decode asks at most
        assert estimate == img.size, size


# A pool busy decoding in a process that is then killed with SIGKILL.
POOL_THEN_KILLED = r"""
import contextlib, sys
from core.datasets import workers
tasks = [{"index": i, "label": "x", "ref": ("file", sys.argv[1]), "opt": {"resolution": 32, "crop": "center",
         "inflate": {"mirror": False, "rotate": False, "zoom": 0}, "background": (255, 255, 255), "min_size": 1,
         "store_dir": None}} for i in range(100_000)]
with contextlib.closing(workers.run_tasks(tasks, 2, len(tasks))) as results:
    for r in results:
        print("decoded", r["ok"], flush=True)
"""


def _descendants(pid: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = set(), [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.add(k)
            todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_pool_processes_end_when_their_owner_is_killed(tmp_path):
    img = _pngs(tmp_path / "src", 1, 200) / "00.png"
    proc = subprocess.Popen([sys.executable, "-c", POOL_THEN_KILLED, str(img)], cwd=REPO, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().startswith("decoded True")
        helpers = _descendants(proc.pid)             # the fork server, its workers, the resource tracker
    finally:
        proc.kill()
        proc.wait()
    assert len(helpers) >= 3
    wait_for(lambda: not any(_alive(p) for p in helpers), timeout=60)   # a hang guard, not a time limit


def test_the_cli_says_when_an_import_waits_for_another(home, tmp_path):
    src = _pngs(tmp_path / "src", 3, 80)
    env = {**os.environ, "PYTHONPATH": str(REPO), "ATELIER_IMPORTS_AT_ONCE": "1", "ATELIER_HOME": str(home)}
    with memory.import_slot():                       # this process holds the only slot
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", "dataset", "import", str(src), "--name", "Waits"],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stderr.readline()
        except BaseException:
            proc.kill()
            raise
    out, err = proc.communicate(timeout=120)         # a hang guard
    assert first.strip() == "Waiting for another import to finish (at most 1 run at once)…", first + err
    assert proc.returncode == 0 and "3 of 3 images accepted" in out
