"""How fast the web app answers while a job trains in its background worker.

    python bench/responsiveness.py [--calls 10]

Starts ``app.py`` (in-process worker, CPU) on a fresh data root with the bundled sample dataset and
the bundled default model, starts a long experiment, and once it trains times API calls a user's
page makes: listing datasets (storage only) and a playground render of the bundled model (a
forward pass competing with training for the 2 cores). Prints median and max per call, and the
same calls on the idle app first, for the ratio.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.monotonic()
        fn()
        times.append(time.monotonic() - t0)
        time.sleep(0.2)
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=10)
    args = ap.parse_args()
    from gradio_client import Client
    base = Path(tempfile.mkdtemp(prefix="atelier-resp-"))
    env = dict(os.environ, ATELIER_HOME=str(base / "home"), GRADIO_TEMP_DIR=str(base / "gradio"),
               GRADIO_ANALYTICS_ENABLED="False")
    port = free_port()
    log = open(base / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--device", "cpu"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            try:
                client = Client(url, verbose=False)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit((base / "app.log").read_text()[-2000:])
                time.sleep(0.5)
        client.predict(api_name="/use_sample_dataset")
        form = client.predict(None, None, api_name="/new_experiment_form")
        ds_id = next(x["value"] for x in form if isinstance(x, dict) and "choices" in x)

        def list_datasets():
            client.predict(api_name="/list_datasets")

        seeds = iter(range(1000, 10**6))  # a new seed each call: renders are memoised

        def render():
            client.predict("checkpoint:default", next(seeds), "", None, 0.7, "const", None, "0-4", "0", 0,
                           api_name="/generate")

        calls = {"list datasets": list_datasets, "playground render (64 px)": render}
        idle = {name: timed(fn, args.calls) for name, fn in calls.items()}
        out = client.predict("Responsiveness", ds_id, "default", "center", 20000, 0, 1000, "ada", True, 0, 0, 0,
                             api_name="/start_experiment")
        exp_id = next(x["value"] for x in out if isinstance(x, dict) and "choices" in x)
        while "training" not in str(client.predict(exp_id, api_name="/list_experiments")):
            time.sleep(1)
        time.sleep(5)  # past the first steps
        busy = {name: timed(fn, args.calls) for name, fn in calls.items()}
        client.predict(exp_id, api_name="/stop_experiment")
        print(f"# {os.cpu_count()} cores; {args.calls} calls each; seconds")
        print("| call | idle median | training median | training max | ratio of medians |")
        print("|---|---:|---:|---:|---:|")
        for name in calls:
            a, b = statistics.median(idle[name]), statistics.median(busy[name])
            print(f"| {name} | {a:.2f} | {b:.2f} | {max(busy[name]):.2f} | {b / a:.1f}x |")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
