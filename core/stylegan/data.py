"""Batches of training images, drawn deterministically per step and prefetched in a thread."""
from __future__ import annotations

import queue
import threading

import numpy as np
import torch


class BatchLoader:
    """Iterates float batches [B, C, R, R] in [-1, 1] on `device`, starting at `start_step`.

    `dataset` has ``__len__`` and ``get(i, rng) -> uint8 [C, R, R]`` (which applies its crop
    mode). Batch s depends only on (seed, s), and each of its samples only on (seed, s, row):
    a resumed run sees the same batches, and a process that loads only ``rows`` of each batch
    (its share of a run on several processes) the same images one process would.
    """

    def __init__(self, dataset, batch: int, *, seed: int, mirror: bool, device: torch.device,
                 start_step: int = 0, prefetch: int = 2, rows: range | None = None):
        if len(dataset) == 0:
            raise ValueError("the dataset holds no images")
        self.dataset, self.batch, self.seed, self.mirror, self.device = dataset, batch, seed, mirror, device
        self.rows = rows if rows is not None else range(batch)
        self.step = start_step
        self.pin = device.type == "cuda"
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(start_step,), daemon=True)
        self._thread.start()

    def load(self, step: int) -> torch.Tensor:
        idx = np.random.default_rng([self.seed, step, 7]).integers(0, len(self.dataset), size=self.batch)
        images = []
        for row in self.rows:
            rng = np.random.default_rng([self.seed, step, 7, row])  # crop and flip of this sample
            image = self.dataset.get(int(idx[row]), rng)  # [C, R, R] uint8
            images.append(image[..., ::-1] if self.mirror and rng.random() < 0.5 else image)
        x = torch.from_numpy(np.ascontiguousarray(np.stack(images)))
        return x.pin_memory() if self.pin else x

    def _fill(self, step: int) -> None:
        while not self._stop.is_set():
            try:
                item = self.load(step)
            except Exception as e:  # surfaced in the training thread
                item = e
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            step += 1

    def next(self) -> torch.Tensor:
        item = self._queue.get()
        if isinstance(item, Exception):
            raise item
        self.step += 1
        x = item.to(self.device, non_blocking=True).to(torch.float32)
        return x / 127.5 - 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
