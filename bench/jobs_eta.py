"""ETA accuracy: the estimate the page shows before Start vs the actual wall time of the run.

    python bench/jobs_eta.py [--checkpoint default|tiny] [--steps 100] [--runs 3]

The flow is the app's: the page asks for an estimate (it trains nothing; a combination without
figures is left for the worker), the idle worker runs its short calibration, the page reads the
estimate, then the experiment is submitted and the worker runs it. Actual = submit to finished
(checkpoint load, dataset packing, start-up, steps, snapshots). Runs after the first use figures
blended with the earlier runs' own step times. Default: the bundled 64 px model with the app's
defaults (automatic batch and snapshot interval, ADA) on 100 generated landscapes, on the CPU.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default="default", help="'default' (bundled 64 px) or 'tiny' (32 px test model)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--images", type=int, default=100)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="atelier-eta-"))
    os.environ["ATELIER_HOME"] = str(home)
    from common import machine

    from core import datasets, jobs
    from bench.synthetic import make_synthetic_dataset
    user = "bench"
    ckpt, allow = args.checkpoint, False
    if args.checkpoint == "tiny":
        from jobs_fixtures import make_checkpoint
        ckpt, allow = str(make_checkpoint(home / "tiny.safetensors")), True
    src = make_synthetic_dataset("landscapes", home / "src", n=args.images)
    ds = datasets.import_dataset([src], "landscapes", user=user).dataset_id
    worker = jobs.Worker(device="cpu", poll=0.05)
    print(f"{machine()}; load average at start {os.getloadavg()[0]:.2f}")
    print("| run | estimate shown | basis | calibration (s) | actual (s) | error |")
    print("|---:|---:|---|---:|---:|---:|")
    errors = []
    for run in range(1, args.runs + 1):
        def estimate():
            return jobs.estimate_experiment(user, ckpt, args.steps, device="cpu", dataset=ds, allow_paths=allow)
        est, calibration_s = estimate(), 0.0
        if est["pending"]:                                  # what the idle worker does in the background
            t0 = time.monotonic()
            while est["pending"] and worker.calibrate():
                est = estimate()
            calibration_s = time.monotonic() - t0
        exp_id = jobs.submit_experiment(user, title=f"eta {run}", dataset=ds, checkpoint=ckpt, steps=args.steps,
                                        options={"snapshot_every": 0}, allow_paths=allow)
        rec = worker.run_once()
        actual = rec["finished"] - jobs.get_experiment(exp_id, user)["created"]
        err = (est["eta_seconds"] - actual) / actual
        errors.append(err)
        print(f"| {run} | {est['eta_seconds']:.1f} s ({est['text']}) | {est['basis']} | "
              f"{calibration_s:.1f} | {actual:.1f} | {100 * err:+.0f}% |", flush=True)
    worker.close()
    print(f"median error {100 * statistics.median(errors):+.0f}%, largest {100 * max(errors, key=abs):+.0f}%; "
          f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
