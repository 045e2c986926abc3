"""Wall-clock milliseconds for exchange timestamps: the one place HEAN reads wall time.

Every timer in the engine runs on ``trio.current_time()`` (monotonic, and virtual under the fake
clock). Wall-clock milliseconds are needed only where the exchange demands them: the signed
``X-BAPI-TIMESTAMP`` of a REST request, the ``expires`` of a WebSocket auth, and the start/end of
history queries. Those go through a :class:`WallClock`, injected everywhere, so that:

* production uses :func:`system_clock_ms` (the only call to ``time.time_ns`` in the package);
* tests use :class:`TrioOffsetClock`, which is driven by trio's (fake) clock, so a test that jumps
  the clock by an hour moves exchange timestamps by an hour too, deterministically;
* :class:`ServerClock` corrects either with the offset measured against Bybit's
  ``/v5/market/time`` (:class:`ServerTimeOffset`), because Bybit rejects a signed request whose
  timestamp is more than 1 s ahead of its clock (retCode 10002).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Protocol

import trio
from attrs import frozen

__all__ = [
    "ServerClock",
    "ServerTimeOffset",
    "ServerTimeSample",
    "TrioOffsetClock",
    "WallClock",
    "system_clock_ms",
]


class WallClock(Protocol):
    """A zero-argument callable returning epoch milliseconds."""

    def __call__(self) -> int: ...


def system_clock_ms() -> int:
    """The real wall clock in epoch ms. The only reader of wall time in HEAN."""
    return time.time_ns() // 1_000_000


class TrioOffsetClock:
    """``start_ms + (trio.current_time() - origin_s) * 1000``: wall ms driven by trio's clock.

    Under ``MockClock``/``autojump_clock`` the trio clock starts at 0, so ``start_ms`` is the wall
    time at the start of the test. Must be called from inside ``trio.run``.
    """

    __slots__ = ("_origin_s", "_start_ms")

    def __init__(self, start_ms: int, *, origin_s: float = 0.0) -> None:
        self._start_ms = start_ms
        self._origin_s = origin_s

    def __call__(self) -> int:
        return self._start_ms + round((trio.current_time() - self._origin_s) * 1000)


@frozen
class ServerTimeSample:
    """One exchange of ``/v5/market/time``: local send/receive times and the server's answer."""

    sent_ms: int
    received_ms: int
    server_ms: int

    @property
    def rtt_ms(self) -> int:
        return max(0, self.received_ms - self.sent_ms)

    @property
    def offset_ms(self) -> int:
        """Server minus local, assuming the server stamped its answer half-way through the RTT."""
        return self.server_ms - (self.sent_ms + self.received_ms) // 2


class ServerTimeOffset:
    """Estimates ``server_ms - local_ms`` from recent samples. Pure (times are passed in).

    Like NTP's clock filter, it trusts the sample with the smallest round trip among the last
    ``max_samples``: a slow answer's midpoint is the least certain estimate.
    """

    def __init__(self, *, max_samples: int = 8) -> None:
        if max_samples <= 0:
            raise ValueError("max_samples must be positive")
        self._samples: deque[ServerTimeSample] = deque(maxlen=max_samples)

    def observe(self, *, sent_ms: int, received_ms: int, server_ms: int) -> int:
        """Record one sample and return the new offset estimate in ms."""
        if received_ms < sent_ms:
            # The local clock stepped backwards during the call: the sample means nothing.
            return self.offset_ms
        self._samples.append(ServerTimeSample(sent_ms, received_ms, server_ms))
        return self.offset_ms

    def reset(self) -> None:
        """Forget all samples (e.g. after a 10002 says the estimate went wrong)."""
        self._samples.clear()

    @property
    def offset_ms(self) -> int:
        if not self._samples:
            return 0
        return min(self._samples, key=lambda s: s.rtt_ms).offset_ms

    @property
    def samples(self) -> tuple[ServerTimeSample, ...]:
        return tuple(self._samples)


class ServerClock:
    """A :class:`WallClock` in the exchange's time: the local clock plus the measured offset."""

    __slots__ = ("_local", "offset")

    def __init__(self, local: WallClock, offset: ServerTimeOffset | None = None) -> None:
        self._local = local
        self.offset = offset if offset is not None else ServerTimeOffset()

    @property
    def local(self) -> WallClock:
        return self._local

    def __call__(self) -> int:
        return self._local() + self.offset.offset_ms
