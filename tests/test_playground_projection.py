"""Projection: losses, photo preparation, the search itself, and the background runner that the page follows."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.tiny import write_tiny_checkpoint


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("proj") / "tiny.safetensors"))


def rendered(model, seed):
    from core.playground import RenderArgs, render
    return render(RenderArgs(model, seed=seed, psi=1.0))["image"]


def test_ssim_and_psnr_behave():
    import torch

    from core.playground.losses import multiscale_mse, psnr, pyramid, ssim
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-5)
    noisy = (a + 0.3 * torch.randn_like(a)).clamp(-1, 1)
    assert ssim(a, noisy).item() < 0.9
    assert psnr(a, a) == float("inf") and 5 < psnr(a, noisy) < 30
    assert len(pyramid(a)) == 3 and multiscale_mse(a, pyramid(a)).item() == 0


@pytest.mark.parametrize("loss", ["pixel", "pixel+ssim", "d+pixel"])
def test_projection_recovers_a_generated_image(model, loss):
    from core.playground import ProjectionOptions, project
    target = rendered(model, 7)
    seen = []
    res = project(model, target, ProjectionOptions(space="w+", steps=60, loss=loss),
                  progress_fn=lambda step, total, value, img: seen.append((step, total, img is not None)))
    assert res.ws.shape == (8, 32) and res.image.shape == (32, 32, 3) and res.steps_done == 60 and not res.stopped
    assert res.psnr > 20, res.psnr                                       # far closer than a random start
    assert seen[0][:2] == (1, 60) and seen[-1] == (60, 60, True)          # the last step always has a preview
    from core.playground import RenderArgs, Vector, render
    again = render(RenderArgs(model, vector=Vector.of(res.ws, "w"), psi=1.0))["image"]
    assert np.abs(again.astype(int) - res.image.astype(int)).max() <= 1   # the saved latent renders the result


def test_projection_in_w_with_noise_and_stop(model):
    from core.playground import ProjectionOptions, project
    from core.playground.projection import noise_buffer_names
    from core.playground import load_model
    target = rendered(model, 3)
    res = project(model, target, ProjectionOptions(space="w", noise=True, steps=40), abort_fn=lambda: True)
    assert res.stopped and res.steps_done == 1
    assert np.allclose(res.ws, res.ws[0])                                  # space w: one w for every layer
    names = noise_buffer_names(load_model(model).G_ema)
    assert sorted(res.noise) == sorted(names) and all(np.isfinite(v).all() for v in res.noise.values())


@pytest.mark.parametrize("kwargs,needle", [(dict(space="z"), "w"), (dict(steps=0), "Steps"), (dict(steps=True), "Steps"),
                                           (dict(loss="mse"), "loss"), (dict(lr=0), "learning rate"),
                                           (dict(loss="lpips+pixel"), "weights")])
def test_projection_refuses_bad_options(model, kwargs, needle):
    from core.playground import PlaygroundError, ProjectionOptions, project
    with pytest.raises(PlaygroundError, match=needle):
        project(model, rendered(model, 1), ProjectionOptions(**{"steps": 2, **kwargs}))


def test_projection_refuses_a_target_of_the_wrong_size(model):
    from core.playground import PlaygroundError, project
    with pytest.raises(PlaygroundError, match="32x32"):
        project(model, np.zeros((64, 64, 3), np.uint8))


def test_prepare_target_crops(tmp_path):
    from PIL import Image

    from core.playground import PlaygroundError, prepare_target
    img = np.zeros((100, 200, 3), np.uint8)
    img[:, 100:] = 255                                                    # left half black, right half white
    Image.fromarray(img).save(tmp_path / "wide.png")
    centre = prepare_target(tmp_path / "wide.png", 32, "center")
    right = prepare_target(tmp_path / "wide.png", 32, "center", zoom=2, cx=0.9, cy=0.5)
    squeezed = prepare_target(tmp_path / "wide.png", 32, "none")
    padded = prepare_target(tmp_path / "wide.png", 32, "pad")
    assert centre.shape == right.shape == squeezed.shape == padded.shape == (32, 32, 3)
    assert right.mean() == 255 and 100 < centre.mean() < 155
    assert padded[0, 0].tolist() == [255, 255, 255] and padded[16, 2].tolist() == [0, 0, 0]
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for source, kwargs, needle in ((tmp_path / "bad.png", {}, "cannot be used"), (None, {}, "Upload"),
                                   (tmp_path / "wide.png", {"crop": "circle"}, "Crop"),
                                   (tmp_path / "wide.png", {"zoom": 0.5}, "Zoom"),
                                   (tmp_path / "missing.png", {}, "cannot be read")):
        with pytest.raises(PlaygroundError, match=needle):
            prepare_target(source, 32, **kwargs)


def test_runner_one_task_per_user_private_and_stoppable():
    from core.playground import PlaygroundError
    from core.playground.tasks import TaskRunner
    runner = TaskRunner(slots=1)
    release = threading.Event()

    def work(task):
        task.report(1, 2, 0.5)
        release.wait(30)
        return "result" if not task.stopping() else "partial"

    a = runner.start("alice", "projection", work)
    with pytest.raises(PlaygroundError, match="still running"):
        runner.start("alice", "projection", work)
    b = runner.start("bob", "projection", lambda task: "bob's")             # waits for the one slot
    assert runner.status("bob")["state"] == "waiting"
    with pytest.raises(PlaygroundError, match="No such"):
        runner.status("bob", a)                                            # alice's task is not bob's
    with pytest.raises(PlaygroundError):
        runner.stop("bob", a)
    runner.stop("alice", a)
    release.set()
    assert runner.wait("alice", a, 30)["state"] == "stopped" and runner.status("alice")["result"] == "partial"
    assert runner.wait("bob", b, 30)["result"] == "bob's"
    c = runner.start("alice", "projection", lambda task: (_ for _ in ()).throw(PlaygroundError("bad photo")))
    done = runner.wait("alice", c, 30)
    assert done["state"] == "failed" and done["message"] == "bad photo"
    assert [t["id"] for t in runner.list("alice")] == [a, c]


def test_start_projection_follows_to_a_result(model, monkeypatch):
    from core.playground import ProjectionOptions, projection_result, projection_view, start_projection
    from core.playground.tasks import TaskRunner
    runner = TaskRunner(slots=1)
    tid = start_projection("alice", model, rendered(model, 2), ProjectionOptions(steps=20), runner=runner)
    runner.wait("alice", tid, 120)
    view = projection_view("alice", tid, runner)
    assert view["state"] == "done" and "dB" in view["text"] and view["image"].shape == (256, 512, 3)  # shown x8
    res = projection_result("alice", tid, runner)
    assert res.model_fp and res.ws.shape == (8, 32)
    with pytest.raises(Exception):
        projection_result("bob", tid, runner)
