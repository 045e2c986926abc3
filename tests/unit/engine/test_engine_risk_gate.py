"""RiskGate: pure pre-trade limits (no trio)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.types import Instrument, OrderType, Side
from hean.engine.intents import Signal
from hean.engine.orders import Acked, OrderTracker, Sent, TrackedOrder
from hean.engine.portfolio import PositionState
from hean.engine.risk_gate import RejectReason, RiskDecision, RiskGate, RiskLimits

D = Decimal
INST = Instrument(
    symbol="BTCUSDT",
    status="Trading",
    base_coin="BTC",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.1"),
    min_price=D("0.1"),
    max_price=D("1999999.8"),
    qty_step=D("0.001"),
    min_order_qty=D("0.001"),
    max_order_qty=D("1190"),
    max_mkt_order_qty=D("119"),
    min_notional_value=D("5"),
)
MARK = D("50000")
ZERO_POS = D(0)
LIMITS = RiskLimits(
    max_order_notional_usdt=D("2000"),
    max_position_notional_usdt=D("5000"),
    max_open_orders_per_symbol=3,
)

_ids = iter(range(1_000_000))


def signal(
    side: Side = Side.BUY,
    qty: str = "0.01",
    price: str | None = "49000",
    *,
    reduce_only: bool = False,
    order_type: OrderType = OrderType.LIMIT,
) -> Signal:
    return Signal(
        strategy="t",
        signal_id=f"s{next(_ids)}",
        symbol="BTCUSDT",
        side=side,
        qty=D(qty),
        price=None if price is None else D(price),
        order_type=order_type,
        reduce_only=reduce_only,
        created_at=100.0,
    )


def check(
    gate: RiskGate,
    sig: Signal,
    *,
    position: D = ZERO_POS,
    open_orders: list[TrackedOrder] | None = None,
    mark: D | None = MARK,
    fail_closed: bool = False,
    instrument: Instrument | None = INST,
) -> RiskDecision:
    return gate.check(
        sig,
        position=PositionState("BTCUSDT", size=position, cost=position * MARK),
        open_orders=open_orders or [],
        mark_price=mark,
        instrument=instrument,
        fail_closed=fail_closed,
        now=100.0,
    )


def resting(side: Side, qty: str, n: int) -> TrackedOrder:
    gate = RiskGate(LIMITS)
    decision = check(gate, signal(side, qty))
    assert decision.intent is not None
    tracker = OrderTracker()
    tracker.track_intent(decision.intent, 1.0)
    key = decision.intent.order_link_id
    tracker.apply(key, Sent(at=1.0))
    return tracker.apply(key, Acked(f"oid{n}", at=1.1)).after


def test_allows_and_builds_the_intent() -> None:
    gate = RiskGate(LIMITS, ttl_s=3.0)
    d = check(gate, signal(qty="0.0109", price="49000.07"))
    assert d.allowed
    assert d.intent is not None
    assert d.intent.qty == D("0.010")  # down onto qtyStep
    assert d.intent.price == D("49000.0")  # a buy rounds down onto the tick
    assert d.intent.created_at == 100.0
    assert d.intent.expires_at == 103.0
    assert d.intent.purpose == "open"


def test_sell_price_rounds_up() -> None:
    d = check(RiskGate(LIMITS), signal(Side.SELL, price="51000.01"))
    assert d.intent is not None
    assert d.intent.price == D("51000.1")


def test_halted_refuses_everything() -> None:
    gate = RiskGate(LIMITS)
    gate.halt("shutdown")
    d = check(gate, signal(reduce_only=True))
    assert d.reason is RejectReason.HALTED
    assert d.detail == "shutdown"
    gate.resume()
    assert check(gate, signal()).allowed


def test_fail_closed_allows_reduce_only_only() -> None:
    gate = RiskGate(LIMITS)
    assert check(gate, signal(), fail_closed=True).reason is RejectReason.FAIL_CLOSED
    d = check(gate, signal(Side.SELL, reduce_only=True), position=D("0.05"), fail_closed=True)
    assert d.allowed
    assert d.intent is not None
    assert d.intent.purpose == "close"


def test_exposure_block_refuses_new_exposure_but_lets_reduce_only_through() -> None:
    gate = RiskGate(LIMITS)
    gate.block_exposure("daily loss 0.6 USDT >= 0.5 USDT")
    assert gate.exposure_block is not None
    for sig in (signal(), signal(Side.SELL), signal(price=None, order_type=OrderType.MARKET)):
        d = check(gate, sig)
        assert d.reason is RejectReason.LOSS_LIMIT
        assert d.detail == "daily loss 0.6 USDT >= 0.5 USDT"
    # A close still goes (the exchange enforces reduce-only against the true position).
    d = check(gate, signal(Side.SELL, reduce_only=True), position=D("0.05"))
    assert d.allowed
    assert d.intent is not None
    assert d.intent.reduce_only
    # The close is still subject to the other limits: the block is no bypass.
    big = signal(Side.SELL, qty="1", price="49000", reduce_only=True)
    assert check(gate, big, position=D("1")).reason is RejectReason.MAX_ORDER_NOTIONAL
    gate.unblock_exposure()
    assert gate.exposure_block is None
    assert check(gate, signal()).allowed


def test_exposure_block_and_halt_are_independent() -> None:
    gate = RiskGate(LIMITS)
    gate.block_exposure("drawdown")
    gate.halt("shutdown")
    # Halted wins: nothing at all passes, not even a close.
    assert check(gate, signal(reduce_only=True)).reason is RejectReason.HALTED
    gate.resume()
    # Resuming after a halt does not lift the loss-limit block.
    assert check(gate, signal()).reason is RejectReason.LOSS_LIMIT
    assert check(gate, signal(Side.SELL, reduce_only=True), position=D("0.05")).allowed


def test_exposure_block_reason_can_be_chosen_and_fail_closed_is_reported_first() -> None:
    gate = RiskGate(LIMITS)
    gate.block_exposure("circuit breaker", reason=RejectReason.HALTED)
    assert check(gate, signal()).reason is RejectReason.HALTED
    gate.block_exposure("loss")  # the newest block replaces the previous one
    assert check(gate, signal(), fail_closed=True).reason is RejectReason.FAIL_CLOSED
    assert check(gate, signal()).reason is RejectReason.LOSS_LIMIT


def test_unknown_symbol_and_missing_price() -> None:
    gate = RiskGate(LIMITS)
    assert check(gate, signal(), instrument=None).reason is RejectReason.UNKNOWN_SYMBOL
    market = signal(price=None, order_type=OrderType.MARKET)
    assert check(gate, market, mark=None).reason is RejectReason.NO_PRICE
    d = check(gate, market)
    assert d.allowed
    assert d.intent is not None
    assert d.intent.price is None


def test_instrument_rules() -> None:
    gate = RiskGate(LIMITS)
    assert check(gate, signal(qty="0.0004")).reason is RejectReason.INSTRUMENT_RULE  # rounds to 0
    # 0.001 * 1000 = 1 USDT < minNotional 5
    assert check(gate, signal(qty="0.001", price="1000")).reason is RejectReason.INSTRUMENT_RULE


def test_max_order_notional() -> None:
    gate = RiskGate(LIMITS)
    assert check(gate, signal(qty="0.04", price="49000")).allowed  # 1960
    d = check(gate, signal(qty="0.041", price="49000"))  # 2009
    assert d.reason is RejectReason.MAX_ORDER_NOTIONAL
    # A market order is valued at the mark price.
    d = check(gate, signal(qty="0.041", price=None, order_type=OrderType.MARKET))
    assert d.reason is RejectReason.MAX_ORDER_NOTIONAL


def test_max_open_orders_per_symbol() -> None:
    gate = RiskGate(LIMITS)
    orders = [resting(Side.SELL, "0.01", n) for n in range(3)]
    assert check(gate, signal(), open_orders=orders).reason is RejectReason.MAX_OPEN_ORDERS
    assert check(gate, signal(), open_orders=orders[:2]).allowed


def test_projected_position_counts_position_and_same_side_orders() -> None:
    gate = RiskGate(LIMITS)
    # 0.06 long = 3000 at mark; +0.02 resting buy = 4000; +0.03 new = 5500 > 5000.
    orders = [resting(Side.BUY, "0.02", 1)]
    d = check(gate, signal(qty="0.03"), position=D("0.06"), open_orders=orders)
    assert d.reason is RejectReason.MAX_POSITION_NOTIONAL
    # Without the resting buy it fits (4500).
    assert check(gate, signal(qty="0.03"), position=D("0.06")).allowed
    # A sell reduces the long: always within the limit here.
    assert check(gate, signal(Side.SELL, qty="0.03"), position=D("0.09")).allowed
    # Reduce-only skips the projection entirely.
    d = check(gate, signal(qty="0.03", reduce_only=True), position=D("-0.2"))
    assert d.allowed


@settings(max_examples=150, deadline=None)
@given(
    qty=st.decimals(min_value="0.001", max_value="1", places=4),
    price=st.decimals(min_value="1000", max_value="100000", places=2),
    position=st.decimals(min_value="-0.2", max_value="0.2", places=3),
    side=st.sampled_from(Side),
)
def test_allowed_intents_respect_every_limit(
    qty: Decimal, price: Decimal, position: Decimal, side: Side
) -> None:
    gate = RiskGate(LIMITS)
    d = check(gate, signal(side, str(qty), str(price)), position=position)
    if d.intent is None:
        assert d.reason is not None
        return
    intent = d.intent
    assert intent.qty <= qty
    assert intent.qty % INST.qty_step == 0
    assert intent.price is not None
    assert intent.price % INST.tick_size == 0
    assert intent.qty * intent.price <= LIMITS.max_order_notional_usdt
    projected = abs(position + side.sign * intent.qty) * MARK
    assert projected <= LIMITS.max_position_notional_usdt


def test_ttl_must_be_positive() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        RiskGate(LIMITS, ttl_s=0)
