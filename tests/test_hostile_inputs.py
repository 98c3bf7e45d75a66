"""Hostile inputs against the core APIs and the CLI: each is refused with a clear one-line message,
the data root is byte-identical before and after (log and lock files aside), and nothing is
written outside the test's temporary folder.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.datasets_fixtures import bomb_png
from tests.tiny import write_blob_images, write_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent
SLIP = "atelier_zip_slip_probe.png"


class _Evil:
    """Unpickling this runs a command that leaves a marker file: loaders must never do it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    home = base / "home"
    old = {k: os.environ.get(k) for k in ("ATELIER_HOME", "OMP_NUM_THREADS")}
    os.environ.update(ATELIER_HOME=str(home), OMP_NUM_THREADS="1")
    from core import datasets, jobs, models
    from core.playground import clear_caches
    imgs = write_blob_images(base / "imgs", n=4)
    datasets.import_dataset([imgs], "Blobs", resolution=32)
    ckpt = write_tiny_checkpoint(base / "tiny.safetensors")
    model_id = models.save_model("local", weights_path=ckpt, name="Tiny")
    exp_id = jobs.submit_experiment("local", title="Run", dataset="Blobs", checkpoint=str(ckpt), steps=10,
                                    allow_paths=True)
    files = _hostile_files(base)
    yield {"base": base, "home": home, "imgs": imgs, "ckpt": ckpt, "model": model_id, "exp": exp_id, **files}
    clear_caches()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _hostile_files(base: Path) -> dict:
    png = (base / "imgs" / "img000.png").read_bytes()
    slip = base / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr(f"../../{SLIP}", png)
        zf.writestr(f"/tmp/{SLIP}", png)
        zf.writestr(f"..\\..\\{SLIP}", png)
    bomb_zip = base / "bomb.zip"
    with zipfile.ZipFile(bomb_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("big.png", b"\0" * (40 * 1024 * 1024))
    bomb_dir = base / "bomb_imgs"
    bomb_dir.mkdir()
    (bomb_dir / "bomb.png").write_bytes(bomb_png())
    marker = base / "PWNED"
    evil = base / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": _Evil(marker), "G": None, "D": None}))
    evil_pt = base / "evil.pt"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:   # a torch-style zip whose data.pkl carries code
        zf.writestr("archive/data.pkl", pickle.dumps(_Evil(marker)))
        zf.writestr("archive/version", "3\n")
    evil_pt.write_bytes(buf.getvalue())
    npy_obj = io.BytesIO()
    np.save(npy_obj, np.array([_Evil(marker)], dtype=object), allow_pickle=True)
    return {"slip": slip, "bomb_zip": bomb_zip, "bomb_dir": bomb_dir, "marker": marker, "evil": evil,
            "evil_pt": evil_pt, "npy_obj": npy_obj.getvalue()}


def _digest(home: Path) -> dict[str, str]:
    out = {}
    for p in sorted(home.rglob("*")):
        if p.is_file() and not p.name.endswith((".lock", "log.txt")) and not p.name.startswith("cache.db-"):
            out[str(p.relative_to(home))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _refused(world, fn, *errors, match: str | None = None) -> str:
    """Run fn; it must raise one of ``errors`` with a one-line message; the data root must not change."""
    before = _digest(world["home"])
    with pytest.raises(errors) as info:
        fn()
    message = str(info.value)
    assert message and "\n" not in message and len(message) < 300, message
    assert "Traceback" not in message
    if match:
        assert match.lower() in message.lower(), message
    assert _digest(world["home"]) == before
    assert not world["marker"].exists()
    return message


# ---- archives and images ---------------------------------------------------------------------

def test_zip_slip_refused(world):
    from core.datasets import DatasetError, import_dataset
    msg = _refused(world, lambda: import_dataset([world["slip"]], "Slip"), DatasetError, match="unsafe path")
    assert "3 files" in msg
    for where in (world["base"], world["base"].parent, world["home"], Path("/tmp"), Path.cwd()):
        assert not (where / SLIP).exists()


def test_zip_bomb_refused(world):
    from core.datasets import DatasetError, import_dataset
    _refused(world, lambda: import_dataset([world["bomb_zip"]], "Bomb"), DatasetError, match="zip bomb")


def test_decompression_bomb_image_refused(world):
    from core.datasets import DatasetError, import_dataset
    _refused(world, lambda: import_dataset([world["bomb_dir"]], "Bomb"), DatasetError, match="decompression bomb")


def test_not_a_zip_refused(world):
    from core.datasets import DatasetError, import_dataset
    fake = world["base"] / "fake.zip"
    fake.write_bytes(b"PK\x03\x04 not really")
    _refused(world, lambda: import_dataset([fake], "Fake"), DatasetError, match="not a readable zip")


# ---- pickles with code -----------------------------------------------------------------------

@pytest.mark.parametrize("which", ["evil", "evil_pt"])
def test_pickle_with_code_not_loaded(world, which):
    from core.stylegan import CheckpointError, load_checkpoint
    _refused(world, lambda: load_checkpoint(world[which]), CheckpointError)


@pytest.mark.parametrize("which", ["evil", "evil_pt"])
def test_pickle_with_code_not_imported(world, which):
    from core.checkpoints import CheckpointsError, import_checkpoint
    _refused(world, lambda: import_checkpoint(world[which], thumbnail=False), CheckpointsError,
             match="nothing was kept")


def test_pickle_or_foreign_file_not_saved_as_model(world):
    from core.models import ModelError, save_model
    _refused(world, lambda: save_model("local", weights_path=world["evil"], name="x"), ModelError)
    _refused(world, lambda: save_model("local", weights_path="/etc/passwd", name="x"), ModelError)


# ---- vectors and the playground ----------------------------------------------------------------

BAD_VECTORS = [
    "1 2 nan", "1e999 0", "x" * (2 << 20), " ".join(["1"] * 100_000), "rm -rf /", "", b"\x93NUMPY garbage",
    b"\0" * (2 << 20), "../../etc/passwd.npy",
]


@pytest.mark.parametrize("value", BAD_VECTORS, ids=range(len(BAD_VECTORS)))
def test_bad_vectors_refused(world, value):
    from core.playground import VectorError, load_vector
    _refused(world, lambda: load_vector(value), VectorError)


def test_pickled_npy_refused(world):
    from core.playground import VectorError, load_vector
    _refused(world, lambda: load_vector(world["npy_obj"]), VectorError, match="pickled")


BAD_RENDERS = [
    dict(vector=[1e30] * 32), dict(vector=np.zeros(10 ** 6)), dict(vector=[[1, 2], [3]]), dict(vector=["a"] * 32),
    dict(vector=np.full(32, np.nan)), dict(seed=-1), dict(seed=2 ** 40), dict(seed="1; rm -rf /"), dict(seed=1.5),
    dict(psi=float("nan")), dict(psi=1e9), dict(cutoff=-3), dict(cutoff=10 ** 9), dict(noise_mode="../x"),
    dict(class_idx=99), dict(mix_seed=-5), dict(mix_seed=0, mix_layers=(5, 10 ** 9)),
    dict(direction=("sefa", 10 ** 9), direction_strength=1.0), dict(direction=("x", 0), direction_strength=1.0),
    dict(direction=("sefa", 0), direction_strength=float("inf")),
]


@pytest.mark.parametrize("args", BAD_RENDERS, ids=range(len(BAD_RENDERS)))
def test_bad_render_args_are_errors_not_crashes(world, args):
    from core.playground import RenderArgs, render
    before = _digest(world["home"])
    result = render(RenderArgs(model=str(world["ckpt"]), **args))
    assert result["image"] is None and result["error"] and "\n" not in result["error"], result
    assert _digest(world["home"]) == before


def test_render_of_a_non_model_path(world):
    from core.playground import RenderArgs, render
    for model in ("/etc/passwd", str(world["evil"]), "../../nowhere.safetensors"):
        result = render(RenderArgs(model=model))
        assert result["image"] is None and result["error"] and "\n" not in result["error"]
    assert not world["marker"].exists()


# ---- numbers for training ----------------------------------------------------------------------

BAD_OPTIONS = [
    dict(steps=-1), dict(steps=0), dict(steps=10 ** 9), dict(steps=float("nan")), dict(steps="abc"), dict(steps=2.5),
    dict(steps=None), dict(options={"batch": 10 ** 6}), dict(options={"batch": "8"}), dict(options={"batch": -4}),
    dict(options={"grid_seeds": list(range(10 ** 5))}), dict(options={"grid_seeds": [-1]}),
    dict(options={"seed": -1}), dict(options={"seed": 2 ** 40}), dict(options={"ada_interval": 0}),
    dict(options={"metric_images": -5}), dict(options={"lr_g": float("nan")}), dict(options={"lr_d": 5}),
    dict(options={"ema_kimg": float("nan")}), dict(options={"time_budget_s": float("inf")}),
    dict(options={"time_budget_s": -1}), dict(options={"r1_gamma": float("inf")}), dict(options={"pl_weight": -1}),
    dict(options={"ada_target": 2}), dict(options={"mirror": "yes"}), dict(options={"snapshot_every": -1}),
    dict(options={"freeze_d": 10 ** 6}), dict(options={"precision": "fp128"}), dict(options={"aug": "../x"}),
    dict(options={"device": "../../x"}), dict(options={"scratch_arch": {"img_resolution": 10 ** 9}}),
    dict(options={"metrics": ["rm -rf"]}), dict(options="steps=5"), dict(crop="../x"),
]


@pytest.mark.parametrize("kw", BAD_OPTIONS, ids=range(len(BAD_OPTIONS)))
def test_out_of_range_training_options_refused(world, kw):
    from core.jobs import JobsError, submit_experiment
    args = dict(title="t", dataset="Blobs", checkpoint=str(world["ckpt"]), steps=10, allow_paths=True, max_jobs=99)
    args.update(kw)
    _refused(world, lambda: submit_experiment("local", **args), JobsError)


@pytest.mark.parametrize("kw", [dict(steps=0), dict(steps=25_001), dict(batch=-1), dict(seed=-1), dict(lr_g=-0.1),
                                dict(style_mixing=1.5), dict(grid_seeds=()), dict(grid_seeds=tuple(range(65))),
                                dict(steps=True), dict(time_budget_s=float("nan"))])
def test_train_config_refuses_out_of_range(kw):
    from core.stylegan.train_config import ConfigError, TrainConfig
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kw).validate()
    field = next(iter(kw))
    assert str(info.value).split(":")[0] in (field, "lr", "batch_gpu") and "\n" not in str(info.value)


def test_continue_with_bad_steps_refused(world):
    from core.jobs import JobsError, continue_experiment, stop_experiment
    stop_experiment(world["exp"], "local")
    for steps in (-5, 0, 2.5, "many", 10 ** 9):
        _refused(world, lambda: continue_experiment(world["exp"], "local", steps), JobsError)


def test_client_cannot_point_the_worker_at_a_file(world):
    """Through the API (allow_paths off, as the app calls it) a checkpoint is a name, never a path."""
    from core.jobs import JobsError, estimate_experiment, submit_experiment
    from core.checkpoints import CheckpointsError
    other = world["home"] / "users" / "local" / "models" / world["model"] / "model.safetensors"
    for target in (str(world["ckpt"]), str(other), "/etc/passwd", "../../tiny.safetensors"):
        _refused(world, lambda: submit_experiment("mallory", title="t", dataset="Blobs", checkpoint=target),
                 JobsError)
        _refused(world, lambda: submit_experiment("local", title="t", dataset="Blobs", checkpoint=target, max_jobs=99),
                 JobsError)
        _refused(world, lambda: estimate_experiment("local", target, 10), CheckpointsError)


# ---- names, titles and ids -------------------------------------------------------------------

NASTY_NAMES = ["../x", "..", "a/b", "a\\b", "a\0b", "x" * 10_000, "", "   ", "ok\nname", "\u202eevil", "\x07"]


@pytest.mark.parametrize("name", NASTY_NAMES, ids=range(len(NASTY_NAMES)))
def test_dataset_names(world, name):
    from core.datasets import DatasetError, import_dataset
    _refused(world, lambda: import_dataset([world["imgs"]], name), DatasetError)


@pytest.mark.parametrize("name", NASTY_NAMES + ["é", "-x", ".hidden"], ids=range(len(NASTY_NAMES) + 3))
def test_checkpoint_import_names(world, name):
    from core.checkpoints import CheckpointsError, import_checkpoint
    _refused(world, lambda: import_checkpoint(world["ckpt"], name=name, thumbnail=False), CheckpointsError)


@pytest.mark.parametrize("name", ["a\0b", "x" * 10_000, "", "   ", "ok\nname", "\x07", None, 42])
def test_model_names(world, name):
    from core.models import ModelError, rename_model, save_model
    _refused(world, lambda: save_model("local", weights_path=world["ckpt"], name=name), ModelError)
    _refused(world, lambda: rename_model(world["model"], "local", name), ModelError)


@pytest.mark.parametrize("title", ["a\0b", "x" * 10_000, "ok\nname", "\x1b[31mred", 42])
def test_experiment_titles(world, title):
    from core.jobs import JobsError, submit_experiment
    _refused(world, lambda: submit_experiment("local", title=title, dataset="Blobs", checkpoint=str(world["ckpt"]),
                                              allow_paths=True, max_jobs=99), JobsError)


def test_path_like_display_names_stay_text(world):
    """'../x' or unicode is fine as a display name: it is stored as text and never becomes a path."""
    from core import models
    outside = world["home"].parent
    before = sorted(p.name for p in outside.iterdir())
    model_id = models.save_model("local", weights_path=world["ckpt"], name="../../escape")
    rec = models.get_model(model_id, "local")
    assert rec["name"] == "../../escape" and Path(rec["weights_path"]).parent.name == model_id
    models.rename_model(model_id, "local", "日本語 🎨 ../..")
    assert sorted(p.name for p in outside.iterdir()) == before
    models.delete_model(model_id, "local")


@pytest.mark.parametrize("bad_id", ["../x", "../../etc/passwd", "a" * 32, "A" * 32, "", None, 7, "a\0b", "x" * 10_000])
def test_ids_are_never_paths(world, bad_id):
    from core import datasets, jobs, models
    _refused(world, lambda: models.get_model(bad_id, "local"), models.ModelError)
    _refused(world, lambda: models.delete_model(bad_id, "local"), models.ModelError)
    _refused(world, lambda: jobs.get_experiment(bad_id, "local"), jobs.JobsError)
    _refused(world, lambda: jobs.delete_experiment(bad_id, "local"), jobs.JobsError)
    _refused(world, lambda: datasets.delete_dataset(bad_id, "local"), datasets.DatasetError)


@pytest.mark.parametrize("user", ["../x", "..", "a/b", "", ".hidden", "a\0b"])
def test_user_names_are_never_paths(world, user):
    from core import datasets, jobs, models
    _refused(world, lambda: datasets.import_dataset([world["imgs"]], "New", user=user), ValueError)
    _refused(world, lambda: models.list_models(user) and None or models.get_model(world["model"], user),
             models.ModelError)
    _refused(world, lambda: jobs.submit_experiment(user, title="t", dataset="Blobs", checkpoint="default"),
             ValueError, jobs.JobsError)


def test_other_users_items_read_as_missing(world):
    from core import datasets, jobs, models
    _refused(world, lambda: models.get_model(world["model"], "mallory"), models.ModelNotFound)
    _refused(world, lambda: models.rename_model(world["model"], "mallory", "mine"), models.ModelNotFound)
    _refused(world, lambda: jobs.get_experiment(world["exp"], "mallory"), jobs.NotFound)
    _refused(world, lambda: jobs.delete_experiment(world["exp"], "mallory"), jobs.NotFound)
    _refused(world, lambda: datasets.get_dataset("Blobs", "mallory"), datasets.DatasetNotFound)


# ---- the command line ----------------------------------------------------------------------------

def _cli(world, *args, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, ATELIER_HOME=str(world["home"]), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True, cwd=world["base"],
                          env=env, input=stdin, timeout=120)


def test_cli_refusals_are_one_line(world):
    w = world
    cases = [
        ("dataset", "import", str(w["slip"]), "--name", "Slip"),
        ("dataset", "import", str(w["imgs"]), "--name", "../x"),
        ("dataset", "import", str(w["imgs"]), "--name", "x", "--resolution", "33"),
        ("checkpoints", "import", str(w["evil"]), "--no-thumbnail"),
        ("checkpoints", "import", str(w["ckpt"]), "--name", "../x", "--no-thumbnail"),
        ("train", "--dataset", "Blobs", "--checkpoint", str(w["ckpt"]), "--steps", "999999", "--out", "run"),
        ("train", "--dataset", "Blobs", "--checkpoint", str(w["evil"]), "--steps", "5", "--out", "run"),
        ("models", "rename", "../../x", "new"),
        ("users", "add", "../x", "--password-stdin"),
    ]
    before = _digest(w["home"])
    for args in cases:
        r = _cli(w, *args, stdin="a long enough password\n")
        assert r.returncode == 2, (args, r.returncode, r.stderr[-2000:])
        lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "Warning" not in ln]
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, r.stderr[-2000:])
    assert _digest(w["home"]) == before
    assert not (w["base"] / "run").exists() or not any((w["base"] / "run").iterdir())
    assert not w["marker"].exists()
