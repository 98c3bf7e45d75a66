"""An experiment on several devices: a torchrun group that the worker runs as one job.

    result = run_group(rec, cfg, run_dir, dataset=ds, progress_fn=..., abort_fn=..., log=...)

run_group() takes train()'s arguments and gives its result, so the worker treats a group as it
treats one process. It starts ``python -m core.jobs.group RUN_DIR`` as cfg.devices processes
through torchrun (gloo on the CPU; NCCL on the GPUs the worker claimed, through
CUDA_VISIBLE_DEVICES) and talks to them through files in ``RUN_DIR/group/``:

    job.json       what to train (written by the worker before the start)
    progress.json  rank 0's latest progress (the worker passes it to progress_fn)
    stop           written by the worker when abort_fn() says stop (user stop, shutdown, lost claim)
    result.json    rank 0's train() result
    error-R.txt    the one-line reason rank R failed (not written for a peer's death)
    output.txt     what torchrun and the processes printed

A process that dies without an error (kill -9, out of host memory) takes the group down
(torchrun stops the others); the worker starts the group again, which resumes from the last
snapshot, up to RESTARTS times without a new snapshot in between. A process that raised fails
the experiment with its reason. Every process exits when the worker's process is gone (kill -9 of the worker): the
experiment is then an orphan, and the next worker requeues and resumes it.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

from ..storage import atomic_write_json, read_json
from . import devices as devices_mod
from .store import JobsError, one_line, pid_alive, proc_start

GROUP_DIR = "group"
RESTARTS = 3
POLL_S = 0.25
PROGRESS_EVERY_S = 0.5  # rank 0 writes progress.json at most this often (and at every snapshot)
WORKER_ENV = "ATELIER_GROUP_WORKER"  # "pid start" of the worker the group belongs to
REPO_ROOT = Path(__file__).resolve().parents[2]


class GroupError(JobsError):
    """A process of the group failed; the message is its one-line reason."""


def runner(rec: dict):
    """train() for ``rec`` on the devices its worker claimed, as a torchrun group."""
    return partial(run_group, rec)


# ---- the worker's side ------------------------------------------------------------------------

def run_group(rec: dict, cfg, run_dir, *, dataset, checkpoint=None, progress_fn=None, abort_fn=None,
              provenance: dict | None = None, log=print, before_snapshot=None) -> dict:
    """Train ``rec`` as cfg.devices processes; train()'s result. ``checkpoint`` is ignored (each
    process loads rec's checkpoint file); ``before_snapshot`` too: rank 0 asks the owner's quota."""
    from ..checkpoints import resolve_checkpoint
    from ..stylegan import distributed, run_files
    run_dir = Path(run_dir)
    folder = run_dir / GROUP_DIR
    claimed = (rec.get("worker") or {}).get("devices") or [cfg.device]
    spec = {"config": cfg.to_dict(), "checkpoint": str(resolve_checkpoint(rec["checkpoint"], user=rec["owner"])),
            "dataset": str(dataset.path), "provenance": provenance or {}, "owner": rec["owner"], "id": rec["id"]}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    env[WORKER_ENV] = f"{os.getpid()} {proc_start(os.getpid()) or ''}"
    if cfg.device.startswith("cuda"):
        env["CUDA_VISIBLE_DEVICES"] = devices_mod.visible_indices(claimed)
    command = distributed.torchrun_command(cfg.devices, ["core.jobs.group", str(run_dir)])
    where = "the CPU" if cfg.device == "cpu" else ", ".join(claimed)
    deaths, last = 0, -1
    while True:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        atomic_write_json(folder / "job.json", spec)
        log(f"starting {cfg.devices} processes on {where} (torchrun)")
        code = _supervise(command, env, folder, progress_fn, abort_fn)
        result = read_json(folder / "result.json")
        if result:
            return result
        errors = sorted(folder.glob("error-*.txt"))
        if errors:
            raise GroupError(errors[0].read_text().strip() or f"a process of the run failed ({errors[0].stem})")
        steps = run_files.list_snapshots(run_dir)
        deaths, last = (1, steps[-1]) if steps and steps[-1] > last else (deaths + 1, last)
        if (folder / "stop").exists() or (abort_fn is not None and abort_fn()):
            return {"state": "stopped", "step": max(last, 0)}
        log(f"a process of the run died (torchrun exit code {code}): {_tail(folder)}")
        if deaths > RESTARTS:
            raise GroupError(f"the run's processes died {deaths} times without a new snapshot; see the log")
        log(f"starting the group again from the last snapshot (step {max(last, 0):,})")


def _supervise(command: list[str], env: dict, folder: Path, progress_fn, abort_fn) -> int:
    """Run the group to its end, passing progress on and asking abort_fn; its exit code."""
    seen, stop_written = None, False
    with open(folder / "output.txt", "wb") as output:
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                try:
                    code = proc.wait(timeout=POLL_S)
                    break
                except subprocess.TimeoutExpired:
                    pass
                seen = _relay(folder, seen, progress_fn)
                if not stop_written and abort_fn is not None and abort_fn():
                    (folder / "stop").touch()
                    stop_written = True
        except BaseException:
            _kill(proc)
            raise
    _relay(folder, seen, progress_fn)
    return code


def _relay(folder: Path, seen, progress_fn):
    """progress_fn(rank 0's latest progress) when it is new; the sequence number seen."""
    progress = read_json(folder / "progress.json")
    if not progress or progress.get("seq") == seen:
        return seen
    if progress_fn is not None:
        progress_fn(progress["progress"])
    return progress.get("seq")


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(folder: Path, lines: int = 3) -> str:
    try:
        text = (folder / "output.txt").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    useful = [line.strip() for line in text if line.strip() and not line.startswith(("*", "  warnings.warn"))]
    return " | ".join(useful[-lines:])[:600]


# ---- each process of the group ----------------------------------------------------------------

class _ProgressFile:
    """Rank 0's progress_fn: the latest progress in progress.json, at most every PROGRESS_EVERY_S."""

    def __init__(self, folder: Path):
        self.folder, self.seq, self.last = folder, 0, 0.0

    def __call__(self, p: dict) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and not p.get("snapshot") and p["step"] < p["steps"]:
            return
        self.seq, self.last = self.seq + 1, now
        atomic_write_json(self.folder / "progress.json", {"seq": self.seq, "progress": p})


def _watch_worker() -> None:
    """Exit this process when the worker that started the group is gone."""
    pid, _, start = os.environ.get(WORKER_ENV, "").partition(" ")
    if not pid:
        return

    def watch():
        while pid_alive(int(pid), start or None):
            time.sleep(1.0)
        os._exit(3)
    threading.Thread(target=watch, name="atelier-worker-watch", daemon=True).start()


def communication_error(e: BaseException) -> bool:
    """An error that only says another process of the group is gone."""
    import torch.distributed as dist
    text = str(e)
    return isinstance(e, dist.DistError) or any(s in text for s in (
        "Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL", "Gloo", "gloo"))


def _train_rank(spec: dict, run_dir: Path, group, device: str) -> dict:
    from .. import quota
    from ..datasets import PackedDataset
    from ..stylegan import load_checkpoint
    from ..stylegan.train import train
    from ..stylegan.train_config import TrainConfig
    from .api import append_log
    cfg = TrainConfig.from_dict(dict(spec["config"], device=device))
    owner, main = spec["owner"], group.main
    folder = run_dir / GROUP_DIR
    return train(cfg, run_dir, dataset=PackedDataset(spec["dataset"]), checkpoint=load_checkpoint(spec["checkpoint"]),
                 progress_fn=_ProgressFile(folder) if main else None,
                 abort_fn=(lambda: (folder / "stop").exists()) if main else None,
                 provenance=spec["provenance"], log=partial(append_log, spec) if main else (lambda line: None),
                 before_snapshot=quota.snapshot_guard(owner) if main else None, group=group)


def main(argv: list[str]) -> int:
    from ..stylegan import distributed
    run_dir = Path(argv[0])
    folder = run_dir / GROUP_DIR
    spec = read_json(folder / "job.json")
    rank = int(os.environ.get("RANK", "0"))
    _watch_worker()
    try:
        group, device = distributed.start(spec["config"]["device"])
        result = _train_rank(spec, run_dir, group, device)
    except Exception as e:  # noqa: BLE001 - the worker reads the reason
        if not communication_error(e):
            (folder / f"error-{rank}.txt").write_text(one_line(e) + "\n")
        raise
    if group.main:
        atomic_write_json(folder / "result.json", result)
    distributed.finish(group)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
