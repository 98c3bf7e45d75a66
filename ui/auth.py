"""Sign-in and sessions for ``python app.py --auth FILE``: Gradio's login route and cookies, with
what they lack added around them (an ASGI middleware, :class:`SessionGuard`):

- passwords are checked in a thread pool (``core.signin.VerifyPool``), never on the event loop; a
  client past its allowance of wrong passwords (``core.signin.AttemptLimiter``) is answered 429 at
  once, without hashing, and a full pool answers 503;
- each session remembers who signed in, when, and that user's session stamp (``core.users``). On
  every request a session older than its lifetime, or whose user's stamp changed (``users passwd``,
  ``remove`` or ``revoke``, from any process), is ended: Gradio forgets the token, so the API
  answers 401 and the browser gets the sign-in page;
- a client without a valid session reaches only what the sign-in page needs (401 for everything
  else), and the sign-in page carries no description of the API.

Hooks into Gradio, each pinned by ``tests/test_app_auth.py`` so that an upgrade that moves them
fails loudly: the ``access-token-<cookie_id>`` cookies and ``App.tokens``; Gradio's /login awaiting an
``auth`` coroutine in the request's own context; and the ``window.gradio_api_info`` script of the
page template. Without ``--auth`` the middleware passes everything through.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from core import users
from core.signin import AttemptLimiter, VerifyPool

SESSION_HOURS_ENV = "ATELIER_SESSION_HOURS"
DEFAULT_SESSION_HOURS = 168.0          # a week
MAX_SESSION_HOURS = 24 * 366.0
LOGIN_PATHS = ("/login", "/login/")
# What the sign-in page loads (checked in Chromium), and the start-up call Gradio's launch() makes to
# itself (it runs the app's start-up events once and answers true/false); all else needs a session.
ANON_PATHS = frozenset({"/", *LOGIN_PATHS, "/logout", "/favicon.ico", "/theme.css", "/robots.txt",
                        "/manifest.json", "/gradio_api/login_check", "/gradio_api/login_check/",
                        "/gradio_api/startup-events"})
ANON_PREFIXES = ("/assets/", "/static/", "/pwa_icon")
API_INFO_RE = re.compile(rb"window\.gradio_api_info = .*?;</script>", re.S)
NO_API_INFO = b'window.gradio_api_info = {"named_endpoints": {}, "unnamed_endpoints": {}};</script>'
# Gradio's sign-in form shows nothing for a 429 or 503: this shows the server's sentence instead.
SIGN_IN_SCRIPT = b"""<script>(() => {
  const fetch0 = window.fetch;
  window.fetch = async (...args) => {
    const r = await fetch0(...args);
    const url = String(args[0] && args[0].url || args[0]);
    if (!/\\/login\\/?$/.test(url)) return r;
    const old = document.getElementById("atelier-signin-msg");
    if (old && r.status !== 429 && r.status !== 503) old.remove();
    if (r.status === 429 || r.status === 503) {
      let text = "Too many sign-in attempts: try again in a moment.";
      try { text = (await r.clone().json()).detail || text; } catch (e) {}
      let box = document.getElementById("atelier-signin-msg");
      if (!box) {
        box = document.createElement("p");
        box.id = "atelier-signin-msg";
        box.setAttribute("role", "alert");
        box.style.cssText = "margin:0 0 .8rem;padding:.6rem .8rem;background:#fff4e5;color:#7a3e00;" +
          "border:1px solid #f0b46c;border-radius:6px;font-size:15px";
        const button = document.querySelector("button");   // the sign-in page's only button: Login
        if (button && button.parentElement) button.parentElement.insertBefore(box, button);
        else document.body.prepend(box);
      }
      box.textContent = "\\u26a0 " + text;
    }
    return r;
  };
})();</script></head>"""

SIGN_IN_ATTEMPT: ContextVar[dict | None] = ContextVar("atelier_sign_in_attempt", default=None)


def session_hours(value=None) -> float:
    """The session lifetime in hours: ``value`` (--session-hours), else $ATELIER_SESSION_HOURS, else a
    week. ValueError with one line when it is not a number of hours above 0 (at most a year)."""
    raw = value if value is not None else os.environ.get(SESSION_HOURS_ENV) or DEFAULT_SESSION_HOURS
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        hours = math.nan
    if not (0 < hours <= MAX_SESSION_HOURS):
        source = "--session-hours" if value is not None else SESSION_HOURS_ENV
        raise ValueError(f"{source} must be a number of hours above 0 and at most {MAX_SESSION_HOURS:.0f}, "
                         f"not {str(raw)[:20]!r}")
    return hours


def session_token(gradio_app, scope) -> str | None:
    """The access token of a raw request's cookies, as Gradio's own ``/user`` route reads it."""
    cookie_id = getattr(gradio_app, "cookie_id", "")
    cookies = _cookies(scope)
    return cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")


def session_user(gradio_app, scope) -> str | None:
    """The signed-in user of a raw request (after :class:`SessionGuard` ended any invalid session)."""
    token = session_token(gradio_app, scope)
    return getattr(gradio_app, "tokens", {}).get(token) if token else None


def auth_on(gradio_app) -> bool:
    return getattr(gradio_app, "auth", None) is not None or getattr(gradio_app, "auth_dependency", None) is not None


def _cookies(scope) -> dict[str, str]:
    from starlette.requests import cookie_parser
    for name, value in scope.get("headers") or ():
        if name == b"cookie":
            return cookie_parser(value.decode("latin-1"))
    return {}


def relative_path(scope) -> str:
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root):] or "/" if root and path.startswith(root) else path


def client_address(scope) -> str:
    """The peer's address; behind a proxy on FORWARDED_ALLOW_IPS (default 127.0.0.1), uvicorn has
    already put X-Forwarded-For's client here."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass
class Session:
    user: str
    stamp: str
    issued: float


class SignIn:
    """What ``--auth`` needs while the app runs: the users file, the session lifetime, the attempt
    limits and the password-check pool. ``auth`` is the callable handed to Gradio."""

    def __init__(self, path, hours: float = DEFAULT_SESSION_HOURS, limiter: AttemptLimiter | None = None,
                 pool: VerifyPool | None = None, clock=time.time):
        self.path = users.check_auth_file(path)
        self.lifetime_s = float(hours) * 3600
        self.limiter = limiter or AttemptLimiter()
        self.pool = pool or VerifyPool(users.MAX_CONCURRENT_HASHES, backlog=4 * users.MAX_CONCURRENT_HASHES)
        self.sessions: dict[str, Session] = {}
        self.clock = clock

    async def auth(self, username, password) -> bool:
        """Gradio's /login awaits this. Refusals are noted in the attempt for :class:`SessionGuard`."""
        attempt = SIGN_IN_ATTEMPT.get()
        if attempt is None:  # not through SessionGuard's /login: refuse rather than sign in unlimited
            return False
        client, account = attempt["client"], str(username)[:64]
        wait = self.limiter.wait(client, account)
        if wait > 0:
            attempt["refused"] = wait
            return False
        if not self.pool.try_enter():
            attempt["busy"] = True
            return False
        self.limiter.begin(client, account)
        try:
            stamp = await self.pool.run(users.authenticate, self.path, username, password)
        finally:
            self.limiter.end(client, account)
            self.pool.leave()
        if stamp is None:
            self.limiter.failed(client, account)
            return False
        self.limiter.succeeded(client, account)
        attempt.update(user=username, stamp=stamp)
        return True

    def open_session(self, token: str, user: str, stamp: str) -> None:
        now = self.clock()
        if len(self.sessions) > 1000:  # drop the expired ones now and then
            self.sessions = {t: s for t, s in self.sessions.items() if now - s.issued <= self.lifetime_s}
        self.sessions[token] = Session(user, stamp, now)

    def valid(self, token: str, user: str) -> bool:
        """The session is one we opened for ``user``, younger than its lifetime, and the user's stamp is
        unchanged (so passwd, remove or revoke in another process end it)."""
        s = self.sessions.get(token)
        if s is None or s.user != user or self.clock() - s.issued > self.lifetime_s:
            return False
        return users.session_stamps(self.path).get(user) == s.stamp


def json_response(status: int, body: dict, headers: tuple = ()) -> tuple[dict, dict]:
    data = json.dumps(body).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                         *headers]}
    return start, {"type": "http.response.body", "body": data, "more_body": False}


def _token_from_cookies(headers, cookie_id: str) -> str | None:
    prefix = f"access-token-{cookie_id}=".encode()
    for name, value in headers:
        if name.lower() == b"set-cookie" and value.startswith(prefix):
            return value[len(prefix):].split(b";", 1)[0].decode("latin-1")
    return None


class SessionGuard:
    """ASGI middleware: sign-in limits, session checks and the anonymous wall (module docstring)."""

    def __init__(self, app, signin: SignIn | None = None):
        self.app = app
        self.signin = signin

    async def __call__(self, scope, receive, send):
        gradio_app = scope.get("app")
        if self.signin is None or scope["type"] not in ("http", "websocket") or not auth_on(gradio_app):
            return await self.app(scope, receive, send)
        token = session_token(gradio_app, scope)
        user = gradio_app.tokens.get(token) if token else None
        if user is not None and not self.signin.valid(token, user):
            gradio_app.tokens.pop(token, None)  # ended: Gradio now sees an anonymous client
            self.signin.sessions.pop(token, None)
            user = None
        path, method = relative_path(scope), scope.get("method", "GET")
        if scope["type"] == "http" and method == "POST" and path in LOGIN_PATHS:
            return await self._login(gradio_app, scope, receive, send)
        if user is None:
            if scope["type"] != "http" or path not in ANON_PATHS and not path.startswith(ANON_PREFIXES):
                return await self._refuse(gradio_app, scope, send)
            if path == "/" and method == "GET":
                return await self._sign_in_page(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _refuse(self, gradio_app, scope, send) -> None:
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        message = getattr(getattr(gradio_app, "blocks", None), "auth_message", None)
        for m in json_response(401, {"detail": {"error": "Not authenticated", "auth_message": message}}):
            await send(m)

    async def _login(self, gradio_app, scope, receive, send) -> None:
        """Gradio's /login, with the attempt's client known to ``SignIn.auth``; a refusal it noted
        becomes 429 (or 503), and a success opens a session for the token Gradio hands out."""
        attempt = {"client": client_address(scope)}
        replaced = False

        async def guarded(message):
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                status, headers = message["status"], message.get("headers", [])
                if status == 200:
                    token = _token_from_cookies(headers, gradio_app.cookie_id)
                    if token and attempt.get("user") and gradio_app.tokens.get(token) == attempt["user"]:
                        self.signin.open_session(token, attempt["user"], attempt["stamp"])
                    else:  # Gradio's sign-in changed under us: refuse rather than run with unchecked sessions
                        gradio_app.tokens.pop(token, None)
                        replaced = True
                        for m in json_response(500, {"detail": "Sign-in is unavailable: this Gradio version "
                                                                "hands out sessions Atelier cannot check."}):
                            await send(m)
                        return
                elif attempt.get("refused"):
                    wait = max(1, math.ceil(attempt["refused"]))
                    replaced = True
                    for m in json_response(429, {"detail": f"Too many sign-in attempts: try again in {wait} s."},
                                            ((b"retry-after", str(wait).encode()),)):
                        await send(m)
                    return
                elif attempt.get("busy"):
                    replaced = True
                    for m in json_response(503, {"detail": "Too many sign-ins at once: try again in a moment."},
                                            ((b"retry-after", b"1"),)):
                        await send(m)
                    return
            await send(message)

        reset = SIGN_IN_ATTEMPT.set(attempt)
        try:
            await self.app(scope, receive, guarded)
        finally:
            SIGN_IN_ATTEMPT.reset(reset)

    async def _sign_in_page(self, scope, receive, send) -> None:
        """The page an anonymous client gets, without the API description Gradio embeds in it."""
        async def stripped(start: dict, body: bytes) -> None:
            if dict(start.get("headers", [])).get(b"content-type", b"").startswith(b"text/html"):
                body = API_INFO_RE.sub(lambda _: NO_API_INFO, body, count=1).replace(b"</head>", SIGN_IN_SCRIPT, 1)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, held_response(send, stripped))


def held_response(send, finish):
    """An ASGI ``send`` that holds a response back until its body is complete, then awaits
    ``finish(start_message, body)``, which sends it (changed or not). Other messages pass through."""
    start: dict | None = None
    chunks: list[bytes] = []

    async def held(message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] != "http.response.body" or start is None:
            await send(message)
        else:
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                await finish(start, b"".join(chunks))
    return held


def sign_in_from_args(auth_file, hours=None) -> SignIn:
    """The app's :class:`SignIn` (UsersError or ValueError, each one line, when it cannot start)."""
    return SignIn(Path(auth_file), session_hours(hours))
