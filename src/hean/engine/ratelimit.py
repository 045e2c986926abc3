"""Per-endpoint REST rate limiter for Bybit v5. Pure: no trio, no clocks; time is passed in.

Bybit limits requests per UID, per endpoint, per rolling second (``order/create`` 10/s,
``order/realtime`` 50/s, ...) and answers excess with retCode 10006 ("Too many visits!"). Every
response carries ``X-Bapi-Limit`` (the endpoint's limit), ``X-Bapi-Limit-Status`` (requests left
in the window) and ``X-Bapi-Limit-Reset-Timestamp`` (exchange ms when the window resets).

The limiter combines two sources so that normal operation never meets a 10006:

* **Our own sends** in a sliding window (``window_s`` plus a small ``margin_s``, because the
  exchange measures arrival times and network jitter can bunch requests together). Before any
  header has been seen the per-endpoint defaults from Bybit's table apply; ``X-Bapi-Limit``
  replaces them (VIP tiers have higher limits).
* **The exchange's own count** from the headers, which also sees other processes trading on the
  same UID: when ``remaining`` hits 0 the endpoint is blocked until the reset timestamp. A 10006
  that happens anyway (another process, a clock mismatch) blocks it for the wait the error names.

Two time bases are involved and kept apart: ``now_s`` is the caller's monotonic clock (trio's
clock in the shell) and decides every wait; ``now_ms`` is exchange wall-clock ms, used only to
turn Bybit's absolute reset timestamp into a duration at the moment the header arrives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Final

from attrs import frozen

from hean.bybit.rest import DEFAULT_RATE_LIMITS

__all__ = [
    "DEFAULT_ENDPOINT_LIMITS",
    "DEFAULT_LIMIT",
    "EndpointStats",
    "RateLimiter",
]

#: Bybit's default UID limits per endpoint (the codec's table), until headers say otherwise.
DEFAULT_ENDPOINT_LIMITS: Final = DEFAULT_RATE_LIMITS

#: Endpoints outside the UID table (market data) share the per-IP cap of 600 requests / 5 s.
#: A conservative 20/s per endpoint keeps the sum of all of them well under that cap.
DEFAULT_LIMIT: Final = 20


@frozen
class EndpointStats:
    """A read-only view of one endpoint's budget (for status lines and tests)."""

    endpoint: str
    limit: int
    used_in_window: int
    blocked_for_s: float


class _Endpoint:
    __slots__ = ("blocked_until_s", "limit", "sent")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.sent: deque[float] = deque()
        self.blocked_until_s = float("-inf")


class RateLimiter:
    """Decides when a request to an endpoint may leave. Not thread-safe; one per REST client.

    Usage (the shell): ``while (wait := rl.acquire(ep, now_s)) > 0: sleep(wait)``, then send,
    then ``rl.update(ep, ...)`` with the response headers, or ``rl.block(ep, ...)`` on a 10006.
    """

    def __init__(
        self,
        limits: Mapping[str, int] | None = None,
        *,
        default_limit: int = DEFAULT_LIMIT,
        window_s: float = 1.0,
        margin_s: float = 0.05,
    ) -> None:
        if default_limit <= 0:
            raise ValueError("default_limit must be positive")
        if window_s <= 0 or margin_s < 0:
            raise ValueError("window_s must be > 0 and margin_s >= 0")
        self._limits = dict(DEFAULT_ENDPOINT_LIMITS if limits is None else limits)
        if any(v <= 0 for v in self._limits.values()):
            raise ValueError("every endpoint limit must be positive")
        self._default_limit = default_limit
        self._window_s = window_s
        self._span_s = window_s + margin_s
        self._endpoints: dict[str, _Endpoint] = {}
        # Bybit's HTTP 403 is an IP-wide ban (>= 10 min): it blocks every endpoint at once.
        self._all_blocked_until_s = float("-inf")

    @property
    def window_s(self) -> float:
        return self._window_s

    def _get(self, endpoint: str) -> _Endpoint:
        ep = self._endpoints.get(endpoint)
        if ep is None:
            ep = _Endpoint(self._limits.get(endpoint, self._default_limit))
            self._endpoints[endpoint] = ep
        return ep

    def _prune(self, ep: _Endpoint, now_s: float) -> None:
        horizon = now_s - self._span_s
        while ep.sent and ep.sent[0] <= horizon:
            ep.sent.popleft()

    def wait_time(self, endpoint: str, now_s: float) -> float:
        """Seconds until a slot for ``endpoint`` is free (0.0: free now); takes nothing.

        For a caller that must decide what to send only once it may send (an order create whose
        price and gate must still hold after the wait): wait this long, re-check, then
        :meth:`acquire` with no await in between.
        """
        ep = self._get(endpoint)
        blocked_until = max(ep.blocked_until_s, self._all_blocked_until_s)
        if now_s < blocked_until:
            return blocked_until - now_s
        self._prune(ep, now_s)
        if len(ep.sent) >= ep.limit:
            # The oldest send leaves the window at sent[0] + span; by then a slot is free.
            return max(ep.sent[0] + self._span_s - now_s, 1e-6)
        return 0.0

    def acquire(self, endpoint: str, now_s: float) -> float:
        """Take a slot for one request now (returns 0.0), or return the seconds to wait first.

        A positive return takes nothing: call again after waiting (another caller may have taken
        the slot in between, and the answer then is another wait).
        """
        wait = self.wait_time(endpoint, now_s)
        if wait > 0:
            return wait
        self._get(endpoint).sent.append(now_s)
        return 0.0

    def update(
        self,
        endpoint: str,
        *,
        limit: int | None,
        remaining: int | None,
        reset_at_ms: int | None,
        now_s: float,
        now_ms: int,
    ) -> None:
        """Feed the rate-limit headers of a response (any of them may be missing)."""
        ep = self._get(endpoint)
        if limit is not None and limit > 0:
            ep.limit = limit
        if remaining is not None and remaining <= 0:
            # The exchange says the window is used up. The reset timestamp is when it frees; if it
            # is not in the future (Bybit sends ~now when not exceeded), wait a whole window.
            if reset_at_ms is not None and reset_at_ms > now_ms:
                wait_s = (reset_at_ms - now_ms) / 1000.0
            else:
                wait_s = self._window_s
            self.block(endpoint, wait_s=wait_s, now_s=now_s)

    def block(self, endpoint: str, *, wait_s: float, now_s: float) -> None:
        """Block the endpoint for ``wait_s`` from ``now_s`` (a 10006 or an exhausted budget)."""
        ep = self._get(endpoint)
        ep.blocked_until_s = max(ep.blocked_until_s, now_s + max(wait_s, 0.0))

    def block_all(self, *, wait_s: float, now_s: float) -> None:
        """Block every endpoint for ``wait_s`` (an IP ban, HTTP 403)."""
        self._all_blocked_until_s = max(self._all_blocked_until_s, now_s + max(wait_s, 0.0))

    def stats(self, endpoint: str, now_s: float) -> EndpointStats:
        ep = self._get(endpoint)
        self._prune(ep, now_s)
        return EndpointStats(
            endpoint=endpoint,
            limit=ep.limit,
            used_in_window=len(ep.sent),
            blocked_for_s=max(0.0, ep.blocked_until_s - now_s, self._all_blocked_until_s - now_s),
        )
