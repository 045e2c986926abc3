"""Reconciliation planning (hean.engine.reconcile_plan)."""

from __future__ import annotations

from decimal import Decimal

from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.types import (
    CoinBalance,
    ExecType,
    Execution,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    Wallet,
)
from hean.engine.intents import OrderIntent
from hean.engine.orders import (
    Acked,
    OrderState,
    OrderTracker,
    OutcomeUnknown,
    Sent,
)
from hean.engine.portfolio import MismatchKind, Portfolio
from hean.engine.reconcile_plan import (
    DEFAULT_CURSOR_OVERLAP_MS,
    ExchangeTruth,
    apply_plan,
    execution_fetch_start,
    orders_missing_fills,
    plan_reconcile,
)

SYM = "BTCUSDT"
D = Decimal
T0 = 1_700_000_000_000  # exchange ms
WALLET = Wallet(
    "UNIFIED",
    D(10_000),
    D(10_000),
    D(10_000),
    D(9_000),
    coins=(CoinBalance("USDT", D(10_000), D(10_000)),),
)


def intent(link: str, side: Side = Side.BUY, qty: str = "1") -> OrderIntent:
    return OrderIntent(
        strategy="mm",
        signal_id=link,
        purpose="open",
        order_link_id=link,
        symbol=SYM,
        side=side,
        qty=D(qty),
        price=D(100),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        reduce_only=False,
        created_at=0.0,
        expires_at=5.0,
    )


def exch_order(
    link: str,
    oid: str,
    status: OrderStatus,
    cum: str = "0",
    *,
    t: int = T0,
    side: Side = Side.BUY,
    qty: str = "1",
) -> Order:
    return Order(
        order_id=oid,
        order_link_id=link,
        symbol=SYM,
        side=side,
        order_type=OrderType.LIMIT,
        price=D(100),
        qty=D(qty),
        time_in_force=TimeInForce.GTC,
        order_status=status,
        created_time=T0,
        updated_time=t,
        cum_exec_qty=D(cum),
        leaves_qty=D(qty) - D(cum) if status.is_open else D(0),
    )


def execution(
    exec_id: str,
    oid: str,
    link: str,
    qty: str,
    *,
    t: int,
    side: Side = Side.BUY,
    price: str = "100",
) -> Execution:
    return Execution(
        exec_id=exec_id,
        symbol=SYM,
        order_id=oid,
        order_link_id=link,
        side=side,
        exec_price=D(price),
        exec_qty=D(qty),
        exec_value=D(qty) * D(price),
        exec_fee=D("0.02"),
        exec_time=t,
        is_maker=True,
    )


def long(size: str, entry: str = "100") -> Position:
    return Position(symbol=SYM, side=Side.BUY, size=D(size), entry_price=D(entry))


def resting(tracker: OrderTracker, link: str, oid: str, *, at: float = 0.0) -> None:
    tracker.track_intent(intent(link), at)
    tracker.apply(link, Sent(at))
    tracker.apply(link, Acked(oid, at))


def test_fetch_start_overlaps_the_cursor() -> None:
    assert execution_fetch_start(None) is None
    assert execution_fetch_start(T0) == T0 - DEFAULT_CURSOR_OVERLAP_MS
    assert execution_fetch_start(T0, overlap_ms=0) == T0  # inclusive: the boundary ms again
    assert execution_fetch_start(10, overlap_ms=100) == 0


def test_nothing_to_do_when_in_sync() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    plan = plan_reconcile(tracker, portfolio, T0, ExchangeTruth(wallet=WALLET), now=1.0)
    assert plan.is_noop
    assert plan.ready
    assert plan.missed_events == 0
    assert plan.new_cursor == T0
    assert plan.wallet == WALLET


def test_missed_fill_while_disconnected() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    resting(tracker, "a", "oa")
    filled = exch_order("a", "oa", OrderStatus.FILLED, "1", t=T0 + 900)
    fills = (
        execution("x1", "oa", "a", "0.4", t=T0 + 500),
        execution("x2", "oa", "a", "0.6", t=T0 + 900),
    )
    truth = ExchangeTruth(
        open_orders=(),
        queried={"a": filled},
        executions=fills,
        positions=(long("1"),),
        wallet=WALLET,
    )
    plan = plan_reconcile(tracker, portfolio, T0, truth, now=100.0)
    assert [u.key for u in plan.order_updates] == ["a"]
    assert plan.missed_executions == fills
    assert (plan.missed_fills, plan.missed_events, plan.gap_ms) == (2, 3, 900)
    assert plan.new_cursor == T0 + 900
    assert plan.ready
    assert not plan.position_mismatches
    # Planning changed nothing ...
    assert tracker["a"].state is OrderState.NEW
    assert portfolio.position(SYM).size == 0
    # ... applying does, and reports what to journal.
    applied = apply_plan(plan, tracker, portfolio, now=100.0)
    after = tracker["a"]
    assert after.state is OrderState.FILLED
    assert portfolio.position(SYM).size == 1
    assert applied.applied_executions == fills
    assert [o.key for o in applied.changed_orders] == ["a"]
    assert applied.new_cursor == T0 + 900
    assert applied.positions == (portfolio.position(SYM),)
    # The same truth again is a no-op: every fill is applied exactly once.
    again = plan_reconcile(tracker, portfolio, T0 + 900, truth, now=101.0)
    assert again.is_noop
    assert again.ready
    assert again.missed_fills == 0
    assert again.gap_ms == 0


def test_order_filled_while_the_create_response_was_lost() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    tracker.track_intent(intent("b"), 0.0)
    tracker.apply("b", Sent(1.0))
    tracker.apply("b", OutcomeUnknown(6.0, reason="timeout"))
    filled = exch_order("b", "ob", OrderStatus.FILLED, "1", t=T0 + 10)
    fill = execution("y1", "ob", "b", "1", t=T0 + 10)
    truth = ExchangeTruth(queried={"b": filled}, executions=(fill,), positions=(long("1"),))
    plan = plan_reconcile(tracker, portfolio, None, truth, now=7.0)  # well inside the grace
    assert plan.ready
    assert plan.gap_ms == 0
    assert plan.new_cursor == T0 + 10
    apply_plan(plan, tracker, portfolio, now=7.0)
    assert tracker["b"].state is OrderState.FILLED
    assert tracker["b"].order_id == "ob"
    assert tracker.by_order_id("ob") is tracker["b"]
    assert portfolio.position(SYM).size == 1


def test_unknown_order_not_found_waits_for_grace_then_is_lost() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    tracker.track_intent(intent("c"), 0.0)
    tracker.apply("c", Sent(10.0))
    tracker.apply("c", OutcomeUnknown(20.0))
    truth = ExchangeTruth(queried={"c": None})
    early = plan_reconcile(tracker, portfolio, None, truth, now=20.0, not_found_grace_s=15.0)
    assert early.unresolved == ("c",)
    assert not early.complete
    assert not early.ready
    assert not early.lost
    assert not early.fail_closed
    late = plan_reconcile(tracker, portfolio, None, truth, now=25.0, not_found_grace_s=15.0)
    assert late.unresolved == ()
    assert [x.key for x in late.lost] == ["c"]
    assert "never landed" in late.lost[0].reason
    assert late.ready
    applied = apply_plan(late, tracker, portfolio, now=25.0)
    assert tracker["c"].state is OrderState.LOST
    assert [o.state for o in applied.changed_orders] == [OrderState.LOST]


def test_resting_order_the_exchange_forgot_is_lost() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    resting(tracker, "d", "od")
    plan = plan_reconcile(tracker, portfolio, None, ExchangeTruth(queried={"d": None}), now=60.0)
    assert [x.key for x in plan.lost] == ["d"]
    assert "no longer knows" in plan.lost[0].reason


def test_unqueried_local_order_keeps_the_plan_incomplete() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    resting(tracker, "e", "oe")
    plan = plan_reconcile(tracker, portfolio, None, ExchangeTruth(), now=60.0)
    assert plan.unresolved == ("e",)
    assert not plan.ready
    # Seen in the open-orders list is as good as queried.
    open_ = exch_order("e", "oe", OrderStatus.NEW)
    plan = plan_reconcile(tracker, portfolio, None, ExchangeTruth(open_orders=(open_,)), now=60.0)
    assert plan.unresolved == ()
    assert plan.ready
    assert [u.key for u in plan.order_updates] == ["e"]  # first snapshot of the order


def test_external_orders_are_adopted_with_a_reason() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    manual = exch_order("", "m1", OrderStatus.NEW)
    orphan = exch_order("zz-9", "m2", OrderStatus.PARTIALLY_FILLED, "0.5")
    plan = plan_reconcile(
        tracker, portfolio, None, ExchangeTruth(open_orders=(manual, orphan)), now=1.0
    )
    assert [(x.order.order_id, x.reason) for x in plan.adopt] == [
        ("m1", "open order without orderLinkId: placed outside the engine"),
        ("m2", "orderLinkId 'zz-9' is not in the journal"),
    ]
    # The orphan's reported fill has no execution yet: more fetching is needed.
    assert plan.missing_fills == {"m2": D("0.5")}
    assert not plan.complete
    applied = apply_plan(plan, tracker, portfolio, now=1.0)
    assert {o.key for o in applied.changed_orders} == {"#m1", "zz-9"}
    assert tracker["#m1"].is_external
    assert tracker["zz-9"].state is OrderState.PARTIALLY_FILLED
    # Next round: both known, the orphan's fill arrives; nothing adopted twice.
    fill = execution("z1", "m2", "zz-9", "0.5", t=T0)
    truth = ExchangeTruth(
        open_orders=(manual, orphan),
        queried={"#m1": manual, "zz-9": orphan},
        executions=(fill,),
        positions=(long("0.5"),),
    )
    plan = plan_reconcile(tracker, portfolio, None, truth, now=2.0)
    assert not plan.adopt
    assert plan.ready
    assert plan.missed_fills == 1


def test_position_mismatch_after_all_fills_fails_closed() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    resting(tracker, "f", "of")
    filled = exch_order("f", "of", OrderStatus.FILLED, "1", t=T0 + 1)
    fill = execution("w1", "of", "f", "1", t=T0 + 1)
    truth = ExchangeTruth(queried={"f": filled}, executions=(fill,), positions=(long("3"),))
    plan = plan_reconcile(tracker, portfolio, T0, truth, now=5.0)
    assert plan.fail_closed
    assert not plan.ready
    assert plan.complete
    (m,) = plan.position_mismatches
    assert (m.kind, m.local_size, m.exchange_size, m.size_diff) == (
        MismatchKind.SIZE,
        D(1),
        D(3),
        D(2),
    )
    # A position the exchange does not list is flat there: a local position is then a mismatch.
    plan = plan_reconcile(tracker, portfolio, T0, evolve(truth, positions=()), now=5.0)
    assert plan.fail_closed
    assert plan.position_mismatches[0].exchange_size == 0


def test_entry_drift_is_reported_but_not_fail_closed() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    portfolio.apply_execution(execution("v1", "o", "", "1", t=T0))
    plan = plan_reconcile(
        tracker, portfolio, T0, ExchangeTruth(positions=(long("1", "105"),)), now=1.0
    )
    assert [m.kind for m in plan.position_mismatches] == [MismatchKind.ENTRY]
    assert not plan.fail_closed


def test_boundary_millisecond_is_refetched_and_deduplicated() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    seen = execution("b1", "ob", "", "1", t=T0)
    portfolio.apply_execution(seen)
    same_ms = execution("b2", "ob", "", "1", t=T0)  # shares the cursor's ms, was on the next page
    later = execution("b3", "ob", "", "1", t=T0 + 5)
    older = execution("b0", "ob", "", "1", t=T0 - 3_000)  # in the overlap window, already seen
    portfolio.apply_execution(older)
    # Pages overlap too: b2 appears twice.
    truth = ExchangeTruth(executions=(later, same_ms, seen, same_ms, older), positions=(long("4"),))
    plan = plan_reconcile(tracker, portfolio, T0, truth, now=1.0)
    assert [e.exec_id for e in plan.missed_executions] == ["b2", "b3"]
    assert (plan.missed_fills, plan.gap_ms, plan.new_cursor) == (2, 5, T0 + 5)
    assert plan.ready
    apply_plan(plan, tracker, portfolio, now=1.0)
    assert portfolio.position(SYM).size == 4


def test_cursor_never_moves_backwards() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    old = execution("o1", "x", "", "1", t=T0 - 10)
    portfolio.apply_execution(old)
    plan = plan_reconcile(
        tracker, portfolio, T0, ExchangeTruth(executions=(old,), positions=(long("1"),)), now=1.0
    )
    assert plan.new_cursor == T0


def test_stale_snapshot_is_not_an_update_and_live_conflict_fails_closed() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    resting(tracker, "g", "og")
    tracker.on_exchange_update(exch_order("g", "og", OrderStatus.CANCELLED, t=T0 + 50), 1.0)
    stale = exch_order("g", "og", OrderStatus.NEW, t=T0)
    plan = plan_reconcile(tracker, portfolio, None, ExchangeTruth(open_orders=(stale,)), now=2.0)
    assert plan.is_noop
    assert plan.ready
    assert not plan.conflicts
    # A *newer* snapshot saying the cancelled order is live: we cannot see our risk.
    live = exch_order("g", "og", OrderStatus.NEW, t=T0 + 99)
    plan = plan_reconcile(tracker, portfolio, None, ExchangeTruth(open_orders=(live,)), now=2.0)
    assert [c.key for c in plan.conflicts] == ["g"]
    assert plan.fail_closed


def test_funding_is_a_missed_event_but_not_a_fill() -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    funding = evolve(execution("fu", "", "", "1", t=T0 + 1), exec_type=ExecType.FUNDING)
    plan = plan_reconcile(tracker, portfolio, T0, ExchangeTruth(executions=(funding,)), now=1.0)
    assert (plan.missed_fills, plan.missed_events) == (0, 1)
    assert plan.ready


@settings(max_examples=100)
@given(
    n_seen=st.integers(0, 6),
    n_new=st.integers(0, 6),
    data=st.data(),
)
def test_each_execution_is_applied_exactly_once_across_rounds(
    n_seen: int, n_new: int, data: st.DataObject
) -> None:
    """However fetches overlap and repeat, the position equals the sum of distinct fills."""
    execs = [
        execution(f"e{i}", "o", "", "1", t=T0 + data.draw(st.integers(0, 3)))
        for i in range(n_seen + n_new)
    ]
    tracker, portfolio = OrderTracker(), Portfolio()
    for e in execs[:n_seen]:
        portfolio.apply_execution(e)
    cursor: int | None = None
    for _ in range(3):
        batch = data.draw(st.lists(st.sampled_from(execs), max_size=12)) if execs else []
        truth = ExchangeTruth(executions=tuple(batch), positions=())
        plan = plan_reconcile(tracker, portfolio, cursor, truth, now=1.0)
        assert len({e.exec_id for e in plan.missed_executions}) == len(plan.missed_executions)
        assert not any(portfolio.has_seen(e.exec_id) for e in plan.missed_executions)
        cursor = apply_plan(plan, tracker, portfolio, now=1.0).new_cursor
    final = plan_reconcile(
        tracker, portfolio, cursor, ExchangeTruth(executions=tuple(execs)), now=1.0
    )
    apply_plan(final, tracker, portfolio, now=1.0)
    assert portfolio.position(SYM).size == len(execs)


def test_cursor_is_held_while_an_order_is_missing_fills() -> None:
    """The listing shows a later fill but not ours yet: the cursor must not pass ours."""
    tracker, portfolio = OrderTracker(), Portfolio()
    resting(tracker, "a", "oa")
    filled = evolve(exch_order("a", "oa", OrderStatus.FILLED, "1", t=T0 + 900), created_time=T0)
    later = execution("z1", "oz", "", "1", t=T0 + 20_000)  # another order's, listed
    ours = execution("a1", "oa", "a", "1", t=T0 + 900)  # not listed yet
    truth = ExchangeTruth(queried={"a": filled}, executions=(later,), positions=(long("2"),))
    for cursor in (None, T0 - 60_000):
        plan = plan_reconcile(tracker, portfolio, cursor, truth, now=1.0)
        assert dict(plan.missing_fills) == {"oa": D(1)}
        assert not plan.complete
        assert plan.new_cursor == T0  # our order's creation: no fill of it can be older
        # The size difference is explained by that missing fill: not yet a reason to fail closed.
        assert plan.position_mismatches
        assert not plan.fail_closed
    # Never backwards, though: a cursor already past the creation stays where it was.
    assert plan_reconcile(tracker, portfolio, T0 + 100, truth, now=1.0).new_cursor == T0 + 100
    # Creation time unknown: the cursor does not move at all.
    blind = ExchangeTruth(
        queried={"a": evolve(filled, created_time=0)}, executions=(later,), positions=(long("2"),)
    )
    assert plan_reconcile(tracker, portfolio, T0 - 1, blind, now=1.0).new_cursor == T0 - 1
    # The listing catches up (from the held cursor): complete, and the cursor moves on.
    plan = plan_reconcile(tracker, portfolio, T0 - 60_000, truth, now=1.0)
    apply_plan(plan, tracker, portfolio, now=1.0)
    caught_up = ExchangeTruth(
        queried={"a": filled}, executions=(ours, later), positions=(long("2"),)
    )
    final = plan_reconcile(tracker, portfolio, plan.new_cursor, caught_up, now=2.0)
    assert final.ready
    assert final.missed_executions == (ours,)
    assert final.new_cursor == T0 + 20_000


def test_orders_missing_fills_counts_applied_and_fetched_executions() -> None:
    portfolio = Portfolio()
    portfolio.apply_execution(execution("b1", "ob", "b", "0.4", t=T0))
    portfolio.observe_order(exch_order("c", "oc", OrderStatus.FILLED, "1"))  # told before
    orders = [
        exch_order("a", "oa", OrderStatus.FILLED, "1"),  # its fill fetched just now
        exch_order("b", "ob", OrderStatus.PARTIALLY_FILLED, "0.4"),  # all booked
        exch_order("d", "od", OrderStatus.PARTIALLY_FILLED, "0.5"),  # nothing known
        exch_order("e", "oe", OrderStatus.NEW),
    ]
    fetched = [
        execution("a1", "oa", "a", "1", t=T0),
        execution("a1", "oa", "a", "1", t=T0),  # a page overlap: counted once
        execution("b1", "ob", "b", "0.4", t=T0),  # already applied: not counted again
        execution("d1", "od", "d", "0.2", t=T0),
    ]
    assert orders_missing_fills(portfolio, orders, fetched) == ("oc", "od")
    assert orders_missing_fills(portfolio, orders[:2], fetched[:1]) == ("oc",)
