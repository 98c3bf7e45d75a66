"""Keyframe walks and noise loops: where frames fall, loops that close, previews, videos."""
from __future__ import annotations

import numpy as np
import pytest

from tests.tiny import write_tiny_checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("walk") / "tiny.safetensors"))


def seeds(*ss, z_dim=32):
    from core.playground.walks import Keyframe
    return [Keyframe("z", np.random.RandomState(s).randn(z_dim), f"seed {s}") for s in ss]


def close(a, b):
    return np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_frame_positions_and_easing():
    from core.playground.walks import ease, frame_positions
    assert frame_positions(3, 5, loop=False) == [(0, 0.0), (0, 0.5), (1, 0.0), (1, 0.5), (1, 1.0)]
    pos = frame_positions(4, 9, loop=True)
    assert pos[0] == (0, 0.0) and pos[-1] == (3, 1.0) and pos[2] == (1, 0.0)
    for e in ("linear", "smooth", "ease-in", "ease-out"):
        assert ease(0, e) == 0 and ease(1, e) == pytest.approx(1)
    assert ease(0.25, "smooth") < 0.25 < ease(0.25, "ease-out")


@pytest.mark.parametrize("interpolation", ["z-slerp", "w-lerp", "w-cubic"])
def test_walk_visits_keyframes_and_a_loop_closes(model, interpolation):
    from core.playground import RenderArgs, render
    from core.playground.walks import walk_frames
    frames = list(walk_frames(model, seeds(0, 1, 2, 3), 13, interpolation, "smooth", loop=True, psi=0.7))
    assert len(frames) == 13 and np.array_equal(frames[0], frames[-1])
    for i, s in ((0, 0), (3, 1), (6, 2), (9, 3)):                           # 12 legs' worth: 3 frames a leg
        assert close(frames[i], render(RenderArgs(model, seed=s, psi=0.7))["image"]), (interpolation, i)
    open_walk = list(walk_frames(model, seeds(0, 1, 2), 7, interpolation, "linear", loop=False, psi=0.7))
    assert close(open_walk[-1], render(RenderArgs(model, seed=2, psi=0.7))["image"])
    assert not np.array_equal(open_walk[1], open_walk[0])


def test_walk_with_w_keyframes_and_bad_input(model):
    from core.playground import PlaygroundError, RenderArgs, render
    from core.playground.walks import Keyframe, walk_frames
    w = render(RenderArgs(model, seed=5, psi=1.0))["w"]
    keys = seeds(0) + [Keyframe("w", w, "w of seed 5")]
    frames = list(walk_frames(model, keys, 5, "w-cubic", loop=False, psi=1.0))
    assert close(frames[-1], render(RenderArgs(model, seed=5, psi=1.0))["image"])
    for args, needle in (((keys, 5, "z-slerp"), "Z needs"), ((seeds(0), 5, "w-lerp"), "2 to"),
                         ((keys, 1, "w-lerp"), "frames"), ((keys, 5, "bezier"), "Interpolation")):
        with pytest.raises(PlaygroundError, match=needle):
            walk_frames(model, *args)
    with pytest.raises(PlaygroundError, match="Easing"):
        walk_frames(model, keys, 5, "w-lerp", "bouncy")


def test_noise_loop_closes_and_moves(model):
    from core.playground import PlaygroundError
    from core.playground.walks import noise_loop_frames
    frames = list(noise_loop_frames(model, 11, seed=4, wander=2))
    assert len(frames) == 11 and np.array_equal(frames[0], frames[-1])
    assert np.abs(frames[5].astype(int) - frames[0].astype(int)).mean() > 1
    assert np.array_equal(frames[3], list(noise_loop_frames(model, 11, seed=4, wander=2))[3])   # seeded
    with pytest.raises(PlaygroundError):
        noise_loop_frames(model, 11, wander=9)


def test_walk_video_and_preview(model, tmp_path):
    import imageio

    from core.playground.walks import preview_frames, walk_video
    shots = preview_frames(model, seeds(0, 1, 2), 24, count=4, interpolation="w-lerp", loop=True)
    assert [i for i, _ in shots] == [0, 8, 15, 23] and np.array_equal(shots[0][1], shots[-1][1])
    out = walk_video(model, seeds(0, 1, 2), tmp_path / "walk.mp4", seconds=1, fps=12, size=64, loop=True)
    reader = imageio.get_reader(out)
    assert reader.count_frames() == 12 and reader.get_data(0).shape == (64, 64, 3)
    reader.close()
