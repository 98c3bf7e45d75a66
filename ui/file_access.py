"""Files in Gradio's temp dir are served to the user they were handed to, and to no one else.

Gradio serves every file in its temp dir (uploads and the copies of handler outputs) to any
signed-in session that knows the URL. With ``--auth`` this module binds each of those files to the
users it was given to:

- an output: every file path in what ``Blocks.process_api`` returns is granted to the request's user;
- an upload: the paths ``/gradio_api/upload`` answers with are granted to the uploader;
- a fetch (``/gradio_api/file=...``) of a temp-dir file not granted to the caller is answered 404,
  the same answer as for a missing file;
- an input naming a temp-dir file not granted to the caller is refused before any handler runs
  (so nobody can feed another user's upload to an import).

Grants live in memory: after a restart the old URLs are gone for everyone and a reload of the page
hands out new ones. Without ``--auth`` there is one user and nothing is restricted.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import gradio as gr
from gradio import utils as gradio_utils

from .auth import auth_on, held_response, session_user
from starlette.responses import PlainTextResponse

EVERYONE = "*"
FILE_ROUTES = ("/gradio_api/file=", "/gradio_api/file/")
UPLOAD_ROUTE = "/gradio_api/upload"


def temp_root() -> Path:
    """Gradio's upload and cache folder (GRADIO_TEMP_DIR)."""
    return Path(gradio_utils.get_upload_folder()).resolve()


def _resolved(path: str) -> str | None:
    try:
        return str(Path(path).resolve())
    except (OSError, ValueError, RuntimeError):
        return None


def in_temp_root(path: str) -> bool:
    resolved = _resolved(path)
    if resolved is None:
        return False
    root = str(temp_root())
    return resolved == root or resolved.startswith(root + os.sep)


class Grants:
    """Which users may fetch which temp-dir file (thread-safe; pruned as files disappear)."""

    PRUNE_EVERY = 2000

    def __init__(self):
        self._lock = threading.Lock()
        self._users: dict[str, set[str]] = {}
        self._added = 0

    def grant(self, paths, user: str) -> None:
        resolved = [r for r in (_resolved(p) for p in paths) if r]
        with self._lock:
            for path in resolved:
                self._users.setdefault(path, set()).add(user)
            self._added += len(resolved)
            if self._added >= self.PRUNE_EVERY:
                self._added = 0
                self._users = {p: u for p, u in self._users.items() if os.path.exists(p)}

    def allowed(self, path: str, user: str | None) -> bool:
        resolved = _resolved(path)
        if resolved is None:
            return False
        with self._lock:
            users = self._users.get(resolved, ())
            return EVERYONE in users or (user is not None and user in users)


GRANTS = Grants()


def file_paths(obj) -> list[str]:
    """Every local file path in a payload (FileData dicts, however deeply nested)."""
    found: list[str] = []

    def walk(o):
        if isinstance(o, dict):
            path = o.get("path")
            if isinstance(path, str) and path and "://" not in path:
                found.append(path)
            for v in o.values():
                walk(v)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v)
        elif hasattr(o, "model_dump"):  # a FileData or GradioModel not yet dumped
            walk(o.model_dump())

    walk(obj)
    return found


def _request_user(request) -> str | None:
    if isinstance(request, list):  # batched events carry one request per item; all are one session
        request = request[0] if request else None
    return getattr(request, "username", None) if request is not None else None


def _route_path(path: str, routes: tuple[str, ...]) -> str | None:
    """What follows one of ``routes`` in ``path`` (any root path prefix allowed), else None."""
    for route in routes:
        at = path.find(route)
        if at >= 0:
            return path[at + len(route):]
    return None


class FileAccessMiddleware:
    """ASGI middleware: checks file fetches and records uploads (see the module docstring)."""

    def __init__(self, app, grants: Grants = GRANTS):
        self.app = app
        self.grants = grants

    async def __call__(self, scope, receive, send):
        gradio_app = scope.get("app")
        if scope["type"] != "http" or not auth_on(gradio_app):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        wanted = _route_path(path, FILE_ROUTES)
        if wanted is not None and scope.get("method") in ("GET", "HEAD"):
            if "://" not in wanted and in_temp_root(wanted):
                user = session_user(gradio_app, scope)
                if not self.grants.allowed(wanted, user):
                    return await PlainTextResponse("File not found.", status_code=404)(scope, receive, send)
            return await self.app(scope, receive, send)
        if path.endswith(UPLOAD_ROUTE) and scope.get("method") == "POST":
            return await self._upload(gradio_app, scope, receive, send)
        return await self.app(scope, receive, send)

    async def _upload(self, gradio_app, scope, receive, send):
        """Pass the upload through, and grant the stored paths to the uploader before the client
        sees them."""
        user = session_user(gradio_app, scope)

        async def grant(start: dict, body: bytes) -> None:
            if start.get("status") == 200 and user is not None:
                try:
                    paths = json.loads(body)
                except ValueError:
                    paths = []
                if isinstance(paths, list):
                    self.grants.grant([p for p in paths if isinstance(p, str)], user)
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, held_response(send, grant))


def install(demo: gr.Blocks, grants: Grants = GRANTS) -> None:
    """Wrap ``demo.process_api``: refuse inputs naming another user's temp files; grant outputs."""
    original = demo.process_api

    async def process_api(block_fn, inputs, state=None, request=None, *args, **kwargs):
        user = _request_user(request)
        if user is not None:  # signed in (with --auth): the input files must be this user's
            for path in file_paths(inputs):
                if in_temp_root(path) and not grants.allowed(path, user):
                    raise gr.Error("That file is not available (it was not uploaded or shown to you).")
        out = await original(block_fn, inputs, state, request, *args, **kwargs)
        if user is not None and isinstance(out, dict):
            grants.grant([p for p in file_paths(out.get("data")) if in_temp_root(p)], user)
        return out

    demo.process_api = process_api
    # files that are part of the page itself (component values set when the app was built)
    grants.grant([p for p in file_paths(getattr(demo, "config", None)) if in_temp_root(p)], EVERYONE)
