"""Positions and PnL from executions (hean.engine.portfolio)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.types import (
    ExecType,
    Execution,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from hean.engine.portfolio import (
    COST_QUANTUM,
    MismatchKind,
    Portfolio,
    PositionState,
    position_state_from_dict,
    position_state_to_dict,
)

SYM = "BTCUSDT"
D = Decimal


def fill(
    exec_id: str,
    side: Side,
    qty: str | Decimal,
    price: str | Decimal,
    *,
    fee: str | Decimal = "0",
    t: int = 1_000,
    order_id: str = "o1",
    symbol: str = SYM,
    exec_type: ExecType = ExecType.TRADE,
) -> Execution:
    q, p = D(qty), D(price)
    return Execution(
        exec_id=exec_id,
        symbol=symbol,
        order_id=order_id,
        order_link_id="",
        side=side,
        exec_price=p,
        exec_qty=q,
        exec_value=q * p,
        exec_fee=D(fee),
        exec_time=t,
        is_maker=True,
        exec_type=exec_type,
    )


def order(cum: str, status: OrderStatus = OrderStatus.PARTIALLY_FILLED, oid: str = "o1") -> Order:
    return Order(
        order_id=oid,
        order_link_id="l1",
        symbol=SYM,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=D(100),
        qty=D(2),
        time_in_force=TimeInForce.GTC,
        order_status=status,
        created_time=1,
        updated_time=2,
        cum_exec_qty=D(cum),
    )


def position(size: str, side: Side | None, entry: str = "0", symbol: str = SYM) -> Position:
    return Position(symbol=symbol, side=side, size=D(size), entry_price=D(entry))


# --------------------------------------------------------------------------- examples


def test_open_add_reduce_close() -> None:
    p = Portfolio()
    assert p.apply_execution(fill("1", Side.BUY, "1", "100", fee="0.055", t=1))
    assert p.apply_execution(fill("2", Side.BUY, "1", "110", fee="0.0605", t=2))
    st_ = p.position(SYM)
    assert (st_.size, st_.avg_entry, st_.side, st_.opened_at_ms) == (D(2), D(105), Side.BUY, 1)
    p.apply_execution(fill("3", Side.SELL, "0.5", "120", t=3))
    st_ = p.position(SYM)
    assert st_.realized_pnl == D("7.5")  # 0.5 * (120 - 105)
    assert st_.avg_entry == 105
    assert st_.size == D("1.5")
    p.apply_execution(fill("4", Side.SELL, "1.5", "100", t=4))
    st_ = p.position(SYM)
    assert st_.size == 0
    assert st_.cost == 0
    assert st_.avg_entry == 0
    assert st_.side is None
    assert st_.realized_pnl == D("7.5") - D("7.5")  # 1.5 * (100 - 105)
    assert st_.fees == D("0.1155")
    assert st_.opened_at_ms is None
    assert st_.fill_count == 4
    assert st_.volume == 4
    assert st_.last_exec_time == 4


def test_short_side_pnl() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.SELL, "2", "100"))
    p.apply_execution(fill("2", Side.BUY, "1", "90"))
    st_ = p.position(SYM)
    assert (st_.size, st_.avg_entry, st_.realized_pnl) == (D(-1), D(100), D(10))
    assert st_.unrealized(D(80)) == 20
    assert st_.mark_to_market(D(80)) == 30


def test_flip_through_zero_closes_then_opens_at_fill_price() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "1", "100", t=1))
    p.apply_execution(fill("2", Side.SELL, "3", "110", t=7))
    st_ = p.position(SYM)
    assert st_.realized_pnl == 10
    assert (st_.size, st_.avg_entry, st_.side) == (D(-2), D(110), Side.SELL)
    assert st_.opened_at_ms == 7  # the new (short) position opened with the flip


def test_rebate_fees_are_negative() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "1", "100", fee="-0.02"))
    p.apply_execution(fill("2", Side.SELL, "1", "101", fee="-0.0202"))
    st_ = p.position(SYM)
    assert st_.fees == D("-0.0402")
    assert st_.net_pnl(D(0)) == D("1.0402")


def test_funding_moves_money_not_the_position() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "1", "100", order_id="o1"))
    funding = fill("f", Side.BUY, "1", "100", fee="0.01", order_id="", exec_type=ExecType.FUNDING)
    assert p.apply_execution(funding)
    st_ = p.position(SYM)
    assert (st_.size, st_.fill_count, st_.funding, st_.fees) == (D(1), 1, D("0.01"), D(0))
    assert p.has_seen("f")
    assert not p.apply_execution(funding)


def test_realized_and_entry_depend_on_order_but_mark_to_market_does_not() -> None:
    fills = [
        fill("a", Side.BUY, "1", "100"),
        fill("b", Side.SELL, "1", "110"),
        fill("c", Side.BUY, "1", "120"),
    ]
    one, two = Portfolio(), Portfolio()
    for e in fills:
        one.apply_execution(e)
    for e in (fills[0], fills[2], fills[1]):
        two.apply_execution(e)
    a, b = one.position(SYM), two.position(SYM)
    assert (a.realized_pnl, a.avg_entry) == (D(10), D(120))
    assert (b.realized_pnl, b.avg_entry) == (D(0), D(110))
    assert a.size == b.size
    assert a.mark_to_market(D(130)) == b.mark_to_market(D(130)) == 20


def test_apply_fill_rejects_non_positive_qty() -> None:
    with pytest.raises(ValueError, match="> 0"):
        PositionState(SYM).apply_fill(Side.BUY, D(0), D(1), D(0), 1)


# --------------------------------------------------------------------------- missing fills


def test_order_update_before_execution_shows_missing_fill_until_it_arrives() -> None:
    p = Portfolio()
    p.observe_order(order("0.5"))
    assert p.missing_fill_qty("o1") == D("0.5")
    assert p.missing_fills() == {"o1": D("0.5")}
    assert p.missing_fills("ETHUSDT") == {}
    p.apply_execution(fill("1", Side.BUY, "0.3", "100"))
    assert p.missing_fill_qty("o1") == D("0.2")
    p.apply_execution(fill("2", Side.BUY, "0.2", "100"))
    assert p.missing_fill_qty("o1") == 0
    assert p.missing_fills() == {}


def test_execution_before_order_update_is_not_missing() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "1", "100"))
    p.observe_order(order("0.4"))  # an older order snapshot: never negative
    assert p.missing_fill_qty("o1") == 0
    p.observe_order(order("1"))
    assert p.missing_fill_qty("o1") == 0
    p.observe_order(order("0.2"))  # a stale lower report does not lower the high-water mark
    p.observe_order(order("2", OrderStatus.FILLED))
    assert p.missing_fill_qty("o1") == 1
    p.apply_execution(fill("2", Side.BUY, "1", "100"))
    assert p.missing_fills() == {}
    assert p.filled_qty("o1") == 2


# --------------------------------------------------------------------------- compare / adopt


def test_compare_reports_size_and_entry_mismatches() -> None:
    p = Portfolio()
    assert p.compare(position("0", None)) is None
    p.apply_execution(fill("1", Side.BUY, "1", "100"))
    assert p.compare(position("1", Side.BUY, "100")) is None
    assert p.compare(position("1", Side.BUY, "100.009")) is None  # within 1 bp (rounding)
    m = p.compare(position("1", Side.BUY, "101"))
    assert m is not None
    assert m.kind is MismatchKind.ENTRY
    m = p.compare(position("1", Side.SELL, "100"))
    assert m is not None
    assert m.kind is MismatchKind.SIZE
    assert m.size_diff == -2
    m = p.compare(position("0", None))
    assert m is not None
    assert m.kind is MismatchKind.SIZE
    assert (m.local_size, m.exchange_size, m.local_entry) == (D(1), D(0), D(100))
    # compare never changes anything
    assert p.position(SYM).size == 1


def test_adopt_takes_exchange_size_and_entry() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "1", "100"))
    pos = Position(symbol=SYM, side=Side.SELL, size=D(2), entry_price=D(90), created_time=77)
    st_ = p.adopt(pos, at_ms=5_000)
    assert (st_.size, st_.avg_entry, st_.opened_at_ms, st_.fill_count) == (D(-2), D(90), 5_000, 1)
    assert p.compare(pos) is None
    # Same direction: the position's open time is kept (the watchdog's timer does not reset).
    assert p.adopt(position("3", Side.SELL, "91"), at_ms=9_000).opened_at_ms == 5_000
    flat = p.adopt(position("0", None), at_ms=9_000)
    assert (flat.cost, flat.opened_at_ms) == (D(0), None)


def test_state_dict_round_trip_and_copy_independence() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "3", "100.1", fee="0.3", t=5))
    p.apply_execution(fill("2", Side.SELL, "1", "101.3", t=6))
    st_ = p.position(SYM)
    assert position_state_from_dict(position_state_to_dict(st_)) == st_
    c = p.copy()
    c.apply_execution(fill("3", Side.SELL, "2", "101"))
    assert p.position(SYM) == st_
    assert not p.has_seen("3")


def test_restore_from_baseline_and_replay_equals_live() -> None:
    fills = [
        fill(str(i), Side.BUY if i % 3 else Side.SELL, "1", str(100 + i), t=i) for i in range(9)
    ]
    live = Portfolio()
    for e in fills[:5]:
        live.apply_execution(e)
    baseline = live.position(SYM)
    for e in fills[5:]:
        live.apply_execution(e)
    live.observe_order(order("20", oid="o1"))
    restored = Portfolio.restore([baseline], fills[:5], fills[5:], [order("20", oid="o1")])
    assert restored.positions() == live.positions()
    assert restored.missing_fills() == live.missing_fills() == {"o1": D(11)}
    assert all(restored.has_seen(e.exec_id) for e in fills)
    assert restored.exec_count == live.exec_count == 9


# --------------------------------------------------------------------------- properties

_qty = st.integers(1, 5_000).map(lambda n: D(n) / 1000)  # 0.001 .. 5, on a 0.001 step
_price = st.integers(10_000, 1_000_000).map(lambda n: D(n) / 10)  # 1000.0 .. 100000.0
_fee = st.integers(-10_000, 10_000).map(lambda n: D(n) / 10_000)  # rebates included


@st.composite
def executions(draw: st.DrawFn, max_size: int = 25) -> list[Execution]:
    """Fills of one symbol with unique ids (a few funding charges mixed in)."""
    n = draw(st.integers(0, max_size))
    out = []
    for i in range(n):
        kind = draw(st.sampled_from([ExecType.TRADE] * 9 + [ExecType.FUNDING]))
        out.append(
            fill(
                f"e{i}",
                draw(st.sampled_from(Side)),
                draw(_qty),
                draw(_price),
                fee=draw(_fee),
                t=draw(st.integers(0, 10_000)),
                exec_type=kind,
                order_id=f"o{draw(st.integers(0, 3))}",
            )
        )
    return out


def _book(execs: list[Execution]) -> Portfolio:
    p = Portfolio()
    for e in execs:
        p.apply_execution(e)
    return p


def _trades(execs: list[Execution]) -> list[Execution]:
    return [e for e in execs if e.exec_type is ExecType.TRADE]


@settings(max_examples=200)
@given(execs=executions(), data=st.data())
def test_applying_an_execution_again_changes_nothing(
    execs: list[Execution], data: st.DataObject
) -> None:
    p = _book(execs)
    before = (p.positions(), p.missing_fills(), p.exec_count)
    again = data.draw(st.lists(st.sampled_from(execs), max_size=10)) if execs else []
    for e in again:
        assert not p.apply_execution(e)
    assert (p.positions(), p.missing_fills(), p.exec_count) == before


@settings(max_examples=200)
@given(execs=executions(), data=st.data(), mark=_price)
def test_arrival_order_does_not_change_size_fees_or_mark_to_market(
    execs: list[Execution], data: st.DataObject, mark: Decimal
) -> None:
    shuffled = data.draw(st.permutations(execs))
    a, b = _book(execs).position(SYM), _book(shuffled).position(SYM)
    assert a.size == b.size
    assert a.fees == b.fees
    assert a.funding == b.funding
    assert a.volume == b.volume
    assert a.fill_count == b.fill_count
    assert a.last_exec_time == b.last_exec_time
    assert a.mark_to_market(mark) == b.mark_to_market(mark)
    assert a.net_pnl(mark) == b.net_pnl(mark)


@settings(max_examples=200)
@given(execs=executions(), mark=_price)
def test_position_is_the_signed_sum_and_pnl_is_the_mark_to_market_of_fills(
    execs: list[Execution], mark: Decimal
) -> None:
    st_ = _book(execs).position(SYM)
    trades = _trades(execs)
    assert st_.size == sum((e.exec_qty * e.side.sign for e in trades), D(0))
    cash = sum((e.exec_qty * e.side.sign * e.exec_price for e in trades), D(0))
    # Exact: realized + unrealized(p) == p * size - sum(d * x), whatever the rounding of R.
    assert st_.realized_pnl + st_.unrealized(mark) == mark * st_.size - cash
    assert st_.fees == sum((e.exec_fee for e in trades), D(0))
    assert st_.funding == sum((e.exec_fee for e in execs if e not in trades), D(0))
    if st_.size == 0:
        assert st_.cost == 0
        assert st_.opened_at_ms is None
    else:
        # The entry of an open position lies within the prices that built it (up to the rounding
        # of the cost removed by each partial close, COST_QUANTUM per fill).
        lo = min(e.exec_price for e in trades)
        hi = max(e.exec_price for e in trades)
        tol = COST_QUANTUM * st_.fill_count / abs(st_.size)
        assert lo - tol <= st_.avg_entry <= hi + tol


@settings(max_examples=100)
@given(execs=executions(), data=st.data())
def test_order_fills_are_tracked_per_order(execs: list[Execution], data: st.DataObject) -> None:
    p = _book(execs)
    for oid in {e.order_id for e in _trades(execs)}:
        expected = sum((e.exec_qty for e in _trades(execs) if e.order_id == oid), D(0))
        assert p.filled_qty(oid) == expected
        extra = data.draw(_qty)
        p.observe_order(order(str(expected + extra), oid=oid))
        assert p.missing_fill_qty(oid) == extra
