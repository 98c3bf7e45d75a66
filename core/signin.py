"""Sign-in attempts: how many wrong passwords each client and each account may try, and a small
pool that checks passwords away from the web server's event loop. No web framework here.

    limiter = AttemptLimiter()
    wait = limiter.wait(client, account)    # 0.0: may try now; else seconds to wait (refuse unhashed)
    limiter.begin(client, account); ...; limiter.end(client, account)   # around the check itself
    limiter.failed(client, account) / limiter.succeeded(client, account)

Three counts of failures, each forgotten ``FORGET_S`` after its last failure. Past its free
failures a count makes the client wait, doubling with each further failure up to a cap:

| count | free failures | then waits | cap | stops |
|---|---|---|---|---|
| one client, one account | 5 | 1 s, 2 s, 4 s ... | 5 min | one client guessing one password |
| one client, any account | 20 | 1 s, 2 s, 4 s ... | 15 min | one client trying many names |
| any client, one account | 50 | 1 s, 2 s, 4 s ... | 1 min | many clients guessing one password |

The last count is short on purpose, and it does not apply to a client that signed in to that account
successfully before (in this server's life): an attack on an account never keeps its owner out of
a device they have used, and anyone already signed in stays signed in. A client has at most
``MAX_IN_FLIGHT`` attempts being checked at once (one per account); more are refused.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

__all__ = ["Rule", "PER_PAIR", "PER_CLIENT", "PER_ACCOUNT", "FORGET_S", "MAX_IN_FLIGHT", "AttemptLimiter",
           "VerifyPool"]


@dataclass(frozen=True)
class Rule:
    free: int           # failures allowed before any wait
    first_wait: float   # seconds of wait after the first failure past ``free``; doubles with each one after
    max_wait: float     # the wait never exceeds this

    def wait_after(self, failures: int) -> float:
        if failures <= self.free:
            return 0.0
        return min(self.max_wait, self.first_wait * 2.0 ** min(failures - self.free - 1, 60))


PER_PAIR = Rule(free=5, first_wait=1.0, max_wait=300.0)
PER_CLIENT = Rule(free=20, first_wait=1.0, max_wait=900.0)
PER_ACCOUNT = Rule(free=50, first_wait=1.0, max_wait=60.0)
FORGET_S = 3600.0
MAX_IN_FLIGHT = 2
MAX_KEYS = 100_000      # per table; beyond it, forgotten entries go, then the oldest
CHECK_NICENESS = 10     # password checks yield the CPU to serving requests when cores are short


@dataclass
class _Count:
    failures: int = 0
    last: float = 0.0
    until: float = 0.0


class _Table:
    """Failure counts under one rule, keyed by a client, an account or both."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.counts: dict = {}

    def remaining(self, key, now: float) -> float:
        c = self.counts.get(key)
        if c is None or now - c.last > FORGET_S:
            return 0.0
        return max(0.0, c.until - now)

    def fail(self, key, now: float) -> None:
        c = self.counts.get(key)
        if c is None or now - c.last > FORGET_S:
            c = self.counts[key] = _Count()
        c.failures += 1
        c.last = now
        c.until = now + self.rule.wait_after(c.failures)
        if len(self.counts) > MAX_KEYS:
            self._prune(now)

    def forget(self, key) -> None:
        self.counts.pop(key, None)

    def _prune(self, now: float) -> None:
        self.counts = {k: c for k, c in self.counts.items() if now - c.last <= FORGET_S}
        if len(self.counts) > MAX_KEYS:  # still full: keep the most recent half
            keep = sorted(self.counts.items(), key=lambda kc: kc[1].last)[len(self.counts) // 2:]
            self.counts = dict(keep)


class AttemptLimiter:
    """The back-off of the module docstring. Thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, pair: Rule = PER_PAIR, client: Rule = PER_CLIENT, account: Rule = PER_ACCOUNT,
                 clock=time.monotonic, max_in_flight: int = MAX_IN_FLIGHT):
        self._pair, self._client, self._account = _Table(pair), _Table(client), _Table(account)
        self._known: dict[tuple[str, str], float] = {}   # (client, account) -> last successful sign-in
        self._in_flight: dict[str, set[str]] = {}
        self._max_in_flight = max_in_flight
        self._clock = clock
        self._lock = threading.Lock()

    def wait(self, client: str, account: str) -> float:
        """Seconds before ``client`` may try ``account`` again; 0.0 when it may try now."""
        now = self._clock()
        with self._lock:
            busy = self._in_flight.get(client, set())
            if account in busy or len(busy) >= self._max_in_flight:
                return 1.0
            waits = [self._pair.remaining((client, account), now), self._client.remaining(client, now)]
            if (client, account) not in self._known:
                waits.append(self._account.remaining(account, now))
            return max(waits)

    def begin(self, client: str, account: str) -> None:
        with self._lock:
            self._in_flight.setdefault(client, set()).add(account)

    def end(self, client: str, account: str) -> None:
        with self._lock:
            busy = self._in_flight.get(client)
            if busy is not None:
                busy.discard(account)
                if not busy:
                    del self._in_flight[client]

    def failed(self, client: str, account: str) -> None:
        now = self._clock()
        with self._lock:
            self._pair.fail((client, account), now)
            self._client.fail(client, now)
            self._account.fail(account, now)

    def succeeded(self, client: str, account: str) -> None:
        """The pair starts afresh and the client is known to the account; the other counts decay."""
        now = self._clock()
        with self._lock:
            self._pair.forget((client, account))
            self._known[(client, account)] = now
            if len(self._known) > MAX_KEYS:
                keep = sorted(self._known.items(), key=lambda kv: kv[1])[len(self._known) // 2:]
                self._known = dict(keep)


def _lower_priority() -> None:
    """Run this thread at a lower CPU priority (Linux: niceness is per thread); best effort."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + CHECK_NICENESS)
    except (AttributeError, OSError):
        pass


class VerifyPool:
    """Threads that check passwords, so the event loop never waits on a hash; they run at a lower
    CPU priority, so that where cores are short, answering signed-in users comes first.

    ``try_enter()`` takes a place (at most ``workers + backlog`` at once) and is refused when full:
    a flood from many clients then costs a quick refusal, not a longer queue. Call ``leave()``
    after ``run()``. Use from one event loop."""

    def __init__(self, workers: int, backlog: int):
        self.workers, self.limit = workers, workers + backlog
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="atelier-signin",
                                            initializer=_lower_priority)
        self._taken = 0

    def try_enter(self) -> bool:
        if self._taken >= self.limit:
            return False
        self._taken += 1
        return True

    def leave(self) -> None:
        self._taken = max(0, self._taken - 1)

    async def run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
