"""Processes of a torchrun group, for tests: find a rank by its environment, free ports, states."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from core.stylegan import load_checkpoint


def _children() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            out.setdefault(ppid, []).append(int(entry.name))
    return out


def environment(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def descendants(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def rank_pids(root_pid: int) -> dict[int, int]:
    """{rank: pid} of the training processes below ``root_pid`` (torchrun's workers)."""
    ranks = {}
    for pid in descendants(root_pid):
        env = environment(pid)
        if "RANK" in env and "TORCHELASTIC_RUN_ID" in env and "LOCAL_RANK" in env:
            ranks[int(env["RANK"])] = pid
    return ranks


def kill9(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_group(proc: subprocess.Popen) -> str:
    """End a process started with start_new_session=True and everything it started; its output."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.stdout is None or proc.stdout.closed:  # its output was read already
        proc.wait(timeout=60)
        return ""
    out, _ = proc.communicate(timeout=60)
    return out or ""


def wait_for(predicate, timeout: float = 180.0, every: float = 0.05, procs=()):
    """predicate()'s first true value; fails when ``timeout`` passes or one of ``procs`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        ended = [p for p in procs if p.poll() is not None]
        if ended:
            raise AssertionError(f"a process ended (code {ended[0].returncode}) before the condition held")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s")


def run_state(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a run's state file: G, D, G_ema, Adam's moments, pl_mean."""
    ck = load_checkpoint(path)
    out = {f"{name}.{k}": v for name in ("G", "D", "G_ema") for k, v in getattr(ck, name).state_dict().items()}
    out.update(ck.extra_tensors)
    out["counters"] = ck.metadata["train_counters"]
    return out


def assert_same_run(a: dict, b: dict, rtol: float = 1e-3, atol: float = 1e-4) -> None:
    """Two states of the same run up to float rounding (sums added in another order)."""
    assert a.keys() == b.keys()
    counters_a, counters_b = a["counters"], b["counters"]
    assert counters_a["step"] == counters_b["step"] and counters_a["batch"] == counters_b["batch"]
    if counters_a.get("ada"):
        assert counters_a["ada"]["rt"] == counters_b["ada"]["rt"]
        assert abs(counters_a["ada"]["p"] - counters_b["ada"]["p"]) < 1e-9
    for key in a:
        if key != "counters":
            assert torch.allclose(a[key].float(), b[key].float(), rtol=rtol, atol=atol), \
                (key, float((a[key].float() - b[key].float()).abs().max()))
