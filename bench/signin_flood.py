"""How fast a signed-in user is answered while anonymous clients flood the sign-in with wrong passwords.

    python bench/signin_flood.py [--clients 4] [--rate 5] [--seconds 10] [--runs 3] [--app-dir DIR]

Starts ``app.py --auth --no-worker`` from ``--app-dir`` (default: this checkout; pass an older
checkout for the before figures) on a fresh data root with one user, signs her in, then runs
``--runs`` rounds of: an idle phase, and a flood phase in which ``--clients`` clients (each its own
address, sent as X-Forwarded-For, which uvicorn trusts from 127.0.0.1) each send ``--rate`` wrong
sign-ins a second for ``--seconds`` seconds to her account. In both phases the signed-in client makes
the same requests, one every 0.1 s: ``GET /gradio_api/login_check`` (the smallest signed-in request:
it waits only on the event loop) and a ``list_datasets`` call through the queue (POST, then the
result stream). Prints the median latency of each in each phase, the ratio flood/idle (median of
the rounds), and what the flood got back (status counts).
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
USER = ("alice", "alice-password-1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(app_dir: Path, base: Path):
    import httpx
    home = base / "home"
    env = dict(os.environ, ATELIER_HOME=str(home), GRADIO_TEMP_DIR=str(base / "gradio"), TMPDIR=str(base / "tmp"),
               GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(app_dir))
    for d in (home, base / "gradio", base / "tmp"):
        d.mkdir(parents=True)
    users = base / "users.json"
    subprocess.run([sys.executable, "-m", "core.cli", "users", "add", USER[0], "--password-stdin", "--file", str(users)],
                   input=USER[1] + "\n", text=True, cwd=app_dir, env=env, check=True, capture_output=True)
    port = free_port()
    log = open(base / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--auth", str(users), "--no-worker"],
                            cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit((base / "app.log").read_text()[-2000:])
        time.sleep(0.5)


def signed_in_calls(c, until: float) -> dict[str, list[float]]:
    """The signed-in client's requests, one every 0.1 s until ``until``: latency of each kind."""
    out: dict[str, list[float]] = {"login_check": [], "list_datasets": []}
    while time.monotonic() < until:
        t0 = time.perf_counter()
        assert c.get("/gradio_api/login_check").status_code == 200
        out["login_check"].append(time.perf_counter() - t0)
        time.sleep(0.1)
        t0 = time.perf_counter()
        r = c.post("/gradio_api/call/list_datasets", json={"data": []})
        assert r.status_code == 200, r.text
        text = c.get(f"/gradio_api/call/list_datasets/{r.json()['event_id']}").text
        assert "event: complete" in text, text
        out["list_datasets"].append(time.perf_counter() - t0)
        time.sleep(0.1)
    return out


def flood(url: str, address: str, rate: float, until: float, statuses: collections.Counter) -> None:
    import httpx
    with httpx.Client(base_url=url, timeout=120, headers={"X-Forwarded-For": address}) as c:
        next_at, i = time.monotonic(), 0
        while next_at < until:
            time.sleep(max(0.0, next_at - time.monotonic()))
            r = c.post("/login", data={"username": USER[0], "password": f"wrong-{i}"})
            statuses[r.status_code] += 1
            next_at, i = next_at + 1.0 / rate, i + 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rate", type=float, default=5.0, help="wrong sign-ins a second, per client")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--app-dir", default=str(REPO), help="the checkout whose app.py to run")
    args = ap.parse_args()
    import httpx
    base = Path(tempfile.mkdtemp(prefix="atelier-signin-"))
    proc, url, log = start_app(Path(args.app_dir).resolve(), base)
    rows = []
    statuses: collections.Counter = collections.Counter()
    try:
        with httpx.Client(base_url=url, timeout=120, headers={"X-Forwarded-For": "10.0.0.1"}) as c:
            assert c.post("/login", data={"username": USER[0], "password": USER[1]}).status_code == 200
            signed_in_calls(c, time.monotonic() + 2)                        # warm-up
            for run in range(args.runs):
                idle = signed_in_calls(c, time.monotonic() + args.seconds)
                until = time.monotonic() + args.seconds
                flooders = [threading.Thread(target=flood, args=(url, f"198.51.{run}.{i + 1}", args.rate, until,
                                                                 statuses)) for i in range(args.clients)]
                for t in flooders:
                    t.start()
                busy = signed_in_calls(c, until)
                for t in flooders:
                    t.join()
                rows.append((idle, busy))
                time.sleep(3)                                                # let queued checks drain
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
    print(f"# app: {args.app_dir}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
          f"{args.clients} clients x {args.rate:g} wrong sign-ins/s for {args.seconds:g} s, {args.runs} runs")
    print("| request | idle median | flood median | flood max | flood/idle (median of runs) |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("login_check", "list_datasets"):
        idle = [statistics.median(i[kind]) for i, _ in rows]
        busy = [statistics.median(b[kind]) for _, b in rows]
        ratio = statistics.median(b / a for a, b in zip(idle, busy))
        worst = max(max(b[kind]) for _, b in rows)
        print(f"| {kind} | {statistics.median(idle) * 1e3:.1f} ms | {statistics.median(busy) * 1e3:.1f} ms | "
              f"{worst * 1e3:.0f} ms | {ratio:.2f}x |")
    print(f"flood answers: {dict(sorted(statuses.items()))} (400 = checked and wrong, 429/503 = refused unhashed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
