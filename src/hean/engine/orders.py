"""The order state machine and the order registry. Pure: no trio, no I/O, time is passed in.

Modelled on h11's ``_state.py``: every (state, event) pair the engine can meet is listed in one
table (:data:`TRANSITIONS`); anything not in the table is a programming or protocol error and
raises :class:`IllegalTransition` with the state, the event and the order's link id.

States
======
Local states, before (or instead of) the exchange telling us anything:

``PENDING``     journaled, request not sent yet.
``IN_FLIGHT``   request sent, no answer yet.
``UNKNOWN``     the answer was lost (timeout, 10000/10016, 5xx, transport error): the order may or
                may not exist. Only a query by ``orderLinkId`` (or the private stream) settles it;
                the router never blindly re-sends.
``LOST``        (final) a query after the grace period found no such order: it never landed (or,
                for an order we had seen resting, it left the exchange's query window — its fills,
                if any, still arrive as executions). ``LOST`` is our belief, not the exchange's
                word: a later exchange update or ack resurrects the order (the exchange wins),
                and a late answer to the create itself settles it too (rejected -> REJECTED,
                outcome unknown -> UNKNOWN, to be queried again).
``WITHDRAWN``   (final) cancelled locally while PENDING: the request never left.

Exchange states mirror :class:`hean.bybit.types.OrderStatus` one to one (``NEW``,
``PARTIALLY_FILLED``, ``UNTRIGGERED``, ``TRIGGERED``, ``FILLED``, ``CANCELLED``, ``REJECTED``,
``DEACTIVATED``, ``PARTIALLY_FILLED_CANCELED``). An ack (``Acked``) moves an order to ``NEW``: Bybit
acks only orders it created, and a created order starts as New; later updates move it on.

NotFound and the grace period
=============================
Right after a create, ``/v5/order/realtime`` may not know the order yet, so a NotFound is final
only once ``grace_s`` (default :data:`DEFAULT_NOT_FOUND_GRACE_S`) has passed since the request was
sent. Before that the order stays where it was and the transition reports ``TOO_EARLY``: the caller
queries again (with backoff) until the grace has passed, and only then does NotFound mean LOST.
The orderLinkId of a LOST order is burnt (Bybit treats link ids as never reusable); a retry needs a
new purpose.

Exchange updates
================
``ExchangeUpdate(order)`` comes from the private stream or a REST query. An update older than the
last one we applied (smaller ``updatedTime`` or smaller ``cumExecQty``; or equal both and a less
advanced status) is ``STALE`` and ignored — streams and queries race, and an old snapshot must
never roll an order back. Filled/Cancelled/Rejected (and the other exchange-final statuses) are
final: a newer update with the same status refreshes the data (Bybit can send two ``Filled``
messages when a cancel races a fill), one with a different status is reported as ``CONFLICT`` and
ignored. Fills are never lost by ignoring an order update: the portfolio books executions, and it
flags an order whose ``cumExecQty`` runs ahead of the executions seen.

Cancel requests
===============
``CancelRequested`` does not change an exchange state (Bybit has no "pending cancel" and the order
can still fill); it stamps ``cancel_requested_at``. On a PENDING order it withdraws it unsent.

Monotonic times (``at``) are seconds of the current process; :meth:`OrderTracker.restore` shifts
the times of journaled orders into the new process's clock.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import ClassVar

from attrs import evolve, frozen

from hean.bybit.types import ZERO, Order, OrderStatus, Side
from hean.engine.intents import OrderIntent

__all__ = [
    "DEFAULT_NOT_FOUND_GRACE_S",
    "EVENT_TYPES",
    "TRANSITIONS",
    "Acked",
    "CancelRequested",
    "DuplicateOrderError",
    "Event",
    "ExchangeUpdate",
    "IllegalTransition",
    "NotFound",
    "OrderState",
    "OrderTracker",
    "Outcome",
    "OutcomeUnknown",
    "Rejected",
    "Sent",
    "TrackedOrder",
    "Transition",
    "UnknownOrderError",
    "apply_event",
]

DEFAULT_NOT_FOUND_GRACE_S = 15.0
"""How long after sending a NotFound is not yet believed. Bybit's realtime order query is normally
consistent within a second; 15 s covers a loaded matching engine without leaving a truly lost
order unresolved for long (new orders for the symbol are not blocked by it, only the risk
governor's view of open exposure counts it until then)."""


class OrderState(enum.StrEnum):
    """Local pre-exchange states plus Bybit's ``orderStatus`` values (same spelling)."""

    PENDING = "Pending"
    IN_FLIGHT = "InFlight"
    UNKNOWN = "Unknown"
    LOST = "Lost"
    WITHDRAWN = "Withdrawn"
    NEW = OrderStatus.NEW.value
    PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED.value
    UNTRIGGERED = OrderStatus.UNTRIGGERED.value
    TRIGGERED = OrderStatus.TRIGGERED.value
    FILLED = OrderStatus.FILLED.value
    CANCELLED = OrderStatus.CANCELLED.value
    REJECTED = OrderStatus.REJECTED.value
    DEACTIVATED = OrderStatus.DEACTIVATED.value
    PARTIALLY_FILLED_CANCELED = OrderStatus.PARTIALLY_FILLED_CANCELED.value

    @classmethod
    def from_status(cls, status: OrderStatus) -> OrderState:
        return cls(status.value)

    @property
    def is_final(self) -> bool:
        """No further state change or fill is expected (LOST can still be resurrected)."""
        return self in _FINAL

    @property
    def is_exchange_final(self) -> bool:
        """A final status the exchange itself reported."""
        return self in _EXCHANGE_FINAL

    @property
    def is_resting(self) -> bool:
        """Known to the exchange and able to trade or trigger."""
        return self in _RESTING

    @property
    def is_unresolved(self) -> bool:
        """Sent, but whether it exists is not known: must be settled by a query."""
        return self in (OrderState.IN_FLIGHT, OrderState.UNKNOWN)

    @property
    def is_local(self) -> bool:
        """A state the exchange never reports."""
        return self in _LOCAL


_LOCAL = frozenset(
    {
        OrderState.PENDING,
        OrderState.IN_FLIGHT,
        OrderState.UNKNOWN,
        OrderState.LOST,
        OrderState.WITHDRAWN,
    }
)
_RESTING = frozenset(
    {
        OrderState.NEW,
        OrderState.PARTIALLY_FILLED,
        OrderState.UNTRIGGERED,
        OrderState.TRIGGERED,
    }
)
_EXCHANGE_FINAL = frozenset(
    {
        OrderState.FILLED,
        OrderState.CANCELLED,
        OrderState.REJECTED,
        OrderState.DEACTIVATED,
        OrderState.PARTIALLY_FILLED_CANCELED,
    }
)
_FINAL = _EXCHANGE_FINAL | {OrderState.LOST, OrderState.WITHDRAWN}

# How far along an order is, to order two updates stamped with the same updatedTime and
# cumExecQty (Bybit stamps in ms; New and Cancelled can share one).
_STATUS_RANK: Mapping[OrderStatus, int] = {
    OrderStatus.UNTRIGGERED: 0,
    OrderStatus.TRIGGERED: 1,
    OrderStatus.NEW: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
    OrderStatus.FILLED: 4,
    OrderStatus.CANCELLED: 4,
    OrderStatus.REJECTED: 4,
    OrderStatus.DEACTIVATED: 4,
    OrderStatus.PARTIALLY_FILLED_CANCELED: 4,
}


# --------------------------------------------------------------------------- events


@frozen
class Sent:
    """The create request is about to leave (record it before the bytes go)."""

    at: float
    kind: ClassVar[str] = "Sent"


@frozen
class Acked:
    """Bybit accepted the create and returned ``orderId``."""

    order_id: str
    at: float
    kind: ClassVar[str] = "Acked"


@frozen
class Rejected:
    """Bybit refused the create definitively (a :class:`hean.bybit.errors.RejectedError`)."""

    code: int
    msg: str
    at: float
    kind: ClassVar[str] = "Rejected"


@frozen
class OutcomeUnknown:
    """The create's answer was lost (:class:`hean.bybit.errors.OutcomeUnknownError`)."""

    at: float
    reason: str = ""
    kind: ClassVar[str] = "OutcomeUnknown"


@frozen
class ExchangeUpdate:
    """The exchange's view of the order, from the private stream or a REST query."""

    order: Order
    at: float
    kind: ClassVar[str] = "ExchangeUpdate"


@frozen
class NotFound:
    """A query by orderLinkId found nothing (realtime, then history)."""

    at: float
    grace_s: float = DEFAULT_NOT_FOUND_GRACE_S
    kind: ClassVar[str] = "NotFound"


@frozen
class CancelRequested:
    """The engine decided to cancel (before the cancel request leaves)."""

    at: float
    kind: ClassVar[str] = "CancelRequested"


Event = Sent | Acked | Rejected | OutcomeUnknown | ExchangeUpdate | NotFound | CancelRequested
EVENT_TYPES: tuple[type[Event], ...] = (
    Sent,
    Acked,
    Rejected,
    OutcomeUnknown,
    ExchangeUpdate,
    NotFound,
    CancelRequested,
)


class Outcome(enum.StrEnum):
    """What a legal event did."""

    APPLIED = "applied"  # the order changed (state and/or data)
    UNCHANGED = "unchanged"  # legal and expected, nothing to change
    STALE = "stale"  # an exchange update older than what we hold: ignored
    DUPLICATE = "duplicate"  # the same exchange update again: ignored
    CONFLICT = "conflict"  # a final order contradicted by a newer update: ignored, log + reconcile
    TOO_EARLY = "too_early"  # NotFound within the grace period: query again later


class IllegalTransition(Exception):
    """An event that cannot happen to an order in this state (a bug or a broken invariant)."""

    def __init__(self, order_link_id: str, state: OrderState, event: Event, why: str = "") -> None:
        self.order_link_id = order_link_id
        self.state = state
        self.event = event
        detail = f": {why}" if why else ""
        super().__init__(
            f"illegal order transition for {order_link_id!r}: {event.kind} in state "
            f"{state.value}{detail}"
        )


class UnknownOrderError(KeyError):
    """The tracker has no order under this key."""


class DuplicateOrderError(ValueError):
    """An order with this key (or orderId) is already tracked."""


# --------------------------------------------------------------------------- the tracked order


@frozen
class TrackedOrder:
    """One order as the engine knows it. Frozen: every change is an ``evolve``.

    Attributes:
        order_link_id: the client id; ``""`` only for an adopted external order placed without one.
        intent: what we sent; None for an order adopted from the exchange.
        order_id: Bybit's id once known (ack, stream or query).
        last_order: the newest exchange snapshot applied (None until the exchange reports).
        created_at/updated_at: monotonic seconds when tracking began / of the last change.
        sent_at: when the create left (start of the NotFound grace period).
        cancel_requested_at: when the engine first asked to cancel it.
        reject_code/reject_msg: the create's rejection (``Rejected`` event).
        external_reason: why an order unknown to the journal was adopted (None for our orders).
    """

    order_link_id: str
    symbol: str
    side: Side
    qty: Decimal
    state: OrderState
    created_at: float
    updated_at: float
    intent: OrderIntent | None = None
    order_id: str | None = None
    last_order: Order | None = None
    sent_at: float | None = None
    cancel_requested_at: float | None = None
    reject_code: int | None = None
    reject_msg: str = ""
    external_reason: str | None = None

    @classmethod
    def new(cls, intent: OrderIntent, at: float) -> TrackedOrder:
        """A journaled intent, not sent yet (``PENDING``)."""
        return cls(
            order_link_id=intent.order_link_id,
            symbol=intent.symbol,
            side=intent.side,
            qty=intent.qty,
            state=OrderState.PENDING,
            created_at=at,
            updated_at=at,
            intent=intent,
        )

    @classmethod
    def adopt(cls, order: Order, at: float, reason: str) -> TrackedOrder:
        """An order the exchange reports that the journal does not know (external/orphan)."""
        return cls(
            order_link_id=order.order_link_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            state=OrderState.from_status(order.order_status),
            created_at=at,
            updated_at=at,
            order_id=order.order_id,
            last_order=order,
            external_reason=reason,
        )

    @property
    def key(self) -> str:
        """The registry/journal key: the orderLinkId, or ``"#<orderId>"`` when there is none.

        ``#`` cannot occur in a real orderLinkId (``[A-Za-z0-9_-]``), so the two never collide.
        """
        if self.order_link_id:
            return self.order_link_id
        if self.order_id is None:
            raise ValueError("an order without orderLinkId must have an orderId")
        return f"#{self.order_id}"

    @property
    def is_external(self) -> bool:
        return self.external_reason is not None

    @property
    def cum_exec_qty(self) -> Decimal:
        """Filled quantity as the exchange last reported it (0 before any report)."""
        return ZERO if self.last_order is None else self.last_order.cum_exec_qty

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity that can still trade: 0 when final, the full qty before the exchange reports."""
        if self.state.is_final:
            return ZERO
        if self.last_order is None:
            return self.qty
        return self.last_order.leaves_qty

    @property
    def price(self) -> Decimal | None:
        if self.intent is not None:
            return self.intent.price
        return None if self.last_order is None else self.last_order.price


@frozen
class Transition:
    """The result of one event: the order before and after, and what happened."""

    before: TrackedOrder
    after: TrackedOrder
    event: Event
    outcome: Outcome

    @property
    def changed(self) -> bool:
        return self.after != self.before

    @property
    def state_changed(self) -> bool:
        return self.after.state is not self.before.state


# --------------------------------------------------------------------------- handlers

_Result = tuple[TrackedOrder, Outcome]
_Handler = Callable[[TrackedOrder, Event], _Result]


def _illegal(o: TrackedOrder, ev: Event, why: str) -> IllegalTransition:
    return IllegalTransition(o.order_link_id or f"#{o.order_id}", o.state, ev, why)


def _check_order_id(o: TrackedOrder, ev: Event, order_id: str) -> None:
    if o.order_id is not None and order_id and order_id != o.order_id:
        raise _illegal(o, ev, f"orderId {order_id!r} does not match the known {o.order_id!r}")


def _send(o: TrackedOrder, ev: Event) -> _Result:
    assert isinstance(ev, Sent)
    return evolve(o, state=OrderState.IN_FLIGHT, sent_at=ev.at, updated_at=ev.at), Outcome.APPLIED


def _ack_first(o: TrackedOrder, ev: Event) -> _Result:
    """IN_FLIGHT/UNKNOWN/LOST + Acked: the order exists, as New."""
    assert isinstance(ev, Acked)
    _check_order_id(o, ev, ev.order_id)
    return (
        evolve(o, state=OrderState.NEW, order_id=ev.order_id, updated_at=ev.at),
        Outcome.APPLIED,
    )


def _ack_late(o: TrackedOrder, ev: Event) -> _Result:
    """The stream outran the REST response: keep the state, learn the orderId if needed."""
    assert isinstance(ev, Acked)
    _check_order_id(o, ev, ev.order_id)
    if o.order_id is None:
        return evolve(o, order_id=ev.order_id, updated_at=ev.at), Outcome.APPLIED
    return o, Outcome.UNCHANGED


def _reject(o: TrackedOrder, ev: Event) -> _Result:
    assert isinstance(ev, Rejected)
    return (
        evolve(
            o,
            state=OrderState.REJECTED,
            reject_code=ev.code,
            reject_msg=ev.msg,
            updated_at=ev.at,
        ),
        Outcome.APPLIED,
    )


def _outcome_unknown(o: TrackedOrder, ev: Event) -> _Result:
    assert isinstance(ev, OutcomeUnknown)
    if o.state is OrderState.UNKNOWN:
        return o, Outcome.UNCHANGED
    # A PENDING order going UNKNOWN happens on restore: we cannot tell whether it left. A LOST
    # one gets the answer of a create that was still on its way when a NotFound was believed:
    # that NotFound proved nothing, and the grace period starts again from now.
    sent_at = o.sent_at if o.sent_at is not None else ev.at
    if o.state is OrderState.LOST:
        sent_at = ev.at
    return evolve(o, state=OrderState.UNKNOWN, sent_at=sent_at, updated_at=ev.at), Outcome.APPLIED


def _unchanged(o: TrackedOrder, _ev: Event) -> _Result:
    return o, Outcome.UNCHANGED


def _exchange_update(o: TrackedOrder, ev: Event) -> _Result:
    assert isinstance(ev, ExchangeUpdate)
    new = ev.order
    _check_order_id(o, ev, new.order_id)
    if o.order_link_id and new.order_link_id and new.order_link_id != o.order_link_id:
        raise _illegal(o, ev, f"update is for orderLinkId {new.order_link_id!r}")
    last = o.last_order
    if last is not None:
        if new == last:
            return o, Outcome.DUPLICATE
        if new.updated_time < last.updated_time or new.cum_exec_qty < last.cum_exec_qty:
            return o, Outcome.STALE
        if (
            new.updated_time == last.updated_time
            and new.cum_exec_qty == last.cum_exec_qty
            and _STATUS_RANK[new.order_status] < _STATUS_RANK[last.order_status]
        ):
            return o, Outcome.STALE
    state = OrderState.from_status(new.order_status)
    if o.state.is_exchange_final and state is not o.state:
        return o, Outcome.CONFLICT
    return (
        evolve(o, state=state, order_id=new.order_id, last_order=new, updated_at=ev.at),
        Outcome.APPLIED,
    )


def _not_found(o: TrackedOrder, ev: Event) -> _Result:
    assert isinstance(ev, NotFound)
    since = o.sent_at if o.sent_at is not None else o.created_at
    if ev.at - since < ev.grace_s:
        return o, Outcome.TOO_EARLY
    return evolve(o, state=OrderState.LOST, updated_at=ev.at), Outcome.APPLIED


def _withdraw(o: TrackedOrder, ev: Event) -> _Result:
    assert isinstance(ev, CancelRequested)
    return (
        evolve(o, state=OrderState.WITHDRAWN, cancel_requested_at=ev.at, updated_at=ev.at),
        Outcome.APPLIED,
    )


def _mark_cancel(o: TrackedOrder, ev: Event) -> _Result:
    assert isinstance(ev, CancelRequested)
    if o.cancel_requested_at is not None:
        return o, Outcome.UNCHANGED
    return evolve(o, cancel_requested_at=ev.at, updated_at=ev.at), Outcome.APPLIED


def _build_table() -> dict[tuple[OrderState, type[Event]], _Handler]:
    s = OrderState
    table: dict[tuple[OrderState, type[Event]], _Handler] = {}

    def rule(states: Iterable[OrderState], event: type[Event], handler: _Handler) -> None:
        for state in states:
            assert (state, event) not in table, (state, event)
            table[state, event] = handler

    resting = sorted(_RESTING)
    exchange_final = sorted(_EXCHANGE_FINAL)
    rule([s.PENDING], Sent, _send)
    rule([s.IN_FLIGHT, s.UNKNOWN, s.LOST], Acked, _ack_first)
    rule([*resting, *exchange_final], Acked, _ack_late)
    # LOST is a belief (NotFound after the grace): the create's own late answer overrides it.
    rule([s.IN_FLIGHT, s.UNKNOWN, s.LOST], Rejected, _reject)
    rule([s.PENDING, s.IN_FLIGHT, s.UNKNOWN, s.LOST], OutcomeUnknown, _outcome_unknown)
    rule([*resting, *exchange_final], OutcomeUnknown, _unchanged)
    updatable = [s.IN_FLIGHT, s.UNKNOWN, s.LOST, *resting, *exchange_final]
    rule(updatable, ExchangeUpdate, _exchange_update)
    rule([s.IN_FLIGHT, s.UNKNOWN, *resting], NotFound, _not_found)
    rule([s.LOST, *exchange_final], NotFound, _unchanged)
    rule([s.PENDING], CancelRequested, _withdraw)
    rule([s.IN_FLIGHT, s.UNKNOWN, *resting], CancelRequested, _mark_cancel)
    return table


_TABLE = _build_table()

TRANSITIONS: Mapping[tuple[OrderState, type[Event]], str] = {
    key: handler.__name__.lstrip("_") for key, handler in _TABLE.items()
}
"""The legal (state, event type) pairs and the rule that handles each (for docs and tests).

Pairs not listed raise :class:`IllegalTransition`. Notably: nothing happens to a WITHDRAWN order;
a PENDING order cannot be acked, rejected, updated or queried (it was never sent — a restored
PENDING order is first moved to UNKNOWN); ``Sent`` only from PENDING (UNKNOWN is resolved by query,
never by re-sending); ``Rejected`` only before the exchange reported the order (LOST included: the
create's answer can arrive after a NotFound); a final order cannot be cancelled (check
:attr:`OrderState.is_final` first: a fill can win the race)."""


def apply_event(order: TrackedOrder, event: Event) -> Transition:
    """Apply one event to one order; raise :class:`IllegalTransition` if it cannot happen."""
    handler = _TABLE.get((order.state, type(event)))
    if handler is None:
        raise _illegal(order, event, "no such transition")
    after, outcome = handler(order, event)
    return Transition(before=order, after=after, event=event, outcome=outcome)


# --------------------------------------------------------------------------- the registry


class OrderTracker:
    """Every order the engine knows, by key (orderLinkId) and by Bybit orderId.

    In-memory and pure; the router/reconciler shells call it and journal each changed
    :class:`TrackedOrder` (``Transition.after``) when ``Transition.changed``.
    """

    __slots__ = ("_by_key", "_key_by_order_id")

    def __init__(self) -> None:
        self._by_key: dict[str, TrackedOrder] = {}
        self._key_by_order_id: dict[str, str] = {}

    # ---- building

    def add(self, order: TrackedOrder) -> TrackedOrder:
        """Start tracking ``order``; its key (and orderId, if any) must be new."""
        key = order.key
        if key in self._by_key:
            raise DuplicateOrderError(f"order {key!r} is already tracked")
        if order.order_id is not None and order.order_id in self._key_by_order_id:
            raise DuplicateOrderError(f"orderId {order.order_id!r} is already tracked")
        self._store(key, order)
        return order

    def track_intent(self, intent: OrderIntent, at: float) -> TrackedOrder:
        """Track a freshly journaled intent as PENDING."""
        return self.add(TrackedOrder.new(intent, at))

    def adopt(self, order: Order, at: float, reason: str) -> TrackedOrder:
        """Track an exchange order the engine did not place (or forgot): see reconcile_plan."""
        return self.add(TrackedOrder.adopt(order, at, reason))

    @classmethod
    def restore(cls, orders: Iterable[TrackedOrder], now: float) -> OrderTracker:
        """Rebuild from the journal in a new process whose monotonic clock reads ``now``.

        Monotonic times from the old process are shifted so the newest becomes ``now``: relative
        ages are kept, and since the downtime is unknown (>= 0) every age is a lower bound, which
        errs on the safe side (a NotFound grace is waited out again rather than cut short).
        PENDING and IN_FLIGHT orders become UNKNOWN: the journal cannot tell whether the request
        left before the crash, so each must be settled by a query.
        """
        orders = list(orders)
        stamps = [t for o in orders for t in _times(o) if t is not None]
        shift = now - max(stamps) if stamps else 0.0
        tracker = cls()
        for o in orders:
            moved = evolve(
                o,
                created_at=o.created_at + shift,
                updated_at=o.updated_at + shift,
                sent_at=None if o.sent_at is None else o.sent_at + shift,
                cancel_requested_at=(
                    None if o.cancel_requested_at is None else o.cancel_requested_at + shift
                ),
            )
            if moved.state in (OrderState.PENDING, OrderState.IN_FLIGHT):
                moved = apply_event(moved, OutcomeUnknown(at=now, reason="restored")).after
            tracker.add(moved)
        return tracker

    def copy(self) -> OrderTracker:
        """An independent copy (orders are immutable, so a shallow copy suffices)."""
        other = OrderTracker()
        other._by_key = dict(self._by_key)
        other._key_by_order_id = dict(self._key_by_order_id)
        return other

    # ---- changing

    def apply(self, key: str, event: Event) -> Transition:
        """Apply ``event`` to the order under ``key`` and store the result."""
        order = self._by_key.get(key)
        if order is None:
            raise UnknownOrderError(key)
        transition = apply_event(order, event)
        if transition.changed:
            self._store(key, transition.after)
        return transition

    def on_exchange_update(self, order: Order, at: float) -> Transition | None:
        """Route a stream/query snapshot to its tracked order; None if the order is unknown."""
        tracked = self.lookup(order)
        if tracked is None:
            return None
        return self.apply(tracked.key, ExchangeUpdate(order, at))

    def discard(self, key: str) -> TrackedOrder:
        """Forget a final order (e.g. after it was archived); refuses a live one."""
        order = self._by_key.get(key)
        if order is None:
            raise UnknownOrderError(key)
        if not order.state.is_final:
            raise ValueError(f"order {key!r} is {order.state.value}, not final")
        del self._by_key[key]
        if order.order_id is not None:
            self._key_by_order_id.pop(order.order_id, None)
        return order

    def _store(self, key: str, order: TrackedOrder) -> None:
        self._by_key[key] = order
        if order.order_id is not None:
            owner = self._key_by_order_id.setdefault(order.order_id, key)
            if owner != key:
                raise DuplicateOrderError(
                    f"orderId {order.order_id!r} belongs to {owner!r}, not {key!r}"
                )

    # ---- reading

    def get(self, key: str) -> TrackedOrder | None:
        return self._by_key.get(key)

    def __getitem__(self, key: str) -> TrackedOrder:
        order = self._by_key.get(key)
        if order is None:
            raise UnknownOrderError(key)
        return order

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[TrackedOrder]:
        return iter(list(self._by_key.values()))

    def by_order_id(self, order_id: str) -> TrackedOrder | None:
        key = self._key_by_order_id.get(order_id)
        return None if key is None else self._by_key[key]

    def lookup(self, order: Order) -> TrackedOrder | None:
        """The tracked order an exchange snapshot belongs to (by orderLinkId, then orderId)."""
        if order.order_link_id:
            found = self._by_key.get(order.order_link_id)
            if found is not None:
                return found
        found = self.by_order_id(order.order_id) if order.order_id else None
        if found is None and order.order_id:
            found = self._by_key.get(f"#{order.order_id}")
        return found

    def orders(self, symbol: str | None = None) -> list[TrackedOrder]:
        return [o for o in self._by_key.values() if symbol is None or o.symbol == symbol]

    def open_orders(self, symbol: str | None = None) -> list[TrackedOrder]:
        """Orders resting at the exchange (New, PartiallyFilled, Untriggered, Triggered)."""
        return [o for o in self.orders(symbol) if o.state.is_resting]

    def non_final(self, symbol: str | None = None) -> list[TrackedOrder]:
        """Every order that may still trade: pending, in flight, unknown or resting."""
        return [o for o in self.orders(symbol) if not o.state.is_final]

    def unresolved(self) -> list[TrackedOrder]:
        """IN_FLIGHT and UNKNOWN orders: their existence must be settled by a query."""
        return [o for o in self._by_key.values() if o.state.is_unresolved]

    def symbols(self) -> set[str]:
        return {o.symbol for o in self._by_key.values()}


def _times(o: TrackedOrder) -> tuple[float | None, ...]:
    return (o.created_at, o.updated_at, o.sent_at, o.cancel_requested_at)
