"""Dataset ingest speed: Atelier's import (validate, store, pack at 256 px center crop) against a
plain single-process Pillow loop (open, convert RGB, center crop, LANCZOS resize, save PNG).

    python bench/ingest.py                 # 1,000 JPEGs of 1600x1200, as in the issue
    python bench/ingest.py --count 100     # a quick run
    python bench/ingest.py --repeat 3      # median of 3 runs of each

Prints images/s for both, their ratio and the peak RSS of the importing process tree (this process,
the fork server and the decoding workers; sampled from /proc as in ``bench/ingest_memory.py``).
Everything is written under a temporary folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import os
import threading
import statistics
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def make_one(args):
    i, folder, w, h = args
    rng = np.random.default_rng(i)
    # A photo-like image: smooth colour fields plus fine noise (so JPEG sizes are realistic).
    base = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    noise = rng.integers(-12, 13, (h, w, 3), dtype=np.int16)
    arr = np.clip(np.asarray(base, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(os.path.join(folder, f"img_{i:05d}.jpg"), "JPEG", quality=90)


def make_images(folder: Path, count: int, w: int, h: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    with Pool(os.cpu_count()) as pool:
        pool.map(make_one, [(i, str(folder), w, h) for i in range(count)], chunksize=8)
    return sum(p.stat().st_size for p in folder.iterdir())


def baseline(src: Path, dest: Path, res: int) -> float:
    """The plain loop of the issue: one process, full decode, LANCZOS, PNG."""
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(src.iterdir())
    t0 = time.perf_counter()
    for p in files:
        img = Image.open(p).convert("RGB")
        w, h = img.size
        s = min(w, h)
        img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        img = img.resize((res, res), Image.Resampling.LANCZOS)
        img.save(dest / (p.stem + ".png"))
    return len(files) / (time.perf_counter() - t0)


def atelier(src: Path, home: Path, res: int, run: int) -> tuple[float, int, int]:
    os.environ["ATELIER_HOME"] = str(home)
    from core.datasets import import_dataset
    t0 = time.perf_counter()
    report = import_dataset([src], f"bench-{run}", resolution=res, crop="center")
    dt = time.perf_counter() - t0
    return report.accepted / dt, report.accepted, report.bytes_stored


class TreePeak:
    """The peak RSS of this process and its descendants while the ``with`` block runs."""

    def __enter__(self):
        from ingest_memory import tree_memory
        self.peak, self._done = 0, threading.Event()

        def sample():
            while not self._done.is_set():
                self.peak = max(self.peak, tree_memory(os.getpid())[0])
                time.sleep(0.02)
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=1200)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the median is reported")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        size = make_images(tmp / "src", args.count, args.width, args.height)
        print(f"made {args.count:,} JPEGs of {args.width}x{args.height} ({size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t0:.1f} s; cores: {len(os.sched_getaffinity(0))}")
        base_runs, ours_runs, peak = [], [], 0
        for run in range(args.repeat):
            b = baseline(tmp / "src", tmp / f"baseline-{run}", args.resolution)
            with TreePeak() as tree:
                a, accepted, stored = atelier(tmp / "src", tmp / "home", args.resolution, run)
            peak = max(peak, tree.peak)
            assert accepted == args.count, accepted
            base_runs.append(b)
            ours_runs.append(a)
            print(f"run {run + 1}: baseline {b:.1f} img/s, atelier {a:.1f} img/s, ratio {a / b:.2f}x")
        b, a = statistics.median(base_runs), statistics.median(ours_runs)
        print(f"baseline (1 process, Pillow, PNG out): {b:.1f} images/s")
        print(f"atelier import + pack {args.resolution}px center: {a:.1f} images/s")
        print(f"ratio: {a / b:.2f}x  (median of {args.repeat})")
        print(f"peak RSS of the process tree during the imports: {peak / 1024**2:.0f} MiB; "
              f"stored {stored / 1e6:.0f} MB per import")


if __name__ == "__main__":
    main()
