"""Per-UID per-endpoint rolling-second limiter and its X-Bapi-Limit* header values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hean.sim.ratelimit import DEFAULT_LIMITS, RateLimiter


def test_default_limits_match_bybit_linear_table() -> None:
    assert DEFAULT_LIMITS["/v5/order/create"] == 10
    assert DEFAULT_LIMITS["/v5/order/cancel-all"] == 10
    assert DEFAULT_LIMITS["/v5/order/realtime"] == 50
    assert DEFAULT_LIMITS["/v5/account/wallet-balance"] == 50
    assert RateLimiter().check("u", "/v5/market/tickers", 0) is None


def test_eleventh_create_in_a_second_is_refused_with_reset_time() -> None:
    rl = RateLimiter()
    for i in range(10):
        d = rl.check("k", "/v5/order/create", 1000 + i)
        assert d is not None
        assert d.allowed
        assert d.remaining == 9 - i
        assert d.reset_at_ms == 1000 + i
    d = rl.check("k", "/v5/order/create", 1500)
    assert d is not None
    assert not d.allowed
    assert d.remaining == 0
    assert d.reset_at_ms == 2000
    assert dict(d.headers()) == {
        "X-Bapi-Limit": "10",
        "X-Bapi-Limit-Status": "0",
        "X-Bapi-Limit-Reset-Timestamp": "2000",
    }
    # the refusal did not consume quota: at the reset time exactly one slot is free again
    d = rl.check("k", "/v5/order/create", 2000)
    assert d is not None
    assert d.allowed
    assert d.remaining == 0
    # limits are per uid and per endpoint
    assert rl.check("other", "/v5/order/create", 1500).allowed  # type: ignore[union-attr]
    assert rl.check("k", "/v5/order/cancel", 1500).allowed  # type: ignore[union-attr]


@settings(max_examples=100)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=80))
def test_never_more_than_limit_accepted_in_any_window(gaps: list[int]) -> None:
    rl = RateLimiter({"/e": 3}, window_ms=100)
    now = 0
    accepted: list[int] = []
    for g in gaps:
        now += g
        d = rl.check("u", "/e", now)
        assert d is not None
        if d.allowed:
            accepted.append(now)
        else:
            assert d.reset_at_ms > now
    for t in accepted:
        assert sum(1 for x in accepted if t - 100 < x <= t) <= 3
