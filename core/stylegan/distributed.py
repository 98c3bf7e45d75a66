"""One run on several processes: torch.distributed, launched by torchrun (gloo on CPUs, NCCL on GPUs).

    group, device = distributed.start("auto")    # in each process torchrun started
    train(cfg, run_dir, ..., group=group)        # rank 0 writes; every rank trains its rows
    distributed.finish(group)

Each process trains its share of the global batch (whole groups of samples: streams.rank_rows)
and the processes agree through three kinds of collective:
- the gradients of each phase, summed in one flat all-reduce before Adam's step (every process
  then applies the same update to the same weights), as the original StyleGAN3 loop does. Not
  DDP's wrapper: the lazy regularisation phases train other parameter sets every few steps and
  take second derivatives (R1, path length), which DDP's reducer does not support, and gradient
  accumulation would need no_sync() around every pass but the last;
- sums of statistics (losses, ADA's sign(D(real)), w_avg's and path length's means);
- decisions taken by rank 0 alone (stop, time budget, a refused snapshot), sent over a gloo
  group on the host, so a GPU run does not wait for its device to hand one over;
- the metrics at snapshots: each process makes its share of the images and features, gathered
  on the host.
A single process uses SINGLE, whose collectives do nothing.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

TIMEOUT_ENV = "ATELIER_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0  # a collective may wait this long (rank 0 writing a snapshot with metrics)


@dataclass(frozen=True)
class Group:
    """This process's place in the run: rank of world, and the gloo group for host-side decisions."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    control: object = field(default=None, compare=False, repr=False)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values, device) -> torch.Tensor:
        """[len] float32 on ``device``: each value (a number or a tensor of any shape, flattened)
        summed over the processes, in one all-reduce; the values themselves in a single process."""
        flat = torch.cat([torch.as_tensor(v, dtype=torch.float32, device=device).reshape(-1) for v in values])
        if self.world > 1:
            dist.all_reduce(flat)
        return flat

    def decide(self, value: int) -> int:
        """Rank 0's ``value`` (a small whole number) on every process; the others' are ignored."""
        if self.world == 1:
            return int(value)
        box = torch.tensor([int(value)], dtype=torch.int64)
        dist.broadcast(box, src=0, group=self.control)
        return int(box.item())

    def decide_text(self, text: str | None) -> str | None:
        """Rank 0's text (or None) on every process."""
        if self.world == 1:
            return text
        data = (text or "").encode()[:4096]
        size = self.decide(len(data) if text is not None else -1)
        if size < 0:
            return None
        box = torch.tensor(list(data) if self.main else [0] * size, dtype=torch.uint8)
        dist.broadcast(box, src=0, group=self.control)
        return bytes(box.tolist()).decode(errors="replace")

    def deal(self, items) -> list:
        """This process's share of ``items``: items[rank], items[rank + world], ..."""
        return list(items)[self.rank::self.world]

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """The rows every process computed for its deal() of a list, in that list's order, on
        every process (through the gloo group: host memory, any backend)."""
        if self.world == 1:
            return rows
        count = torch.tensor([len(rows)])
        counts = [torch.zeros_like(count) for _ in range(self.world)]
        dist.all_gather(counts, count, group=self.control)
        counts = [int(c) for c in counts]
        mine = torch.zeros((max(counts),) + rows.shape[1:], dtype=torch.from_numpy(rows[:0]).dtype)
        mine[:len(rows)] = torch.from_numpy(np.ascontiguousarray(rows))
        parts = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(parts, mine, group=self.control)
        out = np.empty((sum(counts),) + rows.shape[1:], rows.dtype)
        for rank, (part, n) in enumerate(zip(parts, counts)):
            out[rank::self.world] = part[:n].numpy()
        return out


SINGLE = Group()


def torchrun_command(processes: int, module_args: list[str]) -> list[str]:
    """``python -m MODULE ARGS...`` as ``processes`` processes of one run on this machine, through
    torchrun with a rendezvous of its own on a free local port."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(processes), "-m", *module_args]


def launched() -> bool:
    """True in a process torchrun started as one of several (WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def timeout_seconds() -> float:
    return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S))


def start(device: str) -> tuple[Group, str]:
    """Join the run torchrun started (its environment names rank, world and rendezvous): NCCL when
    the run is on CUDA, each process on GPU LOCAL_RANK of those it sees; gloo on the CPU. Returns
    the group and this process's device name."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = device.split(":")[0]
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "mps":
        raise RuntimeError("several processes cannot share Apple's MPS device: train on one (devices 1)")
    if kind == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"process {local_rank} on this machine needs GPU {local_rank}, "
                               f"but {torch.cuda.device_count()} are visible")
        torch.cuda.set_device(local_rank)
        device, backend = f"cuda:{local_rank}", "nccl"
    elif kind == "cpu":
        device, backend = "cpu", "gloo"
    else:
        raise RuntimeError(f"unknown device {device!r}: auto, cpu or cuda")
    timeout = timedelta(seconds=timeout_seconds())
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
    control = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else dist.group.WORLD
    return Group(rank=rank, world=world, local_rank=local_rank, control=control), device


def barrier(group: Group) -> None:
    if group.world > 1:
        dist.barrier(group=group.control)


def finish(group: Group, done: bool = True) -> None:
    """Leave the run. After a run that ended well every process first waits for the others: one that
    tore its connections down while a peer still used them aborted at exit now and then (gloo)."""
    if group.world > 1 and dist.is_initialized():
        if done:
            dist.barrier(group=group.control)
        dist.destroy_process_group()


def reduce_gradients(params: list[torch.nn.Parameter], group: Group) -> None:
    """Sum every parameter's .grad over the processes in one flat all-reduce. A parameter without
    a gradient on every process keeps none (as in one process: Adam leaves it alone)."""
    if group.world == 1 or not params:
        return
    device = params[0].device
    grads = [p.grad.reshape(-1).float() if p.grad is not None else torch.zeros(p.numel(), device=device)
             for p in params]
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=device)
    flat = torch.cat(grads + [present])
    dist.all_reduce(flat)
    values, present = flat[:-len(params)], flat[-len(params):].tolist()
    for p, value, seen in zip(params, values.split([p.numel() for p in params]), present):
        if seen:
            p.grad = value.reshape(p.shape).to(p.dtype)


def broadcast_weights(modules, group: Group) -> None:
    """Rank 0's parameters and buffers on every process (a model started from scratch draws its
    weights from each process's own global generator)."""
    if group.world == 1:
        return
    for module in modules:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)
