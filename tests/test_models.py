"""My Models: save with provenance, ownership (private by default), hostile names and ids."""
from __future__ import annotations

import json

import pytest

TINY_G = dict(img_resolution=32, channel_base=256, channel_max=64, mapping_layers=2, z_dim=32, w_dim=32)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    """A run-style snapshot: step-000010.safetensors (G_ema + metadata) and its grid PNG."""
    import torch
    from PIL import Image

    from core.stylegan import save_checkpoint
    from core.stylegan.generator import Generator
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("run") / "snapshots"
    folder.mkdir()
    path = folder / "step-000010.safetensors"
    save_checkpoint(path, G_ema=Generator(**TINY_G),
                    metadata={"step": 10, "experiment": "f" * 32, "checkpoint": "default", "dataset": "ds1",
                              "crop": "center", "config": {"steps": 20}})
    Image.new("RGB", (64, 64), (10, 20, 30)).save(path.with_suffix(".png"))
    return path


def _save(snapshot, user="alice", name="My cats"):
    from core.models import save_model
    return save_model(user, weights_path=snapshot, name=name,
                      source={"experiment": "e" * 32, "step": 10, "dataset": "cats", "base_model": "ffhq-256",
                              "steps": 20})


def test_save_list_get_and_export(home, snapshot, tmp_path):
    from core.models import export_model, get_model, list_models, model_weights_path
    mid = _save(snapshot)
    assert len(mid) == 32
    rec = get_model(mid, "alice")
    assert rec["name"] == "My cats" and rec["public"] is False and rec["mine"] and rec["owner"] == "alice"
    provenance = (rec["resolution"], rec["dataset"], rec["base_model"], rec["steps"], rec["step"])
    assert provenance == (32, "cats", "ffhq-256", 20, 10)
    assert model_weights_path(mid, "alice").read_bytes() == snapshot.read_bytes()
    assert [m["id"] for m in list_models("alice")] == [mid]
    out = export_model(mid, "alice", tmp_path / "export")
    assert out.name == "My cats.safetensors" and out.read_bytes() == snapshot.read_bytes()
    assert json.loads(out.with_suffix(".json").read_text())["id"] == mid
    from core.stylegan import load_checkpoint
    assert load_checkpoint(out).resolution == 32


def test_provenance_from_snapshot_metadata(home, snapshot):
    from core.models import get_model, save_model
    rec = get_model(save_model("alice", weights_path=snapshot, name="plain"), "alice")
    assert (rec["base_model"], rec["dataset"], rec["steps"], rec["step"], rec["experiment"]) == \
        ("default", "ds1", 20, 10, "f" * 32)


def test_cli_save_takes_the_snapshots_provenance_and_the_flags_instead(home, snapshot, capsys):
    from core.cli import main as cli_main
    from core.models import get_model
    assert cli_main(["models", "save", str(snapshot), "--name", "plain", "--user", "alice"]) == 0
    rec = get_model(capsys.readouterr().out.strip(), "alice")
    assert (rec["dataset"], rec["base_model"], rec["step"], rec["experiment"]) == ("ds1", "default", 10, "f" * 32)
    assert cli_main(["models", "save", str(snapshot), "--name", "named", "--dataset", "cats", "--user", "alice"]) == 0
    rec = get_model(capsys.readouterr().out.strip(), "alice")
    assert (rec["dataset"], rec["base_model"], rec["step"], rec["experiment"]) == ("cats", "default", 10, "f" * 32)


def test_ownership_private_public(home, snapshot):
    from core.models import (ModelNotFound, ModelNotOwner, delete_model, export_model, get_model, list_models,
                             model_weights_path, rename_model, set_public)
    mid = _save(snapshot, "alice")
    # private: B sees nothing, and missing and forbidden read the same
    assert list_models("bob") == []
    for call in (lambda: get_model(mid, "bob"), lambda: model_weights_path(mid, "bob"),
                 lambda: export_model(mid, "bob", home / "x"), lambda: rename_model(mid, "bob", "x"),
                 lambda: delete_model(mid, "bob"), lambda: set_public(mid, "bob", True)):
        with pytest.raises(ModelNotFound) as e:
            call()
        assert str(e.value) == "No such model"
    with pytest.raises(ModelNotFound) as e2:
        get_model("0" * 32, "alice")
    assert str(e2.value) == "No such model"
    # public: B reads, downloads, but cannot change
    set_public(mid, "alice", True)
    seen = list_models("bob")
    assert [m["id"] for m in seen] == [mid] and seen[0]["mine"] is False and seen[0]["owner"] == "alice"
    assert model_weights_path(mid, "bob").is_file()
    assert list_models("bob", include_public=False) == []
    for call in (lambda: rename_model(mid, "bob", "mine now"), lambda: delete_model(mid, "bob"),
                 lambda: set_public(mid, "bob", False)):
        with pytest.raises(ModelNotOwner):
            call()
    assert get_model(mid, "alice")["name"] == "My cats"
    # private again: gone for B; the owner renames and deletes, files freed
    set_public(mid, "alice", False)
    with pytest.raises(ModelNotFound):
        get_model(mid, "bob")
    rename_model(mid, "alice", "  Renamed  ")
    assert get_model(mid, "alice")["name"] == "Renamed"
    folder = model_weights_path(mid, "alice").parent
    delete_model(mid, "alice")
    assert not folder.exists() and list_models("alice") == []
    with pytest.raises(ModelNotFound):
        get_model(mid, "alice")


def test_others_see_a_public_model_without_its_provenance(home, snapshot, tmp_path):
    """Issue 17: someone else's public model shows no experiment id, dataset, crop or imported base
    model, on its card or in the file they download; the owner keeps all of it."""
    import torch

    from core.models import PUBLIC_FIELDS, delete_model, download_path, export_model, get_model, list_models, \
        save_model, set_public
    from core.stylegan import load_checkpoint, read_native_metadata
    mid = _save(snapshot, "alice")                          # experiment e*32, dataset "cats", base "ffhq-256"
    set_public(mid, "alice", True)
    theirs = get_model(mid, "bob")
    assert set(theirs) - {"mine", "weights_path", "grid_path"} == set(PUBLIC_FIELDS) | {"base_model"}
    assert theirs["base_model"] == "ffhq-256" and theirs["step"] == 10 and not theirs["mine"]  # catalog: public
    assert [sorted(m) for m in list_models("bob")] == [sorted(theirs)]
    mine = get_model(mid, "alice")
    assert (mine["experiment"], mine["dataset"], mine["source"]["dataset"]) == ("e" * 32, "cats", "cats")

    path, name = download_path(mid, "bob")
    assert name == "My cats.safetensors" and path.parent.name == "public_copies"
    header = read_native_metadata(path)
    assert header["metadata"] == {"step": 10} and header["g_kwargs"] == read_native_metadata(snapshot)["g_kwargs"]
    raw = path.read_bytes()
    assert b"f" * 32 not in raw and b"ds1" not in raw and b"center" not in raw   # the snapshot's own provenance
    a, b = load_checkpoint(path).G_ema.state_dict(), load_checkpoint(snapshot).G_ema.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)     # the same weights
    assert download_path(mid, "bob")[0] == path                                 # made once
    assert download_path(mid, "alice")[0].read_bytes() == snapshot.read_bytes()  # the owner: the native file
    out = export_model(mid, "bob", tmp_path / "bob-export")
    assert out.read_bytes() == raw and "experiment" not in json.loads(out.with_suffix(".json").read_text())
    set_public(mid, "alice", False)
    assert not path.exists()                                                    # unshared: the copy goes

    imported = save_model("alice", weights_path=snapshot, name="From my import",
                          source={"base_model": "alicetiny", "dataset": "cats", "experiment": "e" * 32})
    set_public(imported, "alice", True)
    assert "base_model" not in get_model(imported, "bob")                       # an imported checkpoint's name
    assert get_model(imported, "alice")["base_model"] == "alicetiny"
    download_path(imported, "bob")
    delete_model(imported, "alice")
    assert not list((home / "public_copies").iterdir())                         # deleted: the copy goes too


def test_stale_public_index_is_not_trusted(home, snapshot):
    from core.models import ModelNotFound, get_model
    from core.storage import atomic_write_json
    mid = _save(snapshot, "alice")
    atomic_write_json(home / "public_models.json", {mid: "alice"})  # forged/stale: record says private
    with pytest.raises(ModelNotFound):
        get_model(mid, "bob")


@pytest.mark.parametrize("name", ["", "   ", "a" * 81, "bad\0name", "line\nbreak", "tab\there", 42, None])
def test_hostile_names_refused(home, snapshot, name):
    from core.models import ModelError, save_model
    with pytest.raises(ModelError):
        save_model("alice", weights_path=snapshot, name=name)
    folder = home / "users" / "alice" / "models"
    assert not folder.exists() or not any(p.name != "index.json" for p in folder.iterdir())


def test_path_like_names_are_display_text_only(home, snapshot, tmp_path):
    from core.models import export_model, get_model, rename_model
    mid = _save(snapshot, "alice", name="../../etc/passwd")
    assert get_model(mid, "alice")["name"] == "../../etc/passwd"
    rename_model(mid, "alice", "Ünïcode ✨ 模型")
    out = export_model(mid, "alice", tmp_path / "exp")
    assert out.parent == tmp_path / "exp"
    assert sorted(p.name for p in (home / "users" / "alice" / "models").iterdir()) == sorted(["index.json", mid])


@pytest.mark.parametrize("bad_id", ["../alice/models", "0" * 31, "A" * 32, "", None, "0" * 32 + "/..", 123])
def test_hostile_ids(home, snapshot, bad_id):
    from core.models import ModelNotFound, delete_model, get_model
    _save(snapshot, "alice")
    with pytest.raises(ModelNotFound):
        get_model(bad_id, "alice")
    with pytest.raises(ModelNotFound):
        delete_model(bad_id, "alice")


def test_not_a_snapshot_refused(home, tmp_path):
    from core.models import ModelError, save_model
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(ModelError):
        save_model("alice", weights_path=bad, name="x")


def test_grid_rendered_when_snapshot_has_none(home, snapshot, tmp_path):
    import shutil

    from PIL import Image

    from core.models import get_model, save_model
    lone = tmp_path / "lone.safetensors"
    shutil.copyfile(snapshot, lone)
    mid = save_model("alice", weights_path=lone, name="lone")
    with Image.open(get_model(mid, "alice")["grid_path"]) as im:
        assert im.size == (64, 64)


def test_check_models_repairs(home, snapshot):
    from core.models import check_models, list_models
    from core.storage import atomic_write_json
    mid = _save(snapshot, "alice")
    models = home / "users" / "alice" / "models"
    (models / (".tmp-" + "1" * 32)).mkdir()
    atomic_write_json(models / "index.json", {"ids": ["2" * 32]})
    first = check_models("alice")                              # the index is repaired (2 lines) ...
    assert len(first) == 2 and not any(".tmp-" in line for line in first), first
    assert (models / (".tmp-" + "1" * 32)).is_dir()          # ... a young temp folder is left: maybe a save elsewhere
    done = check_models("alice", grace_s=0)
    assert done == ["removed half-written .tmp-" + "1" * 32]
    assert [m["id"] for m in list_models("alice")] == [mid]
    assert check_models("alice", grace_s=0) == []


def test_cli_models(home, snapshot, capsys, tmp_path):
    from core.cli import main
    mid = _save(snapshot, "alice")
    assert main(["models", "list", "--user", "alice"]) == 0
    assert mid in capsys.readouterr().out
    assert main(["models", "rename", mid, "New name", "--user", "alice"]) == 0
    assert main(["models", "public", mid, "--user", "alice"]) == 0
    assert main(["models", "show", mid, "--user", "bob"]) == 0
    assert "New name" in capsys.readouterr().out
    assert main(["models", "delete", mid, "--user", "bob", "--yes"]) == 2
    assert "owner" in capsys.readouterr().err
    assert main(["models", "private", mid, "--user", "alice"]) == 0
    assert main(["models", "show", mid, "--user", "bob"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No such model" in err
    assert main(["models", "export", mid, "--user", "alice", "--out", str(tmp_path / "e")]) == 0
    assert main(["models", "delete", mid, "--user", "alice", "--yes"]) == 0
