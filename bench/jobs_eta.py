"""ETA accuracy of core.jobs: the estimate shown before starting vs the actual wall time.

    python bench/jobs_eta.py [--steps 20,40,80] [--batch 4]

A tiny 32 px CPU model (channel_base 256, channel_max 64, 2 mapping layers, z/w 32) trained on
16 generated images. Actual = claim by the worker to 'finished' (preparation + training + snapshots).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="20,40,80")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--snapshot-every", type=int, default=20)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="atelier-eta-"))
    os.environ["ATELIER_HOME"] = str(home)
    from jobs_fixtures import make_checkpoint, make_dataset

    from core import jobs
    ckpt = str(make_checkpoint(home / "tiny.safetensors"))
    ds = make_dataset(home, "bench")
    opts = {"batch": args.batch, "snapshot_every": args.snapshot_every}
    worker = jobs.Worker(device="cpu", poll=0.05)
    print(f"torch threads: {__import__('torch').get_num_threads()}, load avg: {os.getloadavg()[0]:.2f}")
    print("| steps | estimate (s) | basis | actual (s) | error |")
    print("|---:|---:|---|---:|---:|")
    for steps in (int(s) for s in args.steps.split(",")):
        t0 = time.monotonic()
        est = jobs.estimate_experiment("bench", ckpt, steps, batch=args.batch, device="cpu", dataset=ds,
                                       snapshot_every=args.snapshot_every, allow_paths=True)
        took = time.monotonic() - t0
        exp_id = jobs.submit_experiment("bench", title=f"eta {steps}", dataset=ds, checkpoint=ckpt, steps=steps,
                                        options=opts, allow_paths=True)
        rec = worker.run_once()
        actual = rec["finished"] - rec["started"]
        err = (est["eta_seconds"] - actual) / actual
        print(f"| {steps} | {est['eta_seconds']:.1f} | {est['basis']}{' (took %.1f s)' % took if est['measured_now'] else ''}"
              f" | {actual:.1f} | {100 * err:+.0f}% |", flush=True)
        jobs.delete_experiment(exp_id, "bench")
    worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
