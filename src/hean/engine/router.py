"""The execution router: signals -> risk gate -> bounded intent channel -> journal -> venue.

::

    strategy ─submit(Signal)─▶ RiskGate ─▶ DuplicateGuard ─send_nowait─▶ [intent channel]
        ─▶ run(): TTL? gate open? ─▶ journal(intent, IN_FLIGHT) ─▶ POST /v5/order/create
              ack ─▶ NEW            rejected ─▶ REJECTED (final)
              unknown (timeout, 10000/10016, 5xx, lost response) or 110072 ─▶ UNKNOWN
                  └─▶ resolver task: query by orderLinkId until settled (NotFound only after grace)

Rules it keeps (ARCHITECTURE §3-§4):

* **Backpressure, not queues of stale orders.** :meth:`ExecutionRouter.submit` is synchronous and
  never blocks: a full channel refuses the signal (``channel_full``, counted). Intents carry a TTL
  (``intent_ttl_s``); one that is still queued — or still waiting for the gate — when it expires is
  dropped unsent and counted.
* **Journal first.** The intent and the order (IN_FLIGHT) are committed to the journal before the
  create leaves, so every order the exchange knows is either journaled or shows up in
  reconciliation as external.
* **Never place twice.** The ``orderLinkId`` is deterministic (strategy, signal, purpose); a create
  whose answer is lost is never re-sent: it is settled by query. A 110072 answer means an earlier
  attempt landed: also settled by query. The fingerprint guard refuses an identical order
  (symbol, side, qty, price) within ``duplicate_window_s``.
* **Blocked while state is unknown.** Nothing is placed while the :class:`TradingGate` is closed
  (private stream down, reconciliation running or failed). Orders are placed one at a time, in
  channel order; each create is bounded by the REST client's request timeout, and resolution of
  unknown outcomes runs in background tasks so one lost answer does not stall the pipeline.

Cancellation: cancelling :meth:`run` mid-create leaves that order IN_FLIGHT; the next
reconciliation queries it by ``orderLinkId`` (a restart from the journal turns it UNKNOWN first).
Intents still in the channel are simply never sent.
"""

from __future__ import annotations

import random
from typing import Final

import structlog
import trio
from attrs import frozen

from hean.bybit.errors import (
    BybitError,
    DuplicateOrderLinkIdError,
    OrderNotFoundError,
    OutcomeUnknownError,
)
from hean.bybit.types import Order
from hean.bybit.wire import WireError
from hean.engine.backoff import Backoff
from hean.engine.events import record_transition
from hean.engine.intents import DEFAULT_DUPLICATE_WINDOW_S, DuplicateGuard, OrderIntent, Signal
from hean.engine.journal import Journal
from hean.engine.metrics import CHANNEL_SATURATION_RATIO, EngineMetrics
from hean.engine.orders import (
    DEFAULT_NOT_FOUND_GRACE_S,
    Acked,
    CancelRequested,
    Event,
    ExchangeUpdate,
    NotFound,
    OrderState,
    Outcome,
    OutcomeUnknown,
    Rejected,
    Sent,
    TrackedOrder,
    Transition,
)
from hean.engine.rest_client import BybitRestClient
from hean.engine.risk_gate import RejectReason, RiskGate
from hean.engine.state import EngineState

__all__ = ["DEFAULT_RESOLVE_BACKOFF", "CancelReport", "ExecutionRouter", "SubmitResult"]

log = structlog.get_logger("hean.engine.router")

DEFAULT_RESOLVE_BACKOFF: Final = Backoff(base_s=0.25, cap_s=5.0, multiplier=2.0, jitter=0.3)
"""Delay between queries settling an unknown create (capped: a lost order is known after the
NotFound grace period, ~15 s, so the resolver never polls for long)."""


@frozen
class SubmitResult:
    """What :meth:`ExecutionRouter.submit` did with a signal."""

    accepted: bool
    order_link_id: str | None = None
    reason: RejectReason | None = None
    detail: str = ""


@frozen
class CancelReport:
    """What :meth:`ExecutionRouter.cancel_all_resting` did.

    Attributes:
        requested: keys of the orders a cancel was sent for (or withdrawn unsent).
        confirmed: keys now known final (by query, the stream, or a withdrawal).
        unconfirmed: keys still not known final when the deadline hit.
        errors: ``{key: error}`` for cancels the venue refused or that failed.
    """

    requested: tuple[str, ...]
    confirmed: tuple[str, ...]
    unconfirmed: tuple[str, ...]
    errors: dict[str, str]

    @property
    def complete(self) -> bool:
        return not self.unconfirmed


class ExecutionRouter:
    """Turns signals into orders at the venue; see the module docstring.

    Args:
        state: the shared engine state (tracker, portfolio, gate, instruments, tickers).
        rest: the venue's REST client.
        journal: the durable journal (intent before request).
        risk: the risk gate.
        metrics: shared engine metrics.
        queue_size: capacity of the bounded intent channel (``EngineConfig.intent_queue_size``).
        duplicate_window_s: fingerprint guard window (``EngineConfig.duplicate_window_s``).
        not_found_grace_s: how long a NotFound is not believed after a create was sent.
        resolve_backoff: delay policy between queries settling an unknown outcome.
        rng: jitter source (seed it in tests).
    """

    def __init__(
        self,
        state: EngineState,
        rest: BybitRestClient,
        journal: Journal,
        risk: RiskGate,
        *,
        metrics: EngineMetrics | None = None,
        queue_size: int = 64,
        duplicate_window_s: float = DEFAULT_DUPLICATE_WINDOW_S,
        not_found_grace_s: float = DEFAULT_NOT_FOUND_GRACE_S,
        resolve_backoff: Backoff = DEFAULT_RESOLVE_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1 (a rendezvous channel would refuse all)")
        self._state = state
        self._rest = rest
        self._journal = journal
        self.risk = risk
        self.metrics = metrics if metrics is not None else EngineMetrics()
        self._guard = DuplicateGuard(duplicate_window_s)
        self._grace_s = not_found_grace_s
        self._backoff = resolve_backoff
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._send, self._receive = trio.open_memory_channel[OrderIntent](queue_size)
        self._saturated = False
        self._resolving: set[str] = set()
        self._queued: set[str] = set()  # link ids in the channel, not yet dispatched
        self._nursery: trio.Nursery | None = None
        self.metrics.intent_channel_buffer_size.set(queue_size)
        self.metrics.intent_channel_buffer_used.set(0)
        gauge = self.metrics.trading_gate_open
        state.gate.add_listener(lambda is_open: gauge.set(1 if is_open else 0))

    # ------------------------------------------------------------------ intake

    def submit(self, signal: Signal) -> SubmitResult:
        """Gate ``signal`` and queue its intent; never blocks. Refusals are counted by reason."""
        state = self._state
        now = trio.current_time()
        decision = self.risk.check(
            signal,
            position=state.portfolio.position(signal.symbol),
            open_orders=state.tracker.non_final(signal.symbol),
            mark_price=state.mark_price(signal.symbol),
            instrument=state.instruments.get(signal.symbol),
            fail_closed=state.fail_closed is not None,
            now=now,
        )
        if decision.intent is None:
            assert decision.reason is not None
            return self._refuse(signal, decision.reason, decision.detail)
        intent = decision.intent
        if intent.order_link_id in state.tracker or intent.order_link_id in self._queued:
            return self._refuse(
                signal, RejectReason.DUPLICATE_LINK_ID, "this signal already has an order"
            )
        if not self._guard.check(intent.fingerprint, now):
            return self._refuse(signal, RejectReason.DUPLICATE, "identical order within window")
        try:
            self._send.send_nowait(intent)
        except trio.WouldBlock:
            self._guard.forget(intent.fingerprint)  # never sent: an identical retry may go
            return self._refuse(signal, RejectReason.CHANNEL_FULL, "intent channel full")
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._guard.forget(intent.fingerprint)
            return self._refuse(signal, RejectReason.ROUTER_CLOSED, "router is closed")
        self._queued.add(intent.order_link_id)
        state.counters.intents_accepted += 1
        self.metrics.intents_accepted.labels(intent.symbol, intent.side.value).inc()
        self._observe_channel()
        log.debug(
            "intent_queued",
            order_link_id=intent.order_link_id,
            symbol=intent.symbol,
            side=intent.side.value,
            qty=str(intent.qty),
            price=None if intent.price is None else str(intent.price),
        )
        return SubmitResult(True, intent.order_link_id)

    def _refuse(self, signal: Signal, reason: RejectReason, detail: str) -> SubmitResult:
        self._state.counters.intents_rejected += 1
        self.metrics.intents_rejected.labels(reason.value).inc()
        log.info(
            "intent_rejected",
            reason=reason.value,
            detail=detail,
            strategy=signal.strategy,
            signal_id=signal.signal_id,
            symbol=signal.symbol,
        )
        return SubmitResult(False, None, reason, detail)

    def close(self) -> None:
        """Stop intake: later :meth:`submit` calls are refused (``router_closed``)."""
        self._send.close()

    def _observe_channel(self) -> None:
        stats = self._send.statistics()
        used = stats.current_buffer_used
        self.metrics.intent_channel_buffer_used.set(used)
        saturated = used > CHANNEL_SATURATION_RATIO * stats.max_buffer_size
        if saturated and not self._saturated:
            self.metrics.channel_saturation.labels("intents").inc()
            log.warning(
                "channel_saturated", channel="intents", used=used, size=stats.max_buffer_size
            )
        self._saturated = saturated

    # ------------------------------------------------------------------ the loop

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Place queued intents one by one until cancelled (resolvers run in a child nursery)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            # Orders left unresolved by a previous run of this task are settled again.
            for order in self._state.tracker.unresolved():
                self._spawn_resolver(order.key)
            task_status.started()
            try:
                while True:
                    intent = await self._receive.receive()
                    self._queued.discard(intent.order_link_id)
                    self._observe_channel()
                    await self._dispatch(intent)
            finally:
                self._nursery = None

    def _expire(self, intent: OrderIntent, reason: str) -> None:
        self._guard.forget(intent.fingerprint)
        self._state.counters.intents_expired += 1
        self.metrics.intents_expired.labels(reason).inc()
        log.info(
            "intent_expired",
            reason=reason,
            order_link_id=intent.order_link_id,
            age_s=round(trio.current_time() - intent.created_at, 3),
            gate=self._state.gate.reason,
        )

    async def _dispatch(self, intent: OrderIntent) -> None:
        """Wait for the gate (within the intent's TTL), journal, place."""
        state = self._state
        tracked: TrackedOrder | None = None
        while True:
            if intent.expired(trio.current_time()):
                self._expire(intent, "ttl" if state.gate.is_open else "gate_closed")
                return
            with trio.move_on_at(intent.expires_at):
                await state.gate.wait_open()
                # The reconciler holds the lock while it fetches truth: no new order meanwhile.
                async with state.lock:
                    if not state.gate.is_open or intent.expired(trio.current_time()):
                        continue
                    tracked = self._prepare(intent)
                    break
        if tracked is not None:
            await self._place(tracked)

    def _prepare(self, intent: OrderIntent) -> TrackedOrder | None:
        """Last checks, then journal the intent and its IN_FLIGHT order (durable before sending)."""
        state = self._state
        if state.fail_closed is not None and not intent.reduce_only:
            self._refuse_intent(intent, RejectReason.FAIL_CLOSED)
            return None
        if self.risk.halted is not None:
            self._refuse_intent(intent, RejectReason.HALTED)
            return None
        if intent.order_link_id in state.tracker:
            self._refuse_intent(intent, RejectReason.DUPLICATE_LINK_ID)
            return None
        now = trio.current_time()
        self._journal.record_intent(intent)
        state.tracker.track_intent(intent, now)
        return self._apply(intent.order_link_id, Sent(at=now)).after

    def _refuse_intent(self, intent: OrderIntent, reason: RejectReason) -> None:
        self._guard.forget(intent.fingerprint)
        self._state.counters.intents_rejected += 1
        self.metrics.intents_rejected.labels(reason.value).inc()
        log.info("intent_rejected", reason=reason.value, order_link_id=intent.order_link_id)

    def _apply(self, key: str, event: Event) -> Transition:
        transition = self._state.tracker.apply(key, event)
        record_transition(self._journal, transition)
        return transition

    async def _place(self, order: TrackedOrder) -> None:
        intent = order.intent
        assert intent is not None
        key = order.key
        self._state.counters.orders_placed += 1
        self.metrics.orders_submitted.labels(intent.symbol, intent.side.value).inc()
        sent_at = trio.current_time()
        bound = log.bind(order_link_id=key, symbol=intent.symbol, side=intent.side.value)
        try:
            order_id, _ = await self._rest.place_order(
                symbol=intent.symbol,
                side=intent.side,
                order_type=intent.order_type,
                qty=intent.qty,
                order_link_id=intent.order_link_id,
                price=intent.price,
                time_in_force=intent.time_in_force,
                reduce_only=intent.reduce_only,
            )
        except DuplicateOrderLinkIdError:
            # 110072: an earlier attempt with this link id landed. Learn its state by query.
            self.metrics.order_outcomes.labels("duplicate_link_id").inc()
            bound.warning("order_duplicate_link_id")
            self._unknown(key, "110072 duplicate orderLinkId: an earlier attempt landed")
        except (OutcomeUnknownError, WireError) as exc:
            self.metrics.order_outcomes.labels("unknown").inc()
            bound.warning("order_outcome_unknown", error=repr(exc))
            self._unknown(key, type(exc).__name__)
        except BybitError as exc:
            # Every other Bybit answer means "not executed": the create is final.
            self.metrics.order_outcomes.labels("rejected").inc()
            self._state.counters.orders_rejected += 1
            bound.warning(
                "order_rejected",
                error=type(exc).__name__,
                ret_code=exc.ret_code,
                ret_msg=exc.ret_msg,
            )
            self._apply(key, Rejected(exc.ret_code, exc.ret_msg, at=trio.current_time()))
        else:
            now = trio.current_time()
            self.metrics.order_outcomes.labels("acked").inc()
            self.metrics.order_ack_latency.observe(now - sent_at)
            self._apply(key, Acked(order_id, at=now))
            bound.info("order_acked", order_id=order_id, latency_s=round(now - sent_at, 4))

    # ------------------------------------------------------------------ unknown outcomes

    def _unknown(self, key: str, reason: str) -> None:
        self._state.counters.orders_unknown += 1
        self._apply(key, OutcomeUnknown(at=trio.current_time(), reason=reason))
        self._spawn_resolver(key)

    def _spawn_resolver(self, key: str) -> None:
        if key in self._resolving or self._nursery is None:
            return  # already being resolved, or not running: reconciliation settles it
        self._resolving.add(key)
        self._nursery.start_soon(self._resolve, key)

    async def _resolve(self, key: str) -> None:
        """Query ``key`` by orderLinkId (with capped backoff) until its state is known."""
        try:
            attempt = 0
            while True:
                order = self._state.tracker.get(key)
                if order is None or not order.state.is_unresolved:
                    return
                try:
                    found = await self._rest.query_order(
                        link_id=order.order_link_id, symbol=order.symbol
                    )
                except (BybitError, WireError) as exc:
                    # The REST client already retried what it could; keep trying, more slowly.
                    log.info("order_resolve_query_failed", order_link_id=key, error=repr(exc))
                else:
                    if self._settle(key, found):
                        return
                await trio.sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1
        finally:
            self._resolving.discard(key)

    def _settle(self, key: str, found: Order | None) -> bool:
        """Apply one query answer; True once the order's existence is settled."""
        order = self._state.tracker.get(key)
        if order is None or not order.state.is_unresolved:
            return True  # the stream or a reconciliation settled it meanwhile
        now = trio.current_time()
        if found is not None:
            self._state.portfolio.observe_order(found)
            transition = self._apply(key, ExchangeUpdate(found, at=now))
            self.metrics.unknown_orders_resolved.labels("found").inc()
            log.info(
                "order_resolved",
                order_link_id=key,
                state=transition.after.state.value,
                order_id=found.order_id,
            )
            return True
        transition = self._apply(key, NotFound(at=now, grace_s=self._grace_s))
        if transition.outcome is Outcome.TOO_EARLY:
            return False
        self._state.counters.orders_lost += 1
        self.metrics.unknown_orders_resolved.labels("lost").inc()
        log.warning("order_lost", order_link_id=key, state=transition.after.state.value)
        return True

    # ------------------------------------------------------------------ cancels

    async def cancel_order(self, link_id: str) -> None:
        """Ask the venue to cancel one order (a PENDING one is withdrawn unsent).

        Final orders are left alone. A 110001 (unknown or already final) is settled by a query.
        The cancel itself is confirmed by the private stream or :meth:`cancel_all_resting`.
        """
        order = self._state.tracker.get(link_id)
        if order is None or order.state.is_final:
            return
        self._apply(link_id, CancelRequested(at=trio.current_time()))
        if self._state.tracker[link_id].state is OrderState.WITHDRAWN:
            self.metrics.cancel_requests.labels("withdrawn").inc()
            return
        await self._send_cancel(self._state.tracker[link_id])

    async def _send_cancel(self, order: TrackedOrder) -> str | None:
        """Send one cancel; returns an error text if the venue refused it or it failed."""
        by_link = bool(order.order_link_id)
        try:
            await self._rest.cancel_order(
                order.symbol,
                order_link_id=order.order_link_id if by_link else None,
                order_id=None if by_link else order.order_id,
            )
        except OrderNotFoundError:
            # Already final (a fill won the race) or never landed: the query decides.
            self.metrics.cancel_requests.labels("not_found").inc()
            await self._refresh(order.key)
            return None
        except (BybitError, WireError) as exc:
            self.metrics.cancel_requests.labels("error").inc()
            log.warning("order_cancel_failed", order_link_id=order.key, error=repr(exc))
            return repr(exc)
        self.metrics.cancel_requests.labels("ok").inc()
        log.info("order_cancel_requested", order_link_id=order.key)
        return None

    async def _refresh(self, key: str) -> None:
        """Query one order and apply the answer (NotFound honours the grace period)."""
        order = self._state.tracker.get(key)
        if order is None or order.state.is_final:
            return
        try:
            if order.order_link_id:
                found = await self._rest.query_order(
                    link_id=order.order_link_id, symbol=order.symbol
                )
            else:
                assert order.order_id is not None  # adopted orders without link id have one
                found = await self._rest.query_order(order_id=order.order_id, symbol=order.symbol)
        except (BybitError, WireError) as exc:
            log.info("order_query_failed", order_link_id=key, error=repr(exc))
            return
        order = self._state.tracker.get(key)
        if order is None or order.state.is_final:
            return
        now = trio.current_time()
        if found is not None:
            self._state.portfolio.observe_order(found)
            self._apply(key, ExchangeUpdate(found, at=now))
        elif order.state is not OrderState.PENDING:
            self._apply(key, NotFound(at=now, grace_s=self._grace_s))

    async def cancel_all_resting(
        self, *, timeout_s: float | None = None, include_external: bool = False
    ) -> CancelReport:
        """Cancel every non-final order we own, then confirm each by query.

        Sends one cancel per order (by orderLinkId), then polls the non-confirmed ones until all
        are final or ``timeout_s`` passes; returns what was confirmed. The caller shields the
        call for shutdown (``trio.move_on_after(t, shield=True)``); ``timeout_s`` lets it get a
        report back before its own deadline. Adopted external orders are left alone unless
        ``include_external``.
        """
        deadline = trio.current_time() + timeout_s if timeout_s is not None else float("inf")
        targets = [
            o for o in self._state.tracker.non_final() if include_external or not o.is_external
        ]
        keys = tuple(o.key for o in targets)
        errors: dict[str, str] = {}
        with trio.move_on_at(deadline):
            for order in targets:
                current = self._state.tracker.get(order.key)
                if current is None or current.state.is_final:
                    continue
                self._apply(order.key, CancelRequested(at=trio.current_time()))
                if self._state.tracker[order.key].state is OrderState.WITHDRAWN:
                    self.metrics.cancel_requests.labels("withdrawn").inc()
                    continue
                error = await self._send_cancel(self._state.tracker[order.key])
                if error is not None:
                    errors[order.key] = error
            attempt = 0
            while pending := self._not_final(keys):
                for key in pending:
                    await self._refresh(key)
                if not self._not_final(keys):
                    break
                await trio.sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1
        unconfirmed = self._not_final(keys)
        confirmed = tuple(k for k in keys if k not in unconfirmed)
        report = CancelReport(keys, confirmed, unconfirmed, errors)
        log.info(
            "cancel_all_resting_done",
            requested=len(keys),
            confirmed=len(confirmed),
            unconfirmed=list(unconfirmed),
            errors=len(errors),
        )
        return report

    def _not_final(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        tracker = self._state.tracker
        return tuple(k for k in keys if (o := tracker.get(k)) is not None and not o.state.is_final)

    # ------------------------------------------------------------------ introspection

    @property
    def resolving(self) -> frozenset[str]:
        """Keys whose unknown create outcome a resolver task is settling right now."""
        return frozenset(self._resolving)

    def pending_intents(self) -> int:
        return self._send.statistics().current_buffer_used
