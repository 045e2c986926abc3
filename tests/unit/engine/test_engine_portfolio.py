"""Positions and PnL from executions (hean.engine.portfolio)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from attrs import evolve
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
    exchange_order_key,
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
    seq: int = 0,
    maker: bool = True,
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
        is_maker=maker,
        exec_type=exec_type,
        seq=seq,
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


def position(
    size: str,
    side: Side | None,
    entry: str = "0",
    symbol: str = SYM,
    *,
    updated: int = 0,
    seq: int = 0,
) -> Position:
    return Position(
        symbol=symbol, side=side, size=D(size), entry_price=D(entry), updated_time=updated, seq=seq
    )


def in_exchange_order(execs: list[Execution], start: PositionState | None = None) -> PositionState:
    """The reference: fold the executions sorted by the venue's order, without Portfolio."""
    state = start or PositionState(SYM)
    for e in sorted(execs, key=exchange_order_key):
        if e.exec_type is ExecType.TRADE:
            state = state.apply_fill(e.side, e.exec_qty, e.exec_price, e.exec_fee, e.exec_time)
        else:
            state = state.apply_charge(e.exec_fee, e.exec_time)
    return state


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


def test_fold_depends_on_order_so_the_portfolio_applies_exchange_order() -> None:
    # The arithmetic itself is order-dependent: buy 1@100, sell 1@110, buy 1@120 realizes 10
    # with entry 120; with the sell last it realizes 0 with entry 110.
    s0 = PositionState(SYM)
    a = s0.apply_fill(Side.BUY, D(1), D(100), D(0), 1)
    a = a.apply_fill(Side.SELL, D(1), D(110), D(0), 2).apply_fill(Side.BUY, D(1), D(120), D(0), 3)
    b = s0.apply_fill(Side.BUY, D(1), D(100), D(0), 1)
    b = b.apply_fill(Side.BUY, D(1), D(120), D(0), 3).apply_fill(Side.SELL, D(1), D(110), D(0), 2)
    assert (a.realized_pnl, a.avg_entry) == (D(10), D(120))
    assert (b.realized_pnl, b.avg_entry) == (D(0), D(110))
    assert a.mark_to_market(D(130)) == b.mark_to_market(D(130)) == 20
    # ... so the portfolio applies the venue's order (execTime here), whatever the arrival order.
    fills = [
        fill("a", Side.BUY, "1", "100", t=1),
        fill("b", Side.SELL, "1", "110", t=2),
        fill("c", Side.BUY, "1", "120", t=3),
    ]
    for arrival in ([0, 1, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0]):
        p = _book([fills[i] for i in arrival])
        assert p.position(SYM) == a
        assert p.unordered_fills == 0


def test_missed_fill_booked_after_later_live_fills_lands_in_exchange_order() -> None:
    """The reconnect scenario: A(t1) and C(t3) arrive live, B(t2) only at reconciliation."""
    a = fill("A", Side.BUY, "2", "100", fee="0.1", t=1_000, seq=10, order_id="oa")
    b = fill("B", Side.SELL, "1", "104", fee="0.05", t=2_000, seq=11, order_id="ob")
    c = fill("C", Side.BUY, "1", "108", fee="0.05", t=3_000, seq=12, order_id="oc")
    expected = _book([a, b, c]).position(SYM)
    live = Portfolio()
    live.apply_execution(a)
    live.apply_execution(c)
    live.observe_order(order("1", OrderStatus.FILLED, oid="ob"))
    assert live.missing_fills() == {"ob": D(1)}
    assert live.apply_execution(b)  # late
    got = live.position(SYM)
    assert got == expected
    # Worked through: buy 2@100; sell 1@104 realizes 4 on the 100 entry; buy 1@108 -> 2 @ 104.
    assert (got.size, got.avg_entry, got.realized_pnl) == (D(2), D(104), D(4))
    assert (got.opened_at_ms, got.last_exec_time, got.fill_count) == (1_000, 3_000, 3)
    assert got.fees == D("0.2")
    assert live.missing_fills() == {}
    assert not live.apply_execution(b)


def test_opened_at_follows_exchange_order_when_a_late_fill_flattens_in_between() -> None:
    # Venue order: buy 1 (t1), sell 1 (t2: flat), buy 1 (t3: reopens). The sell arrives last:
    # the position was opened at t3, not t1.
    execs = [
        fill("1", Side.BUY, "1", "100", t=1),
        fill("3", Side.BUY, "1", "101", t=3),
        fill("2", Side.SELL, "1", "102", t=2),
    ]
    st_ = _book(execs).position(SYM)
    assert (st_.size, st_.opened_at_ms, st_.avg_entry, st_.realized_pnl) == (D(1), 3, D(101), D(2))


def test_fills_of_one_matching_event_follow_the_aggressor_walk() -> None:
    """A taker buy lifting two ask levels in one event (same execTime and seq) closes a short at
    the first level and reopens at the second — in that order, whatever the arrival order."""
    short = fill("s", Side.SELL, "1", "100", t=1, seq=1)
    lvl1 = fill("x9", Side.BUY, "1", "101", t=2, seq=2, maker=False)
    lvl2 = fill("x1", Side.BUY, "1", "102", t=2, seq=2, maker=False)
    for arrival in ([short, lvl1, lvl2], [short, lvl2, lvl1], [lvl2, lvl1, short]):
        st_ = _book(arrival).position(SYM)
        # Closed 1 @101 against 100 (-1), then opened 1 @102 (not: closed @102, opened @101).
        assert (st_.size, st_.avg_entry, st_.realized_pnl, st_.opened_at_ms) == (
            D(1),
            D(102),
            D(-1),
            2,
        )
    # Our resting bids hit by a taker sell (maker fills): the walk goes down the bids.
    short2 = fill("s2", Side.SELL, "1", "100", t=1, seq=1)
    bid1 = fill("m1", Side.BUY, "1", "99", t=2, seq=2)
    bid2 = fill("m2", Side.BUY, "1", "98", t=2, seq=2)
    st_ = _book([bid2, short2, bid1]).position(SYM)
    assert (st_.size, st_.avg_entry, st_.realized_pnl) == (D(1), D(98), D(1))


def test_exchange_order_key_sorts_by_time_then_sequence() -> None:
    older = fill("z", Side.BUY, "1", "100", t=5, seq=9)
    newer_seq = fill("a", Side.BUY, "1", "100", t=5, seq=10)
    newer_time = fill("b", Side.BUY, "1", "100", t=6, seq=1)
    keys = [exchange_order_key(e) for e in (older, newer_seq, newer_time)]
    assert keys == sorted(keys)
    funding = fill("f", Side.SELL, "0", "0", t=5, exec_type=ExecType.FUNDING)
    assert exchange_order_key(funding) < keys[0]  # no seq: by time, then anywhere


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


def test_fill_included_in_an_adopted_position_is_only_counted() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "1", "100", fee="0.1", t=10, seq=1, order_id="o1"))
    # The exchange's snapshot includes fills through (t=30, seq=3); we missed the one at t=20.
    pos = position("3", Side.BUY, "102", updated=30, seq=3)
    adopted = p.adopt(pos, at_ms=40)
    assert adopted.adopted_through == (30, 3)
    missed = fill("2", Side.BUY, "2", "103", fee="0.2", t=20, seq=2, order_id="o2")
    assert p.apply_execution(missed)
    st_ = p.position(SYM)
    # Size and cost stay the exchange's (no double count); the fee and volume are booked.
    assert (st_.size, st_.avg_entry, st_.realized_pnl) == (D(3), D(102), D(0))
    assert (st_.fees, st_.volume, st_.fill_count) == (D("0.3"), D(3), 2)
    assert p.filled_qty("o2") == 2
    assert p.has_seen("2")
    assert p.compare(pos) is None
    assert p.unordered_fills == 0
    # A fill after the snapshot moves the position, and late ones among them are ordered.
    later = [
        fill("4", Side.SELL, "1", "110", t=50, seq=5),
        fill("3", Side.SELL, "1", "105", t=35, seq=4),
    ]
    for e in later:
        p.apply_execution(e)
    # The adopted state (its covered fill counted) is the anchor they are replayed on.
    assert p.position(SYM) == in_exchange_order(later, start=st_)
    assert p.unordered_fills == 0


def test_adopt_without_snapshot_time_covers_what_was_applied() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "1", "100", t=10, seq=4))
    assert p.adopt(position("2", Side.BUY, "101"), at_ms=99).adopted_through == (10, 4)
    p.apply_execution(fill("0", Side.BUY, "1", "99", t=9, seq=3))  # older: already in the 2
    assert p.position(SYM).size == 2
    p.apply_execution(fill("2", Side.BUY, "1", "104", t=11, seq=5))
    assert (p.position(SYM).size, p.position(SYM).avg_entry) == (D(3), D(102))


def test_state_dict_round_trip_and_copy_independence() -> None:
    p = Portfolio()
    p.apply_execution(fill("1", Side.BUY, "3", "100.1", fee="0.3", t=5))
    p.apply_execution(fill("2", Side.SELL, "1", "101.3", t=6))
    st_ = p.position(SYM)
    assert position_state_from_dict(position_state_to_dict(st_)) == st_
    c = p.copy()
    c.apply_execution(fill("3", Side.SELL, "2", "101"))
    c.apply_execution(fill("0", Side.SELL, "1", "99", t=1))  # late: a recompute in the copy
    assert p.position(SYM) == st_
    assert not p.has_seen("3")
    adopted = evolve(st_, adopted_through=(6, 42))
    assert position_state_from_dict(position_state_to_dict(adopted)) == adopted
    legacy = position_state_to_dict(st_)
    del legacy["adopted_through"]  # baselines written before the field existed
    assert position_state_from_dict(legacy) == st_


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


def test_restored_baseline_still_places_a_fill_older_than_it() -> None:
    """Restart while a missed fill is still out: the journal's baseline already includes later
    fills, yet the missed one lands at its exchange place when reconciliation brings it."""
    fills = [
        fill(str(i), Side.BUY if i % 3 else Side.SELL, "1", str(100 + 3 * i), t=i) for i in range(8)
    ]
    arrived = [e for e in fills if e.exec_id != "3"]
    live = _book(arrived)
    restored = Portfolio.restore([live.position(SYM)], arrived)
    assert restored.positions() == live.positions()
    assert restored.apply_execution(fills[3])
    assert restored.position(SYM) == in_exchange_order(fills)
    assert restored.unordered_fills == 0


def test_restored_adopted_baseline_is_an_opaque_anchor() -> None:
    live = Portfolio()
    first = fill("1", Side.BUY, "1", "100", t=10, seq=1)
    live.apply_execution(first)
    live.adopt(position("2", Side.BUY, "101", updated=30, seq=3), at_ms=31)
    after = fill("5", Side.BUY, "1", "110", t=50, seq=5)
    live.apply_execution(after)
    restored = Portfolio.restore([live.position(SYM)], [first, after])
    assert restored.positions() == live.positions()
    # Included in the adopted position: counted, not applied, by both.
    covered = fill("2", Side.BUY, "1", "103", fee="0.1", t=20, seq=2)
    for p in (live, restored):
        p.apply_execution(covered)
    assert restored.positions() == live.positions()
    assert live.position(SYM).size == 3
    # After the adoption but before the baseline's newest fill: the restored portfolio no
    # longer has the fills to replay around it, so it places it right after the baseline.
    between = fill("4", Side.SELL, "1", "106", t=40, seq=4)
    for p in (live, restored):
        p.apply_execution(between)
    a, b = live.position(SYM), restored.position(SYM)
    assert (live.unordered_fills, restored.unordered_fills) == (0, 1)
    assert (a.size, a.fees, a.volume, a.fill_count) == (b.size, b.fees, b.volume, b.fill_count)
    assert a.mark_to_market(D(120)) == b.mark_to_market(D(120))


def test_replay_window_bounds_memory_and_keeps_recent_fills_replayable() -> None:
    fills = [
        fill(str(i), Side.BUY if i % 2 else Side.SELL, "1", str(100 + i), t=10 * i)
        for i in range(1, 11)
    ]
    p = Portfolio(replay_window=4)
    for e in fills:
        p.apply_execution(e)
    late = fill("late", Side.SELL, "1", "99", t=95)  # among the replayable ones: exact
    p.apply_execution(late)
    assert p.position(SYM) == in_exchange_order([*fills, late])
    assert p.unordered_fills == 0
    ancient = fill("ancient", Side.BUY, "2", "90", t=5)  # older than the folded fills
    p.apply_execution(ancient)
    assert p.unordered_fills == 1
    exact = in_exchange_order([*fills, late, ancient])
    got = p.position(SYM)
    assert (got.size, got.fees, got.volume, got.fill_count) == (
        exact.size,
        exact.fees,
        exact.volume,
        exact.fill_count,
    )
    assert got.mark_to_market(D(105)) == exact.mark_to_market(D(105))
    assert p.copy().position(SYM) == got
    with pytest.raises(ValueError, match="replay_window"):
        Portfolio(replay_window=1)


def test_folding_fills_placed_below_the_floor_never_lowers_it() -> None:
    p = Portfolio(replay_window=2)  # keeps 1 fill after each fold
    for t in (10, 20, 30, 40):
        p.apply_execution(fill(f"n{t}", Side.BUY, "1", str(100 + t), t=t))
    for t in (1, 2, 3):  # all older than the folded fills; the last fold folds two of them
        p.apply_execution(fill(f"a{t}", Side.SELL, "1", "100", t=t))
    assert p.unordered_fills == 3
    p.apply_execution(fill("b", Side.SELL, "1", "100", t=25))  # still older than what is folded
    assert p.unordered_fills == 4
    assert p.position(SYM).size == 0


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
                # Few distinct times and sequences: ties exercise the rest of the key.
                t=draw(st.integers(0, 30)),
                seq=draw(st.integers(0, 3)),
                maker=draw(st.booleans()),
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
@given(execs=executions(), data=st.data())
def test_any_arrival_order_gives_the_state_of_exchange_order(
    execs: list[Execution], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(execs))
    a, b = _book(execs), _book(shuffled)
    # The whole state — size, cost (entry), realized PnL, fees, funding, volume, fill count,
    # opened_at, last time — not just the order-independent parts.
    assert a.positions() == b.positions()
    assert b.position(SYM) == in_exchange_order(execs)
    assert a.unordered_fills == b.unordered_fills == 0


@settings(max_examples=150)
@given(execs=executions(), data=st.data())
def test_restore_at_any_point_of_any_arrival_order_equals_live(
    execs: list[Execution], data: st.DataObject
) -> None:
    """A restart after any prefix of arrivals (the journal: a baseline plus the executions it
    covers, the rest replayed after it in any order) gives the live state, and stays exact."""
    arrival = data.draw(st.permutations(execs))
    k = data.draw(st.integers(0, len(arrival)))
    live = _book(arrival[:k])
    baselines = list(live.positions().values())
    rest = data.draw(st.permutations(arrival[k:]))
    restored = Portfolio.restore(baselines, arrival[:k], rest)
    for e in arrival[k:]:
        live.apply_execution(e)
    assert restored.positions() == live.positions()
    assert restored.position(SYM) == in_exchange_order(execs)
    assert restored.exec_count == live.exec_count
    assert restored.unordered_fills == 0


@settings(max_examples=150)
@given(execs=executions(max_size=30), data=st.data(), mark=_price)
def test_small_replay_window_keeps_size_fees_and_mark_to_market_exact(
    execs: list[Execution], data: st.DataObject, mark: Decimal
) -> None:
    window = data.draw(st.integers(2, 6))
    p = Portfolio(replay_window=window)
    for e in data.draw(st.permutations(execs)):
        p.apply_execution(e)
    got, exact = p.position(SYM), in_exchange_order(execs)
    assert (got.size, got.fees, got.funding, got.volume, got.fill_count) == (
        exact.size,
        exact.fees,
        exact.funding,
        exact.volume,
        exact.fill_count,
    )
    assert got.last_exec_time == exact.last_exec_time
    assert got.mark_to_market(mark) == exact.mark_to_market(mark)
    if p.unordered_fills == 0:  # every fill found its place: exact
        assert got == exact


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


def test_settle_closes_the_position_funding_only_charges() -> None:
    # Funding rows carry the position size in execQty but move nothing; Settle is a position
    # closed by delisting (docs v5/enum.mdx) and moves it like a fill.
    p = Portfolio()
    p.apply_execution(fill("e1", Side.BUY, "2", "100", t=1_000))
    p.apply_execution(
        fill("f1", Side.SELL, "2", "100", fee="0.3", t=2_000, exec_type=ExecType.FUNDING)
    )
    assert p.position(SYM).size == D(2)
    p.apply_execution(fill("s1", Side.SELL, "2", "90", t=3_000, exec_type=ExecType.SETTLE))
    assert p.position(SYM).size == 0
    assert p.position(SYM).realized_pnl == D(-20)
