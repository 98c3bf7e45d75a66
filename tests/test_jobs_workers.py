"""Worker processes: kill -9 mid-training and restart; two workers on one queue."""
from __future__ import annotations

import os
import re

import pytest
from jobs_fixtures import TINY_OPTIONS, make_checkpoint, make_dataset, start_worker, stop_process, wait_for

from core import jobs


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    ckpt = make_checkpoint(tmp_path / "tiny.safetensors")
    return {"root": tmp_path, "ckpt": str(ckpt), "ds": make_dataset(tmp_path, "alice")}


def _submit(home, steps, title):
    return jobs.submit_experiment("alice", title=title, dataset=home["ds"], checkpoint=home["ckpt"], steps=steps,
                                  options=dict(TINY_OPTIONS), allow_paths=True)


def _state(exp_id):
    return jobs.get_experiment(exp_id, "alice")


def test_kill_9_mid_training_then_restart_finishes_exact_steps(home):
    a, b = _submit(home, 8, "long"), _submit(home, 2, "behind")
    proc = start_worker(home["root"])
    try:
        wait_for(lambda: _state(a)["state"] == "training" and _state(a)["step"] >= 3, timeout=120)
    finally:
        stop_process(proc, kill=True)   # SIGKILL: no snapshot, no cleanup
    assert proc.returncode == -9
    rec = _state(a)
    assert rec["state"] == "training" and rec["step"] < 8
    proc = start_worker(home["root"])
    try:
        wait_for(lambda: _state(a)["state"] == "finished" and _state(b)["state"] == "finished", timeout=150)
    finally:
        out = stop_process(proc)
    assert (_state(a)["step"], _state(b)["step"]) == (8, 2), out
    log = "\n".join(jobs.experiment_log(a, "alice", tail=0))
    assert "worker lost while training" in log and re.search(r"resumed at step [2-8]", log)
    steps = [r["step"] for r in jobs.experiment_stats(a, "alice") if "step" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 8      # each step logged at most once
    assert [s["step"] for s in jobs.experiment_snapshots(a, "alice")][-1] == 8


def test_two_workers_never_run_the_same_experiment(home):
    ids = [_submit(home, 2, f"e{i}") for i in range(4)]
    procs = [start_worker(home["root"]), start_worker(home["root"])]
    try:
        wait_for(lambda: all(_state(i)["state"] == "finished" for i in ids), timeout=180)
    finally:
        outs = [stop_process(p) for p in procs]
    runs = re.findall(r"running ([0-9a-f]{32})", "\n".join(outs))
    assert sorted(runs) == sorted(ids), outs                   # each claimed exactly once
    for i in ids:
        log = jobs.experiment_log(i, "alice", tail=0)
        assert sum("preparing on" in line for line in log) == 1
        assert _state(i)["step"] == 2
    assert os.environ.get("ATELIER_HOME") == str(home["root"])
