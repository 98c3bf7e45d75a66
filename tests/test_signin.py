"""Sign-in limits (core/signin.py) and the app's sign-in object (ui/auth.SignIn) on a fake clock:
back-off per (client, account), per client and per account, known clients, forgetting, attempts
in flight, the bounded check pool; refused attempts are never hashed, checks run off the event
loop, and sessions end on expiry and on a changed stamp."""
from __future__ import annotations

import asyncio
import threading

import pytest

from core import signin, users
from core.signin import PER_ACCOUNT, PER_CLIENT, PER_PAIR, AttemptLimiter, Rule, VerifyPool

PW = "correct horse battery"


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def fail(limiter, client, account, times=1):
    for _ in range(times):
        limiter.failed(client, account)


def test_rule_waits_double_up_to_the_cap():
    rule = Rule(free=5, first_wait=1.0, max_wait=300.0)
    assert [rule.wait_after(n) for n in range(1, 6)] == [0.0] * 5
    assert [rule.wait_after(n) for n in range(6, 11)] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert rule.wait_after(14) == 256.0 and rule.wait_after(15) == 300.0 and rule.wait_after(10 ** 6) == 300.0


def test_one_client_guessing_one_account_backs_off_and_a_success_resets_it():
    clock = Clock()
    lim = AttemptLimiter(clock=clock)
    fail(lim, "1.1.1.1", "alice", PER_PAIR.free)
    assert lim.wait("1.1.1.1", "alice") == 0.0                      # the free failures cost no wait
    fail(lim, "1.1.1.1", "alice")
    assert lim.wait("1.1.1.1", "alice") == 1.0
    fail(lim, "1.1.1.1", "alice", 3)
    assert lim.wait("1.1.1.1", "alice") == 8.0
    assert lim.wait("2.2.2.2", "alice") == 0.0                      # another client is not held
    assert lim.wait("1.1.1.1", "bob") == 0.0                        # nor this client for another account
    clock.t += 8.0
    assert lim.wait("1.1.1.1", "alice") == 0.0                      # the wait is over
    fail(lim, "1.1.1.1", "alice", 10)
    assert lim.wait("1.1.1.1", "alice") == PER_PAIR.max_wait        # capped: 5 minutes
    lim.succeeded("1.1.1.1", "alice")                               # she remembered it (from elsewhere)
    assert lim.wait("1.1.1.1", "alice") == 0.0                      # 19 failures: under the client's 20


def test_a_success_does_not_reset_the_clients_count():
    lim = AttemptLimiter(clock=Clock())
    for i in range(PER_CLIENT.free + 3):
        fail(lim, "6.6.6.6", f"user{i}")
    lim.succeeded("6.6.6.6", "mallory")                             # signing in to one's own account
    assert lim.wait("6.6.6.6", "alice") > 0                         # does not buy more guesses elsewhere


def test_one_client_trying_many_accounts_is_held_across_accounts():
    clock = Clock()
    lim = AttemptLimiter(clock=clock)
    for i in range(PER_CLIENT.free):
        fail(lim, "6.6.6.6", f"user{i}")
    assert lim.wait("6.6.6.6", "someone-new") == 0.0
    fail(lim, "6.6.6.6", "user-x")
    assert lim.wait("6.6.6.6", "someone-new") == 1.0
    assert lim.wait("7.7.7.7", "someone-new") == 0.0


def test_many_clients_on_one_account_lock_it_briefly_but_not_for_known_clients():
    clock = Clock()
    lim = AttemptLimiter(clock=clock)
    lim.succeeded("10.0.0.1", "alice")                              # alice's own laptop, signed in before
    for i in range(PER_ACCOUNT.free + 10):                          # a botnet: one failure per address
        fail(lim, f"203.0.113.{i}", "alice")
    assert 0 < lim.wait("198.51.100.1", "alice") <= PER_ACCOUNT.max_wait   # a new address waits (1 min at most)
    assert lim.wait("10.0.0.1", "alice") == 0.0                     # her own device does not
    assert lim.wait("198.51.100.1", "bob") == 0.0                   # other accounts are not touched
    clock.t += PER_ACCOUNT.max_wait
    assert lim.wait("198.51.100.1", "alice") == 0.0


def test_counts_are_forgotten_an_hour_after_the_last_failure():
    clock = Clock()
    lim = AttemptLimiter(clock=clock)
    fail(lim, "1.1.1.1", "alice", 40)
    assert lim.wait("1.1.1.1", "alice") > 0
    clock.t += signin.FORGET_S + 1
    assert lim.wait("1.1.1.1", "alice") == 0.0
    fail(lim, "1.1.1.1", "alice")
    assert lim.wait("1.1.1.1", "alice") == 0.0                      # counting starts again from one


def test_attempts_in_flight_are_limited():
    lim = AttemptLimiter(clock=Clock())
    lim.begin("1.1.1.1", "alice")
    assert lim.wait("1.1.1.1", "alice") > 0                         # the same account: one check at a time
    assert lim.wait("1.1.1.1", "bob") == 0.0
    lim.begin("1.1.1.1", "bob")
    assert lim.wait("1.1.1.1", "carol") > 0                         # at most MAX_IN_FLIGHT per client
    lim.end("1.1.1.1", "alice")
    lim.end("1.1.1.1", "bob")
    assert lim.wait("1.1.1.1", "alice") == 0.0


def test_tables_stay_bounded(monkeypatch):
    monkeypatch.setattr(signin, "MAX_KEYS", 100)
    lim = AttemptLimiter(clock=Clock())
    for i in range(1000):
        fail(lim, f"10.0.{i // 256}.{i % 256}", f"u{i}")
    assert len(lim._client.counts) <= 101 and len(lim._pair.counts) <= 101


def test_verify_pool_refuses_beyond_its_places_and_checks_at_a_lower_priority():
    import os
    pool = VerifyPool(workers=1, backlog=2)
    assert [pool.try_enter() for _ in range(4)] == [True, True, True, False]
    pool.leave()
    assert pool.try_enter()
    niceness = asyncio.run(pool.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    assert niceness == min(19, os.getpriority(os.PRIO_PROCESS, 0) + signin.CHECK_NICENESS)


# ---- ui.auth.SignIn: what Gradio's /login awaits ------------------------------------------------

def _attempt(auth, client, name, password):
    """One sign-in as SessionGuard runs it: the attempt's client in the context, then Gradio's await."""
    from ui.auth import SIGN_IN_ATTEMPT

    async def go():
        attempt = {"client": client}
        SIGN_IN_ATTEMPT.set(attempt)   # asyncio.run gives each attempt its own context
        return await auth.auth(name, password), attempt
    return asyncio.run(go())


@pytest.fixture
def sign_in(tmp_path, monkeypatch):
    from ui.auth import SignIn
    f = tmp_path / "users.json"
    users.add_user(f, "alice", PW)
    calls = []
    real = users.authenticate

    def counted(*args):
        calls.append(threading.current_thread().name)
        return real(*args)
    monkeypatch.setattr(users, "authenticate", counted)
    clock = Clock()
    s = SignIn(f, hours=1, limiter=AttemptLimiter(clock=clock), clock=clock)
    return s, calls, clock, f


def test_checks_run_off_the_event_loop_and_refusals_are_not_hashed(sign_in):
    s, calls, _, _ = sign_in
    ok, attempt = _attempt(s, "1.1.1.1", "alice", PW)
    assert ok and attempt["user"] == "alice" and attempt["stamp"] == users.session_stamps(s.path)["alice"]
    assert calls == [calls[0]] and calls[0].startswith("atelier-signin")   # a pool thread, not the loop's
    for _ in range(PER_PAIR.free + 1):
        ok, attempt = _attempt(s, "1.1.1.1", "alice", "wrong password")
        assert not ok and "refused" not in attempt
    hashed = len(calls)
    for _ in range(50):
        ok, attempt = _attempt(s, "1.1.1.1", "alice", PW)          # even the right password waits its turn
        assert not ok and attempt["refused"] >= 1.0
    assert len(calls) == hashed                                     # no hashing for refused attempts
    ok, _ = _attempt(s, "2.2.2.2", "alice", PW)                     # alice elsewhere is not locked out
    assert ok


def test_a_full_pool_answers_busy_unhashed(sign_in):
    s, calls, _, _ = sign_in
    while s.pool.try_enter():
        pass
    ok, attempt = _attempt(s, "1.1.1.1", "alice", PW)
    assert not ok and attempt.get("busy") and calls == []


def test_a_sign_in_outside_the_guard_is_refused(sign_in):
    s, calls, _, _ = sign_in
    assert asyncio.run(s.auth("alice", PW)) is False and calls == []


def test_sessions_end_on_expiry_and_on_a_new_stamp(sign_in):
    s, _, clock, f = sign_in
    users.add_user(f, "bob", PW)
    stamps = users.session_stamps(f)
    s.open_session("tok-a", "alice", stamps["alice"])
    s.open_session("tok-b", "bob", stamps["bob"])
    assert s.valid("tok-a", "alice") and s.valid("tok-b", "bob")
    assert not s.valid("tok-a", "bob") and not s.valid("unknown", "alice")
    users.set_password(f, "alice", "another password")
    assert not s.valid("tok-a", "alice") and s.valid("tok-b", "bob")
    clock.t += 3600 + 1                                             # hours=1
    assert not s.valid("tok-b", "bob")


def test_session_hours_setting(monkeypatch):
    from ui.auth import DEFAULT_SESSION_HOURS, session_hours
    monkeypatch.delenv("ATELIER_SESSION_HOURS", raising=False)
    assert session_hours() == DEFAULT_SESSION_HOURS == 168
    monkeypatch.setenv("ATELIER_SESSION_HOURS", "12")
    assert session_hours() == 12 and session_hours("0.5") == 0.5
    for bad in ("0", "-1", "nan", "inf", "x", "100000"):
        with pytest.raises(ValueError, match="--session-hours must be"):
            session_hours(bad)
    monkeypatch.setenv("ATELIER_SESSION_HOURS", "soon")
    with pytest.raises(ValueError, match="ATELIER_SESSION_HOURS must be"):
        session_hours()
