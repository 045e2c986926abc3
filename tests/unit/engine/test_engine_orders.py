"""The order state machine and tracker (hean.engine.orders)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.types import Order, OrderStatus, OrderType, Side, TimeInForce
from hean.engine.intents import OrderIntent
from hean.engine.orders import (
    EVENT_TYPES,
    TRANSITIONS,
    Acked,
    CancelRequested,
    DuplicateOrderError,
    Event,
    ExchangeUpdate,
    IllegalTransition,
    NotFound,
    OrderState,
    OrderTracker,
    Outcome,
    OutcomeUnknown,
    Rejected,
    Sent,
    TrackedOrder,
    UnknownOrderError,
    apply_event,
)

S = OrderState
LINK = "mm-s1-open"


def make_order(**kw: object) -> Order:
    base: dict[str, object] = {
        "order_id": "oid-1",
        "order_link_id": LINK,
        "symbol": "BTCUSDT",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "price": Decimal(100),
        "qty": Decimal(1),
        "time_in_force": TimeInForce.GTC,
        "order_status": OrderStatus.NEW,
        "created_time": 1_000,
        "updated_time": 1_000,
        "leaves_qty": Decimal(1),
    }
    base.update(kw)
    order = Order(**base)  # type: ignore[arg-type]
    if "leaves_qty" not in kw:
        leaves = order.qty - order.cum_exec_qty if order.order_status.is_open else Decimal(0)
        order = evolve(order, leaves_qty=leaves)
    return order


def make_intent(link: str = LINK, symbol: str = "BTCUSDT") -> OrderIntent:
    return OrderIntent(
        strategy="mm",
        signal_id="s1",
        purpose="open",
        order_link_id=link,
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal(1),
        price=Decimal(100),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        reduce_only=False,
        created_at=0.0,
        expires_at=5.0,
    )


# Exchange-state fixtures: (status, cumExecQty) of the last snapshot the order holds.
_FIXTURE_CUM = {
    S.NEW: Decimal(0),
    S.PARTIALLY_FILLED: Decimal("0.25"),
    S.UNTRIGGERED: Decimal(0),
    S.TRIGGERED: Decimal(0),
    S.FILLED: Decimal(1),
    S.CANCELLED: Decimal(0),
    S.REJECTED: Decimal(0),
    S.DEACTIVATED: Decimal(0),
    S.PARTIALLY_FILLED_CANCELED: Decimal("0.25"),
}


def order_in(state: OrderState) -> TrackedOrder:
    """A tracked order in ``state``, sent at t=0 (so any NotFound at t=100 is past grace)."""
    base = TrackedOrder.new(make_intent(), at=0.0)
    if state is S.PENDING:
        return base
    if state is S.WITHDRAWN:
        return evolve(base, state=state, cancel_requested_at=0.0)
    if state in (S.IN_FLIGHT, S.UNKNOWN, S.LOST):
        return evolve(base, state=state, sent_at=0.0)
    status = OrderStatus(state.value)
    last = make_order(order_status=status, cum_exec_qty=_FIXTURE_CUM[state])
    return evolve(base, state=state, sent_at=0.0, order_id="oid-1", last_order=last)


UPDATE = make_order(
    order_status=OrderStatus.PARTIALLY_FILLED, updated_time=2_000, cum_exec_qty=Decimal("0.5")
)
EVENTS: dict[type[Event], Event] = {
    Sent: Sent(at=10.0),
    Acked: Acked("oid-1", at=10.0),
    Rejected: Rejected(110007, "ab not enough for new order", at=10.0),
    OutcomeUnknown: OutcomeUnknown(at=10.0),
    ExchangeUpdate: ExchangeUpdate(UPDATE, at=10.0),
    NotFound: NotFound(at=100.0, grace_s=15.0),
    CancelRequested: CancelRequested(at=10.0),
}

X = "illegal"
_EXCH_FINAL = [S.FILLED, S.CANCELLED, S.REJECTED, S.DEACTIVATED, S.PARTIALLY_FILLED_CANCELED]
_RESTING = [S.NEW, S.PARTIALLY_FILLED, S.UNTRIGGERED, S.TRIGGERED]
_PF_APPLIED = (S.PARTIALLY_FILLED, Outcome.APPLIED)


def _expected() -> dict[tuple[OrderState, type[Event]], object]:
    """The spec, written out independently of the implementation's table."""
    e: dict[tuple[OrderState, type[Event]], object] = {}
    for state in S:
        for ev in EVENT_TYPES:
            e[state, ev] = X
    e[S.PENDING, Sent] = (S.IN_FLIGHT, Outcome.APPLIED)
    e[S.PENDING, OutcomeUnknown] = (S.UNKNOWN, Outcome.APPLIED)  # restore of an unsure send
    e[S.PENDING, CancelRequested] = (S.WITHDRAWN, Outcome.APPLIED)
    for state in (S.IN_FLIGHT, S.UNKNOWN):
        e[state, Acked] = (S.NEW, Outcome.APPLIED)
        e[state, Rejected] = (S.REJECTED, Outcome.APPLIED)
        e[state, ExchangeUpdate] = _PF_APPLIED
        e[state, NotFound] = (S.LOST, Outcome.APPLIED)
        e[state, CancelRequested] = (state, Outcome.APPLIED)
    e[S.IN_FLIGHT, OutcomeUnknown] = (S.UNKNOWN, Outcome.APPLIED)
    e[S.UNKNOWN, OutcomeUnknown] = (S.UNKNOWN, Outcome.UNCHANGED)
    # LOST is a belief: the exchange can prove it wrong.
    e[S.LOST, Acked] = (S.NEW, Outcome.APPLIED)
    e[S.LOST, ExchangeUpdate] = _PF_APPLIED
    e[S.LOST, NotFound] = (S.LOST, Outcome.UNCHANGED)
    # ... and so can the create's own late answer (the request was slow, the NotFound early).
    e[S.LOST, Rejected] = (S.REJECTED, Outcome.APPLIED)
    e[S.LOST, OutcomeUnknown] = (S.UNKNOWN, Outcome.APPLIED)
    for state in _RESTING:
        e[state, Acked] = (state, Outcome.UNCHANGED)  # the stream outran the REST ack
        e[state, OutcomeUnknown] = (state, Outcome.UNCHANGED)
        e[state, ExchangeUpdate] = _PF_APPLIED
        e[state, NotFound] = (S.LOST, Outcome.APPLIED)
        e[state, CancelRequested] = (state, Outcome.APPLIED)
    for state in _EXCH_FINAL:
        e[state, Acked] = (state, Outcome.UNCHANGED)
        e[state, OutcomeUnknown] = (state, Outcome.UNCHANGED)
        e[state, NotFound] = (state, Outcome.UNCHANGED)
        e[state, ExchangeUpdate] = (state, Outcome.CONFLICT)
    # cumExecQty 1 (Filled) / 0.25... vs the update's 0.5: a lower cumExecQty is stale.
    e[S.FILLED, ExchangeUpdate] = (S.FILLED, Outcome.STALE)
    # WITHDRAWN: nothing can happen to an order that never left.
    return e


EXPECTED = _expected()


@pytest.mark.parametrize(
    ("state", "event_type"),
    list(itertools.product(list(OrderState), EVENT_TYPES)),
    ids=lambda x: x.value if isinstance(x, OrderState) else x.__name__,
)
def test_every_state_and_event(state: OrderState, event_type: type[Event]) -> None:
    order = order_in(state)
    event = EVENTS[event_type]
    expected = EXPECTED[state, event_type]
    if expected == X:
        assert (state, event_type) not in TRANSITIONS
        with pytest.raises(IllegalTransition) as info:
            apply_event(order, event)
        assert LINK in str(info.value)
        assert state.value in str(info.value)
        assert event_type.__name__ in str(info.value)
        return
    assert (state, event_type) in TRANSITIONS
    transition = apply_event(order, event)
    assert (transition.after.state, transition.outcome) == expected
    assert transition.before is order
    if transition.outcome is Outcome.APPLIED:
        assert transition.changed
        assert transition.after.updated_at == event.at
    else:
        assert transition.after is order


def test_table_covers_exactly_the_expected_pairs() -> None:
    legal = {k for k, v in EXPECTED.items() if v != X}
    assert set(TRANSITIONS) == legal


def test_state_classification() -> None:
    assert {s for s in S if s.is_final} == {*_EXCH_FINAL, S.LOST, S.WITHDRAWN}
    assert {s for s in S if s.is_resting} == set(_RESTING)
    assert {s for s in S if s.is_unresolved} == {S.IN_FLIGHT, S.UNKNOWN}
    for status in OrderStatus:
        assert S.from_status(status).value == status.value
        assert not S.from_status(status).is_local


# --------------------------------------------------------------------------- specific rules


def test_happy_path_records_ids_and_times() -> None:
    o = TrackedOrder.new(make_intent(), at=1.0)
    o = apply_event(o, Sent(at=2.0)).after
    assert o.sent_at == 2.0
    o = apply_event(o, Acked("oid-1", at=3.0)).after
    assert (o.state, o.order_id, o.last_order) == (S.NEW, "oid-1", None)
    filled = make_order(order_status=OrderStatus.FILLED, cum_exec_qty=Decimal(1), updated_time=5)
    o = apply_event(o, ExchangeUpdate(filled, at=4.0)).after
    assert o.state is S.FILLED
    assert o.leaves_qty == 0
    assert o.cum_exec_qty == 1


def test_rejection_is_recorded() -> None:
    o = apply_event(order_in(S.IN_FLIGHT), Rejected(110007, "ab not enough", at=1.0)).after
    assert (o.state, o.reject_code, o.reject_msg) == (S.REJECTED, 110007, "ab not enough")


def test_stream_update_before_ack_then_late_ack_learns_nothing_new() -> None:
    o = order_in(S.IN_FLIGHT)
    o = apply_event(
        o,
        ExchangeUpdate(
            make_order(order_status=OrderStatus.FILLED, cum_exec_qty=Decimal(1)), at=1.0
        ),
    ).after
    assert o.state is S.FILLED
    assert o.order_id == "oid-1"
    t = apply_event(o, Acked("oid-1", at=2.0))
    assert t.outcome is Outcome.UNCHANGED
    assert t.after.state is S.FILLED


def test_ack_with_a_different_order_id_is_illegal() -> None:
    with pytest.raises(IllegalTransition, match="does not match"):
        apply_event(order_in(S.NEW), Acked("other", at=1.0))
    with pytest.raises(IllegalTransition, match="does not match"):
        apply_event(order_in(S.NEW), ExchangeUpdate(make_order(order_id="other"), at=1.0))


def test_update_for_another_link_id_is_illegal() -> None:
    with pytest.raises(IllegalTransition, match="orderLinkId"):
        apply_event(order_in(S.UNKNOWN), ExchangeUpdate(make_order(order_link_id="x"), at=1.0))


def test_not_found_is_only_final_after_grace() -> None:
    o = evolve(order_in(S.UNKNOWN), sent_at=50.0)
    t = apply_event(o, NotFound(at=60.0, grace_s=15.0))
    assert t.outcome is Outcome.TOO_EARLY
    assert t.after is o
    t = apply_event(o, NotFound(at=65.0, grace_s=15.0))
    assert t.after.state is S.LOST
    # The exchange proves us wrong later: the exchange wins.
    t2 = apply_event(t.after, ExchangeUpdate(make_order(), at=70.0))
    assert t2.after.state is S.NEW


def test_stale_updates_are_ignored() -> None:
    o = order_in(S.PARTIALLY_FILLED)  # updated 1000, cum 0.25
    older = make_order(order_status=OrderStatus.NEW, updated_time=999)
    assert apply_event(o, ExchangeUpdate(older, at=1.0)).outcome is Outcome.STALE
    less_filled = make_order(
        order_status=OrderStatus.PARTIALLY_FILLED, updated_time=2_000, cum_exec_qty=Decimal("0.1")
    )
    assert apply_event(o, ExchangeUpdate(less_filled, at=1.0)).outcome is Outcome.STALE
    assert o.last_order is not None
    assert apply_event(o, ExchangeUpdate(o.last_order, at=1.0)).outcome is Outcome.DUPLICATE


def test_same_millisecond_updates_are_ordered_by_status() -> None:
    o = order_in(S.NEW)  # updated 1000
    cancelled = make_order(order_status=OrderStatus.CANCELLED, updated_time=1_000)
    t = apply_event(o, ExchangeUpdate(cancelled, at=1.0))
    assert t.after.state is S.CANCELLED
    new_again = make_order(order_status=OrderStatus.NEW, updated_time=1_000, price=Decimal(99))
    assert apply_event(t.after, ExchangeUpdate(new_again, at=2.0)).outcome is Outcome.STALE


def test_final_orders_absorb_a_refresh_but_not_a_contradiction() -> None:
    o = order_in(S.FILLED)
    second_filled = make_order(
        order_status=OrderStatus.FILLED,
        cum_exec_qty=Decimal(1),
        updated_time=1_001,
        cancel_type="CancelByUser",
        reject_reason="EC_OrigClOrdIDDoesNotExist",
    )
    t = apply_event(o, ExchangeUpdate(second_filled, at=1.0))
    assert t.outcome is Outcome.APPLIED
    assert t.after.state is S.FILLED
    assert t.after.last_order == second_filled
    cancelled = make_order(
        order_status=OrderStatus.CANCELLED, cum_exec_qty=Decimal(1), updated_time=1_002
    )
    t = apply_event(t.after, ExchangeUpdate(cancelled, at=2.0))
    assert t.outcome is Outcome.CONFLICT
    assert t.after.state is S.FILLED


def test_cancel_request_is_stamped_once() -> None:
    o = apply_event(order_in(S.NEW), CancelRequested(at=3.0)).after
    assert o.cancel_requested_at == 3.0
    assert o.state is S.NEW
    t = apply_event(o, CancelRequested(at=4.0))
    assert t.outcome is Outcome.UNCHANGED
    assert t.after.cancel_requested_at == 3.0


# Monotone update histories: statuses only advance, times and fills never go back.
_PROGRESS = [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED]
_ENDINGS = [OrderStatus.FILLED, OrderStatus.CANCELLED, None]


@st.composite
def _history(draw: st.DrawFn) -> list[Order]:
    n = draw(st.integers(1, 6))
    fills = sorted(draw(st.lists(st.integers(0, 99), min_size=n, max_size=n)))
    ending = draw(st.sampled_from(_ENDINGS))
    out = []
    for i, cum in enumerate(fills):
        status = OrderStatus.NEW if cum == 0 else OrderStatus.PARTIALLY_FILLED
        out.append(
            make_order(
                order_status=status, cum_exec_qty=Decimal(cum) / 100, updated_time=1_000 + 10 * i
            )
        )
    if ending is OrderStatus.FILLED:
        out.append(make_order(order_status=ending, cum_exec_qty=Decimal(1), updated_time=9_000))
    elif ending is OrderStatus.CANCELLED:
        out.append(
            make_order(
                order_status=ending, cum_exec_qty=Decimal(fills[-1]) / 100, updated_time=9_000
            )
        )
    return out


@settings(max_examples=200)
@given(history=_history(), data=st.data())
def test_any_arrival_order_ends_at_the_newest_snapshot(
    history: list[Order], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(history))
    o = order_in(S.IN_FLIGHT)
    for i, snapshot in enumerate(shuffled):
        t = apply_event(o, ExchangeUpdate(snapshot, at=float(i)))
        assert t.outcome in (Outcome.APPLIED, Outcome.STALE, Outcome.DUPLICATE)
        o = t.after
    assert o.last_order == history[-1]
    assert o.state is S.from_status(history[-1].order_status)


# --------------------------------------------------------------------------- tracker


def test_tracker_indexes_by_link_id_and_order_id() -> None:
    tr = OrderTracker()
    tr.track_intent(make_intent(), at=0.0)
    with pytest.raises(DuplicateOrderError):
        tr.track_intent(make_intent(), at=0.0)
    tr.apply(LINK, Sent(at=1.0))
    tr.apply(LINK, Acked("oid-1", at=2.0))
    assert tr.by_order_id("oid-1") is tr[LINK]
    assert tr.lookup(make_order(order_link_id="")) is tr[LINK]  # maker fills may lack link ids
    t = tr.on_exchange_update(
        make_order(
            order_status=OrderStatus.PARTIALLY_FILLED,
            cum_exec_qty=Decimal("0.5"),
            updated_time=2_000,
        ),
        3.0,
    )
    assert t is not None
    assert tr[LINK].state is S.PARTIALLY_FILLED
    assert tr.on_exchange_update(make_order(order_link_id="zz", order_id="oid-9"), 3.0) is None
    with pytest.raises(UnknownOrderError):
        tr.apply("nope", Sent(at=1.0))
    with pytest.raises(UnknownOrderError):
        tr["nope"]


def test_tracker_views() -> None:
    tr = OrderTracker()
    for i, (symbol, state) in enumerate(
        [
            ("BTCUSDT", S.NEW),
            ("BTCUSDT", S.FILLED),
            ("ETHUSDT", S.PARTIALLY_FILLED),
            ("ETHUSDT", S.UNKNOWN),
            ("BTCUSDT", S.PENDING),
            ("BTCUSDT", S.LOST),
        ]
    ):
        o = order_in(state)
        link = f"o{i}"
        o = evolve(
            o,
            order_link_id=link,
            symbol=symbol,
            order_id=None if o.order_id is None else f"id{i}",
            last_order=None
            if o.last_order is None
            else evolve(o.last_order, order_link_id=link, order_id=f"id{i}", symbol=symbol),
        )
        tr.add(o)
    assert [o.order_link_id for o in tr.open_orders("BTCUSDT")] == ["o0"]
    assert [o.order_link_id for o in tr.open_orders()] == ["o0", "o2"]
    assert [o.order_link_id for o in tr.non_final("BTCUSDT")] == ["o0", "o4"]
    assert [o.order_link_id for o in tr.unresolved()] == ["o3"]
    assert tr.symbols() == {"BTCUSDT", "ETHUSDT"}
    assert len(tr) == 6
    assert "o1" in tr
    copy = tr.copy()
    copy.apply("o0", CancelRequested(at=1.0))
    assert tr["o0"].cancel_requested_at is None
    with pytest.raises(ValueError, match="not final"):
        tr.discard("o0")
    assert tr.discard("o1").state is S.FILLED
    assert "o1" not in tr
    assert tr.by_order_id("id1") is None


def test_adopted_external_order_without_link_id_is_keyed_by_order_id() -> None:
    tr = OrderTracker()
    ext = tr.adopt(make_order(order_link_id="", order_id="x1"), at=0.0, reason="manual")
    assert ext.key == "#x1"
    assert ext.is_external
    assert ext.intent is None
    assert tr.lookup(make_order(order_link_id="", order_id="x1")) is ext
    assert ext.price == Decimal(100)


def test_restore_shifts_times_and_unsettles_pending_and_in_flight() -> None:
    pending = TrackedOrder.new(make_intent("a"), at=1000.0)
    in_flight = evolve(
        TrackedOrder.new(make_intent("b"), at=1000.0),
        state=S.IN_FLIGHT,
        sent_at=1005.0,
        updated_at=1005.0,
    )
    resting = evolve(
        order_in(S.NEW),
        order_link_id="c",
        order_id="oc",
        created_at=1000.0,
        updated_at=1010.0,
        sent_at=1001.0,
        last_order=make_order(order_link_id="c", order_id="oc"),
    )
    tr = OrderTracker.restore([pending, in_flight, resting], now=5.0)
    assert tr["a"].state is S.UNKNOWN
    assert tr["b"].state is S.UNKNOWN
    assert tr["c"].state is S.NEW
    assert tr["c"].updated_at == 5.0  # the newest stamp becomes "now"
    assert tr["b"].sent_at == 0.0  # 5 s older than the newest, as before the restart
    assert tr["a"].sent_at is not None  # the grace period runs from the restore
    # A NotFound right after the restart is still inside the grace period for b.
    assert tr.apply("b", NotFound(at=5.0, grace_s=15.0)).outcome is Outcome.TOO_EARLY
    assert tr.apply("b", NotFound(at=15.0, grace_s=15.0)).after.state is S.LOST


def test_late_create_answers_settle_a_lost_order() -> None:
    """NotFound after the grace (LOST), then the create's own answer arrives: the answer wins."""
    lost = order_in(S.LOST)
    rejected = apply_event(lost, Rejected(110007, "ab not enough", at=50.0)).after
    assert (rejected.state, rejected.reject_code) == (S.REJECTED, 110007)
    unknown = apply_event(lost, OutcomeUnknown(at=50.0, reason="timeout")).after
    assert unknown.state is S.UNKNOWN
    # The create was on its way until now: the NotFound grace starts again from its answer.
    assert unknown.sent_at == 50.0
    again = apply_event(unknown, NotFound(at=60.0, grace_s=15.0))
    assert again.outcome is Outcome.TOO_EARLY
    assert apply_event(unknown, NotFound(at=65.0, grace_s=15.0)).after.state is S.LOST
