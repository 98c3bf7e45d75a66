"""The app through its named API endpoints (gradio_client), in-process, CPU, tiny model: fast.

Covers: the app builds without torch, every UI action is a named endpoint, the journey
(import → start → snapshots → video → save → rename → generate), errors as one sentence,
and the user coming from the request, never from a field."""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.app_server import free_port

REPO = Path(__file__).resolve().parent.parent
gradio_client = pytest.importorskip("gradio_client")


def test_app_and_ui_do_not_import_torch():
    code = "import app, ui, sys; app.build_app(); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_share_says_why_without_network(capsys, monkeypatch):
    import app
    monkeypatch.setattr(app, "SHARE_HOST", ("127.0.0.1", 9))  # nothing listens: refused at once
    assert app.share_possible(timeout=0.5) is False
    assert "no public link" in capsys.readouterr().err


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    os.environ["ATELIER_HOME"] = str(home)
    sys.path.insert(0, str(REPO))
    from tests.tiny import write_blob_images, write_tiny_checkpoint

    from core.checkpoints import import_checkpoint
    from core.jobs import start_background_worker
    import_checkpoint(write_tiny_checkpoint(home / "tiny.safetensors"), name="tiny", user="local", thumbnail=False)
    images = write_blob_images(home / "blobs", n=12, size=64)
    import app
    demo = app.build_app()
    port = free_port()
    thread, stop = start_background_worker(device="cpu", poll=0.2)
    args = app.parse_args(["--port", str(port)])
    kwargs = app.launch_kwargs(args)
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
    yield client, images
    stop.set()
    demo.close()


def val(x):
    """A component update comes back as a dict; its value is under 'value'."""
    return x.get("value") if isinstance(x, dict) and x.get("__type__") == "update" else x


def chosen_value(out) -> str:
    """The value of the first dropdown update (with choices) in an endpoint's outputs."""
    return next(x["value"] for x in out if isinstance(x, dict) and "choices" in x)


def md(value) -> str:
    value = val(value)
    return value if isinstance(value, str) else str(value)


def test_every_action_is_named(running):
    client, _ = running
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    for name in ("/list_datasets", "/import_dataset", "/use_sample_dataset", "/delete_dataset", "/start_experiment",
                 "/estimate_experiment", "/list_experiments", "/show_snapshot", "/export_progress_video",
                 "/save_to_my_models", "/stop_experiment", "/continue_experiment", "/delete_experiment",
                 "/list_models", "/rename_model", "/set_model_public", "/delete_model", "/download_model",
                 "/generate", "/seed_grid", "/walk_video", "/preview_crops", "/start_projection", "/projection_status",
                 "/stop_projection", "/keep_vector", "/list_vectors", "/export_vector", "/import_vector",
                 "/save_direction", "/walk_preview", "/noise_loop_video", "/upscale_output"):
        assert name in names, name
    doc = (REPO / "docs" / "api.md").read_text()
    assert all(n in doc for n in names), sorted(n for n in names if n not in doc)
    # docs/api.md is generated from this description: every choice it lists is one the component takes
    # (issue 17: a direction index was documented as text while only an integer worked)
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    for api, param, enum in (("/save_direction", "slot", [str(i) for i in range(6)]),
                             ("/walk_video", "size", ["0", "256", "512", "1024"]), ("/upscale_output", "factor", ["2", "4"])):
        found = next(p for p in endpoints[api]["parameters"] if p["parameter_name"] == param)
        assert found["type"]["enum"] == enum, (api, found)
        assert f"`{param}` (Literal[{', '.join(repr(e) for e in enum)}], optional)" in doc, (api, param)


def test_journey_through_the_api(running):
    from gradio_client import handle_file
    client, images = running
    files = [handle_file(str(p)) for p in sorted(images.iterdir())]
    out = client.predict(files, [], "", "Blobs", "center", False, False, 0, api_name="/import_dataset")
    assert "Imported 12 images" in md(out[-1])
    ds_id = chosen_value(out)
    # a bad name: one sentence, no traceback
    out = client.predict(files, [], "", "Blobs", "center", False, False, 0, api_name="/import_dataset")
    assert "already exists" in md(out[-1]) and "Traceback" not in md(out[-1])

    out = client.predict([], [], "", "Nothing", "center", False, False, 0, api_name="/import_dataset")
    assert "Add some images first" in str(out)

    est = client.predict("tiny", 4, ds_id, "center", 4, 2, api_name="/estimate_experiment")
    assert "ETA for 4 steps" in md(est) and "batch 4" in md(est), est   # read from stored figures, never trained
    out = client.predict("Blobs try", ds_id, "tiny", "center", 4, 4, 2, "none", False, 0, 0, 0,
                         api_name="/start_experiment")
    exp_id = chosen_value(out)
    assert exp_id and "Queued" in md(out[0])

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        listing = client.predict(exp_id, api_name="/list_experiments")
        assert "Blobs" in str(client.predict(api_name="/list_datasets"))  # answers while training runs
        if "· finished" in str(listing) or "· failed" in str(listing):
            break
        time.sleep(1)
    assert "· finished" in str(listing), listing

    snap = client.predict(exp_id, 2, api_name="/show_snapshot")
    assert snap[0] and "Step **2**" in md(snap[1])
    video = client.predict(exp_id, api_name="/export_progress_video")
    path = video[0]["value"] if isinstance(video[0], dict) else video[0]
    import imageio
    reader = imageio.get_reader(path)
    assert reader.get_data(0).ndim == 3 and reader.count_frames() >= 2
    reader.close()

    out = client.predict(exp_id, 4, "Blobs v1", api_name="/save_to_my_models")
    assert "Saved" in str(out), out
    models = client.predict(None, api_name="/list_models")
    model_id = chosen_value(models)
    out = client.predict(model_id, "Blobs final", api_name="/rename_model")
    assert "Renamed" in str(out), out
    key = f"model:{model_id}"
    out = client.predict(key, "seed", 3, "", None, 0.7, "const", None, "0-4", "sefa:all", api_name="/generate")
    assert out[0] and not md(out[1]).startswith("⚠")
    out = client.predict(key, "seed", 3, "", None, 0.7, "const", 7, "0-4", "sefa:all", 0, 0, 3.0, api_name="/generate")
    assert out[0] and not md(out[1]).startswith("⚠"), out[1]               # style mixing + a SeFa direction
    grid = client.predict(f"model:{model_id}", 10, 0.7, "const", api_name="/seed_grid")
    assert len(val(grid[0])) == 16 and val(grid[0])[15]["caption"] == "seed 25"
    out = client.predict(key, "seed", 3, ", ".join(["0.5"] * 32), None, 0.7, "const", None, "0-4", "sefa:all",
                         api_name="/generate")
    assert out[0] and not md(out[1]).startswith("⚠"), out[1]              # a pasted z vector
    out = client.predict(key, ["4", "5"], "z-slerp", "linear", True, 1, 6, "0", 0.7, api_name="/walk_video")
    path = out[0]["video"] if isinstance(out[0], dict) else out[0]
    assert Path(path).stat().st_size > 1000, out
    out = client.predict("model:nope", "seed", 3, "", None, 0.7, "const", None, "0-4", "sefa:all", api_name="/generate")
    assert md(out[1]).startswith("⚠") and "Traceback" not in md(out[1])


def test_malformed_upload_paths_are_one_line_refusals(running):
    import json

    from gradio_client import handle_file
    client, images = running
    files = [handle_file(str(p)) for p in sorted(images.iterdir())[:2]]
    deep = json.dumps([{"path": "d/" * 3000 + "a.png", "name": "a.png", "size": 1}])
    for relpaths, words in (("[1]", "malformed (entry 1 is not"), ("[{", "malformed (not valid JSON)"),
                            (deep, "3,000 folders deep")):
        out = client.predict(files, [], relpaths, "Paths", "center", False, False, 0, api_name="/import_dataset")
        assert words in md(out[-1]) and "went wrong" not in md(out[-1]), out[-1]
    assert "Paths" not in str(client.predict(api_name="/list_datasets"))


def test_handlers_are_short_and_take_the_user_from_the_request():
    """STYLE 2.3: a handler is 15 lines or fewer; a handler that reaches core gets gr.Request."""
    import ast
    for path in sorted((REPO / "ui").glob("*.py")):
        tree = ast.parse(path.read_text())
        for wire in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("wire_")):
            for fn in (n for n in wire.body if isinstance(n, ast.FunctionDef)):
                length = fn.end_lineno - fn.lineno + 1
                assert length <= 15, f"{path.name}:{fn.name} has {length} lines"
                args = [a.arg for a in fn.args.args + fn.args.kwonlyargs]
                assert "user" not in args, f"{path.name}:{fn.name} takes a user from the client"
                # the catalog cache is shared by every user; upscaling is arithmetic on the image it is given
                shared = fn.name in ("download_checkpoint", "upscale_output")
                if "core" in ast.unparse(fn) and "user_of(request)" not in ast.unparse(fn) and not shared:
                    raise AssertionError(f"{path.name}:{fn.name} calls core without the request's user")


def test_sample_dataset(running):
    client, _ = running
    out = client.predict(api_name="/use_sample_dataset")  # the default choice: the flags
    assert "Added “Sample flags”: 242 images of flags of the countries of the world" in str(out), out
    out = client.predict(api_name="/use_sample_dataset")
    assert "already here" in str(out)
    from core.sample_data import DEMO_SNAPSHOT_EVERY, DEMO_STEPS
    steps, snapshot_every, note = client.predict("Sample flags", "default", api_name="/suggest_steps")
    assert (steps, snapshot_every) == (DEMO_STEPS, DEMO_SNAPSHOT_EVERY) and "first try" in note, (steps, snapshot_every, note)
    out = client.predict("emoji-faces", api_name="/use_sample_dataset")
    assert "Added “Sample emoji faces”: 316 images" in str(out), out
    with pytest.raises(Exception, match="'landscapes'.* is not in the list of choices"):  # Gradio checks the Radio
        client.predict("landscapes", api_name="/use_sample_dataset")


def test_auth_file_and_users_are_kept_apart(running, tmp_path):
    """--auth FILE: sign-in required; each endpoint acts as the signed-in user only."""
    import app
    from gradio_client import Client, handle_file

    from core.users import add_user
    auth_file = tmp_path / "users.json"
    add_user(auth_file, "alice", "alice-password-1")
    add_user(auth_file, "bob", "bob-password-22")
    for bad in (["--auth", str(tmp_path / "missing.json")], ["--session-hours", "2"],
                ["--auth", str(auth_file), "--session-hours", "0"], ["--auth", str(auth_file), "--session-hours", "x"]):
        with pytest.raises(SystemExit, match="atelier: "):
            app.launch_kwargs(app.parse_args(bad))
    assert app.launch_kwargs(app.parse_args(["--auth", str(auth_file), "--session-hours", "2"]))[
        "auth"].__self__.lifetime_s == 7200
    port = free_port()
    kwargs = app.launch_kwargs(app.parse_args(["--port", str(port), "--auth", str(auth_file)]))
    assert inspect.iscoroutinefunction(kwargs["auth"])   # Gradio awaits it; the hash runs in a thread
    demo = app.build_app()
    demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    try:
        url = f"http://127.0.0.1:{port}/"
        alice = Client(url, auth=("alice", "alice-password-1"), verbose=False)
        bob = Client(url, auth=("bob", "bob-password-22"), verbose=False)
        _, images = running
        files = [handle_file(str(p)) for p in sorted(images.iterdir())]
        out = alice.predict(files, [], "", "Alice's", "center", False, False, 0, api_name="/import_dataset")
        ds_id = chosen_value(out)
        assert "Alice's" in str(alice.predict(api_name="/list_datasets"))
        assert "Alice's" not in str(bob.predict(api_name="/list_datasets"))
        out = bob.predict(ds_id, api_name="/delete_dataset")
        assert "⚠" in str(out) and "Traceback" not in str(out)
        assert "Alice's" in str(alice.predict(api_name="/list_datasets"))
    finally:
        demo.close()


def test_download_model_is_the_native_file(running):
    client, _ = running
    models = client.predict(None, api_name="/list_models")
    model_id = chosen_value(models)
    out = client.predict(model_id, api_name="/download_model")
    path = next(x["value"] for x in out if isinstance(x, dict) and str(x.get("value", "")).endswith(".safetensors"))
    from safetensors import safe_open
    with safe_open(path, "np") as f:
        assert len(list(f.keys())) > 10
