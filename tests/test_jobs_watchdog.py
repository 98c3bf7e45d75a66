"""The job watchdog: a stage that stops making progress fails its job with a one-line reason, and
the worker goes on with the next job."""
from __future__ import annotations

import threading

import pytest
from jobs_fixtures import TINY_OPTIONS, make_checkpoint, make_dataset

from core import jobs
from core.cli import main as cli_main


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    monkeypatch.delenv("ATELIER_JOB_STALL_S", raising=False)
    ckpt = make_checkpoint(tmp_path / "tiny.safetensors")
    return {"root": tmp_path, "ckpt": str(ckpt), "ds": make_dataset(tmp_path, "alice")}


def _submit(home, title, steps=2, crop="center"):
    return jobs.submit_experiment("alice", title=title, dataset=home["ds"], checkpoint=home["ckpt"], steps=steps,
                                  crop=crop, options=dict(TINY_OPTIONS), allow_paths=True)


def _block_first_call(monkeypatch, module, name: str, release: threading.Event) -> None:
    real, calls = getattr(module, name), []

    def blocking(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            release.wait()            # a stage that never reports progress (until the test ends)
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, blocking)


def _stuck_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("atelier-job-")]


@pytest.mark.parametrize("stage", ["loading the checkpoint", "packing the dataset"])
def test_a_stage_that_blocks_fails_the_job_and_the_worker_goes_on(home, monkeypatch, stage):
    import core.stylegan
    from core.datasets import images
    release = threading.Event()
    if stage == "loading the checkpoint":
        stuck = _submit(home, "stuck")
        _block_first_call(monkeypatch, core.stylegan, "load_checkpoint", release)
    else:
        stuck = _submit(home, "stuck", crop="random")      # no random-crop pack yet: the worker packs one
        _block_first_call(monkeypatch, images, "process_item", release)
    good = _submit(home, "good")
    worker = jobs.Worker(device="cpu", poll=0.05, stall_s=0.5)
    try:
        first = worker.run_once()
        worker.stall_s = 600.0        # the next job trains for real: its first step may take a while
        second = worker.run_once()
    finally:
        release.set()
        for t in _stuck_threads():
            t.join(60)
        worker.close()
    reason = f"No progress for 0.5 s while {stage}: stopped by the watchdog (limit ATELIER_JOB_STALL_S)."
    assert (first["id"], first["state"], first["error"]) == (stuck, "failed", reason)
    assert first["worker"] is None and first["finished"]
    assert any(reason in line for line in jobs.experiment_log(stuck, "alice"))
    assert (second["id"], second["state"], second["step"]) == (good, "finished", 2)
    after = jobs.get_experiment(stuck, "alice")     # what the stalled thread did later changed nothing
    assert (after["state"], after["error"]) == ("failed", reason)


def test_stall_limit_settings(home, monkeypatch, capsys):
    monkeypatch.setenv("ATELIER_JOB_STALL_S", "45")
    assert jobs.Worker(device="cpu").stall_s == 45.0
    monkeypatch.setenv("ATELIER_JOB_STALL_S", "soon")
    with pytest.raises(jobs.JobsError, match="ATELIER_JOB_STALL_S must be a number of seconds"):
        jobs.Worker(device="cpu")
    assert cli_main(["worker", "--device", "cpu", "--once", "--quiet"]) == 2
    assert "ATELIER_JOB_STALL_S must be" in capsys.readouterr().err
    monkeypatch.delenv("ATELIER_JOB_STALL_S")
    assert cli_main(["worker", "--device", "cpu", "--once", "--stall-timeout", "0"]) == 2
    assert "--stall-timeout must be a number of seconds above 0" in capsys.readouterr().err


def test_app_refuses_a_bad_stall_limit_in_one_line(home, monkeypatch, capsys):
    import app
    monkeypatch.setenv("ATELIER_JOB_STALL_S", "soon")
    monkeypatch.setattr(app, "build_app", lambda: None)     # the check comes before anything is served
    with pytest.raises(SystemExit) as refused:
        app.main(["--data", str(home["root"]), "--port", "1"])
    assert str(refused.value).startswith("atelier: ATELIER_JOB_STALL_S must be a number of seconds")
    assert "\n" not in str(refused.value)
