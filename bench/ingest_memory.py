"""Peak memory of importing huge images: a stored zip of 30 PNGs of 9000x9000 (81 MP each, under
the 100 MP cap), imported once, then twice at the same time (two threads, as the app does).

    python bench/ingest_memory.py                  # 30 images, one import, then two at once
    python bench/ingest_memory.py --count 8        # a quicker run
    python bench/ingest_memory.py --repeat 3       # median of 3 runs of each
    python bench/ingest_memory.py --workers 8      # 8 decoding workers per import, as on an 8-core server

The zip is made in a temporary folder and removed afterwards. The imports run in a child process;
this process samples the resident memory of the child's whole process tree (the child, its
decoding workers and their server) every 20 ms from /proc, as the sum of RSS and of PSS (which
counts pages shared between processes once). It prints the tree at rest before the imports and
its peak during them.

Each image is one colour with a rectangle of another (so it is accepted; ``--solid`` for a single
colour, which is decoded whole and then refused as near-constant).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def make_zip(path: Path, count: int, side: int, solid: bool) -> int:
    from PIL import Image, ImageDraw
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            img = Image.new("RGB", (side, side), ((37 * i) % 256, (91 * i) % 256, (151 * i) % 256))
            if not solid:
                ImageDraw.Draw(img).rectangle((side // 4, side // 4 + i, side // 2, side // 2), fill=(250, 250, 250))
            tmp = path.parent / "one.png"
            img.save(tmp, "PNG", compress_level=1)
            del img
            zf.write(tmp, f"big_{i:02d}.png")
            tmp.unlink()
    return path.stat().st_size


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_memory(pid: int) -> tuple[int, int, int]:
    """(sum of RSS, sum of PSS, number of processes) of ``pid`` and all its descendants, in bytes."""
    kids = _children()
    todo, rss, pss, n = [pid], 0, 0, 0
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
            n += 1
        except OSError:
            continue
    return rss, pss, n


def child(zip_path: str, imports: int, workers: int | None) -> None:
    """Run in the child: ``imports`` imports of the zip at once, one thread each."""
    from core.datasets import DatasetError, import_dataset
    print("ready", flush=True)
    sys.stdin.readline()
    results = {}

    def one(k):
        t0 = time.perf_counter()
        try:
            rep = import_dataset([zip_path], f"big-{k}-{time.time_ns()}", workers=workers)
            results[k] = f"{rep.accepted} accepted in {time.perf_counter() - t0:.1f} s"
        except DatasetError as e:
            results[k] = f"{e} ({time.perf_counter() - t0:.1f} s)"

    threads = [threading.Thread(target=one, args=(k,)) for k in range(imports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results), flush=True)


def measure(zip_path: Path, home: Path, imports: int, workers: int | None) -> dict:
    env = dict(os.environ, ATELIER_HOME=str(home), PYTHONPATH=str(REPO))
    extra = ["--workers", str(workers)] if workers else []
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(zip_path), "--imports", str(imports), *extra],
                            env=env, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)
    rest = tree_memory(proc.pid)
    peak = [0, 0, 0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss, pss, n = tree_memory(proc.pid)
            peak[0], peak[1], peak[2] = max(peak[0], rss), max(peak[1], pss), max(peak[2], n)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    t0 = time.perf_counter()
    sampler.start()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    results = json.loads(proc.stdout.readline())
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.wait()
    return {"rest_rss": rest[0], "peak_rss": peak[0], "peak_pss": peak[1], "processes": peak[2],
            "seconds": seconds, "results": results}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=30)
    ap.add_argument("--side", type=int, default=9000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; medians are reported")
    ap.add_argument("--solid", action="store_true", help="single-colour images (refused after decoding)")
    ap.add_argument("--workers", type=int, default=None, help="decoding workers per import (default: automatic)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--imports", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.imports, args.workers)
        return
    gb = 1024 ** 3
    with tempfile.TemporaryDirectory(prefix="atelier-bench-") as tmp:
        tmp = Path(tmp)
        size = make_zip(tmp / "big.zip", args.count, args.side, args.solid)
        print(f"zip: {args.count} PNGs of {args.side}x{args.side} ({args.side ** 2 / 1e6:.0f} MP each), stored, "
              f"{size / 1e6:.1f} MB; cores: {len(os.sched_getaffinity(0))}; workers: {args.workers or 'automatic'}; "
              f"load average {os.getloadavg()[0]:.1f}")
        for imports in (1, 2):
            runs = [measure(tmp / "big.zip", tmp / f"home-{imports}-{r}", imports, args.workers)
                    for r in range(args.repeat)]
            for r in runs:
                print(f"  {imports} import(s): rest {r['rest_rss'] / gb:.2f} GiB, "
                      f"peak RSS {r['peak_rss'] / gb:.2f} GiB, "
                      f"peak PSS {r['peak_pss'] / gb:.2f} GiB, {r['processes']} processes, {r['seconds']:.1f} s: "
                      f"{r['results']}")
            med = {k: statistics.median(r[k] for r in runs) for k in ("rest_rss", "peak_rss", "peak_pss", "seconds")}
            print(f"{imports} import(s) at once (median of {args.repeat}): "
                  f"tree at rest {med['rest_rss'] / gb:.2f} GiB, "
                  f"peak {med['peak_rss'] / gb:.2f} GiB RSS / {med['peak_pss'] / gb:.2f} GiB PSS "
                  f"(+{(med['peak_rss'] - med['rest_rss']) / gb:.2f} GiB), {med['seconds']:.1f} s")


if __name__ == "__main__":
    main()
