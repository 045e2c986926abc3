"""Signals, intents and the duplicate guard (hean.engine.intents)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.link_id import is_valid_order_link_id, make_order_link_id
from hean.bybit.types import OrderType, Side, TimeInForce
from hean.engine.intents import (
    DuplicateGuard,
    Fingerprint,
    OrderIntent,
    Signal,
    intent_from_dict,
    intent_to_dict,
)


def _signal(**kw: object) -> Signal:
    base: dict[str, object] = {
        "strategy": "mm",
        "signal_id": "s-1",
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "qty": Decimal("0.01"),
        "price": Decimal("65000.5"),
        "created_at": 1.0,
    }
    base.update(kw)
    return Signal(**base)  # type: ignore[arg-type]


def test_intent_from_signal_uses_the_deterministic_link_id() -> None:
    intent = OrderIntent.from_signal(
        _signal(),
        qty=Decimal("0.008"),
        price=Decimal("65000.5"),
        purpose="open",
        created_at=2.0,
        ttl_s=5.0,
    )
    assert intent.order_link_id == make_order_link_id("mm", "s-1", "open")
    assert is_valid_order_link_id(intent.order_link_id)
    assert intent.qty == Decimal("0.008")
    assert intent.expires_at == 7.0
    assert not intent.expired(6.999)
    assert intent.expired(7.0)
    assert intent.fingerprint == Fingerprint(
        "BTCUSDT", Side.BUY, Decimal("0.008"), Decimal("65000.5")
    )
    again = OrderIntent.from_signal(
        _signal(),
        qty=Decimal("0.008"),
        price=Decimal("65000.5"),
        purpose="open",
        created_at=9.0,
        ttl_s=5.0,
    )
    assert again.order_link_id == intent.order_link_id  # a retry reuses the id
    close = OrderIntent.from_signal(
        _signal(),
        qty=Decimal("0.008"),
        price=Decimal("65100"),
        purpose="close",
        created_at=9.0,
        ttl_s=5.0,
    )
    assert close.order_link_id != intent.order_link_id


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"qty": Decimal(0)}, "qty"),
        ({"qty": Decimal("-1")}, "qty"),
        ({"price": None}, "Limit order needs a price"),
        ({"price": Decimal(0)}, "price"),
        ({"strategy": ""}, "strategy"),
        ({"signal_id": ""}, "signal_id"),
    ],
)
def test_signal_validation(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _signal(**kw)


def test_market_signal_may_carry_a_reference_price_but_the_intent_not() -> None:
    sig = _signal(order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC)
    with pytest.raises(ValueError, match="Market intent carries no price"):
        OrderIntent.from_signal(
            sig, qty=Decimal("0.01"), price=Decimal(1), purpose="open", created_at=0.0, ttl_s=1.0
        )
    intent = OrderIntent.from_signal(
        sig, qty=Decimal("0.01"), price=None, purpose="open", created_at=0.0, ttl_s=1.0
    )
    assert intent.price is None
    assert intent.fingerprint.price is None


def test_intent_rejects_negative_ttl() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        OrderIntent.from_signal(
            _signal(), qty=Decimal(1), price=Decimal(1), purpose="p", created_at=5.0, ttl_s=-1.0
        )


def test_reduce_only_defaults_to_signal_and_can_be_forced() -> None:
    sig = _signal(reduce_only=True)
    kw = {"qty": Decimal(1), "price": Decimal(1), "purpose": "p", "created_at": 0.0, "ttl_s": 1.0}
    assert OrderIntent.from_signal(sig, **kw).reduce_only  # type: ignore[arg-type]
    assert not OrderIntent.from_signal(sig, reduce_only=False, **kw).reduce_only  # type: ignore[arg-type]


_decimals = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**6), places=3)


@settings(max_examples=100)
@given(
    qty=_decimals,
    price=st.none() | _decimals,
    side=st.sampled_from(Side),
    tif=st.sampled_from(TimeInForce),
    reduce_only=st.booleans(),
    created_at=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    ttl=st.floats(min_value=0, max_value=1e3, allow_nan=False),
)
def test_intent_dict_round_trip(
    qty: Decimal,
    price: Decimal | None,
    side: Side,
    tif: TimeInForce,
    reduce_only: bool,
    created_at: float,
    ttl: float,
) -> None:
    order_type = OrderType.MARKET if price is None else OrderType.LIMIT
    sig = _signal(side=side, price=price, order_type=order_type, time_in_force=tif)
    intent = OrderIntent.from_signal(
        sig,
        qty=qty,
        price=price,
        purpose="open",
        created_at=created_at,
        ttl_s=ttl,
        reduce_only=reduce_only,
    )
    assert intent_from_dict(intent_to_dict(intent)) == intent


# --------------------------------------------------------------------------- duplicate guard

FP = Fingerprint("BTCUSDT", Side.BUY, Decimal("0.01"), Decimal(65000))


def test_guard_refuses_identical_order_within_window() -> None:
    guard = DuplicateGuard(5.0)
    assert guard.check(FP, 100.0)
    assert not guard.check(FP, 100.0)
    assert not guard.check(FP, 104.999)
    assert guard.check(FP, 105.0)  # the window is half-open: exactly 5 s later is allowed
    assert not guard.check(FP, 106.0)  # ... and that starts a new window


def test_guard_treats_equal_decimals_as_the_same_order() -> None:
    guard = DuplicateGuard()
    assert guard.check(FP, 0.0)
    same = Fingerprint("BTCUSDT", Side.BUY, Decimal("0.010"), Decimal("65000.0"))
    assert not guard.check(same, 1.0)


@pytest.mark.parametrize(
    "other",
    [
        Fingerprint("ETHUSDT", Side.BUY, Decimal("0.01"), Decimal(65000)),
        Fingerprint("BTCUSDT", Side.SELL, Decimal("0.01"), Decimal(65000)),
        Fingerprint("BTCUSDT", Side.BUY, Decimal("0.02"), Decimal(65000)),
        Fingerprint("BTCUSDT", Side.BUY, Decimal("0.01"), Decimal("65000.1")),
        Fingerprint("BTCUSDT", Side.BUY, Decimal("0.01"), None),
    ],
)
def test_guard_lets_different_orders_through(other: Fingerprint) -> None:
    guard = DuplicateGuard()
    assert guard.check(FP, 0.0)
    assert guard.check(other, 0.1)


def test_guard_forget_is_duplicate_and_prune() -> None:
    guard = DuplicateGuard(1.0)
    assert guard.check(FP, 0.0)
    assert guard.is_duplicate(FP, 0.5)
    assert not guard.is_duplicate(FP, 1.0)
    guard.forget(FP)
    assert not guard.is_duplicate(FP, 0.5)
    assert guard.check(FP, 0.5)
    for i in range(10):
        guard.check(Fingerprint("X", Side.BUY, Decimal(i + 1), None), 0.6)
    assert len(guard) == 11
    guard.prune(10.0)
    assert len(guard) == 0
    with pytest.raises(ValueError, match="window_s"):
        DuplicateGuard(-1.0)


@settings(max_examples=150)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 3), st.floats(min_value=0, max_value=3, allow_nan=False)),
        max_size=40,
    ),
    window=st.floats(min_value=0, max_value=5, allow_nan=False),
)
def test_guard_matches_a_naive_model(steps: list[tuple[int, float]], window: float) -> None:
    guard = DuplicateGuard(window)
    accepted_at: dict[int, float] = {}
    now = 0.0
    for which, dt in steps:
        now += dt
        fp = Fingerprint("S", Side.BUY, Decimal(which + 1), None)
        last = accepted_at.get(which)
        expected = last is None or now - last >= window
        assert guard.check(fp, now) is expected
        if expected:
            accepted_at[which] = now
        assert len(guard) <= 4
