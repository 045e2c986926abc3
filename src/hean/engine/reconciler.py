"""The reconciler: REST truth vs local state, the trio shell around :mod:`reconcile_plan`.

When it runs: at startup, on every private-stream (re)connect before trading resumes (the app
calls ``reconcile("private_connect")`` from the stream's ``on_ready`` hook), every
``reconcile_interval_s`` (60 s), and on demand (an execution for an order the engine does not
know). One reconciliation at a time: it holds :attr:`EngineState.lock` from the first fetch to
the last journal write, so the private-event consumer cannot change the state between the fetch
and the plan (pushes wait in their channel; none is lost) and the router starts no new order.

One pass:

1. fetch — open orders (all pages); every non-final local order not among them, by orderLinkId
   (realtime, then history); orders named by executions of unknown orders; executions since the
   cursor minus an overlap (all pages, every 7-day window), and, for every order whose
   ``cumExecQty`` runs ahead of its known fills, its executions by orderId (the time-ordered
   listing can lag); positions; the wallet. An order whose create the router is still awaiting
   (:attr:`EngineState.creates_in_flight`) and that no query finds is left unresolved, never
   declared lost: its create may still land;
2. plan — :func:`~hean.engine.reconcile_plan.plan_reconcile` on the current state (pure, dry-run);
3. if the plan is not ready (an order not settled within its NotFound grace, fills still missing,
   or a position that disagrees) fetch and plan again after a short delay: fills and order
   updates race the fetches, and a disagreement only counts if it survives a fresh look.
   Unsettled orders are retried until ``settle_timeout_s``; a disagreement ``mismatch_checks``
   times;
4. apply the last plan exactly once (:func:`~hean.engine.reconcile_plan.apply_plan`), journal the
   executions, position baselines, orders and finally the cursor;
5. report: missed fills, missed events, gap, duration (trio time); alert on a position mismatch
   (fail closed: no new exposure, reduce-only allowed) and on more than ``missed_events_alert``
   missed events.

Gating triggers (startup, private_connect, ...) close the :class:`TradingGate` first and open it
only when the applied plan was complete; otherwise they raise :class:`ReconcileIncomplete` and the
gate stays closed (the supervisor restarts the private stream, which reconciles again). Periodic
and on-demand passes never touch the gate.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Final

import structlog
import trio
from attrs import frozen

from hean.bybit.errors import BybitError
from hean.bybit.types import ZERO, Order, Position
from hean.bybit.wire import WireError
from hean.engine.backoff import Backoff
from hean.engine.events import count_execution
from hean.engine.journal import Journal
from hean.engine.metrics import EngineMetrics, note_unordered_fills
from hean.engine.orders import DEFAULT_NOT_FOUND_GRACE_S, OrderState
from hean.engine.portfolio import MismatchKind, PositionMismatch
from hean.engine.reconcile_plan import (
    DEFAULT_CURSOR_OVERLAP_MS,
    AppliedPlan,
    ExchangeTruth,
    ReconcilePlan,
    apply_plan,
    execution_fetch_start,
    orders_missing_fills,
    plan_reconcile,
)
from hean.engine.rest_client import BybitRestClient, PaginationError
from hean.engine.state import EngineState

__all__ = [
    "DEFAULT_LOOKBACK_MS",
    "GATING_TRIGGERS",
    "ReconcileError",
    "ReconcileIncomplete",
    "ReconcileReport",
    "Reconciler",
]

log = structlog.get_logger("hean.engine.reconciler")

GATING_TRIGGERS: Final = frozenset({"startup", "private_connect", "restart", "manual"})
"""Triggers that close the trading gate while they run and open it only on success."""

DEFAULT_LOOKBACK_MS: Final = 7 * 24 * 3600 * 1000 - 60_000
"""With no cursor yet (a fresh journal), fetch executions this far back: Bybit's default window
is 7 days; a minute less keeps the start inside it whatever the clock offset."""

_RETRY_BACKOFF: Final = Backoff(base_s=0.5, cap_s=4.0, multiplier=2.0, jitter=0.2)

UNKNOWN_ORDER_PASSES: Final = 5
"""Passes an order named by an execution (unknown to the tracker) is queried before it is given up:
order history can lag behind the execution that named it, so one empty answer proves little."""

# What a reconciliation may meet from the venue and recover from on a later pass.
_VENUE_ERRORS: Final = (BybitError, WireError, PaginationError)


class ReconcileError(Exception):
    """A reconciliation failed; the state it saw cannot be trusted for trading yet."""


class ReconcileIncomplete(ReconcileError):
    """Orders or fills could not be settled before the deadline; ``report`` says which."""

    def __init__(self, report: ReconcileReport) -> None:
        self.report = report
        super().__init__(
            f"reconcile ({report.trigger}) incomplete after {report.attempts} passes: "
            f"unresolved={list(report.unresolved)} missing_fills={report.missing_fill_orders}"
        )


@frozen
class ReconcileReport:
    """What one reconciliation found and did.

    Attributes:
        trigger: why it ran (startup, private_connect, periodic, unknown_order, ...).
        complete: every local order settled and every reported fill present.
        fail_closed: the engine's fail-closed reason after this pass (None = trading freely).
        missed_fills: position-changing executions the stream never delivered.
        missed_events: missed fills/charges + order changes + adoptions + losses.
        gap_ms: newest missed ``execTime`` minus the previous cursor (0 if nothing missed).
        duration_s: trio time from start to the last journal write (waits included).
        attempts: fetch/plan passes made.
        adopted / lost / unresolved: order keys.
        mismatches: positions that still disagree after every fill.
        applied_executions / changed_orders: what the applied plan changed.
        cursor_ms: the execution cursor after this pass.
    """

    trigger: str
    complete: bool
    fail_closed: str | None
    missed_fills: int
    missed_events: int
    gap_ms: int
    duration_s: float
    attempts: int
    adopted: tuple[str, ...]
    lost: tuple[str, ...]
    unresolved: tuple[str, ...]
    missing_fill_orders: tuple[str, ...]
    mismatches: tuple[PositionMismatch, ...]
    applied_executions: int
    changed_orders: int
    cursor_ms: int | None

    @property
    def ok(self) -> bool:
        """Complete and not fail-closed."""
        return self.complete and self.fail_closed is None


class Reconciler:
    """Brings local state in line with the exchange's (see the module docstring).

    Args:
        state: the shared engine state.
        rest: the venue's REST client (its server clock dates the first execution fetch).
        journal: where every change and the cursor are recorded.
        metrics: shared engine metrics.
        missed_events_alert: more missed events than this in one pass raise an alert.
        not_found_grace_s: how long after sending a NotFound is not believed.
        settle_timeout_s: how long a pass keeps re-fetching to settle orders and fills
            (default: the NotFound grace plus 10 s).
        mismatch_checks: passes a position disagreement must survive before it fails closed.
        cursor_overlap_ms: the execution fetch starts this far before the cursor.
        lookback_ms: how far back to fetch executions when there is no cursor yet.
        rng: jitter of the delay between passes.
    """

    def __init__(
        self,
        state: EngineState,
        rest: BybitRestClient,
        journal: Journal,
        *,
        metrics: EngineMetrics | None = None,
        missed_events_alert: int = 5,
        not_found_grace_s: float = DEFAULT_NOT_FOUND_GRACE_S,
        settle_timeout_s: float | None = None,
        mismatch_checks: int = 3,
        cursor_overlap_ms: int = DEFAULT_CURSOR_OVERLAP_MS,
        lookback_ms: int = DEFAULT_LOOKBACK_MS,
        rng: random.Random | None = None,
    ) -> None:
        if mismatch_checks < 1:
            raise ValueError("mismatch_checks must be >= 1")
        self._state = state
        self._rest = rest
        self._journal = journal
        self.metrics = metrics if metrics is not None else EngineMetrics()
        self._alert_threshold = missed_events_alert
        self._grace_s = not_found_grace_s
        self._settle_timeout_s = (
            settle_timeout_s if settle_timeout_s is not None else not_found_grace_s + 10.0
        )
        self._mismatch_checks = mismatch_checks
        self._overlap_ms = cursor_overlap_ms
        self._lookback_ms = lookback_ms
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._orders_to_query: dict[str, str] = {}  # orderId -> symbol
        self._order_query_misses: dict[str, int] = {}  # orderId -> passes that did not find it
        self._missed_this_pass: set[str] = set()
        self._wake = trio.Event()
        self._requested: str | None = None
        self.last_report: ReconcileReport | None = None

    # ------------------------------------------------------------------ on demand

    def request(self, trigger: str) -> None:
        """Ask :meth:`run_periodic` for a pass now (coalesced with any pending request)."""
        self._requested = self._requested or trigger
        self._wake.set()

    def request_order_query(self, order_id: str, symbol: str) -> None:
        """An execution named an order the engine does not track: query and adopt it soon."""
        self._orders_to_query[order_id] = symbol
        self.request("unknown_order")

    async def run_periodic(
        self, interval_s: float, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Reconcile every ``interval_s`` and on request, until cancelled.

        A pass that fails on the venue (REST errors, an incomplete settle) is logged and counted
        and the next one comes at the next interval; anything else is a bug and propagates.
        """
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        task_status.started()
        while True:
            with trio.move_on_after(interval_s):
                await self._wake.wait()
            trigger = self._requested or "periodic"
            self._requested = None
            self._wake = trio.Event()
            try:
                await self.reconcile(trigger)
            except (ReconcileError, *_VENUE_ERRORS) as exc:
                log.warning("reconcile_pass_failed", trigger=trigger, error=repr(exc))

    async def on_private_ready(self) -> None:
        """The private stream's ``on_ready`` hook: reconcile before trading resumes.

        Raises (gate left closed) if the pass fails, so the stream's supervisor restarts it.
        """
        await self.reconcile("private_connect")

    # ------------------------------------------------------------------ one pass

    async def reconcile(self, trigger: str, *, gate: bool | None = None) -> ReconcileReport:
        """One reconciliation (see the module docstring); raises if it could not finish.

        ``gate`` (default: ``trigger in GATING_TRIGGERS``) closes the trading gate for the pass
        and opens it only on success.
        """
        gating = trigger in GATING_TRIGGERS if gate is None else gate
        state = self._state
        if gating:
            state.gate.block(f"reconciling ({trigger})")
        started = trio.current_time()
        finished = False
        try:
            async with state.lock:
                report = await self._pass(trigger, started)
            finished = True
        except Exception as exc:
            result = "incomplete" if isinstance(exc, ReconcileIncomplete) else "failed"
            self.metrics.reconciles.labels(trigger, result).inc()
            self.metrics.reconcile_duration.observe(trio.current_time() - started)
            log.error("reconcile_failed", trigger=trigger, result=result, error=repr(exc))
            raise
        finally:
            # Cancellation included: the gate is never left open on a half-seen state.
            if gating and not finished:
                state.gate.block(f"reconcile failed ({trigger})")
        self.metrics.reconciles.labels(trigger, "ok" if report.complete else "incomplete").inc()
        if gating:
            if not report.complete:
                state.gate.block(f"reconcile incomplete ({trigger})")
                log.error(
                    "reconcile_incomplete",
                    trigger=trigger,
                    unresolved=list(report.unresolved),
                    missing_fill_orders=list(report.missing_fill_orders),
                )
                raise ReconcileIncomplete(report)
            state.gate.open()
        return report

    async def _pass(self, trigger: str, started: float) -> ReconcileReport:
        state = self._state
        deadline = started + self._settle_timeout_s
        attempts = 0
        mismatch_seen = 0
        while True:
            attempts += 1
            truth = await self._fetch()
            plan = plan_reconcile(
                state.tracker,
                state.portfolio,
                state.exec_cursor_ms,
                truth,
                now=trio.current_time(),
                not_found_grace_s=self._grace_s,
            )
            if plan.ready:
                break
            delay = _RETRY_BACKOFF.delay(attempts - 1, self._rng)
            in_time = trio.current_time() + delay < deadline
            if plan.fail_closed:
                mismatch_seen += 1
            if not plan.complete and in_time:
                pass  # orders within their grace, or fills not listed yet: look again
            elif plan.fail_closed and mismatch_seen < self._mismatch_checks and in_time:
                pass  # a disagreement must survive a fresh look (fills race the fetches)
            else:
                break
            log.info(
                "reconcile_retry",
                trigger=trigger,
                attempt=attempts,
                unresolved=list(plan.unresolved),
                missing_fills=len(plan.missing_fills),
                mismatches=len(plan.position_mismatches),
                delay_s=round(delay, 3),
            )
            await trio.sleep(delay)

        old_cursor = state.exec_cursor_ms
        unordered = state.portfolio.unordered_fills
        applied = apply_plan(plan, state.tracker, state.portfolio, now=trio.current_time())
        note_unordered_fills(
            self.metrics, unordered, state.portfolio.unordered_fills, source="reconcile"
        )
        self._journal_applied(applied)
        self._settle_order_queries()
        self._after_apply(truth, plan, applied)
        duration = trio.current_time() - started
        report = ReconcileReport(
            trigger=trigger,
            complete=plan.complete,
            fail_closed=state.fail_closed,
            missed_fills=plan.missed_fills,
            missed_events=plan.missed_events,
            gap_ms=plan.gap_ms,
            duration_s=duration,
            attempts=attempts,
            adopted=tuple(
                ext.order.order_link_id or f"#{ext.order.order_id}" for ext in plan.adopt
            ),
            lost=tuple(lost.key for lost in plan.lost),
            unresolved=plan.unresolved,
            missing_fill_orders=tuple(sorted(plan.missing_fills)),
            mismatches=plan.position_mismatches,
            applied_executions=len(applied.applied_executions),
            changed_orders=len(applied.changed_orders),
            cursor_ms=state.exec_cursor_ms,
        )
        self._observe(report)
        log.info(
            "reconcile_done",
            trigger=trigger,
            complete=report.complete,
            fail_closed=report.fail_closed,
            missed_fills=report.missed_fills,
            missed_events=report.missed_events,
            gap_ms=report.gap_ms,
            duration_s=round(duration, 3),
            attempts=attempts,
            adopted=len(report.adopted),
            lost=len(report.lost),
            cursor_from=old_cursor,
            cursor_to=report.cursor_ms,
        )
        self.last_report = report
        return report

    # ------------------------------------------------------------------ fetch

    async def _fetch(self) -> ExchangeTruth:
        """Everything the plan needs, from REST (see the module docstring for the order)."""
        rest = self._rest
        tracker = self._state.tracker
        open_orders = tuple(await rest.open_orders())
        reported: set[str] = set()
        for order in open_orders:
            tracked = tracker.lookup(order)
            if tracked is not None:
                reported.add(tracked.key)

        queried: dict[str, Order | None] = {}
        in_flight = self._state.creates_in_flight
        for tracked in tracker.non_final():
            if tracked.key in reported or tracked.state is OrderState.PENDING:
                continue  # reported already / not sent yet (the router sends it in one step)
            if tracked.order_link_id:
                found = await rest.query_order(link_id=tracked.order_link_id, symbol=tracked.symbol)
            else:
                assert tracked.order_id is not None  # keys without a link id carry the orderId
                found = await rest.query_order(order_id=tracked.order_id, symbol=tracked.symbol)
            if found is None and tracked.key in in_flight:
                # Its create is still on the wire: "not found" proves nothing yet. Left out of
                # `queried`, the plan reports it unresolved (a gating pass waits for it).
                log.info("reconcile_create_in_flight", order_link_id=tracked.key)
                continue
            queried[tracked.key] = found

        self._missed_this_pass.clear()
        for order_id, symbol in dict(self._orders_to_query).items():
            if tracker.by_order_id(order_id) is not None:
                continue  # tracked meanwhile (_settle_order_queries forgets it)
            found = await rest.query_order(order_id=order_id, symbol=symbol)
            if found is None:
                self._missed_this_pass.add(order_id)
            else:
                queried.setdefault(found.order_link_id or f"#{found.order_id}", found)

        start = execution_fetch_start(self._state.exec_cursor_ms, overlap_ms=self._overlap_ms)
        if start is None:
            start = max(0, rest.server_clock() - self._lookback_ms)
        executions = list(await rest.executions(start))
        snapshots = [*open_orders, *(o for o in queried.values() if o is not None)]
        symbols = {o.order_id: o.symbol for o in snapshots}
        for order_id in orders_missing_fills(self._state.portfolio, snapshots, executions):
            # The listing by time may not show this order's fills yet (it lags), and the cursor
            # may already be past them: ask for them by orderId, which does not depend on it.
            known = tracker.by_order_id(order_id)
            symbol_of = symbols.get(order_id) or (None if known is None else known.symbol)
            executions.extend(await rest.order_executions(order_id, symbol=symbol_of))
        positions = tuple(await rest.positions())
        wallet = await rest.wallet()
        return ExchangeTruth(
            open_orders=open_orders,
            queried=queried,
            executions=tuple(executions),
            positions=positions,
            wallet=wallet,
        )

    def _settle_order_queries(self) -> None:
        """After a pass is applied: forget the unknown orders now tracked (adopted); count a
        miss for those no query found, and give one up after :data:`UNKNOWN_ORDER_PASSES`."""
        tracker = self._state.tracker
        for order_id in list(self._orders_to_query):
            if tracker.by_order_id(order_id) is not None:
                self._forget_order_query(order_id)
            elif order_id in self._missed_this_pass:
                misses = self._order_query_misses.get(order_id, 0) + 1
                self._order_query_misses[order_id] = misses
                if misses >= UNKNOWN_ORDER_PASSES:
                    log.warning("unknown_order_not_found", order_id=order_id, passes=misses)
                    self._forget_order_query(order_id)
        self._missed_this_pass.clear()

    def _forget_order_query(self, order_id: str) -> None:
        self._orders_to_query.pop(order_id, None)
        self._order_query_misses.pop(order_id, None)

    # ------------------------------------------------------------------ apply

    def _journal_applied(self, applied: AppliedPlan) -> None:
        """Executions first, then each touched symbol's baseline, orders, and the cursor last.

        Baselines go after all executions of the pass: a baseline must include every execution
        journaled before it, and apply_plan has already booked them all.
        """
        journal = self._journal
        portfolio = self._state.portfolio
        touched: set[str] = set()
        for e in applied.applied_executions:
            journal.record_execution(e)
            touched.add(e.symbol)
        for symbol in sorted(touched):
            journal.record_position(portfolio.position(symbol))
        if applied.changed_orders:
            journal.record_orders(applied.changed_orders)
        if applied.new_cursor is not None:
            journal.set_cursor(applied.new_cursor)
            current = self._state.exec_cursor_ms
            self._state.exec_cursor_ms = (
                applied.new_cursor if current is None else max(current, applied.new_cursor)
            )

    def _after_apply(self, truth: ExchangeTruth, plan: ReconcilePlan, applied: AppliedPlan) -> None:
        state = self._state
        metrics = self.metrics
        if truth.wallet is not None:
            state.wallet = truth.wallet
        self._store_positions(truth.positions)

        for e in applied.applied_executions:
            count_execution(state, metrics, e, source="reconcile")
            log.warning(
                "missed_execution_applied",
                exec_id=e.exec_id,
                order_link_id=e.order_link_id,
                symbol=e.symbol,
                side=e.side.value,
                qty=str(e.exec_qty),
                price=str(e.exec_price),
                exec_time=e.exec_time,
            )
        for ext in plan.adopt:
            state.counters.external_orders += 1
            metrics.external_orders.labels("reconcile").inc()
            log.warning(
                "external_order_adopted",
                source="reconcile",
                key=ext.order.order_link_id or f"#{ext.order.order_id}",
                order_id=ext.order.order_id,
                symbol=ext.order.symbol,
                side=ext.order.side.value,
                qty=str(ext.order.qty),
                status=ext.order.order_status.value,
                reason=ext.reason,
            )
        for lost in plan.lost:
            state.counters.orders_lost += 1
            log.warning("order_lost", key=lost.key, reason=lost.reason, source="reconcile")
        for conflict in plan.conflicts:
            metrics.order_conflicts.inc()
            log.warning(
                "order_conflict",
                key=conflict.key,
                local_state=conflict.local.state.value,
                exchange_status=conflict.order.order_status.value,
            )

        size_mismatches = [m for m in plan.position_mismatches if m.kind is MismatchKind.SIZE]
        for m in plan.position_mismatches:
            level = log.error if m.kind is MismatchKind.SIZE else log.warning
            level(
                "position_mismatch",
                symbol=m.symbol,
                kind=m.kind.value,
                local_size=str(m.local_size),
                exchange_size=str(m.exchange_size),
                local_entry=str(m.local_entry),
                exchange_entry=str(m.exchange_entry),
            )
            if m.kind is MismatchKind.SIZE:
                metrics.position_mismatches.labels(m.symbol).inc()
                metrics.alerts.labels("position_mismatch").inc()
        if plan.fail_closed:
            if size_mismatches:
                detail = ", ".join(
                    f"{m.symbol} local={m.local_size} exchange={m.exchange_size}"
                    for m in size_mismatches
                )
                reason = f"position mismatch after reconciliation: {detail}"
            else:
                keys = ", ".join(c.key for c in plan.conflicts)
                reason = f"exchange reports live orders the engine believes final: {keys}"
            state.set_fail_closed(reason)
        metrics.fail_closed.set(0 if state.fail_closed is None else 1)

    def _store_positions(self, positions: Iterable[Position]) -> None:
        """The exchange's positions; a symbol absent from the settle-coin listing is flat."""
        state = self._state
        listed = {p.symbol: p for p in positions}
        for symbol in set(state.exchange_positions) - set(listed):
            listed[symbol] = Position(symbol, None, ZERO, ZERO)
        state.exchange_positions.update(listed)

    def _observe(self, report: ReconcileReport) -> None:
        state = self._state
        metrics = self.metrics
        state.counters.reconciles += 1
        state.counters.missed_fills += report.missed_fills
        metrics.reconcile_duration.observe(report.duration_s)
        metrics.missed_fills.inc(report.missed_fills)
        metrics.missed_events.inc(report.missed_events)
        metrics.reconcile_gap.set(report.gap_ms / 1000.0)
        if report.missed_events > self._alert_threshold:
            metrics.alerts.labels("missed_events").inc()
            log.error(
                "missed_events_alert",
                trigger=report.trigger,
                missed_events=report.missed_events,
                missed_fills=report.missed_fills,
                threshold=self._alert_threshold,
                gap_ms=report.gap_ms,
            )
        elif report.missed_fills:
            log.warning(
                "missed_fills",
                trigger=report.trigger,
                missed_fills=report.missed_fills,
                gap_ms=report.gap_ms,
            )
