"""Reconciliation as a pure function: local state + REST truth -> a plan. No trio, no I/O.

The reconciler shell (after every private-stream (re)connect, every 60 s, and at startup) fetches
the exchange's truth over REST and hands it here together with the local state:

1. ``GET /v5/order/realtime`` open orders (all pages);
2. a query by ``orderLinkId`` for *every* non-final local order (realtime, falling back to
   history), ``None`` when neither knows it;
3. ``GET /v5/execution/list`` from :func:`execution_fetch_start` (all pages, already fetched),
   plus, for every order :func:`orders_missing_fills` names, its executions by ``orderId``;
4. ``GET /v5/position/list`` (settleCoin: non-flat only; a symbol missing from the list is flat);
5. ``GET /v5/account/wallet-balance`` (passed through for the risk governor).

:func:`plan_reconcile` dry-runs everything on copies of the :class:`OrderTracker` and the
:class:`Portfolio`, so the plan says exactly what applying it will do, and :func:`apply_plan`
applies it to the real objects and returns what changed, for the shell to journal.

Execution cursor
================
The cursor is the newest ``execTime`` (ms) seen. Bybit does not order executions that share an
``execTime``, and a page boundary can fall inside such a millisecond, so the next fetch starts
*at* the cursor (inclusive), not after it — and, by default, a little before it
(:data:`DEFAULT_CURSOR_OVERLAP_MS`) in case ``/v5/execution/list`` lags. Everything re-fetched is
dropped by ``execId``, so the overlap costs bandwidth, never a double count. The cursor never
moves backwards.

Nor does it move past a fill that is known to be missing: while some order's ``cumExecQty`` runs
ahead of its executions, the listing has not shown every fill yet, and a cursor moved to the
newest ``execTime`` would start every later fetch after that fill — lost for good. So an
incomplete plan holds the cursor at the creation time of the oldest order still missing fills
(no fill of an order precedes the order), or where it was when that time is not known. The shell
also fetches such orders' executions by ``orderId`` (:func:`orders_missing_fills`), which does
not depend on the cursor at all.

Fail-closed
===========
``fail_closed`` is set when, after every missed fill has been applied, a position still differs
in size from the exchange, or the exchange reports a live order that the local state machine
believes final. The engine must not trade on such a state; it alerts and waits for an operator
(or a policy such as ``Portfolio.adopt``). ``complete`` is False while some local order could not
be resolved yet (NotFound inside the grace period, or not queried) or fills are still missing
(an order's ``cumExecQty`` exceeds its executions): the shell fetches more and plans again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from attrs import field, frozen

from hean.bybit.types import ZERO, Execution, Order, Position, Wallet
from hean.engine.orders import (
    DEFAULT_NOT_FOUND_GRACE_S,
    ExchangeUpdate,
    NotFound,
    OrderTracker,
    Outcome,
    TrackedOrder,
)
from hean.engine.portfolio import (
    DEFAULT_ENTRY_TOLERANCE,
    MismatchKind,
    Portfolio,
    PositionMismatch,
    PositionState,
    is_position_fill,
)

__all__ = [
    "DEFAULT_CURSOR_OVERLAP_MS",
    "AppliedPlan",
    "ExchangeTruth",
    "ExternalOrder",
    "LostOrder",
    "OrderConflict",
    "OrderUpdate",
    "ReconcilePlan",
    "apply_plan",
    "execution_fetch_start",
    "orders_missing_fills",
    "plan_reconcile",
]

DEFAULT_CURSOR_OVERLAP_MS = 5_000
"""How far before the cursor the next execution fetch starts (dedupe by execId makes it free)."""


def execution_fetch_start(
    cursor_ms: int | None, *, overlap_ms: int = DEFAULT_CURSOR_OVERLAP_MS
) -> int | None:
    """``startTime`` for the next ``/v5/execution/list`` fetch: the cursor minus the overlap.

    None (no cursor yet) means "let Bybit use its default window" (the last 7 days).
    """
    if cursor_ms is None:
        return None
    return max(0, cursor_ms - overlap_ms)


def orders_missing_fills(
    portfolio: Portfolio, orders: Iterable[Order], executions: Iterable[Execution]
) -> tuple[str, ...]:
    """orderIds whose reported ``cumExecQty`` exceeds the fills known for them: the executions
    ``portfolio`` applied plus the (not yet applied) ``executions`` just fetched. Sorted.

    The reported quantity is the highest of what ``portfolio`` was told before and what the
    order snapshots in ``orders`` say now. The shell fetches these orders' executions by
    ``orderId`` before planning (the time-ordered listing may lag behind them).
    """
    fetched: dict[str, Decimal] = {}
    counted: set[str] = set()
    for e in executions:
        if e.exec_id in counted or portfolio.has_seen(e.exec_id):
            continue
        counted.add(e.exec_id)
        if e.order_id and is_position_fill(e):
            fetched[e.order_id] = fetched.get(e.order_id, ZERO) + e.exec_qty
    reported = {
        oid: portfolio.filled_qty(oid) + qty for oid, qty in portfolio.missing_fills().items()
    }
    for o in orders:
        if o.order_id:
            reported[o.order_id] = max(reported.get(o.order_id, ZERO), o.cum_exec_qty)
    return tuple(
        sorted(
            oid
            for oid, cum in reported.items()
            if cum > portfolio.filled_qty(oid) + fetched.get(oid, ZERO)
        )
    )


def _to_dict(value: Mapping[str, Order | None]) -> dict[str, Order | None]:
    return dict(value)


@frozen
class ExchangeTruth:
    """What the reconciler fetched over REST (all pages).

    Attributes:
        queried: the answer of the per-orderLinkId query for each non-final local order, keyed by
            :attr:`TrackedOrder.key`; None means neither realtime nor history knows it.
    """

    open_orders: tuple[Order, ...] = ()
    queried: Mapping[str, Order | None] = field(factory=dict, converter=_to_dict)
    executions: tuple[Execution, ...] = ()
    positions: tuple[Position, ...] = ()
    wallet: Wallet | None = None


@frozen
class OrderUpdate:
    """An exchange snapshot that moves a known order forward."""

    key: str
    order: Order


@frozen
class ExternalOrder:
    """An exchange order the local state does not know: to be adopted and tracked."""

    order: Order
    reason: str


@frozen
class LostOrder:
    """A local order the exchange does not know, after the grace period: it never landed."""

    key: str
    reason: str


@frozen
class OrderConflict:
    """The exchange contradicts a final local order (ignored by the state machine)."""

    key: str
    local: TrackedOrder
    order: Order


@frozen
class ReconcilePlan:
    """Everything a reconciliation will change, and what it found.

    Attributes:
        order_updates: snapshots to apply (each advances its order; stale ones are left out).
        missed_executions: executions never applied before, sorted by (execTime, execId); apply
            each exactly once.
        adopt: exchange orders unknown locally.
        lost: local orders the exchange does not know after the grace period.
        unresolved: keys of local orders still unsettled (NotFound within grace, or not queried).
        conflicts: final local orders the exchange contradicts.
        missing_fills: ``{orderId: qty}`` still missing after applying everything.
        position_mismatches: differences left after applying every missed fill.
        fail_closed: see the module docstring.
        missed_fills: number of missed position-changing executions.
        missed_events: missed fills/charges + order changes + adoptions + losses.
        gap_ms: newest missed ``execTime`` minus the old cursor (0 when nothing was missed).
        new_cursor: the execution cursor to store once the plan is applied.
    """

    order_updates: tuple[OrderUpdate, ...]
    missed_executions: tuple[Execution, ...]
    adopt: tuple[ExternalOrder, ...]
    lost: tuple[LostOrder, ...]
    unresolved: tuple[str, ...]
    conflicts: tuple[OrderConflict, ...]
    missing_fills: Mapping[str, Decimal]
    position_mismatches: tuple[PositionMismatch, ...]
    fail_closed: bool
    missed_fills: int
    missed_events: int
    gap_ms: int
    new_cursor: int | None
    wallet: Wallet | None = None

    @property
    def complete(self) -> bool:
        """Every local order settled and every reported fill present."""
        return not self.unresolved and not self.missing_fills

    @property
    def ready(self) -> bool:
        """Safe to trade after applying: complete and not fail-closed."""
        return self.complete and not self.fail_closed

    @property
    def is_noop(self) -> bool:
        return not (self.order_updates or self.missed_executions or self.adopt or self.lost)


@frozen
class AppliedPlan:
    """What :func:`apply_plan` changed; journal it with ``Journal.record_applied_plan``.

    ``positions`` are the states, after every applied execution, of the symbols those executions
    touched (the journal's position baselines).
    """

    changed_orders: tuple[TrackedOrder, ...]
    applied_executions: tuple[Execution, ...]
    positions: tuple[PositionState, ...]
    new_cursor: int | None


def _adopt_reason(order: Order) -> str:
    if not order.order_link_id:
        return "open order without orderLinkId: placed outside the engine"
    return f"orderLinkId {order.order_link_id!r} is not in the journal"


def _update_rank(order: Order) -> tuple[int, Decimal]:
    return (order.updated_time, order.cum_exec_qty)


def plan_reconcile(
    tracker: OrderTracker,
    portfolio: Portfolio,
    cursor_ms: int | None,
    truth: ExchangeTruth,
    *,
    now: float,
    not_found_grace_s: float = DEFAULT_NOT_FOUND_GRACE_S,
    entry_tolerance: Decimal = DEFAULT_ENTRY_TOLERANCE,
) -> ReconcilePlan:
    """Compare local state with the exchange's; nothing passed in is modified.

    ``now`` is monotonic seconds (for the NotFound grace period).
    """
    dry_tracker = tracker.copy()
    dry_portfolio = portfolio.copy()

    # -- orders: gather every snapshot per local key; unknown ones are adopted.
    snapshots: dict[str, list[Order]] = {}
    adopt: dict[str, ExternalOrder] = {}
    for order in (*truth.open_orders, *(o for o in truth.queried.values() if o is not None)):
        local = dry_tracker.lookup(order)
        if local is None:
            ext_key = order.order_link_id or f"#{order.order_id}"
            adopt.setdefault(ext_key, ExternalOrder(order, _adopt_reason(order)))
            continue
        snapshots.setdefault(local.key, []).append(order)

    updates: list[OrderUpdate] = []
    conflicts: list[OrderConflict] = []
    for key, orders in snapshots.items():
        for order in sorted(orders, key=_update_rank):
            before = dry_tracker[key]
            transition = dry_tracker.apply(key, ExchangeUpdate(order, now))
            dry_portfolio.observe_order(order)
            if transition.outcome is Outcome.APPLIED:
                updates.append(OrderUpdate(key, order))
            elif transition.outcome is Outcome.CONFLICT:
                conflicts.append(OrderConflict(key, before, order))

    for ext in adopt.values():
        dry_tracker.adopt(ext.order, now, ext.reason)
        dry_portfolio.observe_order(ext.order)

    # -- local orders the exchange did not report: NotFound (grace-aware) or not queried.
    lost: list[LostOrder] = []
    unresolved: list[str] = []
    for tracked in dry_tracker.non_final():
        key = tracked.key
        if key in snapshots or key in adopt:
            continue  # the exchange reported it (possibly stale, which changes nothing)
        if key not in truth.queried:
            unresolved.append(key)  # the shell did not query it: it must, before trading
            continue
        transition = dry_tracker.apply(key, NotFound(now, not_found_grace_s))
        if transition.outcome is Outcome.TOO_EARLY:
            unresolved.append(key)
        elif transition.state_changed:
            reason = (
                "never landed: no such order after the grace period"
                if tracked.state.is_unresolved
                else f"was {tracked.state.value}, the exchange no longer knows it"
            )
            lost.append(LostOrder(key, reason))

    # -- executions: apply each unseen one once, in time order.
    unique: dict[str, Execution] = {}
    for e in truth.executions:
        unique.setdefault(e.exec_id, e)
    missed = sorted(
        (e for e in unique.values() if not dry_portfolio.has_seen(e.exec_id)),
        key=lambda e: (e.exec_time, e.exec_id),
    )
    for e in missed:
        dry_portfolio.apply_execution(e)
    missed_fills = sum(1 for e in missed if is_position_fill(e))

    # -- positions, after every fill: a symbol absent from the list is flat on the exchange.
    by_symbol = {p.symbol: p for p in truth.positions}
    symbols = set(by_symbol) | {s for s, st in dry_portfolio.positions().items() if st.size != 0}
    mismatches: list[PositionMismatch] = []
    for symbol in sorted(symbols):
        position = by_symbol.get(symbol) or Position(symbol, None, ZERO, ZERO)
        found = dry_portfolio.compare(position, entry_tolerance=entry_tolerance)
        if found is not None:
            mismatches.append(found)

    # The exchange says an order we consider finished can still trade: we cannot see our risk.
    live_conflict = any(not c.order.order_status.is_final for c in conflicts)
    # A size difference on a symbol whose orders still miss fills is not yet "after all fills":
    # the plan is incomplete (the gate stays shut and the shell fetches again), so a listing lag
    # does not fail the engine closed; only a difference the fills cannot explain does.
    fail_closed = live_conflict or any(
        m.kind is MismatchKind.SIZE and not dry_portfolio.missing_fills(m.symbol)
        for m in mismatches
    )

    missing_fills = dry_portfolio.missing_fills()
    newest = max((e.exec_time for e in unique.values()), default=None)
    advance_to = newest
    if missing_fills and newest is not None:
        # Fills the listing has not shown yet: do not move the cursor past them (see the
        # module docstring). Hold it at the oldest such order's creation, if known everywhere.
        created = [_created_ms(oid, dry_tracker, truth) for oid in missing_fills]
        known = [c for c in created if c is not None]
        advance_to = min(newest, *known) if len(known) == len(created) else None
    new_cursor = cursor_ms
    if advance_to is not None:
        new_cursor = advance_to if cursor_ms is None else max(cursor_ms, advance_to)
    gap_ms = 0
    if missed and cursor_ms is not None:
        gap_ms = max(0, max(e.exec_time for e in missed) - cursor_ms)

    return ReconcilePlan(
        order_updates=tuple(updates),
        missed_executions=tuple(missed),
        adopt=tuple(adopt.values()),
        lost=tuple(lost),
        unresolved=tuple(unresolved),
        conflicts=tuple(conflicts),
        missing_fills=missing_fills,
        position_mismatches=tuple(mismatches),
        fail_closed=fail_closed,
        missed_fills=missed_fills,
        missed_events=len(missed) + len(updates) + len(adopt) + len(lost),
        gap_ms=gap_ms,
        new_cursor=new_cursor,
        wallet=truth.wallet,
    )


def _created_ms(order_id: str, tracker: OrderTracker, truth: ExchangeTruth) -> int | None:
    """The exchange's ``createdTime`` of an order, from any snapshot at hand (None: unknown)."""
    times = [
        o.created_time
        for o in (*truth.open_orders, *(q for q in truth.queried.values() if q is not None))
        if o.order_id == order_id and o.created_time > 0
    ]
    tracked = tracker.by_order_id(order_id)
    if tracked is not None and tracked.last_order is not None and tracked.last_order.created_time:
        times.append(tracked.last_order.created_time)
    return min(times) if times else None


def apply_plan(
    plan: ReconcilePlan, tracker: OrderTracker, portfolio: Portfolio, *, now: float
) -> AppliedPlan:
    """Apply ``plan`` to the live tracker and portfolio; return what to journal
    (``Journal.record_applied_plan``, one transaction).

    Must be called with the same state the plan was made from (no event applied in between —
    the shell holds the private-stream consumer while reconciling). Executions go first (fills
    are the truth), then order updates, adoptions and losses. ``lost`` was decided at planning
    time, so its NotFound is applied with no further grace.
    """
    applied = tuple(e for e in plan.missed_executions if portfolio.apply_execution(e))
    changed: dict[str, TrackedOrder] = {}
    for update in plan.order_updates:
        transition = tracker.apply(update.key, ExchangeUpdate(update.order, now))
        portfolio.observe_order(update.order)
        if transition.changed:
            changed[update.key] = transition.after
    for ext in plan.adopt:
        adopted = tracker.adopt(ext.order, now, ext.reason)
        portfolio.observe_order(ext.order)
        changed[adopted.key] = adopted
    for lost in plan.lost:
        transition = tracker.apply(lost.key, NotFound(now, grace_s=0.0))
        if transition.changed:
            changed[lost.key] = transition.after
    touched = sorted({e.symbol for e in applied})
    positions = tuple(portfolio.position(symbol) for symbol in touched)
    return AppliedPlan(tuple(changed.values()), applied, positions, plan.new_cursor)
