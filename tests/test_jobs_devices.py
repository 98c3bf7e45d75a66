"""Workers per device share the queue; an experiment on 2 devices runs as one job of 2 gloo ranks
through the worker: a killed rank, stop, continue and a killed worker as for one process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from distributed_fixtures import environment, kill9, rank_pids
from jobs_fixtures import REPO, make_checkpoint, make_dataset, start_worker, stop_process, wait_for

from core import jobs
from core.cli import main as cli
from core.jobs.devices import first_fit, plan

HOST = socket.gethostname()


def _rec(i: int, devices: int = 1, device: str = "auto", state: str = "queued", held=None) -> dict:
    return {"id": f"e{i}", "seq": i, "state": state, "options": {"devices": devices, "device": device},
            "worker": {"host": HOST, "devices": held} if held else None}


def test_workers_per_gpu_claim_what_fits_and_a_multi_device_job_waits_for_its_devices():
    one_on_1 = _rec(1, state="training", held=["cuda:1"])
    pair, single = _rec(2, devices=2), _rec(3)
    queue = [pair, single]
    # cuda:1 is busy: the pair waits, and cuda:0 takes nothing behind it (the pair is not starved)
    assert first_fit(queue, "cuda:0", [one_on_1, *queue], gpus=2) is None
    # cuda:1 free again: the pair takes both GPUs
    assert first_fit(queue, "cuda:0", queue, gpus=2) == (pair, ["cuda:0", "cuda:1"])
    # while it runs, cuda:1's worker claims nothing (its GPU is held)
    running_pair = _rec(2, devices=2, state="training", held=["cuda:0", "cuda:1"])
    assert first_fit([single], "cuda:1", [running_pair, single], gpus=2) is None
    # what a machine can never run is left to other workers: 4 GPUs on a 2-GPU machine, a CPU job
    assert first_fit([_rec(4, devices=4), _rec(5, device="cpu"), single], "cuda:1", [], gpus=2) == (single, ["cuda:1"])
    # a CPU worker runs N processes on its CPU; Apple's MPS runs one
    assert plan(_rec(6, devices=2), "cpu", set(), gpus=0) == ["cpu"]
    assert plan(_rec(7, devices=2), "mps", set(), gpus=0) is False


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    ckpt = make_checkpoint(tmp_path / "tiny.safetensors")
    return {"root": tmp_path, "ckpt": str(ckpt), "ds": make_dataset(tmp_path, "local")}


def _state(exp_id):
    return jobs.get_experiment(exp_id, "local")


def _snapshots(exp_id) -> list[int]:
    return [s["step"] for s in jobs.experiment_snapshots(exp_id, "local")]


def _log(exp_id) -> str:
    return "\n".join(jobs.experiment_log(exp_id, "local", tail=0))


def _group_processes(worker_pid: int) -> list[int]:
    """Processes of the groups ``worker_pid`` started, wherever they are now (orphans included)."""
    from pathlib import Path
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and environment(int(p.name)).get("ATELIER_GROUP_WORKER", "").startswith(f"{worker_pid} ")]


def test_submit_devices_2_runs_one_job_on_two_gloo_ranks_through_the_worker(home, capsys):
    steps = 16
    assert cli(["jobs", "submit", "--dataset", home["ds"], "--checkpoint", home["ckpt"], "--steps", str(steps),
                "--snapshot-every", "2", "--batch", "8", "--device", "cpu", "--devices", "2", "--aug", "none",
                "--json"]) == 0
    exp = json.loads(capsys.readouterr().out)["id"]
    worker = start_worker(home["root"])
    try:
        # kill -9 of one rank: the worker starts the group again from the last snapshot
        wait_for(lambda: len(_snapshots(exp)) >= 2, timeout=300)
        kill9(wait_for(lambda: rank_pids(worker.pid).get(1), timeout=60))
        wait_for(lambda: "starting the group again" in _log(exp), timeout=120)
        # stop: a final snapshot, state stopped, as for one process
        resumed_at = _snapshots(exp)[-1]
        wait_for(lambda: _snapshots(exp)[-1] > resumed_at, timeout=300)
        jobs.stop_experiment(exp, "local")
        wait_for(lambda: _state(exp)["state"] == "stopped", timeout=120)
        stopped = _state(exp)["step"]
        assert stopped < steps and _snapshots(exp) == sorted({*range(0, stopped + 1, 2), stopped})  # + the stop's
        # continue, then kill -9 the worker: its ranks exit, and the next worker resumes the run
        jobs.continue_experiment(exp, "local")
        wait_for(lambda: len(rank_pids(worker.pid)) == 2, timeout=120)
    finally:
        out = stop_process(worker, kill=True)
    wait_for(lambda: not _group_processes(worker.pid), timeout=60)
    worker = start_worker(home["root"])
    try:
        wait_for(lambda: _state(exp)["state"] == "finished", timeout=400)
    finally:
        out += stop_process(worker)
    assert _state(exp)["step"] == steps, out
    assert _snapshots(exp) == sorted({*range(0, steps + 1, 2), stopped})  # no gap, no duplicate
    stats = [r["step"] for r in jobs.experiment_stats(exp, "local")]
    assert stats == sorted(set(stats)) and stats[-1] == steps
    log = _log(exp)
    assert log.count("starting 2 processes on the CPU") >= 4 and "worker lost while training" in log
    assert "batch 8 on 2 processes (4 images each)" in log
    from core.playground import RenderArgs, render
    shown = render(RenderArgs(jobs.experiment_snapshots(exp, "local")[-1]["weights_path"], seed=3))
    assert shown["error"] is None and shown["image"].shape[:2] == (32, 32)


def test_worker_devices_all_starts_one_worker_per_gpu_here_one_on_the_cpu(tmp_path):
    env = dict(os.environ, ATELIER_HOME=str(tmp_path), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    run = [sys.executable, "-m", "core.cli", "worker", "--once", "--poll", "0.1", "--devices"]
    done = subprocess.run([*run, "all"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "no GPU on this machine: one worker on cpu" in done.stderr, done.stderr
    assert done.stderr.count(" on cpu (pid ") == 1
    bad = subprocess.run([*run, "2"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --devices takes 'all' (one worker per GPU), not '2'"
