"""core.jobs in one process: submit, run, stop/continue, delete, limits, failures, ownership."""
from __future__ import annotations

import json

import pytest
from jobs_fixtures import TINY_OPTIONS, make_checkpoint, make_dataset

from core import jobs
from core.cli import main as cli_main


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    monkeypatch.delenv("ATELIER_MAX_JOBS_PER_USER", raising=False)
    ckpt = make_checkpoint(tmp_path / "tiny.safetensors")
    ds = make_dataset(tmp_path, "alice")
    return {"root": tmp_path, "ckpt": str(ckpt), "ds": ds}


def _submit(home, user="alice", steps=3, **kw):
    return jobs.submit_experiment(user, title=kw.pop("title", "t"), dataset=kw.pop("dataset", home["ds"]),
                                  checkpoint=home["ckpt"], steps=steps, options=dict(TINY_OPTIONS), allow_paths=True,
                                  **kw)


def test_submit_run_finish_with_exact_steps(home):
    exp_id = _submit(home, steps=3)
    rec = jobs.get_experiment(exp_id, "alice")
    assert rec["state"] == "queued" and rec["queue_position"] == 1 and len(exp_id) == 32
    worker = jobs.Worker(device="cpu", poll=0.05)
    try:
        done = worker.run_once()
    finally:
        worker.close()
    assert done["state"] == "finished" and done["step"] == 3
    rec = jobs.get_experiment(exp_id, "alice")
    assert (rec["state"], rec["step"], rec["steps"], rec["eta_seconds"]) == ("finished", 3, 3, 0)
    assert rec["started"] <= rec["finished"]
    assert [s["step"] for s in jobs.experiment_snapshots(exp_id, "alice")] == [0, 2, 3]
    assert any(r.get("step") == 3 for r in jobs.experiment_stats(exp_id, "alice"))
    assert any("finished at step 3" in line for line in jobs.experiment_log(exp_id, "alice"))
    assert worker.run_once() is None  # queue empty


def test_a_snapshot_saved_to_my_models_carries_the_provenance_the_trainer_wrote(home):
    from core import datasets, models
    exp_id = _submit(home, steps=3)
    waiting = _submit(home, steps=3)
    worker = jobs.Worker(device="cpu", poll=0.05)
    try:
        worker.run_once()
    finally:
        worker.close()
    m = models.save_snapshot(exp_id, 1, "  Mine ", "alice")   # snapshots 0, 2, 3: the later of 0 and 2
    name = datasets.get_dataset(home["ds"], "alice")["name"]
    assert (m["name"], m["step"], m["steps"], m["experiment"]) == ("Mine", 2, 3, exp_id)
    assert (m["dataset"], m["dataset_id"], m["base_model"]) == (name, home["ds"], home["ckpt"])
    assert models.model_weights_path(m["id"], "alice").read_bytes() == \
        open(jobs.experiment_snapshot(exp_id, "alice", 2)["weights_path"], "rb").read()
    with pytest.raises(models.ModelError, match="no snapshot"):
        models.save_snapshot(waiting, 0, "Too early", "alice")
    with pytest.raises(jobs.NotFound):
        models.save_snapshot(exp_id, 3, "Not mine", "bob")


def test_stop_continue_and_delete(home):
    exp_id = _submit(home, steps=2)
    assert jobs.stop_experiment(exp_id, "alice")["state"] == "stopped"  # queued: stopped at once
    rec = jobs.continue_experiment(exp_id, "alice", 3)
    assert rec["state"] == "queued" and rec["steps"] == 3
    worker = jobs.Worker(device="cpu", poll=0.05)
    # Stop while training: the flag the worker polls; it ends with a snapshot, state stopped.
    orig = worker._set

    def stop_after_first_step(exp, **fields):
        out = orig(exp, **fields)
        if fields.get("step") == 1 and "state" not in fields:
            jobs.stop_experiment(exp, "alice")
        return out
    worker._set = stop_after_first_step
    try:
        rec = worker.run_once()
        assert rec["state"] == "stopped" and rec["step"] == 1
        assert 1 in [s["step"] for s in jobs.experiment_snapshots(exp_id, "alice")]
        with pytest.raises(jobs.JobsError):
            jobs.continue_experiment(exp_id, "alice", 1)
        jobs.continue_experiment(exp_id, "alice", 3)
        worker._set = orig
        rec = worker.run_once()
    finally:
        worker.close()
    assert (rec["state"], rec["step"]) == ("finished", 3)
    run_dir = jobs.get_experiment(exp_id, "alice")["run_dir"]
    gone = jobs.delete_experiment(exp_id, "alice")
    assert gone["id"] == exp_id
    import os
    assert not os.path.exists(run_dir)
    with pytest.raises(jobs.NotFound):
        jobs.get_experiment(exp_id, "alice")


def test_delete_refused_while_running(home):
    exp_id = _submit(home)
    from core.jobs import store
    store.update(exp_id, lambda r: r.update(state="training", heartbeat=1e12))
    with pytest.raises(jobs.JobsError, match="stop it"):
        jobs.delete_experiment(exp_id, "alice")


def test_sixth_refused_other_user_unaffected(home, monkeypatch):
    ds_b = make_dataset(home["root"], "bob")
    ids = [_submit(home, title=f"t{i}") for i in range(5)]
    with pytest.raises(jobs.LimitReached, match="limit is 5"):
        _submit(home, title="sixth")
    bob_id = _submit(home, user="bob", dataset=ds_b)
    positions = [jobs.get_experiment(i, "alice")["queue_position"] for i in ids]
    assert positions == [1, 3, 4, 5, 6]                  # fair share: bob's turn comes after alice's first
    assert jobs.get_experiment(bob_id, "bob")["queue_position"] == 2
    jobs.stop_experiment(ids[0], "alice")         # a slot frees up
    assert _submit(home, title="now fits")
    monkeypatch.setenv("ATELIER_MAX_JOBS_PER_USER", "1")
    with pytest.raises(jobs.LimitReached, match="limit is 1"):
        _submit(home, user="bob", dataset=ds_b)


def test_ownership(home):
    exp_id = _submit(home)
    make_dataset(home["root"], "bob")
    for fn in (jobs.get_experiment, jobs.stop_experiment, jobs.delete_experiment, jobs.experiment_log,
               jobs.experiment_snapshots):
        with pytest.raises(jobs.NotFound):
            fn(exp_id, "bob")
    with pytest.raises(jobs.NotFound):
        jobs.continue_experiment(exp_id, "bob", 10)
    assert jobs.list_experiments("bob") == []
    assert jobs.get_experiment(exp_id, "alice")["state"] == "queued"


def test_failure_marked_with_reason_and_worker_goes_on(home):
    bad = _submit(home, title="bad")
    good = _submit(home, steps=2, title="good")
    from core.jobs import store
    store.update(bad, lambda r: r.update(checkpoint=str(home["root"] / "missing.safetensors")))
    worker = jobs.Worker(device="cpu", poll=0.05)
    try:
        first, second = worker.run_once(), worker.run_once()
    finally:
        worker.close()
    assert first["state"] == "failed" and "No such checkpoint file" in first["error"]
    assert "\n" not in first["error"]
    assert second["state"] == "finished" and second["step"] == 2 and second["id"] == good
    assert any("failed:" in line for line in jobs.experiment_log(bad, "alice"))


def test_submit_validation(home):
    with pytest.raises(jobs.JobsError, match="steps"):
        _submit(home, steps=30_000)
    with pytest.raises(jobs.JobsError):
        _submit(home, dataset="no such dataset")
    with pytest.raises(jobs.JobsError, match="crop"):
        _submit(home, crop="diagonal")


def test_orphan_requeued_and_stopping_becomes_stopped(home):
    from core.jobs import store
    a, b = _submit(home), _submit(home)
    dead = {"id": "x", "pid": 2 ** 22 + 12345, "host": __import__("socket").gethostname(), "start": None}
    store.update(a, lambda r: r.update(state="training", worker=dead, heartbeat=9e12))
    store.update(b, lambda r: r.update(state="stopping", worker=dict(dead), heartbeat=0))
    assert sorted(jobs.recover_orphans()) == sorted([a, b])
    assert jobs.get_experiment(a, "alice")["state"] == "queued"
    assert jobs.get_experiment(a, "alice")["queue_position"] == 1
    assert jobs.get_experiment(b, "alice")["state"] == "stopped"


def test_cli_submit_list_show_stop(home, capsys):
    args = ["jobs", "submit", "--dataset", home["ds"], "--checkpoint", home["ckpt"], "--steps", "4",
            "--batch", "4", "--title", "from cli", "--json", "--user", "alice"]
    assert cli_main(args) == 0
    exp_id = json.loads(capsys.readouterr().out)["id"]
    assert cli_main(["jobs", "show", exp_id, "--json", "--user", "alice"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {k: shown[k] for k in ("id", "state", "step", "steps", "eta_seconds")} == \
        {"id": exp_id, "state": "queued", "step": 0, "steps": 4, "eta_seconds": None}
    assert cli_main(["jobs", "list", "--user", "alice"]) == 0
    assert "queued #1" in capsys.readouterr().out
    assert cli_main(["jobs", "stop", exp_id, "--user", "alice"]) == 0
    assert cli_main(["jobs", "continue", exp_id, "--steps", "5", "--user", "alice"]) == 0
    assert cli_main(["jobs", "show", exp_id, "--user", "bob"]) == 2
    assert "No experiment" in capsys.readouterr().err
    assert cli_main(["jobs", "delete", exp_id, "--user", "alice"]) == 0


def test_cli_submit_takes_precision_and_compile(home, capsys):
    args = ["jobs", "submit", "--dataset", home["ds"], "--checkpoint", home["ckpt"], "--steps", "4",
            "--precision", "bf16", "--compile", "--json", "--user", "alice"]
    assert cli_main(args) == 0
    exp_id = json.loads(capsys.readouterr().out)["id"]
    options = jobs.get_experiment(exp_id, "alice")["options"]
    assert (options["precision"], options["compile"]) == ("bf16", True)
