"""core.checkpoints: catalog, resumable downloads from a local server, imports, the CLI.

Everything runs against an HTTP server on 127.0.0.1; a guard fails any other connection. The
checkpoint files are tiny native files written with ``core.stylegan.save_checkpoint`` and validated by
the real ``load_checkpoint``.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import socket
import threading

import pytest

from core import checkpoints as ck
from core.cli import main as cli_main

# ---------------------------------------------------------------------------- the local server


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append({"path": self.path, "range": self.headers.get("Range")})
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        mode = srv.modes.pop(0) if srv.modes else "normal"
        if mode == "corrupt":
            body = bytearray(body)
            for i in range(len(body) // 3, len(body) // 3 + 16):
                body[i] ^= 0xFF
            body = bytes(body)
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "ignore_range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if mode == "cut":  # promise everything, send part of it, hang up
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(chunk)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files: dict[str, bytes] = {}
        self.modes: list[str] = []   # one mode per request, in order; then "normal"
        self.requests: list[dict] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


# ---------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """ATELIER_HOME in tmp_path; any connection or lookup outside 127.0.0.1 fails the test."""
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    attempts: list = []
    real_connect, real_gai = socket.socket.connect, socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "localhost"):
            attempts.append(address)
            raise ConnectionRefusedError(f"test guard: no network to {address[0]}")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", None):
            attempts.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no DNS for {host}")
        return real_gai(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    names = {e.name for e in ck.catalog()}
    for name in names - {e.name for e in ck.BUILT_IN}:
        ck.unregister_catalog_entry(name)


# ---------------------------------------------------------------------------- checkpoint files


@pytest.fixture(scope="session")
def ckpt_bytes(tmp_path_factory) -> bytes:
    """The bytes of a small valid checkpoint: a 32 px native file with G, D and G_ema."""
    import torch
    from core.stylegan import save_checkpoint
    from core.stylegan.networks import Discriminator, Generator
    torch.manual_seed(0)
    arch = dict(img_resolution=32, channel_base=256, channel_max=32, mapping_layers=2)
    G = Generator(z_dim=32, w_dim=32, **arch)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, G_ema=G, G=G, D=Discriminator(**arch), metadata={"test": True})
    return path.read_bytes()


def _entry(server, name="tiny-32", path="/tiny.safetensors", body=None, **kw):
    server.files[path] = body
    return ck.register_catalog_entry(ck.CatalogEntry(
        name, "Tiny", "a test model", 32, server.url(path), 1, True, **kw))


def _files(name):
    return sorted(p.name for p in ck.cache_dir().iterdir() if p.name.startswith(name))


# ---------------------------------------------------------------------------- catalog and listing


def test_catalog_has_official_entries():
    entries = {e.name: e for e in ck.catalog()}
    assert entries["default"].bundled_path == "static/models/default.safetensors"
    assert entries["default"].resolution == 64
    official = [e for e in ck.catalog() if e.url]
    assert len(official) >= 16
    assert entries["ffhq-1024"].url.endswith("/stylegan2-ffhq-1024x1024.pkl")
    assert entries["ffhq-1024"].size_text == "364 MB"
    assert entries["cifar10-32"].url.endswith("stylegan2-cifar10-32x32.pkl") and entries["cifar10-32"].resolution == 32
    assert entries["car-512"].url.endswith("stylegan2-car-config-f.pkl") and "letterbox" in entries["car-512"].note
    assert entries["ffhq-256"].size_text.startswith("about")
    assert all(e.url.startswith("https://") and e.licence for e in official)


def test_cli_list_json(capsys):
    assert cli_main(["checkpoints", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    catalog_rows = [r for r in rows if r["kind"] == "catalog"]
    assert len(catalog_rows) >= 12
    assert all(r["url"].startswith("https://") and r["resolution"] in (32, 256, 512, 1024) for r in catalog_rows)
    assert all(r["state"] == "not downloaded" for r in catalog_rows)
    assert rows[0]["name"] == "default" and rows[0]["state"] in ("bundled", "missing")
    assert cli_main(["checkpoints", "list"]) == 0
    assert "ffhq-1024" in capsys.readouterr().out


def test_resolve_not_downloaded_and_unknown(capsys):
    with pytest.raises(ck.NotDownloaded, match=r"ffhq-256 is not downloaded yet: run `python -m core.cli "
                                               r"checkpoints download ffhq-256`"):
        ck.resolve_checkpoint("ffhq-256")
    with pytest.raises(ck.CheckpointsError, match="Unknown checkpoint"):
        ck.resolve_checkpoint("nope")
    with pytest.raises(ck.CheckpointsError, match="No such checkpoint file"):
        ck.resolve_checkpoint("missing/file.pkl")


def test_default_resolves_to_bundled_file(monkeypatch, tmp_path):
    monkeypatch.setattr("core.checkpoints.cache.REPO_ROOT", tmp_path)
    with pytest.raises(ck.CheckpointsError, match="bundled checkpoint 'default' is missing"):
        ck.resolve_checkpoint("default")
    f = tmp_path / "static/models/default.safetensors"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x")
    assert ck.resolve_checkpoint("default") == f
    assert ck.list_checkpoints()[0]["state"] == "bundled"
    with pytest.raises(ck.CheckpointsError, match="cannot be removed"):
        ck.remove_checkpoint("default")


# ---------------------------------------------------------------------------- downloads


def test_full_download(server, ckpt_bytes):
    _entry(server, body=ckpt_bytes)
    seen = []
    path = ck.download_checkpoint("tiny-32", progress_fn=lambda d, t: seen.append((d, t)), thumbnail=False)
    assert path.read_bytes() == ckpt_bytes
    assert seen[-1] == (len(ckpt_bytes), len(ckpt_bytes))
    meta = json.loads((ck.cache_dir() / "tiny-32.json").read_text())
    assert meta["sha256"] == hashlib.sha256(ckpt_bytes).hexdigest() and meta["bytes"] == len(ckpt_bytes)
    assert _files("tiny-32") == ["tiny-32.json", "tiny-32.safetensors"]
    assert ck.resolve_checkpoint("tiny-32") == path
    row = next(r for r in ck.list_checkpoints() if r["name"] == "tiny-32")
    assert row["state"] == "downloaded" and row["local_bytes"] == len(ckpt_bytes)
    # a second call verifies the recorded sha256 and does not download again
    n = len(server.requests)
    assert ck.download_checkpoint("tiny-32", thumbnail=False) == path
    assert len(server.requests) == n


def test_cut_off_download_resumes_with_range(server, ckpt_bytes):
    _entry(server, body=ckpt_bytes)
    server.modes = ["cut"]
    with pytest.raises(ck.DownloadError, match="interrupted"):
        ck.download_checkpoint("tiny-32", retries=0, thumbnail=False)
    assert _files("tiny-32") == ["tiny-32.part"]  # nothing that looks complete
    partial = (ck.cache_dir() / "tiny-32.part").stat().st_size
    assert 0 < partial < len(ckpt_bytes)
    assert next(r for r in ck.list_checkpoints() if r["name"] == "tiny-32")["state"] == "not downloaded"
    with pytest.raises(ck.NotDownloaded):
        ck.resolve_checkpoint("tiny-32")

    path = ck.download_checkpoint("tiny-32", thumbnail=False)
    assert server.requests[-1]["range"] == f"bytes={partial}-"
    assert path.read_bytes() == ckpt_bytes
    assert _files("tiny-32") == ["tiny-32.json", "tiny-32.safetensors"]


def test_retries_resume_within_one_call(server, ckpt_bytes):
    _entry(server, body=ckpt_bytes)
    server.modes = ["cut", "cut"]
    path = ck.download_checkpoint("tiny-32", retries=2, thumbnail=False)
    assert path.read_bytes() == ckpt_bytes
    assert [r["range"] is not None for r in server.requests] == [False, True, True]


def test_server_ignoring_range_restarts(server, ckpt_bytes):
    _entry(server, body=ckpt_bytes)
    server.modes = ["cut", "ignore_range"]
    with pytest.raises(ck.DownloadError):
        ck.download_checkpoint("tiny-32", retries=0, thumbnail=False)
    path = ck.download_checkpoint("tiny-32", thumbnail=False)
    assert server.requests[-1]["range"] is not None  # asked for a range, got 200: wrote from 0
    assert path.read_bytes() == ckpt_bytes


def test_complete_part_gets_416_and_is_used(server, ckpt_bytes):
    _entry(server, body=ckpt_bytes)
    (ck.cache_dir() / "tiny-32.part").write_bytes(ckpt_bytes)
    assert ck.download_checkpoint("tiny-32", thumbnail=False).read_bytes() == ckpt_bytes


def test_corrupted_content_is_detected_and_removed(server, ckpt_bytes):
    # a known sha256 in the catalog: flipped bytes anywhere are caught
    _entry(server, body=ckpt_bytes, sha256=hashlib.sha256(ckpt_bytes).hexdigest())
    server.modes = ["corrupt"]
    with pytest.raises(ck.DownloadError, match="corrupted.*removed"):
        ck.download_checkpoint("tiny-32", thumbnail=False)
    assert _files("tiny-32") == []
    assert ck.download_checkpoint("tiny-32", thumbnail=False).read_bytes() == ckpt_bytes


def test_invalid_content_is_refused_and_removed(server):
    _entry(server, body=b"<html>Please sign in to the hotel wifi</html>")
    with pytest.raises(ck.DownloadError, match="not a usable checkpoint.*removed"):
        ck.download_checkpoint("tiny-32", thumbnail=False)
    assert _files("tiny-32") == []


def test_damaged_cache_file_fails_verification(server, ckpt_bytes):
    _entry(server, body=ckpt_bytes)
    path = ck.download_checkpoint("tiny-32", thumbnail=False)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    assert ck.verify_checkpoint("tiny-32") is False
    with pytest.raises(ck.DownloadError, match="did not match its recorded sha256"):
        ck.download_checkpoint("tiny-32", thumbnail=False)
    assert _files("tiny-32") == []


def test_offline_message(no_network, capsys):
    with pytest.raises(ck.DownloadError, match=r"^Could not reach api\.ngc\.nvidia\.com: no network\?"):
        ck.download_checkpoint("ffhq-256")
    assert _files("ffhq-256") == [] or _files("ffhq-256") == ["ffhq-256.part"]
    assert not (ck.cache_dir() / "ffhq-256.pkl").exists()
    assert cli_main(["checkpoints", "download", "ffhq-256"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: Could not reach api.ngc.nvidia.com: no network?")
    assert "api.ngc.nvidia.com" in no_network  # the guard refused it: nothing left the machine
    no_network.clear()


def test_connection_refused_on_localhost(server):
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    ck.register_catalog_entry(ck.CatalogEntry("gone-32", "Gone", "x", 32, f"http://127.0.0.1:{port}/x.pkl", 1))
    with pytest.raises(ck.DownloadError, match="Could not reach 127.0.0.1: no network"):
        ck.download_checkpoint("gone-32")


def test_http_error_message(server):
    ck.register_catalog_entry(ck.CatalogEntry("missing-32", "M", "x", 32, server.url("/nothing.pkl"), 1))
    with pytest.raises(ck.DownloadError, match="HTTP 404"):
        ck.download_checkpoint("missing-32")


def test_remove_download(server, ckpt_bytes, capsys):
    _entry(server, body=ckpt_bytes)
    ck.download_checkpoint("tiny-32", thumbnail=False)
    assert cli_main(["checkpoints", "remove", "tiny-32"]) == 0
    assert _files("tiny-32") == []
    assert cli_main(["checkpoints", "remove", "tiny-32"]) == 2
    assert "not downloaded" in capsys.readouterr().err


def test_cli_download_progress(server, ckpt_bytes, capsys):
    _entry(server, body=ckpt_bytes)
    assert cli_main(["checkpoints", "download", "tiny-32", "--no-thumbnail"]) == 0
    out = capsys.readouterr()
    assert out.out.strip().endswith("tiny-32.safetensors")
    assert "tiny-32" in out.err  # the tqdm bar


# ---------------------------------------------------------------------------- imports


def test_import_local_file(tmp_path, ckpt_bytes, capsys):
    src = tmp_path / "My Model.safetensors"
    src.write_bytes(ckpt_bytes)
    rec = ck.import_checkpoint(src, thumbnail=False)
    assert rec["name"] == "My-Model"
    path = ck.resolve_checkpoint("My-Model")
    assert path.read_bytes() == ckpt_bytes and path.parent == ck.user_imports_dir("local")
    assert "My" not in path.name  # stored under an opaque id
    row = next(r for r in ck.list_checkpoints() if r["name"] == "My-Model")
    assert row["state"] == "imported" and row["kind"] == "imported"
    # private to its user
    assert all(r["name"] != "My-Model" for r in ck.list_checkpoints(user="someone-else"))
    with pytest.raises(ck.CheckpointsError):
        ck.resolve_checkpoint("My-Model", user="someone-else")
    # names: no clashes, no path characters
    with pytest.raises(ck.CheckpointsError, match="already have"):
        ck.import_checkpoint(src, name="My-Model")
    with pytest.raises(ck.CheckpointsError, match="catalog entry"):
        ck.import_checkpoint(src, name="ffhq-1024")
    for bad in ("../evil", "a/b", ".hidden", "", "x" * 65):
        with pytest.raises(ck.CheckpointsError, match="Invalid checkpoint name"):
            ck.import_checkpoint(src, name=bad, thumbnail=False)
    assert cli_main(["checkpoints", "import", str(src), "--name", "second", "--no-thumbnail"]) == 0
    assert "imported second" in capsys.readouterr().out
    assert cli_main(["checkpoints", "remove", "My-Model"]) == 0
    assert not path.exists()
    with pytest.raises(ck.CheckpointsError):
        ck.resolve_checkpoint("My-Model")


def test_import_invalid_file_is_not_kept(tmp_path, capsys):
    src = tmp_path / "notes.pkl"
    src.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ck.ImportRefused):
        ck.import_checkpoint(src, name="notes")
    imported = ck.cache_dir() / "imported"
    assert [p.name for p in imported.iterdir() if p.name != "index.json"] == []
    assert all(r["name"] != "notes" for r in ck.list_checkpoints())
    assert cli_main(["checkpoints", "import", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert cli_main(["checkpoints", "import", str(tmp_path / "absent.pkl")]) == 2
    assert "No such file" in capsys.readouterr().err
    with pytest.raises(ck.ImportRefused, match="http"):
        ck.import_checkpoint("file:///etc/passwd")


def test_import_url(server, ckpt_bytes):
    server.files["/shared/cats.pkl"] = ckpt_bytes
    rec = ck.import_checkpoint(server.url("/shared/cats.pkl"), thumbnail=False)
    assert rec["name"] == "cats" and rec["url"].startswith("http://127.0.0.1")
    assert ck.resolve_checkpoint("cats").read_bytes() == ckpt_bytes
    server.files["/bad.pkl"] = b"garbage" * 10
    with pytest.raises(ck.ImportRefused):
        ck.import_checkpoint(server.url("/bad.pkl"))
    assert sorted(p.suffix for p in (ck.cache_dir() / "imported").iterdir()) == [".json"]       # the index
    assert sorted(p.suffix for p in ck.user_imports_dir("local").iterdir()) == [".pkl"]         # the good file


def test_cut_off_import_resumes_with_range_on_the_next_try(server, ckpt_bytes):
    server.files["/shared/cut.pkl"] = ckpt_bytes
    server.modes = ["cut"]              # the first answer promises the whole file and hangs up half-way
    url = server.url("/shared/cut.pkl")
    with pytest.raises(ck.DownloadError, match="interrupted"):
        ck.import_checkpoint(url, thumbnail=False, retries=0)
    part = ck.imports.partial_download("local", url)
    partial = part.stat().st_size
    assert 0 < partial < len(ckpt_bytes) and not ck.imported_files("local")
    from core.integrity import check_data_root
    check_data_root(grace_s=0)          # the start-up check keeps a resumable import
    assert part.exists()
    rec = ck.import_checkpoint(url, thumbnail=False, retries=0)
    assert server.requests[-1]["range"] == f"bytes={partial}-"
    assert ck.resolve_checkpoint(rec["name"]).read_bytes() == ckpt_bytes and not part.exists()


def test_import_retries_resume_within_one_call(server, ckpt_bytes):
    server.files["/twice.pkl"] = ckpt_bytes
    server.modes = ["cut", "cut"]
    rec = ck.import_checkpoint(server.url("/twice.pkl"), thumbnail=False)
    assert ck.resolve_checkpoint(rec["name"]).read_bytes() == ckpt_bytes
    assert [r["range"] is not None for r in server.requests] == [False, True, True]


def test_imports_of_the_shared_folder_move_into_their_users_folder(ckpt_bytes):
    """Imports made when their files lived in checkpoints/imported (weights) and checkpoints/thumbnails
    (imported-<id>.png) move into users/<user>/checkpoints on the first read, and count against the
    user's quota from there."""
    from core import quota
    shared = ck.cache_dir() / "imported"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "0123456789abcdef.safetensors").write_bytes(ckpt_bytes)
    (ck.cache_dir() / "thumbnails").mkdir(exist_ok=True)
    (ck.cache_dir() / "thumbnails" / "imported-0123456789abcdef.png").write_bytes(b"png")
    (shared / "index.json").write_text(json.dumps({"alice": {"old": {
        "id": "0123456789abcdef", "ext": ".safetensors", "source": "old.safetensors", "bytes": len(ckpt_bytes)}}}))
    row = next(r for r in ck.list_checkpoints("alice") if r["name"] == "old")
    mine = ck.user_imports_dir("alice")
    assert (row["state"], row["path"], row["thumbnail"]) == \
        ("imported", str(mine / "0123456789abcdef.safetensors"), str(mine / "0123456789abcdef.png"))
    assert (mine / "0123456789abcdef.safetensors").read_bytes() == ckpt_bytes
    assert sorted(p.name for p in shared.iterdir()) == ["index.json"]
    assert quota.usage_bytes("alice") == len(ckpt_bytes) + 3
    assert ck.resolve_checkpoint("old", user="alice") == mine / "0123456789abcdef.safetensors"
    ck.remove_checkpoint("old", user="alice")
    assert not list(mine.iterdir()) and quota.usage_bytes("alice") == 0


# ---------------------------------------------------------------------------- thumbnails


def test_thumbnail_is_none_until_made():
    assert ck.thumbnail_for(ck.get_entry("ffhq-256")) is None
    assert ck.list_checkpoints()[1]["thumbnail"] is None


def test_make_thumbnail_renders_grid(tmp_path, ckpt_bytes):
    from PIL import Image
    src = tmp_path / "t.safetensors"
    src.write_bytes(ckpt_bytes)
    ck.import_checkpoint(src, name="thumbs", thumbnail=False)
    assert ck.thumbnail_for("thumbs") is None
    path = ck.make_thumbnail("thumbs")
    assert Image.open(path).size == (2 * ck.THUMB_CELL, 2 * ck.THUMB_CELL)
    assert ck.thumbnail_for("thumbs") == path
    assert next(r for r in ck.list_checkpoints() if r["name"] == "thumbs")["thumbnail"] == str(path)
    assert ck.thumbnail_for("thumbs", user="someone-else") is None
    ck.remove_checkpoint("thumbs")
    assert not path.exists()


def test_import_and_list_need_no_torch_and_no_network():
    import subprocess
    import sys
    code = ("import sys, core.checkpoints as ck; rows = ck.list_checkpoints(); "
            "assert len(rows) >= 17; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
