"""The app in a process of its own for the tests that drive it over HTTP or in a browser: a free
port on 127.0.0.1, started, waited for, and stopped by its process id."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def app_server(args: list[str], env: dict, log_path: Path, timeout_s: float = 120):
    """``python app.py --port P *args`` (its own process group) until it answers; yields its URL.
    RuntimeError with the end of its log when it exits or does not answer in time."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *args], cwd=REPO, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(Path(log_path).read_text(errors="replace")[-3000:])
                try:
                    urllib.request.urlopen(url, timeout=5).read(100)
                    break
                except urllib.error.HTTPError as e:  # answering (a sign-in page may say 401)
                    if e.code < 500:
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the app did not start: "
                                           + Path(log_path).read_text(errors="replace")[-3000:]) from None
                    time.sleep(0.5)
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
