"""One run on several processes (torchrun, gloo on this CPU) gives one process's run; a rank
killed with -9 and the command run again finishes the run exactly; the same on two simulated
nodes (c10d rendezvous on 127.0.0.1). The random streams belong to samples, not passes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.stylegan.run_files import list_snapshots, read_stats
from core.stylegan.streams import Streams, group_sizes, rank_groups, rank_rows
from core.stylegan.train_config import TrainConfig
from core.stylegan.trainer import Trainer
from tests.app_server import free_port
from tests.distributed_fixtures import assert_same_run, kill9, rank_pids, run_state, stop_group, wait_for
from tests.tiny import tiny_networks, write_blob_images, write_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent
STEPS = 12


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("distributed")
    env = dict(os.environ, ATELIER_HOME=str(base / "home"), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    ckpt = write_tiny_checkpoint(base / "tiny.safetensors")
    imgs = write_blob_images(base / "imgs", n=12)
    args = ["-m", "core.cli", "train", "--dataset", str(imgs), "--checkpoint", str(ckpt), "--steps", str(STEPS),
            "--snapshot-every", "2", "--batch", "8", "--device", "cpu", "--pl-weight", "2", "--aug", "ada",
            "--metrics", "swd", "--precision", "fp32"]  # equal up to float reassociation: fp32, not bf16
    one = subprocess.run([sys.executable, *args, "--out", str(base / "one")], env=env, cwd=base,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    return {"base": base, "env": env, "args": args, "one": run_state(base / "one" / "state.safetensors")}


@pytest.fixture
def one_thread():
    """One thread per test process, as each process of a group has (the cores are shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _start(world, command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=world["env"], cwd=world["base"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _check_finished_run(world, run: Path) -> None:
    assert list_snapshots(run) == list(range(0, STEPS + 1, 2))  # no gap, no duplicate
    records = read_stats(run)
    steps = [r["step"] for r in records]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS
    assert all(r["swd"] > 0 for r in records if r.get("snapshot"))  # its images made by both processes
    assert_same_run(run_state(run / "state.safetensors"), world["one"])


def _kill_a_rank_midway(run: Path, procs: list[subprocess.Popen], agent: subprocess.Popen) -> None:
    """kill -9 a training process of ``agent`` once the run has a snapshot past step 0."""
    try:
        wait_for(lambda: len(list_snapshots(run)) >= 2, procs=procs)
    except AssertionError as e:
        raise AssertionError(f"{e}: {[stop_group(p)[-1500:] for p in procs]}") from None
    pid = wait_for(lambda: next(iter(rank_pids(agent.pid).values()), None), procs=procs)
    kill9(pid)
    for p in procs:
        p.wait(timeout=120)
        assert p.returncode != 0
    assert list_snapshots(run)[-1] < STEPS, "the run ended before the kill: raise STEPS"


def test_streams_do_not_depend_on_how_the_batch_is_cut():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2, 3)]
    whole = Streams(gens, [4, 4, 2]).randn((10, 3))
    parts = [Streams([torch.Generator().manual_seed(s)], [n]).randn((n, 3)) for s, n in ((1, 4), (2, 4), (3, 2))]
    assert torch.equal(whole, torch.cat(parts))
    assert group_sizes(10) == [4, 4, 2] and [list(rank_groups(16, r, 3)) for r in range(3)] == [[0, 1], [2], [3]]
    assert [rank_rows(12, r, 2) for r in range(2)] == [range(0, 8), range(8, 12)]


def test_one_pass_or_two_give_the_same_steps(one_thread):
    """The batch in one pass or in two (what two processes do, one after the other): the same run."""
    def trainer(batch_gpu):
        G, D = tiny_networks()
        cfg = TrainConfig(batch=8, batch_gpu=batch_gpu, device="cpu", aug="diffaugment", r1_gamma=1.0, r1_interval=2,
                          pl_weight=2.0, pl_interval=2, precision="fp32")
        return Trainer(cfg, G, D, device=torch.device("cpu"), batch=8, batch_gpu=batch_gpu or None)
    a, b = trainer(0), trainer(4)
    reals = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for _ in range(2):  # step 0 runs all four phases
        a.train_step(reals)
        b.train_step(reals)
    for net in ("G", "D", "G_ema"):
        for (name, x), y in zip(getattr(a, net).state_dict().items(), getattr(b, net).state_dict().values()):
            assert torch.allclose(x, y, rtol=1e-3, atol=1e-4), f"{net}.{name}"
    assert float(a.pl_mean) == pytest.approx(float(b.pl_mean), rel=1e-5)
    stats_a, stats_b = a.read_stats(), b.read_stats()
    assert stats_a.keys() == stats_b.keys() and all(stats_a[k] == pytest.approx(stats_b[k], rel=1e-4) for k in stats_a)


def test_two_processes_match_one_and_a_killed_rank_resumes_exactly(world):
    run = world["base"] / "two"
    command = [sys.executable, *world["args"], "--devices", "2", "--out", str(run)]
    launcher = _start(world, command)
    try:
        _kill_a_rank_midway(run, [launcher], launcher)
        again = _start(world, command)
        try:
            out = again.communicate(timeout=600)[0]
        finally:
            stop_group(again)
        assert again.returncode == 0, out[-3000:]
    finally:
        stop_group(launcher)
    assert _processes(run) == 2
    _check_finished_run(world, run)


def test_two_nodes_match_one_and_a_killed_rank_resumes_exactly(world):
    run = world["base"] / "nodes"

    def node(port: int) -> subprocess.Popen:
        return _start(world, [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
                              "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "nodes",
                              "--local-addr", "127.0.0.1", *world["args"], "--out", str(run)])
    port = free_port()
    first = [node(port), node(port)]
    try:
        _kill_a_rank_midway(run, first, first[1])
        port = free_port()
        second = [node(port), node(port)]
        try:
            for p in second:
                p.wait(timeout=600)
                assert p.returncode == 0, stop_group(p)[-3000:]
        finally:
            for p in second:
                stop_group(p)
    finally:
        for p in first:
            stop_group(p)
    assert _processes(run) == 2
    _check_finished_run(world, run)


def _processes(run: Path) -> int:
    return json.loads((run / "config.json").read_text())["processes"]
