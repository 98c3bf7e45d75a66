"""Random draws that belong to samples, not to processes: the same run on 1 or N processes.

The global batch of a step is cut into groups of GROUP consecutive samples. Everything random
about a group in one phase of one step (its z, style mixing, synthesis noise, path length noise,
augmentation) comes from its own torch.Generator, seeded from (run seed, step, phase, group).
A pass over several groups draws each group's rows from that group's generator and concatenates
them, so a sample gets the same numbers whichever pass, process or number of processes draws it,
and nothing about the streams needs saving: the step number is their whole state.

    streams = Streams([gen_a, gen_b], [4, 4])     # one pass over two groups
    z = randn((8, 512), streams, device=dev)      # rows 0-3 from gen_a, rows 4-7 from gen_b
    noise = randn((8, 1, 64, 64), None)           # a plain generator (or None) works as before

Style mixing is decided once per group, as the original decides it once per pass of 4 images
(its 8-GPU settings).
"""
from __future__ import annotations

import numpy as np
import torch

from .train_config import GROUP


def stream_seed(seed: int, step: int, phase: int, group: int) -> int:
    return int(np.random.SeedSequence([seed, step, phase, group]).generate_state(1, np.uint64)[0])


def group_sizes(batch: int) -> list[int]:
    """The groups of a batch: GROUP samples each, the last one smaller when GROUP does not divide it."""
    return [min(GROUP, batch - start) for start in range(0, batch, GROUP)]


def rank_groups(batch: int, rank: int, world: int) -> range:
    """The groups one of ``world`` processes trains on: consecutive, as even as whole groups allow."""
    count = len(group_sizes(batch))
    base, extra = divmod(count, world)
    first = rank * base + min(rank, extra)
    return range(first, first + base + (rank < extra))


def rank_rows(batch: int, rank: int, world: int) -> range:
    """The sample rows of the global batch that process ``rank`` of ``world`` trains on."""
    groups = rank_groups(batch, rank, world)
    if not groups:
        return range(0)
    return range(groups[0] * GROUP, min((groups[-1] + 1) * GROUP, batch))


class Streams:
    """One pass's random draws: ``sizes[i]`` rows from ``generators[i]``, in order."""

    def __init__(self, generators: list[torch.Generator], sizes: list[int]):
        assert len(generators) == len(sizes)
        self.generators, self.sizes = list(generators), list(sizes)

    def __len__(self) -> int:
        return sum(self.sizes)

    def shrink(self, sizes: list[int]) -> "Streams":
        """The same generators (continuing where they are) drawing ``sizes`` rows each."""
        return Streams(self.generators, sizes)

    def _rows(self, draw, shape) -> torch.Tensor:
        if shape[0] != len(self):
            raise ValueError(f"{len(self)} samples draw from these streams, not {shape[0]}")
        parts = [draw(gen, (n, *shape[1:])) for gen, n in zip(self.generators, self.sizes)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def randn(self, shape, device=None, dtype=None) -> torch.Tensor:
        return self._rows(lambda g, s: torch.randn(s, generator=g, device=device, dtype=dtype), shape)

    def rand(self, shape, device=None, dtype=None) -> torch.Tensor:
        return self._rows(lambda g, s: torch.rand(s, generator=g, device=device, dtype=dtype), shape)

    def randint(self, low: int, high: int, shape, device=None) -> torch.Tensor:
        return self._rows(lambda g, s: torch.randint(low, high, s, generator=g, device=device), shape)

    def per_group(self, draw) -> torch.Tensor:
        """[samples]: ``draw(generator)`` (a scalar tensor) once per group, repeated over its rows."""
        values = [draw(gen).expand(n) for gen, n in zip(self.generators, self.sizes)]
        return values[0] if len(values) == 1 else torch.cat(values)


def randn(shape, generator=None, device=None, dtype=None) -> torch.Tensor:
    """torch.randn from a Streams (rows per group), a torch.Generator or the global one (None)."""
    if isinstance(generator, Streams):
        return generator.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


def rand(shape, generator=None, device=None, dtype=None) -> torch.Tensor:
    if isinstance(generator, Streams):
        return generator.rand(shape, device=device, dtype=dtype)
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def randint(low: int, high: int, shape, generator=None, device=None) -> torch.Tensor:
    if isinstance(generator, Streams):
        return generator.randint(low, high, shape, device=device)
    return torch.randint(low, high, shape, generator=generator, device=device)
