"""core.jobs.eta: the page reads figures only; the worker measures (a calibration when idle, then
every real run); the automatic snapshot interval follows the measured step time."""
from __future__ import annotations

import pytest
from jobs_fixtures import TINY_OPTIONS, make_checkpoint, make_dataset

from core import jobs
from core.jobs import eta, store


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    monkeypatch.setattr(eta, "CALIBRATION_STEPS", 5)   # a short calibration is enough to check the plumbing
    return {"ckpt": str(make_checkpoint(tmp_path / "tiny.safetensors")), "ds": make_dataset(tmp_path, "alice")}


def _estimate(home, steps=40, batch=4):
    return jobs.estimate_experiment("alice", home["ckpt"], steps, batch=batch, device="cpu", dataset=home["ds"],
                                    allow_paths=True)


def test_the_page_never_trains_and_the_idle_worker_measures(home, monkeypatch):
    import core.stylegan.train as train_mod
    real_train = train_mod.train
    monkeypatch.setattr(train_mod, "train", lambda *a, **k: pytest.fail("trained inside the estimate"))
    est = _estimate(home)
    assert (est["measured"], est["pending"], est["eta_seconds"]) == (False, True, None)
    assert "not measured yet" in est["basis"] and "batch 4" in est["basis"] and "background" in est["basis"]
    assert _estimate(home)["pending"]                                   # asked again: still one request
    assert sum(1 for k in store.cache().iterkeys() if str(k).startswith(eta.WANT_PREFIX)) == 1

    monkeypatch.setattr(train_mod, "train", real_train)
    worker = jobs.Worker(device="cpu", poll=0.05)
    try:
        assert worker.calibrate() is True                                # the worker, idle, measures it
        assert worker.calibrate() is False                               # nothing left to measure
    finally:
        worker.close()
    est = _estimate(home)
    assert est["measured"] and not est["pending"] and est["eta_seconds"] > 0
    assert "by a short calibration run" in est["basis"] and "s/step" in est["basis"]
    figures = eta.figures_for(eta.cache_key(32, eta.checkpoint_shape(home["ckpt"], "alice", True)[1], 4, "cpu",
                                            eta.precision_for("auto", "cpu")))
    assert figures["calibrated"] and figures["sec_per_step"] > 0 and figures["snapshot_s"] >= 0
    assert est["eta_seconds"] == pytest.approx(est["prep_seconds"] + 40 * figures["sec_per_step"]
                                               + est["snapshot_seconds"], abs=0.2)


def test_a_real_run_is_blended_in_and_counted(home):
    exp_id = jobs.submit_experiment("alice", title="t", dataset=home["ds"], checkpoint=home["ckpt"], steps=12,
                                    options=dict(TINY_OPTIONS), allow_paths=True)
    worker = jobs.Worker(device="cpu", poll=0.05)
    try:
        assert worker.run_once()["state"] == "finished"
    finally:
        worker.close()
    est = _estimate(home)
    assert est["measured"] and "from 1 run" in est["basis"], est["basis"]
    stats = [r["sec_per_step"] for r in jobs.experiment_stats(exp_id, "alice") if r.get("sec_per_step")]
    assert stats and est["sec_per_step"] > 0


def test_calibration_gives_way_to_a_queued_job(home):
    _estimate(home)
    jobs.submit_experiment("alice", title="t", dataset=home["ds"], checkpoint=home["ckpt"], steps=2,
                           options=dict(TINY_OPTIONS), allow_paths=True)
    assert eta.calibrate_pending("cpu") is True          # tried, stopped at once for the job
    assert not _estimate(home)["measured"]                 # ... and the request waits for the next idle moment
    assert eta._take_request("cpu") is not None


def test_the_estimate_follows_the_device_a_worker_announced(home):
    eta.announce_worker("cuda:Some GPU")
    assert eta.estimate_device(None) == "cuda:Some GPU"
    assert eta.estimate_device("cpu") == "cpu"


def test_automatic_snapshot_interval():
    assert eta.auto_snapshot_every(3000, 1.0, 0.5) == 100        # every 3 minutes -> 180 -> 100 steps
    assert eta.auto_snapshot_every(100, 1.0, 0.5) == 10           # a short run: about 10 snapshots
    assert eta.auto_snapshot_every(25_000, 0.01, 2.0) == 2000     # snapshots stay under a tenth of the time
    assert eta.auto_snapshot_every(3000, None, None) == 200       # not measured yet: about 10, at most 250
    assert eta.auto_snapshot_every(40, None, None) == 2
    assert eta.auto_snapshot_every(1, 5.0, 1.0) == 1


def test_submit_with_automatic_snapshots(home):
    exp_id = jobs.submit_experiment("alice", title="t", dataset=home["ds"], checkpoint=home["ckpt"], steps=40,
                                    options=dict(TINY_OPTIONS, snapshot_every=0), allow_paths=True)
    assert jobs.get_experiment(exp_id, "alice")["options"]["snapshot_every"] == 2   # not measured: ~10 a run


def test_each_precision_has_its_own_figures(home):
    """A CPU step in fp32 and in bf16 differ by up to 1.6x: measuring one says nothing of the other."""
    fp32 = jobs.estimate_experiment("alice", home["ckpt"], 40, batch=4, device="cpu", precision="fp32",
                                    allow_paths=True)
    assert fp32["precision"] == "fp32" and fp32["pending"] and "fp32 on CPU" in fp32["basis"]
    worker = jobs.Worker(device="cpu", poll=0.05)
    try:
        assert worker.calibrate() is True
    finally:
        worker.close()
    assert jobs.estimate_experiment("alice", home["ckpt"], 40, batch=4, device="cpu", precision="fp32",
                                    allow_paths=True)["measured"]
    bf16 = jobs.estimate_experiment("alice", home["ckpt"], 40, batch=4, device="cpu", precision="bf16",
                                    allow_paths=True)
    assert not bf16["measured"] and bf16["pending"] and "bf16 on CPU" in bf16["basis"]
    with pytest.raises(jobs.JobsError, match="fp16 runs on CUDA only"):
        jobs.estimate_experiment("alice", home["ckpt"], 40, batch=4, device="cpu", precision="fp16",
                                 allow_paths=True)
