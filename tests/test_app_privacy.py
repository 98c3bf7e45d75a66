"""Issue 8, first 'Must show': user B (bob), through gradio_client calls to every endpoint that takes an
id or a name, tries to list, read, download, generate from, rename, delete or continue user A's (alice's)
private items and to fetch A's files by URL: every attempt fails, A's items are unchanged; A's public
model works for B read-only.

One app, started once (tests/privacy_fixtures.py): ``--auth`` (alice, bob), ``--no-worker`` (alice's
experiment stays queued: stop / continue / delete must not touch it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.privacy_fixtures import (ALICE, BOB, CK_NAME, DIR_NAME, DS_NAME, EXP_TITLE, PRIV_NAME, PUB_NAME, REPO,
                                     VEC_NAME, two_user_server)

gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

def val(x):
    return x.get("value") if isinstance(x, dict) and x.get("__type__") == "update" else x


def refused(out) -> bool:
    """One sentence starting with ⚠ somewhere in the outputs, and no traceback."""
    text = json.dumps(out, default=str, ensure_ascii=False)
    return "⚠" in text and "Traceback" not in text


def _state(home: Path, ids: dict) -> dict:
    """Alice's items as core sees them (child process: same ATELIER_HOME, no server state involved)."""
    code = f"""
import json, sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from core import models
from core.datasets import list_datasets
from core.jobs import get_experiment, list_experiments
from core.checkpoints import list_checkpoints
from core.playground import library
ids = {ids!r}
ms = {{m['id']: dict(name=m['name'], public=bool(m.get('public')), owner=m['owner'],
        weights=Path(m['weights_path']).is_file(), size=Path(m['weights_path']).stat().st_size)
      for m in models.list_models('alice')}}
e = get_experiment(ids['exp'], 'alice')
print(json.dumps(dict(
    datasets=sorted((d['id'], d['name'], d['count']) for d in list_datasets('alice')),
    experiment=dict(state=e['state'], steps=e['steps'], title=e['title']),
    models=ms,
    checkpoints=sorted(c['name'] for c in list_checkpoints('alice') if c['kind'] == 'imported'),
    bob_datasets=[d['id'] for d in list_datasets('bob')],
    bob_experiments=[x['id'] for x in list_experiments('bob')],
    bob_models=[m['id'] for m in models.list_models('bob', include_public=False)],
    vectors=sorted((r['id'], r['name']) for r in library.list_vectors('alice')),
    directions=sorted((r['id'], r['name']) for r in library.records('alice', 'directions')),
    bob_vectors=library.list_vectors('bob'),
)))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "ATELIER_HOME": str(home)},
                         check=True, timeout=120, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with two_user_server(tmp_path_factory.mktemp("privacy")) as srv:
        yield dict(srv, before=_state(srv["home"], srv["ids"]),
                   alice=gradio_client.Client(srv["url"], auth=ALICE, verbose=False),
                   bob=gradio_client.Client(srv["url"], auth=BOB, verbose=False))


def session(url: str, who: tuple[str, str]) -> "httpx.Client":
    c = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    r = c.post("/login", data={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return c


def call_event(c: "httpx.Client", api: str, *data) -> tuple[str | None, object]:
    """A named endpoint over plain HTTP: the last event's kind ('complete', 'error') and its data."""
    r = c.post(f"/gradio_api/call/{api}", json={"data": list(data)})
    assert r.status_code == 200, r.text
    event = r.json()["event_id"]
    body = c.get(f"/gradio_api/call/{api}/{event}", timeout=120).text
    kind, payload = None, None
    for line in body.splitlines():
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and kind in ("complete", "error"):
            payload = line.split(":", 1)[1].strip()
    return kind, (json.loads(payload) if payload and payload != "null" else payload)


def call(c: "httpx.Client", api: str, *data) -> list:
    """A named endpoint over plain HTTP (to see the file URLs a handler hands out)."""
    kind, payload = call_event(c, api, *data)
    assert kind == "complete", (kind, payload)
    return payload


def upload(c: "httpx.Client", path: Path) -> str:
    """Gradio's upload route, as the browser uses it: the stored path."""
    with open(path, "rb") as f:
        r = c.post("/gradio_api/upload", files=[("files", (path.name, f, "image/png"))])
    assert r.status_code == 200, r.text
    return r.json()[0]


def file_value(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}


def file_urls(obj) -> list[str]:
    if isinstance(obj, dict):
        found = [obj["url"]] if isinstance(obj.get("url"), str) and "file=" in obj["url"] else []
        return found + [u for v in obj.values() for u in file_urls(v)]
    if isinstance(obj, list):
        return [u for v in obj for u in file_urls(v)]
    return []


def test_alice_sees_her_items(app):
    alice, ids = app["alice"], app["ids"]
    assert DS_NAME in str(alice.predict(api_name="/list_datasets"))
    assert EXP_TITLE in str(alice.predict(None, api_name="/list_experiments"))
    listing = str(alice.predict(None, api_name="/list_models"))
    assert ids["priv"] in listing and ids["pub"] in listing
    assert not refused(alice.predict(ids["priv"], api_name="/show_model"))
    assert app["before"]["models"][ids["pub"]]["public"] and not app["before"]["models"][ids["priv"]]["public"]


def test_bob_lists_nothing_private_of_alice(app):
    bob, ids = app["bob"], app["ids"]
    out = str(bob.predict(api_name="/list_datasets"))
    assert DS_NAME not in out and ids["ds"] not in out
    out = str(bob.predict(ids["exp"], api_name="/list_experiments"))
    assert EXP_TITLE not in out and ids["exp"] not in out
    out = str(bob.predict(ids["priv"], api_name="/list_models"))
    assert PRIV_NAME not in out and ids["priv"] not in out
    assert ids["pub"] in out and PUB_NAME in out                                   # public: listed, by alice
    out = str(bob.predict(f"model:{ids['priv']}", api_name="/playground_models"))
    assert ids["priv"] not in out and f"checkpoint:{CK_NAME}" not in out and f"model:{ids['pub']}" in out
    out = str(bob.predict(ids["ds"], CK_NAME, api_name="/new_experiment_form"))
    assert DS_NAME not in out and ids["ds"] not in out and f"'{CK_NAME}'" not in out


def test_bob_cannot_touch_alices_dataset(app):
    bob, ids = app["bob"], app["ids"]
    for ref in (ids["ds"], DS_NAME):
        for api in ("/ask_delete_dataset", "/delete_dataset", "/dataset_mosaic"):
            out = bob.predict(ref, api_name=api)
            assert refused(out), (api, out)
        out = bob.predict(ref, api_name="/dataset_mosaic")
        assert val(out[0]) in (None, ""), out                                      # no image of hers
        out = bob.predict("Stolen", ref, "default", "center", 4, 4, 2, "none", False, 0, 0, 0,
                          api_name="/start_experiment")
        assert refused(out), out
        out = bob.predict("default", 4, ref, "center", 4, 2, api_name="/estimate_experiment")
        assert DS_NAME not in str(out) and ids["ds"] not in str(out), out          # her dataset is ignored (no pack time)


def test_bob_cannot_use_alices_imported_checkpoint(app):
    bob = app["bob"]
    out = bob.predict(CK_NAME, api_name="/describe_checkpoint")
    assert "imported" not in str(out).lower() and CK_NAME not in str(out), out          # nothing described
    assert refused(bob.predict(CK_NAME, api_name="/download_checkpoint"))
    assert refused(bob.predict(f"checkpoint:{CK_NAME}", "seed", 3, "", None, 0.7, "const", None, "0-4", "sefa:all",
                               api_name="/generate"))


def test_bob_cannot_touch_alices_experiment(app):
    bob, ids = app["bob"], app["ids"]
    for api, args in (("/show_experiment", ()), ("/show_snapshot", (2,)), ("/export_progress_video", ()),
                      ("/save_to_my_models", (4, "Stolen")), ("/stop_experiment", ()),
                      ("/continue_experiment", (100,)), ("/ask_delete_experiment", ()), ("/delete_experiment", ())):
        out = bob.predict(ids["exp"], *args, api_name=api)
        assert refused(out), (api, out)
        assert EXP_TITLE not in str(out), (api, out)


def test_bob_cannot_read_or_change_alices_private_model(app):
    bob, ids = app["bob"], app["ids"]
    for ref in (ids["priv"], PRIV_NAME):
        for api, args in (("/show_model", ()), ("/download_model", ()), ("/rename_model", ("Stolen",)),
                          ("/set_model_public", (True,)), ("/ask_delete_model", ()), ("/delete_model", ())):
            out = bob.predict(ref, *args, api_name=api)
            assert refused(out), (api, out)
            assert ".safetensors" not in str(out) and PRIV_NAME not in str(out), (api, out)
    key = f"model:{ids['priv']}"
    out = bob.predict(key, "seed", 3, "", None, 0.7, "const", None, "0-4", "sefa:all", api_name="/generate")
    assert refused(out) and not val(out[0]), out
    out = bob.predict(key, 0, 0.7, "const", api_name="/seed_grid")
    assert refused(out) and not val(out[0]), out
    out = bob.predict(key, ["0", "1"], "z-slerp", "linear", True, 1, 4, "0", 0.7, api_name="/walk_video")
    assert refused(out) and not val(out[0]), out


def test_alices_public_model_is_read_only_for_bob(app):
    bob, ids = app["bob"], app["ids"]
    out = bob.predict(ids["pub"], api_name="/show_model")
    assert not refused(out) and PUB_NAME in str(out), out
    updates = [x for x in out if isinstance(x, dict) and x.get("__type__") == "update"]
    assert {"value": PUB_NAME, "interactive": False} in [{k: u.get(k) for k in ("value", "interactive")}
                                                         for u in updates], out   # rename box: read-only
    assert {"value": True, "interactive": False} in [{k: u.get(k) for k in ("value", "interactive")}
                                                     for u in updates], out       # public box: read-only
    for private in (ids["exp"], DS_NAME, CK_NAME):                                 # issue 17: her provenance
        assert private not in str(out), (private, out)                             # is not on his card
        assert private not in str(bob.predict(None, api_name="/list_models")), private
        assert private in str(app["alice"].predict(ids["pub"], api_name="/show_model"))  # she sees it all
    out = bob.predict(ids["pub"], api_name="/download_model")
    got = [str(val(x)) for x in out if str(val(x) or "").endswith(".safetensors")]
    assert got, out
    raw = Path(got[0]).read_bytes()
    assert ids["exp"].encode() not in raw and DS_NAME.encode() not in raw and CK_NAME.encode() not in raw
    key = f"model:{ids['pub']}"
    out = bob.predict(key, "seed", 3, "", None, 0.7, "const", None, "0-4", "sefa:all", api_name="/generate")
    assert val(out[0]) and not refused(out), out
    out = bob.predict(key, 0, 0.7, "const", api_name="/seed_grid")
    assert len(val(out[0])) == 16, out
    for api, args in (("/rename_model", ("Stolen",)), ("/set_model_public", (False,)), ("/ask_delete_model", ()),
                      ("/delete_model", ())):
        out = bob.predict(ids["pub"], *args, api_name=api)
        assert refused(out), (api, out)
    assert refused(bob.predict(ids["pub"], 4, "Stolen", api_name="/save_to_my_models"))  # a model id is no experiment


def test_path_like_ids_are_refused(app):
    bob, ids, home = app["bob"], app["ids"], app["home"]
    for ref in (f"../alice/models/{ids['priv']}", f"{home}/users/alice/models/{ids['priv']}", "..", "/etc/passwd"):
        assert refused(bob.predict(ref, api_name="/show_model")), ref
        assert refused(bob.predict(ref, api_name="/delete_dataset")), ref
        assert refused(bob.predict(ref, api_name="/show_experiment")), ref
        assert refused(bob.predict(f"model:{ref}", "seed", 3, "", None, 0.7, "const", None, "0-4", "sefa:all",
                                   api_name="/generate")), ref


def test_files_by_url(app):
    """What alice received is served to alice only: bob's session and anonymous get nothing, the same
    404 as for a missing file; the data root is never served to anyone."""
    ids, home, url = app["ids"], app["home"], app["url"]
    a, b = session(url, ALICE), session(url, BOB)
    anon = httpx.Client(base_url=url, timeout=60)
    try:
        got = call(a, "download_model", ids["priv"]) + call(a, "show_model", ids["priv"])
        urls = file_urls(got)
        assert any(u.endswith(".safetensors") for u in urls), got
        for u in urls:
            assert a.get(u).status_code == 200, u                                   # alice gets what she was given
            report = {"url": u, "bob": b.get(u).status_code, "anonymous": anon.get(u).status_code,
                      "bob HEAD": b.head(u).status_code}
            assert report["bob"] == report["bob HEAD"] == 404, report               # bound to alice
            assert report["anonymous"] in (401, 403, 404), report                   # sign-in is required
            missing = u.rsplit("/", 1)[0] + "/no-such-file.png"
            assert b.get(missing).status_code == a.get(missing).status_code == 404  # missing reads as forbidden
        weights = home / "users" / "alice" / "models" / ids["priv"]
        targets = [p for p in weights.rglob("*") if p.is_file()] + [home / "users.json", home / "users" / "alice"]
        for target in targets:
            for c in (a, b):
                r = c.get(f"/gradio_api/file={target}")
                assert r.status_code in (403, 404), (str(target), r.status_code)
        for u in urls:                                                              # handed out as copies
            assert not u.split("file=", 1)[1].startswith(str(home)), u
    finally:
        for c in (a, b, anon):
            c.close()


def test_uploads_are_the_uploaders(app, tmp_path):
    """A file alice uploads is fetchable by alice only, and bob cannot feed it to an endpoint."""
    from PIL import Image
    png = tmp_path / "alice-upload.png"
    Image.effect_noise((256, 256), 60).convert("RGB").save(png)
    a, b = session(app["url"], ALICE), session(app["url"], BOB)
    try:
        stored = upload(a, png)
        assert a.get(f"/gradio_api/file={stored}").status_code == 200
        assert b.get(f"/gradio_api/file={stored}").status_code == 404
        kind, out = call_event(b, "preview_crops", [file_value(stored)], None, None, "center", False, False, 0)
        assert kind == "error", out                                                  # refused before the handler
        kind, out = call_event(a, "preview_crops", [file_value(stored)], None, None, "center", False, False, 0)
        assert kind == "complete" and not refused(out), out
        own = upload(b, png)                                                         # the same bytes, bob's own upload
        assert b.get(f"/gradio_api/file={own}").status_code == 200
    finally:
        a.close()
        b.close()


def _alices_projection(alice, key: str, png: Path) -> str:
    """Alice projects a photo (20 steps) and follows it to the end: her projection's source value."""
    from gradio_client import handle_file
    out = alice.predict(key, handle_file(str(png)), "center", 1, 0.5, 0.5, "w+", False, 20, "pixel", [],
                        api_name="/start_projection")
    assert not refused(out), out
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:                                  # a hang guard, not a time limit
        out = alice.predict(key, api_name="/projection_status")
        found = [val(x) for x in out if isinstance(val(x), str) and val(x).startswith("projection:")]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(out)


def test_bob_cannot_reach_alices_vectors_directions_or_projections(app, tmp_path):
    from PIL import Image
    alice, bob, ids = app["alice"], app["bob"], app["ids"]
    key = f"model:{ids['pub']}"
    assert VEC_NAME in str(alice.predict(key, None, api_name="/list_vectors"))
    out = str(bob.predict(key, ids["vec"], api_name="/list_vectors"))
    assert VEC_NAME not in out and ids["vec"] not in out, out
    for ref in (ids["vec"], VEC_NAME):
        for api, args in (("/rename_vector", (ref, "Stolen")), ("/delete_vector", (ref,)), ("/export_vector", (ref,))):
            out = bob.predict(*args, api_name=api)
            assert refused(out) and ".npy" not in str(out), (api, out)
    vec_source = f"vector:{ids['vec']}"
    for api, args in (("/generate", (key, vec_source, 3, "", None, 0.7, "const", None, "0-4", "sefa:all")),
                      ("/keep_vector", (key, vec_source, 3, "", None, 0.7, "const", None, "0-4", "sefa:all",
                                        0, 0, 0, 0, 0, 0, "Stolen")),
                      ("/walk_preview", (key, [vec_source, "1"], "w-lerp", "linear", True, 1, 4, 0.7))):
        out = bob.predict(*args, api_name=api)
        assert refused(out) and (api == "/keep_vector" or not val(out[0])), (api, out)
    out = bob.predict(key, "saved", api_name="/direction_sliders")
    assert DIR_NAME not in str(out), out
    assert refused(bob.predict(key, "saved", "0", "Stolen", api_name="/save_direction"))
    assert refused(bob.predict(key, "0", api_name="/delete_direction"))
    png = tmp_path / "alice-photo.png"
    Image.effect_noise((48, 40), 50).convert("RGB").save(png)
    source = _alices_projection(alice, key, png)
    assert refused(bob.predict(key, api_name="/projection_status"))              # bob has none; hers is not shown
    assert refused(bob.predict(api_name="/stop_projection"))
    out = bob.predict(key, source, 3, "", None, 1.0, "const", None, "0-4", "sefa:all", api_name="/generate")
    assert refused(out) and not val(out[0]), out
    out = alice.predict(key, source, 3, "", None, 1.0, "const", None, "0-4", "sefa:all", api_name="/generate")
    assert val(out[0]) and not refused(out), out                                 # ... while it is hers to use


def test_alices_items_are_unchanged(app):
    """Last in the file: after every attempt above, core sees alice's items exactly as before."""
    after = _state(app["home"], app["ids"])
    before = app["before"]
    assert after["datasets"] == before["datasets"]
    assert after["experiment"] == before["experiment"] and after["experiment"]["state"] == "queued"
    assert after["models"] == before["models"]
    assert after["checkpoints"] == before["checkpoints"] == [CK_NAME]
    assert after["bob_datasets"] == [] and after["bob_experiments"] == [] and after["bob_models"] == []
    assert after["vectors"] == before["vectors"] == [[app["ids"]["vec"], VEC_NAME]]
    assert after["directions"] == before["directions"] == [[app["ids"]["dir"], DIR_NAME]]
    assert after["bob_vectors"] == []
