"""Slows password guessing on the login: per client address, every login attempt counts as a
failure until it succeeds; after :data:`FREE_ATTEMPTS` the client must wait before its next
attempt (1 s, then doubling up to :data:`MAX_DELAY_S`). An attempt made too early is held until
its time has come and then answered as usual, so the login page itself is slowed (Gradio's page
shows nothing for any answer but 200 and 400: a refusal alone left people retrying as fast as
before, unaware); a client gets one held attempt at a time and none held longer than
:data:`MAX_HOLD_S`: its other early attempts are answered ``429 Too Many Requests`` with
``Retry-After`` at once, without looking at the password. The page says so beforehand
(:func:`login_page_message`).

Counting each attempt before its answer is known also holds back parallel bursts. A success
clears the client's record; records of clients quiet for :data:`FORGET_AFTER_S` are dropped,
and at most :data:`MAX_CLIENTS` are kept (least recently seen dropped first).

:class:`LoginRateLimit` is the ASGI middleware that applies a :class:`LoginThrottle` to Gradio's
``POST /login``; the client is the TCP peer address (a reverse proxy in front makes every user
one client: rate-limit there instead).
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import OrderedDict
from typing import Callable

from starlette.responses import JSONResponse

FREE_ATTEMPTS = 3  # attempts without delay
BASE_DELAY_S = 1.0  # delay before the attempt after the free ones; doubles with each further attempt
MAX_DELAY_S = 300.0
FORGET_AFTER_S = 900.0  # a client's record is dropped this long after its last attempt
MAX_CLIENTS = 4096  # records kept
MAX_HOLD_S = 60.0  # longest an early attempt is held before its answer (longer waits: 429 at once)
_HOLD_MARGIN_S = 0.05  # held a little past the allowed time, so the attempt is not early again


def login_page_message(app_title: str, base_delay_s: float = BASE_DELAY_S) -> str:
    """What the login page says above the form (HTML): which app this is, and the slow-down."""
    return (f'<h1 style="font-size:1.6em;font-weight:700">{app_title}</h1><p>Sign in to use the app. After '
            f"{FREE_ATTEMPTS} wrong passwords each further attempt is answered more slowly ({base_delay_s:g} s, "
            "then twice as long each time).</p>")


class LoginThrottle:
    """Per-client login attempt records on a monotonic ``clock`` (injectable for tests);
    ``base_delay_s``: the first wait after the free attempts; ``max_hold_s``: the longest wait
    :class:`LoginRateLimit` holds an attempt for (0: refuse every early attempt at once)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_clients: int = MAX_CLIENTS,
                 base_delay_s: float = BASE_DELAY_S, max_hold_s: float = MAX_HOLD_S):
        self.clock = clock
        self.max_clients = max_clients
        self.base_delay_s = base_delay_s
        self.max_hold_s = max_hold_s
        self._records: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # client -> (attempts, last, next)
        self._lock = threading.Lock()

    def attempt(self, client: str) -> float:
        """Record an attempt by ``client`` and return 0, or return the seconds it must still
        wait (nothing recorded then)."""
        now = self.clock()
        with self._lock:
            attempts, last, allowed_at = self._records.pop(client, (0, now, now))
            if now - last > FORGET_AFTER_S:
                attempts, allowed_at = 0, now
            if now < allowed_at:
                self._records[client] = (attempts, last, allowed_at)
                return allowed_at - now
            attempts += 1
            self._records[client] = (attempts, now, now + self.delay_after(attempts))
            while len(self._records) > self.max_clients:
                self._records.popitem(last=False)
            return 0.0

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._records.pop(client, None)

    def __len__(self) -> int:
        return len(self._records)

    def delay_after(self, attempts: int) -> float:
        """Seconds a client must wait after its ``attempts``-th failed attempt."""
        if attempts < FREE_ATTEMPTS:
            return 0.0
        return min(MAX_DELAY_S, self.base_delay_s * 2.0 ** (attempts - FREE_ATTEMPTS))


class LoginRateLimit:
    """ASGI middleware: ``POST /login`` goes through ``throttle`` (see the module docstring)."""

    def __init__(self, app, throttle: LoginThrottle):
        self.app = app
        self.throttle = throttle
        self._held: set[str] = set()  # clients with an attempt held now (one each; the event loop's thread only)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/login":
            return await self.app(scope, receive, send)
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.throttle.attempt(client)
        if 0 < wait <= self.throttle.max_hold_s and client not in self._held:
            self._held.add(client)
            try:
                await asyncio.sleep(wait + _HOLD_MARGIN_S)
            finally:
                self._held.discard(client)
            wait = self.throttle.attempt(client)  # its time has come, unless another attempt took it
        if wait > 0:
            seconds = math.ceil(wait)
            response = JSONResponse({"detail": f"too many login attempts from {client}; try again in {seconds} s"},
                                    status_code=429, headers={"Retry-After": str(seconds)})
            return await response(scope, receive, send)

        async def watch(message):
            if message["type"] == "http.response.start" and message["status"] == 200:
                self.throttle.succeeded(client)
            await send(message)

        await self.app(scope, receive, watch)
