"""Bybit's per-UID, per-endpoint rolling one-second rate limits (pure state; time is an argument).

Bybit limits private endpoints per UID and per endpoint over a *rolling* second (docs
``v5/rate-limit/rate-limit.mdx``): linear ``order/create``, ``amend``, ``cancel`` and
``cancel-all`` allow 10 requests/s by default, the query endpoints 50/s. A request over the limit
is answered ``10006 "Too many visits!"`` and is not executed. Every limited response carries:

* ``X-Bapi-Limit`` — the endpoint's limit;
* ``X-Bapi-Limit-Status`` — requests still allowed in the current window;
* ``X-Bapi-Limit-Reset-Timestamp`` — when a rejected caller may try again (ms), else ≈ now.

A rejected request does not consume quota: counting it would let a client that retries in a tight
loop lock itself out for ever, which is not what Bybit's docs describe. Market-data endpoints are
not in the UID table (they fall under the IP limit of 600 requests per 5 s, which the simulator
does not model: it serves one trusted client on loopback, and enforcing it would cap benchmarks).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Final

from attrs import frozen

from hean.bybit.rest import DEFAULT_RATE_LIMITS

__all__ = [
    "DEFAULT_LIMITS",
    "RATE_LIMIT_MSG",
    "WINDOW_MS",
    "RateDecision",
    "RateLimiter",
]

#: Bybit's window: a rolling second.
WINDOW_MS: Final = 1000
#: Bybit's text for ``10006``.
RATE_LIMIT_MSG: Final = "Too many visits!"

#: Default linear limits of a non-VIP UID (requests per rolling second): the codec's table.
DEFAULT_LIMITS: Final = DEFAULT_RATE_LIMITS


@frozen
class RateDecision:
    """The verdict on one request and the header values that go with it."""

    allowed: bool
    limit: int
    remaining: int
    reset_at_ms: int

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The ``X-Bapi-Limit*`` response headers, spelled as Bybit sends them."""
        return (
            ("X-Bapi-Limit", str(self.limit)),
            ("X-Bapi-Limit-Status", str(self.remaining)),
            ("X-Bapi-Limit-Reset-Timestamp", str(self.reset_at_ms)),
        )


class RateLimiter:
    """Sliding-window counters keyed by (uid, endpoint).

    Each key keeps the times of the requests it accepted in the last window, so memory is bounded
    by ``limit`` entries per key. ``now_ms`` must not go backwards for a given key (the venue
    clock is monotonic).
    """

    def __init__(self, limits: Mapping[str, int] = DEFAULT_LIMITS, *, window_ms: int = WINDOW_MS):
        if window_ms <= 0:
            raise ValueError("window_ms must be positive")
        if any(v <= 0 for v in limits.values()):
            raise ValueError("every limit must be positive")
        self._limits = dict(limits)
        self._window_ms = window_ms
        self._hits: dict[tuple[str, str], deque[int]] = {}

    def limit_for(self, endpoint: str) -> int | None:
        """The endpoint's limit, or None when it is not UID-limited."""
        return self._limits.get(endpoint)

    def check(self, uid: str, endpoint: str, now_ms: int) -> RateDecision | None:
        """Admit or refuse one request; None when ``endpoint`` has no UID limit.

        An admitted request consumes one unit of quota; a refused one does not.
        """
        limit = self._limits.get(endpoint)
        if limit is None:
            return None
        hits = self._hits.setdefault((uid, endpoint), deque())
        horizon = now_ms - self._window_ms
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= limit:
            # The oldest accepted request leaves the window at hits[0] + window: from then on
            # one more request fits.
            return RateDecision(False, limit, 0, hits[0] + self._window_ms)
        hits.append(now_ms)
        return RateDecision(True, limit, limit - len(hits), now_ms)
