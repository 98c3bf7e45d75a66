"""Videos: progress and interpolation mp4s are playable (read back with imageio), atomic, checked."""
from __future__ import annotations

import pytest
from PIL import Image

TINY_G = dict(img_resolution=32, channel_base=256, channel_max=64, mapping_layers=2, z_dim=32, w_dim=32)


def _read(path):
    import imageio.v2 as imageio
    with imageio.get_reader(str(path), "ffmpeg") as r:
        frames = [f for f in r]
    return frames


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch

    from core.stylegan import save_checkpoint
    from core.stylegan.generator import Generator
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("v") / "tiny.safetensors"
    save_checkpoint(path, G_ema=Generator(**TINY_G))
    return path


@pytest.fixture()
def run_dir(tmp_path):
    snaps = tmp_path / "run" / "snapshots"
    snaps.mkdir(parents=True)
    for i, step in enumerate((0, 20, 10)):  # written out of order
        (snaps / f"step-{step:06d}.safetensors").write_bytes(b"x")
        Image.new("RGB", (66, 34), (40 + 80 * i, 10, 200 - 80 * i)).save(snaps / f"step-{step:06d}.png")
    return tmp_path / "run"


def test_progress_video_playable(run_dir, tmp_path):
    from core.video import progress_video
    out = progress_video(run_dir, tmp_path / "out" / "p.mp4", fps=4, hold_last_s=0.5)
    frames = _read(out)
    assert len(frames) == 3 + 2 and frames[0].shape == (34, 66, 3)
    reds = [int(f[..., 0].mean()) for f in frames[:3]]
    assert reds[0] < reds[1] > reds[2] - 60 and abs(reds[1] - 200) < 20   # step order 0, 10, 20
    assert [p.name for p in out.parent.iterdir()] == ["p.mp4"]              # no temp left behind
    odd = progress_video(run_dir, tmp_path / "odd.mp4", fps=4, size=(51, 27), hold_last_s=0)
    assert _read(odd)[0].shape == (26, 50, 3)


def test_progress_video_no_snapshots(tmp_path):
    from core.video import VideoError, progress_video
    with pytest.raises(VideoError, match="no snapshots"):
        progress_video(tmp_path, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_interpolation_video_loops(model, tmp_path):
    from core.playground import interpolation_video
    out = interpolation_video(model, [0, 1], tmp_path / "i.mp4", seconds_per_transition=0.5, fps=6)
    frames = _read(out)
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)


def test_failed_video_leaves_old_file(model, tmp_path):
    from core.playground import PlaygroundError, interpolation_video
    dest = tmp_path / "keep.mp4"
    dest.write_bytes(b"old")
    with pytest.raises(PlaygroundError):
        interpolation_video(model, [0], dest)
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["keep.mp4"]


def test_cli_video(model, run_dir, tmp_path, capsys):
    from core.cli import main
    assert main(["video", "progress", str(run_dir), "--out", str(tmp_path / "p.mp4"), "--fps", "8"]) == 0
    assert len(_read(tmp_path / "p.mp4")) == 3 + 8
    assert main(["video", "interpolate", "--checkpoint", str(model), "--seeds", "0-2", "--out",
                 str(tmp_path / "i.mp4"), "--seconds", "0.25", "--fps", "8"]) == 0
    assert len(_read(tmp_path / "i.mp4")) == 6
    capsys.readouterr()
    assert main(["video", "interpolate", "--checkpoint", str(model), "--seeds", "3", "--out",
                 str(tmp_path / "j.mp4")]) == 2
    err = capsys.readouterr().err
    assert "two seeds" in err and err.count("\n") == 1
    assert main(["video", "progress", str(tmp_path / "nope"), "--out", str(tmp_path / "q.mp4")]) == 2
