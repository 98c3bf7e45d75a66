"""The start-up consistency check: half-written records are quarantined and reported, whole ones kept."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.tiny import write_blob_images, write_tiny_checkpoint


@pytest.fixture()
def home(tmp_path, monkeypatch):
    root = tmp_path / "home"
    monkeypatch.setenv("ATELIER_HOME", str(root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return root


@pytest.fixture()
def populated(home, tmp_path):
    """One dataset, one (public) model and one queued experiment of user 'local'."""
    from core import datasets, jobs, models
    write_blob_images(tmp_path / "imgs", n=6)
    report = datasets.import_dataset([tmp_path / "imgs"], "Blobs", resolution=32)
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.safetensors")
    model_id = models.save_model("local", weights_path=ckpt, name="Tiny")
    models.set_public(model_id, "local", True)
    exp_id = jobs.submit_experiment("local", title="Run", dataset="Blobs", checkpoint=str(ckpt), steps=10,
                                    allow_paths=True)
    return {"dataset": report.dataset_id, "model": model_id, "experiment": exp_id, "ckpt": ckpt}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "queue" not in p.parts and not p.name.endswith(".lock")}


def test_clean_root_reports_nothing_and_changes_nothing(populated, home):
    from core.integrity import check_data_root
    before = _files(home)
    assert check_data_root(grace_s=0) == []
    assert _files(home) == before
    assert not (home / "quarantine").exists()


def test_empty_root(home):
    from core.integrity import check_data_root
    assert check_data_root(grace_s=0) == []


def test_half_written_things_are_quarantined(populated, home):
    from core import datasets, jobs, models
    from core.integrity import check_data_root
    u = home / "users" / "local"
    # leftovers of atomic writes and builds
    (u / "datasets" / ".index.json.abc123.tmp").write_text("{")
    (u / "datasets" / ".tmp-ds_0123456789abcdef").mkdir()
    (u / "datasets" / ".tmp-ds_0123456789abcdef" / "images").mkdir()
    (u / "models" / f".tmp-{'a' * 32}").mkdir()
    (u / "models" / f".tmp-{'a' * 32}" / "model.safetensors").write_bytes(b"half")
    run = u / "experiments" / populated["experiment"]
    (run / "snapshots").mkdir(parents=True, exist_ok=True)
    (run / "snapshots" / ".step-000002.safetensors.x1y2.tmp").write_bytes(b"torn")
    (home / "checkpoints" / "imported").mkdir(parents=True, exist_ok=True)
    (home / "checkpoints" / "imported" / "0123456789abcdef.part").write_bytes(b"partial import")
    (home / "checkpoints" / "ffhq.part").write_bytes(b"resumable download")
    # records missing their main file
    (u / "datasets" / "ds_00000000000000aa").mkdir()
    (u / "datasets" / "ds_00000000000000aa" / "images").mkdir()
    broken_model = u / "models" / ("b" * 32)
    broken_model.mkdir()
    (broken_model / "model.json").write_text(json.dumps({"id": "b" * 32, "name": "x"}))
    # a run folder with no record, and a half-finished delete
    (u / "experiments" / ("c" * 32)).mkdir()
    (u / "models" / f".trash-{'d' * 32}").mkdir()

    lines = check_data_root(grace_s=0)
    text = "\n".join(lines)
    for bit in (".index.json.abc123.tmp", ".tmp-ds_0123456789abcdef", f".tmp-{'a' * 32}", ".step-000002",
                "0123456789abcdef.part", "ds_00000000000000aa", "b" * 32, "c" * 32, f".trash-{'d' * 32}"):
        assert bit in text, (bit, lines)
    assert "ffhq.part" not in text and (home / "checkpoints" / "ffhq.part").exists()
    q = home / "quarantine"
    (stamp,) = list(q.iterdir())
    assert (stamp / "users/local/datasets/.tmp-ds_0123456789abcdef/images").is_dir()
    assert (stamp / "users/local/models" / ("b" * 32) / "model.json").is_file()
    assert (stamp / "checkpoints/imported/0123456789abcdef.part").read_bytes() == b"partial import"
    # the whole records are untouched and usable
    assert datasets.get_dataset("Blobs")["id"] == populated["dataset"]
    assert [m["id"] for m in models.list_models("local")] == [populated["model"]]
    assert jobs.get_experiment(populated["experiment"], "local")["state"] == "queued"
    assert check_data_root(grace_s=0) == []


def test_grace_leaves_fresh_temps_alone(populated, home):
    from core.integrity import check_data_root
    tmp = home / "users" / "local" / "datasets" / ".tmp-ds_0123456789abcdef"
    tmp.mkdir()
    assert check_data_root(grace_s=600) == []
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    assert any(".tmp-ds_0123456789abcdef" in line for line in check_data_root(grace_s=600))


def test_unreadable_indexes_are_quarantined_and_rebuilt(populated, home):
    from core import datasets, models
    from core.integrity import check_data_root
    u = home / "users" / "local"
    (u / "datasets" / "index.json").write_text('{"names": ')
    (u / "models" / "index.json").write_bytes(b"\x00\xff")
    (home / "public_models.json").write_text("[1, 2")
    (home / "checkpoints" / "imported").mkdir(parents=True, exist_ok=True)
    (home / "checkpoints" / "imported" / "index.json").write_text("nope")
    lines = check_data_root(grace_s=0)
    text = "\n".join(lines)
    assert "unreadable dataset index" in text and "unreadable models index" in text
    assert "unreadable public models index" in text and "imported checkpoints" in text
    assert f"re-indexed dataset {populated['dataset']}" in text
    assert datasets.get_dataset("Blobs")["id"] == populated["dataset"]
    assert models.get_model(populated["model"], "local")["public"] is True
    assert models.get_model(populated["model"], "bob")["name"] == "Tiny"  # public again for others
    assert check_data_root(grace_s=0) == []


def test_dataset_index_entries_without_folder_and_folders_without_entry(populated, home):
    from core import datasets
    from core.integrity import check_data_root
    u = home / "users" / "local" / "datasets"
    idx = json.loads((u / "index.json").read_text())
    idx["names"]["Ghost"] = "ds_ffffffffffffffff"
    idx["names"].pop("Blobs")
    (u / "index.json").write_text(json.dumps(idx))
    lines = check_data_root(grace_s=0)
    assert any("dropped dataset index entry 'Ghost'" in line for line in lines)
    assert any("re-indexed dataset" in line and "'Blobs'" in line for line in lines)
    assert [d["name"] for d in datasets.list_datasets()] == ["Blobs"]


def test_experiment_whose_run_folder_vanished(populated, home):
    import shutil

    from core import jobs
    from core.integrity import check_data_root
    from core.jobs import store
    exp = populated["experiment"]
    store.update(exp, lambda r: r.update(state="stopped", step=4))
    shutil.rmtree(home / "users" / "local" / "experiments" / exp)
    lines = check_data_root(grace_s=0)
    assert any(f"marked experiment {exp}" in line for line in lines)
    rec = jobs.get_experiment(exp, "local")
    assert rec["state"] == "failed" and "run folder is missing" in rec["error"]
    # a queued one that never got its folder just gets it (nothing was lost)
    exp2 = jobs.submit_experiment("local", title="Two", dataset="Blobs", checkpoint=str(populated["ckpt"]), steps=10,
                                    allow_paths=True)
    shutil.rmtree(home / "users" / "local" / "experiments" / exp2)
    assert any("made the missing run folder" in line for line in check_data_root(grace_s=0))
    assert check_data_root(grace_s=0) == []
