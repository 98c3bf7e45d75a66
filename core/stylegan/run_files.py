"""Files of one training run: config, stats log, snapshot list, and the resumable state.

    run_dir/config.json               the TrainConfig and provenance of the run
    run_dir/state.safetensors         G, D, G_ema, optimiser moments, ADA and counters (latest)
    run_dir/snapshots/step-NNNNNN.safetensors   G_ema of that step (native checkpoint)
    run_dir/snapshots/step-NNNNNN.png          the fixed-seed grid of that step
    run_dir/stats.jsonl               one JSON line per logged step, each step at most once
    run_dir/group/                    a run on several devices started by the worker (core/jobs/group.py)

Every file is written atomically, so a kill leaves the previous version intact.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..storage import atomic_path, atomic_write_bytes

SNAPSHOT_RE = re.compile(r"^step-(\d{6,})\.safetensors$")
STATE_FILE = "state.safetensors"
STATE_IN_GENERATORS = 7  # the resumable state: G, G_ema, D (each about G's size), Adam's two moments of G and D


def snapshot_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "snapshots"


def snapshot_paths(run_dir: Path, step: int) -> tuple[Path, Path]:
    base = snapshot_dir(run_dir) / f"step-{step:06d}"
    return base.with_suffix(".safetensors"), base.with_suffix(".png")


def list_snapshots(run_dir: Path) -> list[int]:
    """Steps that have both a weights file and a grid image, ascending."""
    folder = snapshot_dir(run_dir)
    if not folder.is_dir():
        return []
    steps = []
    for p in folder.iterdir():
        m = SNAPSHOT_RE.match(p.name)
        if m and p.with_suffix(".png").exists():
            steps.append(int(m.group(1)))
    return sorted(steps)


def snapshot_bytes(run_dir: Path, generator_bytes: int, *, snapshots: int = 1, grid_bytes: int = 0) -> int:
    """About how many bytes ``snapshots`` more snapshots and the resumable state add to a run folder.

    Each snapshot: the size of the run's last one (weights and grid), or for a run without one,
    ``generator_bytes`` (G_ema's weights) and ``grid_bytes``. The state (about STATE_IN_GENERATORS
    generators) replaces the state file already there: only the difference counts.
    ``snapshots=0`` asks what writing the state alone adds."""
    run_dir = Path(run_dir)
    per_snapshot = generator_bytes + grid_bytes
    steps = list_snapshots(run_dir)
    if steps:
        try:
            per_snapshot = sum(p.stat().st_size for p in snapshot_paths(run_dir, steps[-1]))
        except FileNotFoundError:  # removed meanwhile: keep the estimate
            pass
    try:
        state_now = (run_dir / STATE_FILE).stat().st_size
    except FileNotFoundError:
        state_now = 0
    return snapshots * per_snapshot + max(0, STATE_IN_GENERATORS * generator_bytes - state_now)


def save_grid(image, path: Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def append_stats(run_dir: Path, record: dict) -> None:
    with open(Path(run_dir) / "stats.jsonl", "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()


def read_stats(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "stats.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a kill
    return records


def truncate_stats(run_dir: Path, last_step: int) -> None:
    """Keep only lines with step <= last_step (each step once), e.g. after a resume."""
    kept, seen = [], set()
    for r in read_stats(run_dir):
        step = r.get("step")
        if isinstance(step, int) and step <= last_step and step not in seen:
            kept.append(json.dumps(r, sort_keys=True) + "\n")
            seen.add(step)
    atomic_write_bytes(Path(run_dir) / "stats.jsonl", "".join(kept).encode())


def remove_snapshots_after(run_dir: Path, step: int) -> None:
    """Snapshots newer than the resumable state are recomputed by the resumed run."""
    for s in list_snapshots(run_dir):
        if s > step:
            for p in snapshot_paths(run_dir, s):
                p.unlink(missing_ok=True)
