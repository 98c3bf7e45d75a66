"""Queue events and page sessions belong to the user who started them (with ``--auth``).

Gradio addresses an event's results by its event id (``GET /gradio_api/call/<api>/<event_id>``) and
a page's events by a session hash the client picks (``/gradio_api/queue/data?session_hash=``,
``/gradio_api/heartbeat/<hash>``, ``/gradio_api/cancel``, ``/gradio_api/deep_link``, the stream
routes). Gradio checks only that the caller is signed in, so anyone who learnt another user's id
could read that user's results (consuming them: the owner's own read then hangs), cancel their
events, or run events in their page's state.

This middleware binds each session hash to the first user who presents it and each event id to
the user whose request created it (read from Gradio's ``{"event_id": ...}`` answer before the
client sees it), and answers 404 to anyone else *before* Gradio sees the request, so the owner's
stream is untouched. Bindings live in memory, like Gradio's queue. Without ``--auth`` there is one
user and nothing is restricted.
"""
from __future__ import annotations

import json
import re
import threading
import time
from urllib.parse import parse_qs

from .auth import auth_on, held_response, json_response, relative_path, session_user

API = "/gradio_api"
# (method, path) of the routes that name an event: reading its results, feeding or closing its stream
EVENT_ROUTES = (("GET", re.compile(r"^/gradio_api/call/(?:v2/)?[^/]+/(?P<event>[^/]+)/?$")),
                ("POST", re.compile(r"^/gradio_api/stream/(?P<event>[^/]+)(?:/close)?/?$")))
SESSION_ROUTES = (re.compile(r"^/gradio_api/heartbeat/(?P<session>[^/]+)/?$"),
                  re.compile(r"^/gradio_api/stream/(?P<session>[^/]+)/[^/]+/[^/]+/[^/]+$"))
SESSION_QUERY_ROUTES = ("/gradio_api/queue/data", "/gradio_api/deep_link")
MAX_JSON_BODY = 32 * 1024 * 1024
NOT_FOUND = (404, {"detail": "Not found"})


class Owners:
    """Who each session hash and event id belongs to (thread-safe, pruned when large)."""

    MAX_ENTRIES = 50_000
    KEEP_S = 24 * 3600

    def __init__(self, clock=time.monotonic):
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[str, float]] = {}
        self._events: dict[str, tuple[str, float]] = {}
        self._clock = clock

    def claim_session(self, session_hash: str, user: str) -> bool:
        """True when the session hash is ``user``'s (binding it to them if it was nobody's)."""
        with self._lock:
            owner = self._sessions.get(session_hash)
            if owner is None:
                self._sessions[session_hash] = (user, self._clock())
                self._prune(self._sessions)
                return True
            return owner[0] == user

    def add_event(self, event_id: str, user: str) -> None:
        """An event ``user`` created; with no session hash of its own it is its own session."""
        with self._lock:
            now = self._clock()
            self._events[event_id] = (user, now)
            self._sessions.setdefault(event_id, (user, now))
            self._prune(self._events)
            self._prune(self._sessions)

    def event_is(self, event_id: str, user: str) -> bool:
        with self._lock:
            owner = self._events.get(event_id)
            return owner is not None and owner[0] == user

    def _prune(self, table: dict) -> None:
        if len(table) <= self.MAX_ENTRIES:
            return
        now = self._clock()
        keep = {k: v for k, v in table.items() if now - v[1] <= self.KEEP_S}
        if len(keep) > self.MAX_ENTRIES:
            keep = dict(sorted(keep.items(), key=lambda kv: kv[1][1])[len(keep) // 2:])
        table.clear()
        table.update(keep)


OWNERS = Owners()


def _query_session(scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("session_hash")
    return values[0] if values else None


def _is_json(scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


class EventAccessMiddleware:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app, owners: Owners = OWNERS):
        self.app = app
        self.owners = owners

    async def __call__(self, scope, receive, send):
        gradio_app = scope.get("app")
        if scope["type"] != "http" or not auth_on(gradio_app):
            return await self.app(scope, receive, send)
        path = relative_path(scope)
        user = session_user(gradio_app, scope)
        if user is None or not path.startswith(API + "/"):
            return await self.app(scope, receive, send)  # SessionGuard and Gradio refuse the anonymous
        if not self._path_allowed(scope, path, user):
            return await self._answer(send, *NOT_FOUND)
        if scope.get("method") == "POST" and _is_json(scope):
            return await self._json_post(scope, receive, send, user)
        return await self.app(scope, receive, send)

    def _path_allowed(self, scope, path: str, user: str) -> bool:
        for method, route in EVENT_ROUTES:
            m = route.match(path) if scope.get("method") == method else None
            if m and not self.owners.event_is(m["event"], user):
                return False
        for route in SESSION_ROUTES:
            m = route.match(path)
            if m and not self.owners.claim_session(m["session"], user):
                return False
        if path.rstrip("/") in SESSION_QUERY_ROUTES:
            session_hash = _query_session(scope)
            if session_hash is not None and not self.owners.claim_session(session_hash, user):
                return False
        return True

    async def _json_post(self, scope, receive, send, user: str):
        """Check the session hash and event id a JSON body names, then record the event id Gradio
        answers with before the client sees it."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_JSON_BODY:
                return await self._answer(send, 413, {"detail": "Request body too large"})
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            session_hash, event_id = data.get("session_hash"), data.get("event_id")
            if isinstance(session_hash, str) and not self.owners.claim_session(session_hash, user):
                return await self._answer(send, *NOT_FOUND)
            if (isinstance(event_id, str) and relative_path(scope).rstrip("/") == API + "/cancel"
                    and not self.owners.event_is(event_id, user)):
                return await self._answer(send, *NOT_FOUND)

        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def note_event(start: dict, answer: bytes) -> None:
            if start.get("status") == 200:
                try:
                    event_id = json.loads(answer).get("event_id")
                except (ValueError, AttributeError):
                    event_id = None
                if isinstance(event_id, str):
                    self.owners.add_event(event_id, user)
            await send(start)
            await send({"type": "http.response.body", "body": answer, "more_body": False})

        await self.app(scope, replay, held_response(send, note_event))

    @staticmethod
    async def _answer(send, status: int, body: dict) -> None:
        for m in json_response(status, body):
            await send(m)
