"""Playground: render never raises, memoised, vectors checked, mixing, SeFa/GANSpace, grids, loops."""
from __future__ import annotations

import numpy as np
import pytest

TINY_G = dict(img_resolution=32, channel_base=256, channel_max=64, mapping_layers=2, z_dim=32, w_dim=24)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    from core.stylegan import save_checkpoint
    from core.stylegan.generator import Generator
    torch.manual_seed(0)
    G = Generator(**TINY_G)
    with torch.no_grad():  # give w_avg and the noise strengths something to do
        G.mapping.w_avg.normal_()
    path = tmp_path_factory.mktemp("pg") / "tiny.safetensors"
    save_checkpoint(path, G_ema=G)
    return str(path)


def test_render_seed_matches_official_generation(model):
    from core.playground import RenderArgs, load_model, render
    from core.stylegan.images import generate_images
    out = render(RenderArgs(model, seed=5, psi=0.7))
    assert out["error"] is None and out["image"].shape == (32, 32, 3) and out["image"].dtype == np.uint8
    assert out["seed"] == 5 and out["w"].shape == (load_model(model).num_ws, 24)
    (_, ref), = generate_images(load_model(model).G_ema, [5], truncation_psi=0.7, noise_mode="const")
    assert np.abs(out["image"].astype(int) - ref.astype(int)).max() <= 1


def test_render_is_memoised(model, monkeypatch):
    import core.playground as pg
    args = pg.RenderArgs(model, seed=11)
    first = pg.render(args)
    calls = []
    monkeypatch.setattr("core.playground.preview._render_uncached", lambda a: calls.append(a))
    again = pg.render(pg.RenderArgs(model, seed=11))
    assert calls == [] and again["image"] is first["image"]
    assert not again["image"].flags.writeable


def test_vectors_z_and_w(model):
    from core.playground import RenderArgs, Vector, load_model, random_vector, render
    from core.stylegan.images import z_from_seeds
    ckpt = load_model(model)
    z = random_vector(32, seed=3)
    assert np.array_equal(z, z_from_seeds([3], 32)[0].numpy())
    by_vec = render(RenderArgs(model, vector=z))
    assert by_vec["error"] is None and np.array_equal(by_vec["image"], render(RenderArgs(model, seed=3))["image"])
    w = by_vec["w"]
    by_w = render(RenderArgs(model, vector=Vector.of(w, "w")))
    assert by_w["error"] is None and np.abs(by_w["image"].astype(int) - by_vec["image"].astype(int)).max() <= 1
    one_w = render(RenderArgs(model, vector=Vector.of(w[0], "w")))
    assert one_w["error"] is None and one_w["w"].shape == (ckpt.num_ws, 24)


@pytest.mark.parametrize("vector,space,needle", [
    (np.zeros(31), "z", "exactly 32"), (np.zeros((2, 32)), "z", "exactly 32"), (np.zeros(7), "w", "24 numbers"),
    (np.full(32, np.nan), "z", "NaN"), (np.full(32, np.inf), "z", "NaN"), (np.full(32, 1e9), "z", "beyond"),
    (np.zeros(10 ** 6), "z", "too large"), (np.array(["a"] * 32), "z", "numbers"), (np.zeros(32), "q", "space"),
])
def test_render_refuses_bad_vectors_without_raising(model, vector, space, needle):
    from core.playground import RenderArgs, Vector, render
    plain = vector.dtype.kind == "f" and np.isfinite(vector).all() and vector.size < 1e5
    vec = Vector.of(vector, space) if plain else vector   # others go through RenderArgs' own conversion
    out = render(RenderArgs(model, vector=vec))
    assert out["image"] is None and needle in out["error"], out["error"]


@pytest.mark.parametrize("kwargs", [
    dict(seed=-1), dict(seed=2 ** 32), dict(seed="7"), dict(seed=None), dict(psi=float("nan")), dict(psi=5.0),
    dict(cutoff=99), dict(noise_mode="loud"), dict(class_idx=3), dict(mix_seed=1, mix_layers=(5, 2)),
    dict(mix_seed=1, mix_layers=(0, 99)), dict(direction=("sefa", 999), direction_strength=1.0),
    dict(direction=("magic", 0), direction_strength=1.0), dict(direction=("sefa", 0), direction_strength=1e9),
    dict(mix_layers=np.array([0, 7]), mix_seed=1),
])
def test_render_never_raises_on_bad_args(model, kwargs):
    from core.playground import RenderArgs, render
    out = render(RenderArgs(model, **kwargs))
    assert out["image"] is None and isinstance(out["error"], str) and "\n" not in out["error"]


def test_render_missing_or_bogus_model(tmp_path):
    from core.playground import RenderArgs, render
    assert "missing" in render(RenderArgs(tmp_path / "nope.safetensors"))["error"]
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a model")
    out = render(RenderArgs(bogus))
    assert out["image"] is None and out["error"]


def test_load_vector_text_and_npy(tmp_path):
    import pickle

    from core.playground import VectorError, load_vector
    assert load_vector("[1, 2.5, -3e-1]\n4;5").tolist() == pytest.approx([1, 2.5, -0.3, 4, 5])
    p = tmp_path / "v.npy"
    np.save(p, np.arange(6, dtype=np.float64).reshape(2, 3))
    assert load_vector(p).shape == (2, 3) and load_vector(p.read_bytes()).dtype == np.float32
    for text in ("", "1, two, 3", "nan 1", "1 " * 40000, "1e999"):
        with pytest.raises(VectorError):
            load_vector(text)
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(VectorError, match="pickled"):
        load_vector(evil)
    with pytest.raises(VectorError):
        load_vector(pickle.dumps([1.0, 2.0]))
    big = tmp_path / "big.npy"
    np.save(big, np.zeros(300_000, np.float32))
    with pytest.raises(VectorError, match="too large"):
        load_vector(big)
    with pytest.raises(VectorError):
        load_vector(tmp_path / "missing.npy")
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    with pytest.raises(VectorError):
        load_vector(tmp_path / "a.npz")


def test_style_mixing_takes_layers_from_mix_seed(model):
    from core.playground import RenderArgs, render
    a, b = render(RenderArgs(model, seed=1))["w"], render(RenderArgs(model, seed=2))["w"]
    mixed = render(RenderArgs(model, seed=1, mix_seed=2, mix_layers=(0, 3)))
    assert mixed["error"] is None
    assert np.allclose(mixed["w"][:3], b[:3]) and np.allclose(mixed["w"][3:], a[3:])


def test_sefa_and_ganspace_are_orthonormal_and_move_w(model):
    from core.playground import RenderArgs, ganspace_directions, render, sefa_directions
    for found in (sefa_directions(model, "all", k=5), sefa_directions(model, (0, 3), k=4),
                  ganspace_directions(model, k=4, samples=200)):
        d = found["directions"]
        assert np.allclose(d @ d.T, np.eye(len(d)), atol=1e-4)
    vals = sefa_directions(model, k=5)["values"]
    assert np.all(np.diff(vals) <= 1e-6)
    base = render(RenderArgs(model, seed=1))["w"]
    moved = render(RenderArgs(model, seed=1, direction=("sefa", 0), direction_strength=3.0))
    assert moved["error"] is None
    delta = moved["w"] - base
    assert np.allclose(delta, 3.0 * sefa_directions(model, k=10)["directions"][0], atol=1e-4)


def test_seed_grid_and_interpolation_loop(model):
    from core.playground import PlaygroundError, interpolation_frames, render, RenderArgs, seed_grid
    grid, seeds = seed_grid(model, [0, 1, 2, 3], psi=0.5)
    assert grid.size == (64, 64) and seeds == [0, 1, 2, 3]
    with pytest.raises(PlaygroundError):
        seed_grid(model, list(range(65)))
    for space in ("z", "w"):
        frames = list(interpolation_frames(model, [0, 1, 2], frames_per_transition=3, space=space))
        assert len(frames) == 9 and frames[0].shape == (32, 32, 3)
        first = render(RenderArgs(model, seed=0))["image"]
        assert np.abs(frames[0].astype(int) - first.astype(int)).max() <= 1   # starts at seed 0
        assert np.abs(frames[3].astype(int) - render(RenderArgs(model, seed=1))["image"].astype(int)).max() <= 1
        assert not np.array_equal(frames[-1], frames[0])                        # the loop closes on the next
    with pytest.raises(PlaygroundError):
        interpolation_frames(model, [0], 3)
    with pytest.raises(PlaygroundError):
        interpolation_frames(model, [0, 1], 3, space="x")
