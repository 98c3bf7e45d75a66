"""Issue 17, sign-in and sessions over HTTP, against ``app.py --auth`` (alice, bob; tests/privacy_fixtures.py):

- anonymous clients reach the sign-in page (with no API description in it) and nothing else: 401;
- a queue event's results belong to the user who started it, and a page session to its first user:
  anyone else gets 404 and the owner's own read is not disturbed;
- 20 wrong sign-ins a second from 4 clients: the flood is refused, a signed-in client's requests keep
  being answered (latencies printed; the figures and their command are in docs/benchmarks.md);
- ``users passwd``, ``revoke`` and ``remove``, run in another process, end the user's sessions at
  their next request (401, and the sign-in page in the browser); other users stay signed in.

Each test pins a piece of Gradio that ui/auth.py and ui/event_access.py rely on, so an upgrade that
changes it fails here."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import closing

import pytest

from tests.privacy_fixtures import ALICE, BOB, DS_NAME, REPO, two_user_server

httpx = pytest.importorskip("httpx")

CAROL = ("carol", "carol-password-3")
FLOOD_CLIENTS, FLOOD_RATE, FLOOD_S = 4, 5.0, 6.0     # 4 clients x 5 a second = 20 wrong sign-ins a second


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    base = tmp_path_factory.mktemp("auth")
    with two_user_server(base) as srv:
        yield dict(srv, auth=base / "users.json")


def client(url: str, address: str | None = None) -> "httpx.Client":
    """A client; ``address`` is its X-Forwarded-For, which uvicorn trusts from 127.0.0.1 (a local proxy)."""
    headers = {"X-Forwarded-For": address} if address else {}
    return httpx.Client(base_url=url, timeout=120, follow_redirects=False, headers=headers)


def sign_in(url: str, who: tuple[str, str], address: str | None = None) -> "httpx.Client":
    c = client(url, address)
    r = c.post("/login", data={"username": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return c


def start(c: "httpx.Client", api: str, *data, session_hash: str | None = None) -> str:
    body = {"data": list(data), **({"session_hash": session_hash} if session_hash else {})}
    r = c.post(f"/gradio_api/call/{api}", json=body)
    assert r.status_code == 200, r.text
    return r.json()["event_id"]


def result(c: "httpx.Client", api: str, event_id: str, patience: float = 90.0) -> tuple[int, str | None, str]:
    """Status, the last event kind and the stream of ``GET /gradio_api/call/<api>/<event_id>``, read until
    the event completes or fails, or ``patience`` seconds pass (a stolen result never completes)."""
    deadline, lines, kind = time.monotonic() + patience, [], None
    with c.stream("GET", f"/gradio_api/call/{api}/{event_id}") as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, None, r.text
        for line in r.iter_lines():                       # Gradio sends a heartbeat at least every 15 s
            lines.append(line)
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind in ("complete", "error") or time.monotonic() > deadline:
                break
    return r.status_code, kind, "\n".join(lines)


def status(c: "httpx.Client", method: str, path: str, **kwargs) -> int:
    """The status of a request, without waiting for its body (a granted event stream never ends)."""
    with c.stream(method, path, **kwargs) as r:
        return r.status_code


def users_cli(app, *args, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, ATELIER_HOME=str(app["home"]), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "core.cli", "users", *args, "--file", str(app["auth"])],
                          input=stdin, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def is_sign_in_page(c: "httpx.Client") -> bool:
    r = c.get("/")
    return r.status_code == 200 and '"auth_required":true' in r.text.replace(" ", "")


# ---- anonymous clients --------------------------------------------------------------------------

ANON_REFUSED_GET = ["/openapi.json", "/gradio_api/openapi.json", "/gradio_api/info", "/config", "/gradio_api/user",
                    "/gradio_api/token", "/gradio_api/app_id", "/gradio_api/heartbeat/abcdef",
                    "/gradio_api/queue/data?session_hash=abcdef", "/gradio_api/call/list_datasets/abcdef",
                    "/gradio_api/deep_link?session_hash=abcdef", "/gradio_api/queue/status", "/gradio_api/runs",
                    "/gradio_api/run-history/records", "/gradio_api/stream/abc/0/1/playlist.m3u8",
                    "/monitoring/abc", "/gradio_api/upload_progress?upload_id=x", "/docs"]
ANON_REFUSED_POST = [("/gradio_api/cancel", {"session_hash": "x", "fn_index": 0, "event_id": "y"}),
                     ("/gradio_api/queue/join", {"data": [], "fn_index": 0, "session_hash": "x"}),
                     ("/gradio_api/call/list_datasets", {"data": []}), ("/gradio_api/reset", {"event_id": "x"}),
                     ("/gradio_api/stream/abc", {"data": []}), ("/gradio_api/upload", {})]


def test_anonymous_clients_get_the_sign_in_page_and_nothing_else(app):
    url = app["url"]
    with client(url) as anon, closing(sign_in(url, ALICE)) as alice:
        page = anon.get("/").text
        assert '"auth_required":true' in page.replace(" ", "")
        assert 'window.gradio_api_info = {"named_endpoints": {}, "unnamed_endpoints": {}};' in page
        for name in ("list_datasets", "import_dataset", "delete_model", "generate"):
            assert name not in page, name                                  # no API description for strangers
        assert "atelier-signin-msg" in page                                # the sign-in limits' message box
        own = alice.get("/").text                                          # the marker the sign-in page strips
        at = own.index("window.gradio_api_info = ")
        assert "/list_datasets" in own[at:own.index("</script>", at)]
        refused = {}
        for path in ANON_REFUSED_GET:
            refused[path] = status(anon, "GET", path)
        for path, body in ANON_REFUSED_POST:
            refused["POST " + path] = status(anon, "POST", path, json=body)
        assert set(refused.values()) == {401}, refused
        for path in ("/theme.css", "/manifest.json", "/favicon.ico", "/gradio_api/startup-events"):
            assert anon.get(path).status_code in (200, 404), path            # what the page and launch() use
        assert alice.get("/gradio_api/info").status_code == 200           # signed in: all of it


# ---- events and sessions belong to their users ---------------------------------------------------

def test_event_results_belong_to_the_user_who_started_them(app):
    url = app["url"]
    with closing(sign_in(url, ALICE)) as alice, closing(sign_in(url, BOB)) as bob:
        event = start(alice, "list_datasets")
        code, kind, text = result(bob, "list_datasets", event)
        assert code == 404 and DS_NAME not in text, (code, text)       # bob: as if it did not exist
        assert status(bob, "GET", f"/gradio_api/call/v2/list_datasets/{event}") == 404   # nor the v2 form
        code, kind, text = result(alice, "list_datasets", event)         # alice's read is untouched
        assert code == 200 and kind == "complete" and DS_NAME in text, text
        mine = start(bob, "list_datasets")
        code, kind, text = result(bob, "list_datasets", mine)
        assert code == 200 and kind == "complete" and DS_NAME not in text
        r = alice.post("/gradio_api/call/v2/list_datasets", json={})         # the named-argument form
        assert r.status_code == 200, r.text
        assert status(bob, "GET", f"/gradio_api/call/v2/list_datasets/{r.json()['event_id']}") == 404
        code, kind, text = result(alice, "v2/list_datasets", r.json()["event_id"])
        assert code == 200 and kind == "complete" and DS_NAME in text, text


def test_a_page_session_belongs_to_its_first_user(app):
    url = app["url"]
    session = "alicepage42"
    with closing(sign_in(url, ALICE)) as alice, closing(sign_in(url, BOB)) as bob:
        event = start(alice, "list_datasets", session_hash=session)
        probes = {
            "join": status(bob, "POST", "/gradio_api/queue/join",
                           json={"data": [], "fn_index": 0, "session_hash": session}),
            "call": status(bob, "POST", "/gradio_api/call/list_datasets",
                           json={"data": [], "session_hash": session}),
            "queue data": status(bob, "GET", f"/gradio_api/queue/data?session_hash={session}"),
            "heartbeat": status(bob, "GET", f"/gradio_api/heartbeat/{session}"),
            "deep link": status(bob, "GET", f"/gradio_api/deep_link?session_hash={session}"),
            "cancel": status(bob, "POST", "/gradio_api/cancel",
                             json={"session_hash": session, "fn_index": 0, "event_id": event}),
            "cancel by event": status(bob, "POST", "/gradio_api/cancel",
                                      json={"session_hash": "bobs", "fn_index": 0, "event_id": event}),
            "stream": status(bob, "POST", f"/gradio_api/stream/{event}", json={"data": []}),
        }
        assert probes == {k: 404 for k in probes}, probes
        code, kind, text = result(alice, "list_datasets", event)
        assert code == 200 and kind == "complete" and DS_NAME in text, text


# ---- a flood of wrong sign-ins ---------------------------------------------------------------------

def _timed_call(c) -> float:
    t0 = time.perf_counter()
    code, kind, text = result(c, "list_datasets", start(c, "list_datasets"))
    assert code == 200 and kind == "complete" and DS_NAME in text, text   # answered, and right
    return time.perf_counter() - t0


def _flood(url: str, address: str, until: float, out: list) -> None:
    with client(url, address) as c:
        next_at, i = time.monotonic(), 0
        while next_at < until:
            time.sleep(max(0.0, next_at - time.monotonic()))
            t0 = time.perf_counter()
            r = c.post("/login", data={"username": ALICE[0], "password": f"guess-{address}-{i}"})
            out.append((address, r.status_code, time.perf_counter() - t0, r.headers.get("retry-after")))
            next_at, i = next_at + 1.0 / FLOOD_RATE, i + 1


def test_a_flood_of_wrong_sign_ins_is_refused_and_signed_in_users_are_served(app):
    url = app["url"]
    sign_in(url, BOB, "198.51.100.1").close()                             # bob shares an address with a flooder
    with closing(sign_in(url, ALICE, "10.0.0.1")) as alice:
        idle = [_timed_call(alice) for _ in range(8)]
        answers: list = []
        until = time.monotonic() + FLOOD_S
        flooders = [threading.Thread(target=_flood, args=(url, f"198.51.100.{i + 1}", until, answers))
                    for i in range(FLOOD_CLIENTS)]
        for t in flooders:
            t.start()
        during = []
        while time.monotonic() < until:
            during.append(_timed_call(alice))
        for t in flooders:
            t.join()
        statuses = [a[1] for a in answers]
        hashed = [a for a in answers if a[1] == 400]
        refused = [a for a in answers if a[1] in (429, 503)]
        idle_ms, flood_ms = statistics.median(idle) * 1e3, statistics.median(during) * 1e3
        print(f"\nsigned-in request (list_datasets, POST + result stream): idle median {idle_ms:.0f} ms, "
              f"during the flood median {flood_ms:.0f} ms (x{flood_ms / idle_ms:.2f}), max {max(during) * 1e3:.0f} ms, "
              f"{len(during)} requests; load {os.getloadavg()[0]:.1f}")
        print(f"flood: {len(answers)} wrong sign-ins, {len(hashed)} checked (400, median "
              f"{statistics.median([a[2] for a in hashed]) * 1e3:.0f} ms), {len(refused)} refused unhashed "
              f"(429/503, median {statistics.median([a[2] for a in refused]) * 1e3:.1f} ms)")
        assert len(answers) >= FLOOD_CLIENTS * FLOOD_RATE * FLOOD_S * 0.5     # the flood did arrive
        assert set(statuses) <= {400, 429, 503}, sorted(set(statuses))       # never a sign-in, never a crash
        assert len(refused) > len(answers) / 2                                # most of it is refused unhashed
        assert all(a[3] and int(a[3]) >= 1 for a in refused)                  # with Retry-After
        for i in range(FLOOD_CLIENTS):                                        # each flooder: its free tries at most
            assert sum(1 for a in hashed if a[0] == f"198.51.100.{i + 1}") <= 5 + 4, hashed
        assert during, "no signed-in request finished during the flood"
        # the real alice, from a device of her own, still signs in; bob, behind a flooder's address, too
        sign_in(url, ALICE, "10.0.0.1").close()
        sign_in(url, BOB, "198.51.100.1").close()


# ---- sessions end ---------------------------------------------------------------------------------

def test_passwd_revoke_and_remove_end_sessions_from_another_process(app):
    url = app["url"]
    r = users_cli(app, "add", CAROL[0], "--password-stdin", stdin=CAROL[1] + "\n")
    assert r.returncode == 0, r.stderr
    with closing(sign_in(url, ALICE)) as alice:
        carol = sign_in(url, CAROL)
        assert result(carol, "list_datasets", start(carol, "list_datasets"))[1] == "complete"
        assert not is_sign_in_page(carol)

        r = users_cli(app, "passwd", CAROL[0], "--password-stdin", stdin="carol-new-password\n")
        assert r.returncode == 0 and "Every session of carol has ended" in r.stdout, r.stdout + r.stderr
        assert carol.post("/gradio_api/call/list_datasets", json={"data": []}).status_code == 401
        assert carol.get("/config").status_code == 401
        assert is_sign_in_page(carol)                                      # the browser's view: sign in again
        assert client(url).post("/login", data={"username": "carol", "password": CAROL[1]}).status_code == 400
        carol = sign_in(url, ("carol", "carol-new-password"))
        assert result(carol, "list_datasets", start(carol, "list_datasets"))[1] == "complete"

        r = users_cli(app, "revoke", CAROL[0])
        assert r.returncode == 0 and "Every session of carol has ended" in r.stdout
        assert carol.get("/gradio_api/info").status_code == 401
        carol = sign_in(url, ("carol", "carol-new-password"))             # the password still works

        r = users_cli(app, "remove", CAROL[0])
        assert r.returncode == 0 and "Every session of carol has ended" in r.stdout
        assert carol.post("/gradio_api/call/list_datasets", json={"data": []}).status_code == 401
        assert client(url).post("/login", data={"username": "carol",
                                                "password": "carol-new-password"}).status_code == 400
        assert result(alice, "list_datasets", start(alice, "list_datasets"))[1] == "complete"  # others unaffected
        carol.close()


def test_the_browser_goes_to_the_sign_in_page_when_its_session_ends(app):
    from tests.browser import CHROME_ARGS, CHROMIUM, NO_CHROMIUM, WAIT, shot
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    r = users_cli(app, "add", "dave", "--password-stdin", stdin="dave-password-4\n")
    assert r.returncode == 0, r.stderr
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(WAIT)
        page.goto(app["url"])
        page.get_by_label("username").fill("dave")
        page.get_by_label("password").fill("dave-password-4")
        page.get_by_role("button", name="Login").click()
        expect(page.get_by_role("tab", name="1 · Datasets")).to_be_visible()
        assert users_cli(app, "revoke", "dave").returncode == 0
        try:
            page.get_by_role("tab", name="4 · My Models").click(timeout=5000)   # its next call answers 401
        except sync_api.TimeoutError:
            pass                                                         # the page had already called the API
        expect(page.get_by_label("username")).to_be_visible()            # ... and went to the sign-in page
        shot(page, "session-ended")
        statuses = []
        for i in range(8):                                               # wrong passwords until the limit
            page.get_by_label("username").fill("dave")
            page.get_by_label("password").fill(f"not-daves-{i}")
            with page.expect_response(lambda r: r.url.rstrip("/").endswith("/login")) as answer:
                page.get_by_role("button", name="Login").click()
            statuses.append(answer.value.status)
            if statuses[-1] == 429:
                break
        assert statuses[-1] == 429 and set(statuses[:-1]) == {400}, statuses
        expect(page.locator("#atelier-signin-msg")).to_contain_text("Too many sign-in attempts: try again in")
        shot(page, "sign-in-limit")
        browser.close()
