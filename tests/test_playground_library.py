"""Each user's vectors and named directions; the Playground view (sources, edits, keep as vector)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.tiny import write_tiny_checkpoint


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def key(home, tmp_path):
    """A checkpoint alice imported: the key the app uses for it."""
    from core.checkpoints import import_checkpoint
    import_checkpoint(write_tiny_checkpoint(tmp_path / "tiny.safetensors"), name="tiny", user="alice", thumbnail=False)
    return "checkpoint:tiny"


def test_library_vectors_are_private_named_and_whole(home, key):
    from core.playground import PlaygroundError, library
    from core.playground.view import View, keep_view
    rec, said = keep_view("alice", View(key, seed=5, psi=0.7), "five")
    assert rec["space"] == "z" and "any ψ" in said
    assert [r["name"] for r in library.list_vectors("alice")] == ["five"]
    assert library.list_vectors("bob") == []
    with pytest.raises(library.NotFound):
        library.get_vector("bob", rec["id"])                              # alice's id means nothing to bob
    for fn, args in ((library.rename, ("bob", "vectors", rec["id"], "mine")), (library.delete, ("bob", "vectors", rec["id"])),
                     (library.export_vector, ("bob", rec["id"], home))):
        with pytest.raises(library.NotFound):
            fn(*args)
    with pytest.raises(PlaygroundError, match="exists already"):
        keep_view("alice", View(key, seed=6), "five")
    with pytest.raises(PlaygroundError, match="name"):
        keep_view("alice", View(key, seed=6), "  ")
    for bad in ("../x", "x" * 32, "0" * 31, None):
        with pytest.raises(library.NotFound):
            library.get_vector("alice", bad)
    assert library.rename("alice", "vectors", "five", "number five")["name"] == "number five"
    path = library.export_vector("alice", rec["id"], home / "out")
    assert path.name == "number_five-z.npy" and np.load(path, allow_pickle=False).shape == (32,)
    library.delete("alice", "vectors", rec["id"])
    assert library.list_vectors("alice") == [] and not list((home / "users" / "alice" / "playground" / "vectors").iterdir())


def test_kept_vectors_render_as_they_were_kept(home, key):
    from core.playground import library
    from core.playground.view import View, keep_view, render_view
    view = View(key, seed=3, psi=0.6, mix_seed=9, mix_layers="0-2", direction_set="sefa:all", strengths=(2.0, 0, -1.5))
    before = render_view("alice", view)
    rec, said = keep_view("alice", view, "mixed")
    assert rec["space"] == "w" and rec["shape"] == [8, 32] and "as w" in said
    again = render_view("alice", View(key, source=f"vector:{rec['id']}", psi=0.6))
    assert np.abs(again["image"].astype(int) - before["image"].astype(int)).max() <= 1
    assert "as z" in keep_view("alice", View(key, seed=3, psi=0.6), "plain")[1]
    z_rec = library.find("alice", "vectors", "plain")
    for psi in (0.5, 1.0):                                                  # a z renders like its seed at any ψ
        a = render_view("alice", View(key, source=f"vector:{z_rec['id']}", psi=psi))["image"]
        assert np.array_equal(a, render_view("alice", View(key, seed=3, psi=psi))["image"])


def test_pasted_w_and_import_export_npy(home, key, tmp_path):
    from core.playground import PlaygroundError
    from core.playground.view import View, import_vector, render_view
    w = render_view("alice", View(key, seed=4, psi=1.0))["w"]
    np.save(tmp_path / "w.npy", w)
    rec = import_vector("alice", key, str(tmp_path / "w.npy"), "imported")
    assert rec["space"] == "w" and rec["source"] == "import"
    a = render_view("alice", View(key, source=f"vector:{rec['id']}", psi=1.0))["image"]
    b = render_view("alice", View(key, seed=4, psi=1.0))["image"]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    pasted = render_view("alice", View(key, vector_text=" ".join(map(str, w.reshape(-1))), psi=1.0))["image"]
    assert np.abs(pasted.astype(int) - b.astype(int)).max() <= 1
    np.save(tmp_path / "odd.npy", np.zeros(7))
    with pytest.raises(PlaygroundError, match="w vector"):
        import_vector("alice", key, str(tmp_path / "odd.npy"), "odd")
    np.save(tmp_path / "evil.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(PlaygroundError, match="pickled"):
        import_vector("alice", key, str(tmp_path / "evil.npy"), "evil")
    assert render_view("bob", View(key, seed=1))["error"]                  # bob cannot open alice's import


def test_direction_sets_and_saved_directions(home, key):
    from core.playground import PlaygroundError, library, model_fingerprint, resolve_model
    from core.playground.view import (View, delete_slot, direction_set_choices, direction_slots, render_view,
                                      save_slot)
    sets = dict((v, label) for label, v in direction_set_choices("alice", key))
    assert {"sefa:all", "sefa:coarse", "sefa:middle", "ganspace:all", "saved"} <= set(sets)
    assert "sefa:fine" not in sets                                         # a 32 px model has no fine layers
    path = resolve_model(key, "alice")
    coarse = direction_slots("alice", path, "sefa:coarse")
    assert len(coarse) == 6 and coarse[0]["layers"] == (0, 3) and coarse[0]["name"] == "SeFa coarse 1"
    base = render_view("alice", View(key, seed=2, direction_set="sefa:coarse"))
    moved = render_view("alice", View(key, seed=2, direction_set="sefa:coarse", strengths=(0, 4.0)))
    delta = moved["w"] - base["w"]
    assert np.allclose(delta[:3], 4.0 * coarse[1]["direction"], atol=1e-4) and np.allclose(delta[3:], 0)
    rec = save_slot("alice", key, "sefa:coarse", 1, "petal size")
    assert rec["layers"] == [0, 3] and rec["model"] == model_fingerprint(path)
    saved = direction_slots("alice", path, "saved")
    assert [s["name"] for s in saved] == ["petal size"] and np.allclose(saved[0]["direction"], coarse[1]["direction"])
    again = render_view("alice", View(key, seed=2, direction_set="saved", strengths=(4.0,)))
    assert np.allclose(again["w"], moved["w"], atol=1e-4)                 # the saved one moves the same way
    assert save_slot("alice", key, "saved", 0, "bigger petals")["name"] == "bigger petals"
    assert direction_slots("bob", path, "saved") == []                     # bob has none with this model
    with pytest.raises(PlaygroundError, match="exists already"):
        save_slot("alice", key, "sefa:coarse", 2, "bigger petals")
    with pytest.raises(PlaygroundError, match="slider"):
        save_slot("alice", key, "sefa:all", 9, "x")
    delete_slot("alice", key, 0)
    assert library.list_directions("alice", model_fingerprint(path)) == []


def test_view_errors_are_data(home, key):
    from core.playground.view import View, render_view
    for view, needle in ((View(key, source="vector:" + "0" * 32), "No such"), (View(key, source="projection:x"), "projection"),
                         (View(key, source="nonsense"), "Start from"), (View("model:" + "a" * 32), "No such model"),
                         (View(key, mix_seed=1, mix_layers="x"), "Mixing"), (View(key, direction_set="magic:all", strengths=(1,)), "sefa"),
                         (View(key, direction_set="sefa:fine", strengths=(1,)), "no fine")):
        out = render_view("alice", view)
        assert out["image"] is None and needle in out["error"], (view, out["error"])
