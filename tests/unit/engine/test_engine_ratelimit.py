"""The pure per-endpoint rate limiter: defaults, headers, blocks, and never over the limit."""

from __future__ import annotations

import heapq

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.engine.ratelimit import DEFAULT_ENDPOINT_LIMITS, DEFAULT_LIMIT, RateLimiter

CREATE = "/v5/order/create"
REALTIME = "/v5/order/realtime"


def take(rl: RateLimiter, endpoint: str, now: float, n: int) -> int:
    """How many of ``n`` immediate acquisitions succeed at ``now``."""
    return sum(rl.acquire(endpoint, now) == 0.0 for _ in range(n))


def test_bybit_defaults_apply_before_any_header() -> None:
    rl = RateLimiter()
    assert take(rl, CREATE, 0.0, 15) == DEFAULT_ENDPOINT_LIMITS[CREATE] == 10
    assert take(rl, REALTIME, 0.0, 60) == 50
    assert take(rl, "/v5/market/tickers", 0.0, 100) == DEFAULT_LIMIT


def test_wait_is_until_the_oldest_send_leaves_the_window() -> None:
    rl = RateLimiter(window_s=1.0, margin_s=0.05)
    for i in range(10):
        assert rl.acquire(CREATE, i * 0.01) == 0.0
    wait = rl.acquire(CREATE, 0.5)
    assert wait == pytest.approx(0.55)
    assert rl.acquire(CREATE, 0.5 + wait) == 0.0
    assert rl.acquire(CREATE, 0.5 + wait) > 0  # only the one slot was freed


def test_a_positive_wait_takes_no_slot() -> None:
    rl = RateLimiter({CREATE: 1})
    assert rl.acquire(CREATE, 0.0) == 0.0
    for _ in range(5):
        assert rl.acquire(CREATE, 0.1) > 0
    assert rl.stats(CREATE, 0.1).used_in_window == 1


def test_header_limit_replaces_the_default() -> None:
    rl = RateLimiter()
    rl.update(CREATE, limit=20, remaining=19, reset_at_ms=1_000, now_s=0.0, now_ms=1_000)
    assert take(rl, CREATE, 0.0, 25) == 20
    assert rl.stats(CREATE, 0.0).limit == 20


def test_remaining_zero_blocks_until_the_reset_timestamp() -> None:
    rl = RateLimiter()
    rl.update(CREATE, limit=10, remaining=0, reset_at_ms=10_400, now_s=5.0, now_ms=10_000)
    assert rl.acquire(CREATE, 5.0) == pytest.approx(0.4)
    assert rl.acquire(CREATE, 5.39) == pytest.approx(0.01)
    assert rl.acquire(CREATE, 5.4) == 0.0
    assert rl.acquire(REALTIME, 5.0) == 0.0  # other endpoints are unaffected


def test_remaining_zero_without_a_future_reset_blocks_one_window() -> None:
    rl = RateLimiter(window_s=1.0)
    rl.update(CREATE, limit=10, remaining=0, reset_at_ms=10_000, now_s=5.0, now_ms=10_000)
    assert rl.acquire(CREATE, 5.0) == pytest.approx(1.0)
    assert rl.acquire(CREATE, 6.0) == 0.0


def test_remaining_above_zero_does_not_block() -> None:
    rl = RateLimiter()
    rl.update(CREATE, limit=10, remaining=3, reset_at_ms=10_000, now_s=5.0, now_ms=10_000)
    assert rl.acquire(CREATE, 5.0) == 0.0


def test_missing_headers_change_nothing() -> None:
    rl = RateLimiter()
    rl.update(CREATE, limit=None, remaining=None, reset_at_ms=None, now_s=0.0, now_ms=0)
    assert rl.stats(CREATE, 0.0).limit == 10
    assert rl.acquire(CREATE, 0.0) == 0.0


def test_block_keeps_the_later_deadline() -> None:
    rl = RateLimiter()
    rl.block(CREATE, wait_s=2.0, now_s=0.0)
    rl.block(CREATE, wait_s=0.5, now_s=0.0)
    assert rl.acquire(CREATE, 1.0) == pytest.approx(1.0)
    assert rl.stats(CREATE, 1.0).blocked_for_s == pytest.approx(1.0)


def test_block_all_is_an_ip_ban_for_every_endpoint() -> None:
    rl = RateLimiter()
    rl.block_all(wait_s=600.0, now_s=0.0)
    assert rl.acquire(CREATE, 1.0) == pytest.approx(599.0)
    assert rl.acquire("/v5/market/time", 1.0) == pytest.approx(599.0)
    assert rl.acquire(CREATE, 600.0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [{"default_limit": 0}, {"window_s": 0.0}, {"margin_s": -1.0}, {"limits": {CREATE: 0}}],
)
def test_invalid_configuration_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=150)
@given(
    limit=st.integers(1, 12),
    arrivals=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=80),
    margin=st.sampled_from([0.0, 0.05]),
)
def test_granted_requests_never_exceed_the_limit_in_any_window(
    limit: int, arrivals: list[float], margin: float
) -> None:
    """Concurrent callers that obey the returned waits never put more than ``limit`` sends in
    any window. Simulated as a discrete-event loop so time only moves forward, as in trio."""
    rl = RateLimiter({CREATE: limit}, window_s=1.0, margin_s=margin)
    queue = [(t, i) for i, t in enumerate(arrivals)]
    heapq.heapify(queue)
    granted: list[float] = []
    while queue:
        now, caller = heapq.heappop(queue)
        wait = rl.acquire(CREATE, now)
        if wait > 0:
            heapq.heappush(queue, (now + wait, caller))
        else:
            granted.append(now)
    assert len(granted) == len(arrivals)
    for i, start in enumerate(granted):
        in_window = [g for g in granted[i:] if g < start + 1.0]
        assert len(in_window) <= limit


def test_wait_time_answers_like_acquire_but_takes_nothing() -> None:
    rl = RateLimiter(window_s=1.0, margin_s=0.05)
    for _ in range(100):
        assert rl.wait_time(CREATE, 0.0) == 0.0  # asking never uses the budget up
    assert take(rl, CREATE, 0.0, 10) == 10
    assert rl.wait_time(CREATE, 0.5) == pytest.approx(rl.acquire(CREATE, 0.5)) == 0.55
    rl.block(REALTIME, wait_s=30.0, now_s=0.0)
    assert rl.wait_time(REALTIME, 10.0) == 20.0
    rl.block_all(wait_s=60.0, now_s=0.0)
    assert rl.wait_time(CREATE, 5.0) == 55.0
