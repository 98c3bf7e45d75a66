"""Per-user storage quotas: usage, settings, every place storage grows, the CLI, a run that fills up."""
from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import threading
from pathlib import Path

import pytest
from jobs_fixtures import TINY_OPTIONS, make_checkpoint, make_dataset
from tiny import write_blob_images

from core import quota
from core.cli import main as cli_main

SENTENCE = re.compile(r"^Not enough storage for (?P<what>.+) \(it needs about [\d.,]+ (bytes|KB|MB|GB)\): "
                      r"you use [\d.,]+ (bytes|KB|MB|GB) of your (?P<limit>[\d.,]+ (bytes|KB|MB|GB)); "
                      r"delete a dataset, experiment or model first\.$")


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(quota.ENV_VAR, raising=False)
    return tmp_path / "home"


def tree(root) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def refusal(message: str, what: str, limit: str) -> None:
    m = SENTENCE.match(str(message))
    assert m, message
    assert (m["what"], m["limit"]) == (what, limit), message
    assert "\n" not in str(message)


def limit_gb(user: str, extra_bytes: int) -> float:
    """A quota that leaves ``extra_bytes`` of room over what the user has now."""
    return (quota.usage_bytes(user) + extra_bytes) / quota.GB


# ---------------------------------------------------------------------------------------- usage

def test_usage_counts_hard_links_once_and_not_symlinks(home, tmp_path):
    base = home / "users" / "alice"
    (base / "datasets" / "a").mkdir(parents=True)
    (base / "models").mkdir(parents=True)
    (base / "datasets" / "a" / "one.bin").write_bytes(b"x" * 1000)
    (base / "datasets" / "two.bin").write_bytes(b"y" * 234)
    os.link(base / "datasets" / "a" / "one.bin", base / "models" / "same.bin")
    outside = tmp_path / "big.bin"
    outside.write_bytes(b"z" * 50_000)
    os.symlink(outside, base / "models" / "link.bin")
    os.symlink(tmp_path, base / "models" / "link-dir")
    (home / "users" / "bob").mkdir(parents=True)
    (home / "users" / "bob" / "b.bin").write_bytes(b"b" * 77)
    assert quota.usage_bytes("alice") == 1234
    assert quota.usage_bytes("bob") == 77
    assert quota.usage_bytes("carol") == 0  # no folder yet
    with pytest.raises(ValueError):
        quota.usage_bytes("../bob")


def test_usage_ignores_files_and_folders_that_vanish(home, monkeypatch):
    base = home / "users" / "alice" / "datasets"
    (base / "going").mkdir(parents=True)
    (base / "going" / "inside.bin").write_bytes(b"g" * 500)
    (base / "gone.bin").write_bytes(b"v" * 300)
    (base / "kept.bin").write_bytes(b"k" * 40)
    real_scandir = os.scandir

    def vanishing(path):
        with real_scandir(path) as it:
            entries = list(it)
        for e in entries:  # removed after being listed, before being measured
            if e.name == "gone.bin":
                os.unlink(e.path)
            elif e.name == "going":
                os.unlink(os.path.join(e.path, "inside.bin"))
                os.rmdir(e.path)
        return contextlib.nullcontext(entries)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert quota.usage_bytes("alice") == 40


# ------------------------------------------------------------------------------------- settings

def test_default_env_override_and_unlimited(home, monkeypatch):
    assert quota.quota_bytes("alice") == 50 * quota.GB
    monkeypatch.setenv(quota.ENV_VAR, "2.5")
    assert quota.quota_bytes("alice") == 2_500_000_000
    monkeypatch.setenv(quota.ENV_VAR, "0")
    assert quota.quota_bytes("alice") is None
    quota.check_room("alice", 10 ** 15, "this dataset")  # no limit: anything fits
    for bad in ("lots", "-1", "nan", "inf"):
        monkeypatch.setenv(quota.ENV_VAR, bad)
        with pytest.raises(quota.QuotaError, match=quota.ENV_VAR):
            quota.quota_bytes("alice")
    monkeypatch.setenv(quota.ENV_VAR, "1")
    quota.set_quota("alice", 3)
    quota.set_quota("bob", 0)
    assert (quota.quota_bytes("alice"), quota.quota_bytes("bob"), quota.quota_bytes("carol")) == (3 * quota.GB, None, quota.GB)
    assert quota.overrides() == {"alice": 3 * quota.GB, "bob": 0}
    quota.set_quota("alice", None)
    assert quota.quota_bytes("alice") == quota.GB and quota.overrides() == {"bob": 0}
    assert not [p for p in home.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(quota.QuotaError):
        quota.set_quota("alice", -2)
    with pytest.raises(ValueError):
        quota.set_quota("../x", 1)


def test_check_room_and_storage_line(home, monkeypatch):
    (home / "users" / "alice").mkdir(parents=True)
    (home / "users" / "alice" / "f.bin").write_bytes(b"x" * 1500)
    monkeypatch.setenv(quota.ENV_VAR, "0.000002")  # 2 KB
    quota.check_room("alice", 500, "this dataset")  # exactly full is allowed
    with pytest.raises(quota.QuotaExceeded) as e:
        quota.check_room("alice", 501, "this dataset")
    assert str(e.value) == ("Not enough storage for this dataset (it needs about 501 bytes): you use 1.5 KB of your "
                            "2 KB; delete a dataset, experiment or model first.")
    assert quota.storage_line("alice") == "Storage: 1.5 KB of 2 KB"
    monkeypatch.setenv(quota.ENV_VAR, "0")
    assert quota.storage_line("alice") == "Storage: 1.5 KB (no limit)"


# ------------------------------------------------------------------------------ growth: datasets

def test_dataset_import_refused_leaves_root_identical(home, tmp_path, monkeypatch):
    from core import datasets
    src = write_blob_images(tmp_path / "src", n=12, size=64)
    (home / "users" / "alice").mkdir(parents=True)
    (home / "users" / "alice" / "old.bin").write_bytes(b"o" * 900)
    monkeypatch.setenv(quota.ENV_VAR, "0.000001")  # 1 KB
    before = tree(home)
    with pytest.raises(datasets.DatasetError) as e:
        datasets.import_dataset([str(src)], "Blobs", user="alice", resolution=32)
    refusal(e.value, "this dataset", "1 KB")
    assert "you use 900 bytes" in str(e.value)
    assert tree(home) == before
    # bob's own quota wins over the default: the same import fits, and his usage grows by what it stored
    quota.set_quota("bob", 1)
    report = datasets.import_dataset([str(src)], "Blobs", user="bob", resolution=32)
    assert report.accepted == 12 and quota.usage_bytes("bob") >= report.bytes_stored > 0


def test_packing_refused_leaves_root_identical(home, tmp_path):
    from core import datasets
    src = write_blob_images(tmp_path / "src", n=12, size=64)
    datasets.import_dataset([str(src)], "Blobs", user="alice")
    quota.set_quota("alice", limit_gb("alice", 50_000))  # 12 images: 36.9 KB at 32 px, 2.4 MB at 256 px
    before = tree(home)
    with pytest.raises(datasets.DatasetError) as e:
        datasets.pack_dataset("Blobs", 256, "alice")
    refusal(e.value, "a 256 px copy of this dataset", quota.limit_text(quota.quota_bytes("alice")))
    assert tree(home) == before
    assert datasets.pack_dataset("Blobs", 32, "alice").is_dir()


def test_cli_dataset_import_refused_in_one_line(home, tmp_path, monkeypatch, capsys):
    src = write_blob_images(tmp_path / "src", n=4, size=64)
    monkeypatch.setenv(quota.ENV_VAR, "0.000001")
    assert cli_main(["dataset", "import", str(src), "--name", "Blobs"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "".join(err)
    refusal(err[-1].removeprefix("error: "), "this dataset", "1 KB")


# --------------------------------------------------------------------------- growth: checkpoints

class _Server(http.server.ThreadingHTTPServer):
    """Serves ``body`` at any path; ``length=False`` ends the body by closing (no Content-Length)."""
    daemon_threads = True

    def __init__(self, body: bytes, length: bool):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                if server.length:
                    self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

        super().__init__(("127.0.0.1", 0), Handler)
        self.body, self.length = body, length

    def __enter__(self):
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@pytest.mark.parametrize("how", ["file", "url", "url without length"])
def test_checkpoint_import_refused_leaves_root_identical(home, tmp_path, monkeypatch, how):
    from core import checkpoints as ck
    body = os.urandom(100_000)  # never validated: the quota refuses it first
    (tmp_path / "big.pkl").write_bytes(body)
    monkeypatch.setenv(quota.ENV_VAR, "0.00005")  # 50 KB
    before = tree(home)
    with pytest.raises(ck.ImportRefused) as e:
        if how == "file":
            ck.import_checkpoint(tmp_path / "big.pkl", user="alice", thumbnail=False)
        else:
            with _Server(body, length=how == "url") as srv:
                ck.import_checkpoint(srv.url("big.pkl"), user="alice", thumbnail=False)
    refusal(e.value, "this checkpoint", "50 KB")
    assert tree(home) == before


def test_imported_checkpoint_counts_and_cli_refuses(home, tmp_path, monkeypatch, capsys):
    from core import checkpoints as ck
    path = make_checkpoint(tmp_path / "tiny.safetensors")
    rec = ck.import_checkpoint(path, name="tiny", user="alice", thumbnail=False)
    assert quota.usage_bytes("alice") == rec["bytes"] == path.stat().st_size
    assert quota.usage_bytes("bob") == 0
    quota.set_quota("alice", limit_gb("alice", 1_000))
    before = tree(home)
    assert cli_main(["checkpoints", "import", str(path), "--name", "again", "--user", "alice"]) == 2
    refusal(capsys.readouterr().err.strip().removeprefix("error: "), "this checkpoint",
            quota.limit_text(quota.quota_bytes("alice")))
    assert tree(home) == before


# -------------------------------------------------------------------------------- growth: models

def test_save_model_refused_leaves_root_identical(home, tmp_path):
    from core import models
    from tiny import write_tiny_checkpoint
    snap = write_tiny_checkpoint(tmp_path / "step-000004.safetensors")
    quota.set_quota("alice", limit_gb("alice", snap.stat().st_size - 1))
    before = tree(home)
    with pytest.raises(models.ModelError) as e:
        models.save_model("alice", weights_path=snap, name="Mine")
    refusal(e.value, "this model", quota.limit_text(quota.quota_bytes("alice")))
    assert tree(home) == before and models.list_models("alice") == []
    quota.set_quota("alice", 0)
    assert models.save_model("alice", weights_path=snap, name="Mine")  # no limit: saved


# --------------------------------------------------------------------------- growth: experiments

@pytest.fixture()
def run_home(home, tmp_path):
    ckpt = make_checkpoint(tmp_path / "tiny.safetensors")
    ds = make_dataset(tmp_path, "alice")
    return {"ckpt": str(ckpt), "ds": ds}


def _submit(run_home, steps: int):
    from core import jobs
    return jobs.submit_experiment("alice", title="t", dataset=run_home["ds"], checkpoint=run_home["ckpt"],
                                  steps=steps, options=dict(TINY_OPTIONS), allow_paths=True)


def _run_once():
    from core import jobs
    worker = jobs.Worker(device="cpu", poll=0.05)
    try:
        return worker.run_once()
    finally:
        worker.close()


def test_submit_refused_when_the_run_would_not_fit(home, run_home):
    from core import jobs
    from core.jobs.api import _generator_bytes
    ckpt = Path(run_home["ckpt"])
    g_ema = _generator_bytes(ckpt)
    assert 0 < g_ema < ckpt.stat().st_size / 2  # read from the native header: G_ema only
    quota.set_quota("alice", limit_gb("alice", 3 * g_ema))  # a 3-step run writes 3 snapshots and the state
    before = tree(home)
    with pytest.raises(jobs.JobsError) as e:
        _submit(run_home, steps=3)
    refusal(e.value, "this experiment", quota.limit_text(quota.quota_bytes("alice")))
    assert tree(home) == before and jobs.list_experiments("alice") == []


def test_run_stops_at_its_last_snapshot_when_storage_runs_out(home, run_home):
    """The quota shrinks below the usage after the step-2 snapshot: the step-4 snapshot is refused
    (and so is the resumable state alone), the run stops at step 2 with the sentence as its error;
    with room again, continue resumes and finishes. (With room for the state alone, the steps since
    the last snapshot are kept: tests/test_train.py.)"""
    from core import jobs
    exp_id = _submit(run_home, steps=4)
    worker = jobs.Worker(device="cpu", poll=0.05)
    orig = worker._set

    def shrink_after_step_3(exp, **fields):
        if fields.get("step") == 3 and "state" not in fields:
            quota.set_quota("alice", limit_gb("alice", -1_000))
        return orig(exp, **fields)

    worker._set = shrink_after_step_3
    try:
        rec = worker.run_once()
    finally:
        worker.close()
    assert (rec["state"], rec["step"]) == ("stopped", 2)
    refusal(rec["error"], "the next snapshot", quota.limit_text(quota.quota_bytes("alice")))
    assert [s["step"] for s in jobs.experiment_snapshots(exp_id, "alice")] == [0, 2]
    assert max(r["step"] for r in jobs.experiment_stats(exp_id, "alice")) == 2
    assert any(rec["error"] in line for line in jobs.experiment_log(exp_id, "alice"))

    files = {k: v for k, v in tree(home).items() if not k.startswith("queue" + os.sep)}
    with pytest.raises(jobs.JobsError) as e:  # still full: asking for more is refused up front
        jobs.continue_experiment(exp_id, "alice", 4)
    refusal(e.value, "2 more steps", quota.limit_text(quota.quota_bytes("alice")))
    assert {k: v for k, v in tree(home).items() if not k.startswith("queue" + os.sep)} == files
    assert jobs.get_experiment(exp_id, "alice")["state"] == "stopped"
    quota.set_quota("alice", None)
    jobs.continue_experiment(exp_id, "alice", 4)
    rec = _run_once()
    assert (rec["state"], rec["step"], rec["error"]) == ("finished", 4, None)
    assert [s["step"] for s in jobs.experiment_snapshots(exp_id, "alice")] == [0, 2, 4]


# ------------------------------------------------------------------------------------------ CLI

def test_cli_users_quota(home, tmp_path, capsys):
    (home / "users" / "alice").mkdir(parents=True)
    (home / "users" / "alice" / "f.bin").write_bytes(b"x" * 1_200_000)
    assert cli_main(["users", "quota", "alice"]) == 0
    assert capsys.readouterr().out.strip() == "alice: 1.2 MB of 50 GB (default quota)"
    assert cli_main(["users", "quota", "alice", "--gb", "1.5"]) == 0
    assert capsys.readouterr().out.strip() == "alice: 1.2 MB of 1.5 GB (own quota)"
    assert quota.quota_bytes("alice") == 1_500_000_000
    assert cli_main(["users", "quota", "alice", "--gb", "0"]) == 0
    assert capsys.readouterr().out.strip() == "alice: 1.2 MB (no limit) (own quota)"
    assert cli_main(["users", "quota", "alice", "--default"]) == 0
    assert capsys.readouterr().out.strip() == "alice: 1.2 MB of 50 GB (default quota)"
    assert quota.overrides() == {}

    from core.users import add_user
    auth = tmp_path / "users.json"
    add_user(auth, "alice", "correct horse battery")
    for argv, words in ((["alice", "--gb", "-1"], "--gb must be a number"),
                        (["alice", "--gb", "lots"], "--gb must be a number"),
                        (["../alice", "--gb", "1"], "Invalid user name"),
                        (["bob", "--gb", "1", "--file", str(auth)], "No user named 'bob'")):
        assert cli_main(["users", "quota", *argv]) == 2, argv
        captured = capsys.readouterr()
        assert captured.out == "" and words in captured.err and len(captured.err.strip().splitlines()) == 1
    assert quota.overrides() == {}
    assert cli_main(["users", "quota", "alice", "--gb", "2", "--file", str(auth)]) == 0
    capsys.readouterr()
    assert cli_main(["users", "list", "--file", str(auth), "--usage"]) == 0
    assert capsys.readouterr().out.strip() == "alice\t1.2 MB of 2 GB"
    assert cli_main(["users", "list", "--file", str(auth)]) == 0
    assert capsys.readouterr().out.split() == ["alice"]


# ------------------------------------------------------------------------------------------- UI

def test_datasets_tab_storage_line(home, monkeypatch):
    from ui.datasets import storage_view
    (home / "users" / "alice").mkdir(parents=True)
    (home / "users" / "alice" / "f.bin").write_bytes(b"x" * 2_500_000)
    assert storage_view("alice") == "Storage: 2.5 MB of 50 GB"
    monkeypatch.setenv(quota.ENV_VAR, "plenty")
    assert storage_view("alice").startswith(f"{quota.ENV_VAR} must be a number of GB")
