"""bench/gpu.py runs its whole path at toy sizes on the CPU (the GPU check CI can run)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_at_toy_sizes_on_the_cpu(tmp_path):
    env = dict(os.environ, ATELIER_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "bench/gpu.py", "--device", "cpu", "--tiny", "--work", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    smoke = [line for line in lines if line.startswith(("| fp32 |", "| bf16 |"))]
    assert len(smoke) == 2 and all("| finite |" in line and "| pass |" in line for line in smoke), done.stdout
    rows = [line.split("|")[1:-1] for line in lines if line.startswith(("| 32 px |", "| 64 px |"))]
    assert len(rows) == 6 and {r[2].strip() for r in rows} == {"fp32", "bf16"}, done.stdout
    assert all(float(r[3]) > 0 and float(r[4]) > 0 and float(r[6]) > 0 for r in rows), done.stdout
    assert lines[-1] == "smoke: pass"
    assert not [p for p in tmp_path.iterdir() if p.name != "home"]  # the smoke runs' folder is removed
