"""``project``, ``walk``, ``directions``, ``vectors``, ``upscale`` from the command line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.cli import main
from tests.tiny import write_tiny_checkpoint


@pytest.fixture
def ck(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    return str(write_tiny_checkpoint(tmp_path / "tiny.safetensors"))


def test_project_writes_the_rendering_and_the_vector(ck, tmp_path, capsys):
    src = tmp_path / "photo.png"
    assert main(["generate", "--checkpoint", ck, "--seeds", "3", "--outdir", str(tmp_path / "gen")]) == 0
    Image.open(tmp_path / "gen" / "seed0003.png").resize((80, 60)).save(src)
    out = tmp_path / "proj"
    assert main(["project", "--checkpoint", ck, "--image", str(src), "--out", str(out), "--steps", "30",
                 "--save-vector", "my photo"]) == 0
    assert Image.open(out / "projected.png").size == (32, 32) and Image.open(out / "target.png").size == (32, 32)
    ws = np.load(out / "vector.npy", allow_pickle=False)
    assert ws.shape == (8, 32) and ws.dtype == np.float32
    info = json.loads((out / "projection.json").read_text())
    assert info["steps"] == 30 and info["psnr_db"] > 10
    assert "dB PSNR" in capsys.readouterr().out
    assert main(["vectors", "list"]) == 0 and "my photo" in capsys.readouterr().out


@pytest.mark.parametrize("extra,needle", [(["--steps", "0"], "Steps"), (["--crop", "center", "--zoom", "0.1"], "Zoom"),
                                          (["--center", "a,b"], "--center"), (["--loss", "lpips+pixel"], "weights")])
def test_project_bad_input_is_one_line(ck, tmp_path, capsys, extra, needle):
    Image.new("RGB", (40, 40), "red").save(tmp_path / "p.png")
    rc = main(["project", "--checkpoint", ck, "--image", str(tmp_path / "p.png"), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and needle in err and len(err.splitlines()) == 1, err


def test_project_missing_image_and_model(ck, tmp_path, capsys):
    assert main(["project", "--checkpoint", ck, "--image", str(tmp_path / "none.png"), "--out", str(tmp_path)]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main(["project", "--checkpoint", "nope", "--image", "x.png", "--out", str(tmp_path)]) == 2


def test_walk_keyframes_npy_and_noise_loop(ck, tmp_path, capsys):
    import imageio
    assert main(["vectors", "save", "--checkpoint", ck, "--seed", "9", "--name", "nine", "--space", "w"]) == 0
    np.save(tmp_path / "z.npy", np.random.RandomState(4).randn(32))
    out = tmp_path / "walk.mp4"
    assert main(["walk", "--checkpoint", ck, "--keyframes", f"1,2,{tmp_path / 'z.npy'},nine", "--seconds", "2",
                 "--fps", "12", "--loop", "--out", str(out)]) == 0
    reader = imageio.get_reader(out)
    assert reader.count_frames() == 24
    reader.close()
    assert main(["walk", "--checkpoint", ck, "--noise-loop", "3", "--seconds", "1", "--fps", "8",
                 "--out", str(tmp_path / "loop.mp4")]) == 0
    for args, needle in ((["--keyframes", "1,2", "--interp", "z-slerp", "--seconds", "1"], None),
                         (["--keyframes", "1,nobody"], "No such vector"), ([], "--keyframes"),
                         (["--keyframes", "1,2", "--seconds", "0"], "Length")):
        rc = main(["walk", "--checkpoint", ck, "--out", str(tmp_path / "w2.mp4"), *args])
        if needle is None:
            assert rc == 0
        else:
            assert rc == 2 and needle in capsys.readouterr().err


def test_directions_find_save_list_and_vectors_roundtrip(ck, tmp_path, capsys):
    assert main(["directions", "find", "--checkpoint", ck, "--layers", "coarse", "-k", "3",
                 "--out", str(tmp_path / "d.npy"), "--render", str(tmp_path / "strips")]) == 0
    assert np.load(tmp_path / "d.npy").shape == (3, 32) and Image.open(tmp_path / "strips" / "direction00.png").size == (160, 32)
    assert "3 sefa directions" in capsys.readouterr().out
    assert main(["directions", "save", "--checkpoint", ck, "--method", "ganspace", "--index", "1", "--name", "hue"]) == 0
    assert main(["directions", "list", "--checkpoint", ck]) == 0 and "hue" in capsys.readouterr().out
    assert main(["directions", "rename", "hue", "colour"]) == 0 and "colour" in capsys.readouterr().out
    assert main(["directions", "list", "--checkpoint", ck, "--user", "bob"]) == 0
    assert "colour" not in capsys.readouterr().out
    assert main(["directions", "delete", "colour", "--user", "bob"]) == 2
    assert main(["directions", "delete", "colour"]) == 0
    assert main(["directions", "save", "--checkpoint", ck, "--index", "99", "--name", "x"]) == 2
    np.save(tmp_path / "v.npy", np.zeros((8, 32), np.float32))
    assert main(["vectors", "import", str(tmp_path / "v.npy"), "--checkpoint", ck, "--name", "flat"]) == 0
    assert main(["vectors", "export", "flat", "--out", str(tmp_path / "back.npy")]) == 0
    assert np.load(tmp_path / "back.npy").shape == (8, 32)
    assert main(["vectors", "export", "flat", "--out", str(tmp_path / "b.npy"), "--user", "bob"]) == 2
    assert main(["vectors", "rename", "flat", "level"]) == 0 and main(["vectors", "delete", "level"]) == 0
    np.save(tmp_path / "bad.npy", np.zeros(5))
    assert main(["vectors", "import", str(tmp_path / "bad.npy"), "--checkpoint", ck, "--name", "bad"]) == 2


def test_upscale(tmp_path, capsys):
    Image.new("RGB", (20, 10), "blue").save(tmp_path / "a.png")
    assert main(["upscale", str(tmp_path / "a.png"), "--factor", "4", "--out", str(tmp_path / "big.png")]) == 0
    assert Image.open(tmp_path / "big.png").size == (80, 40)
    assert main(["upscale", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--out", str(tmp_path / "many")]) == 0
    assert (tmp_path / "many" / "a-x2.png").is_file()
    (tmp_path / "x.png").write_bytes(b"no")
    assert main(["upscale", str(tmp_path / "x.png"), "--out", str(tmp_path / "y.png")]) == 2
    assert main(["upscale", str(tmp_path / "a.png"), "--weights", str(tmp_path / "x.png"), "--out", str(tmp_path / "z.png")]) == 2
    assert "plain pickles" in capsys.readouterr().err
