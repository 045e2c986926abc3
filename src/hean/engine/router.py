"""The execution router: signals -> risk gate -> bounded intent channel -> journal -> venue.

::

    strategy ─submit(Signal)─▶ RiskGate ─▶ DuplicateGuard ─send_nowait─▶ [intent channel]
        ─▶ run(): gate open? create slot free? ─▶ (lock) gate, TTL, risk re-checked, slot taken
              ─▶ journal(intent, IN_FLIGHT) ─▶ POST /v5/order/create      (no await in between)
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
* **Decide after the wait, send at once.** The REST rate limiter can hold a create for seconds
  (a full window) or minutes (a 10006, an IP ban). The router waits for a free create slot
  *before* deciding: then, under the state lock and with no await until the request leaves, it
  re-checks the gate, the TTL and the risk halt, takes the slot, journals the intent and stamps
  ``Sent``. A create therefore never leaves after the gate closed or its TTL passed, and the
  NotFound grace counts from when the request really left. While the create is awaited its key is
  in :attr:`EngineState.creates_in_flight`, and no NotFound (reconciliation, cancel refresh)
  declares it lost meanwhile.

Cancels (a cancel is idempotent; repeating one is always safe):

* :meth:`ExecutionRouter.cancel_order` stamps ``cancel_requested_at`` and sends one cancel.
* A cancel can fail (retries exhausted) or arrive before the create lands (110001: "no such
  order"), leaving the order resting with ``cancel_requested_at`` set — and the strategy no longer
  counts it as a quote. So the cancel is sent again: at once when the create's ack arrives after
  the cancel was requested, and by a background task for any order still resting
  ``cancel_retry_s`` after the last cancel sent for it.
* :meth:`ExecutionRouter.cancel_all_resting` (shutdown, crash cleanup) re-sends the cancel of every
  order still resting after a refresh until all are final or the deadline passes; graceful
  shutdown first calls :meth:`ExecutionRouter.stop_dispatch`, so nothing is placed behind it and
  a create already on the wire gets its answer before the cancels go.

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

from hean.bybit import rest as rest_api
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
from hean.engine.metrics import ChannelMonitor, EngineMetrics
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

__all__ = [
    "DEFAULT_CANCEL_RETRY_S",
    "DEFAULT_RESOLVE_BACKOFF",
    "CancelReport",
    "ExecutionRouter",
    "SubmitResult",
]

log = structlog.get_logger("hean.engine.router")

DEFAULT_RESOLVE_BACKOFF: Final = Backoff(base_s=0.25, cap_s=5.0, multiplier=2.0, jitter=0.3)
"""Delay between queries settling an unknown create (capped: a lost order is known after the
NotFound grace period, ~15 s, so the resolver never polls for long)."""

DEFAULT_CANCEL_RETRY_S: Final = 5.0
"""A resting order whose last cancel was sent this long ago gets the cancel again. A cancel that
worked is confirmed by the private stream within milliseconds; one still resting after seconds
was refused, failed, or arrived before its create landed."""

_CREATE: Final = rest_api.ORDER_CREATE  # the rate-limit key of order creates


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
        errors: ``{key: error}`` for cancels the venue refused or that failed, whose order was
            not confirmed final afterwards (a re-sent cancel that worked clears the entry).
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
        cancel_retry_s: a resting order whose cancel was sent this long ago gets it again.
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
        cancel_retry_s: float = DEFAULT_CANCEL_RETRY_S,
        rng: random.Random | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1 (a rendezvous channel would refuse all)")
        if not cancel_retry_s > 0:
            raise ValueError("cancel_retry_s must be positive")
        self._state = state
        self._rest = rest
        self._journal = journal
        self.risk = risk
        self.metrics = metrics if metrics is not None else EngineMetrics()
        self._guard = DuplicateGuard(duplicate_window_s)
        self._grace_s = not_found_grace_s
        self._backoff = resolve_backoff
        self._cancel_retry_s = cancel_retry_s
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._send, self._receive = trio.open_memory_channel[OrderIntent](queue_size)
        self._resolving: set[str] = set()
        self._queued: set[str] = set()  # link ids in the channel, not yet dispatched
        self._nursery: trio.Nursery | None = None
        self._cancel_sent: dict[str, float] = {}  # key -> when its last cancel was sent
        self._dispatch_stopped = False
        self._waiting: trio.CancelScope | None = None  # an intent waiting for gate/slot/lock
        self._placing: trio.Event | None = None  # set once the create on the wire is answered
        self._channel = ChannelMonitor(self.metrics, "intents", queue_size)
        gauge = self.metrics.trading_gate_open

        def show_gate(is_open: bool) -> None:
            gauge.set(1 if is_open else 0)

        self._gate_listener = show_gate
        state.gate.add_listener(show_gate)

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
        """Stop intake (later :meth:`submit` calls are refused, ``router_closed``) and detach from
        the shared gate. Idempotent; the app calls it when it is done with this router (one per
        trading attempt, so a listener left behind would pile up with every restart)."""
        self._send.close()
        self._state.gate.remove_listener(self._gate_listener)

    async def stop_dispatch(self) -> None:
        """Place nothing more: close intake, drop queued intents unsent, and return once the
        create already on the wire (if any) has its answer.

        Graceful shutdown calls it before :meth:`cancel_all_resting`, so no order is placed
        behind the cancels and an order whose create was in flight is known (acked, rejected or
        unknown) before they go. Resolvers and cancel retries keep running.
        """
        self._dispatch_stopped = True
        self.close()
        if self._waiting is not None:
            self._waiting.cancel()
        if self._placing is not None:
            await self._placing.wait()

    def _observe_channel(self) -> None:
        self._channel.observe(self._send.statistics().current_buffer_used)

    # ------------------------------------------------------------------ the loop

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Place queued intents one by one until cancelled (resolvers and cancel retries run in a
        child nursery). After :meth:`stop_dispatch` it places nothing but keeps resolving."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            # Orders left unresolved by a previous run of this task are settled again.
            for order in self._state.tracker.unresolved():
                self._spawn_resolver(order.key)
            nursery.start_soon(self._retry_cancels)
            task_status.started()
            try:
                async for intent in self._receive:
                    self._queued.discard(intent.order_link_id)
                    self._observe_channel()
                    if self._dispatch_stopped:
                        self._expire(intent, "shutdown")
                        continue
                    await self._dispatch(intent)
                # Intake closed and drained: nothing more to place; resolvers and cancel retries
                # still run until the app cancels the trading nursery.
                await trio.sleep_forever()
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
        """Admit the intent (gate, slot, TTL, risk), then place it at once."""
        with trio.CancelScope() as waiting:
            self._waiting = waiting
            try:
                tracked = await self._admit(intent)
            finally:
                self._waiting = None
        if waiting.cancelled_caught:
            self._expire(intent, "shutdown")  # stop_dispatch() while it waited: never sent
            return
        if tracked is not None:
            # No await between _admit's journal write/Sent stamp and the request leaving.
            await self._place(tracked)

    async def _admit(self, intent: OrderIntent) -> TrackedOrder | None:
        """Wait (within the TTL) for an open gate and a free create slot; then, under the state
        lock and without awaiting again, re-check everything, take the slot and journal the
        order IN_FLIGHT. None when the intent expired or was refused."""
        state = self._state
        while True:
            if intent.expired(trio.current_time()):
                self._expire(intent, self._expiry_reason())
                return None
            with trio.move_on_at(intent.expires_at):
                await state.gate.wait_open()
                # Wait out the rate limiter here, not inside place_order: what leaves must be
                # decided after the wait (the gate may close, the TTL pass meanwhile).
                await self._rest.wait_for_slot(_CREATE)
                # The reconciler holds the lock while it fetches truth: no new order meanwhile.
                async with state.lock:
                    if not state.gate.is_open or intent.expired(trio.current_time()):
                        continue
                    refusal = self._refusal(intent)
                    if refusal is not None:
                        self._refuse_intent(intent, refusal)
                        return None
                    if not self._rest.take_slot(_CREATE):
                        continue  # the limiter closed again meanwhile (a 10006 elsewhere)
                    return self._prepare(intent)

    def _expiry_reason(self) -> str:
        if not self._state.gate.is_open:
            return "gate_closed"
        if self._rest.slot_wait_s(_CREATE) > 0:
            return "rate_limited"
        return "ttl"

    def _refusal(self, intent: OrderIntent) -> RejectReason | None:
        """The last checks before an intent is sent (the state may have moved since submit)."""
        state = self._state
        if state.fail_closed is not None and not intent.reduce_only:
            return RejectReason.FAIL_CLOSED
        if self.risk.halted is not None:
            return RejectReason.HALTED
        block = self.risk.exposure_block  # e.g. a loss limit tripped while this intent queued
        if block is not None and not intent.reduce_only:
            return block.reason
        if intent.order_link_id in state.tracker:
            return RejectReason.DUPLICATE_LINK_ID
        return None

    def _prepare(self, intent: OrderIntent) -> TrackedOrder:
        """Journal the intent and its IN_FLIGHT order (durable before sending); synchronous."""
        state = self._state
        now = trio.current_time()
        self._journal.record_intent(intent)
        state.tracker.track_intent(intent, now)
        state.creates_in_flight.add(intent.order_link_id)
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
        """Send the create (its rate-limit slot is taken) and apply the answer."""
        placing = self._placing = trio.Event()
        try:
            await self._send_create(order)
        finally:
            self._state.creates_in_flight.discard(order.key)
            placing.set()
            self._placing = None
        after = self._state.tracker.get(order.key)
        if (
            after is not None
            and after.cancel_requested_at is not None
            and after.state.is_resting
            and self._nursery is not None
        ):
            # A cancel was requested while the create was on the wire (it met 110001, or has
            # not left yet): now that the order exists, cancel it for real.
            self._nursery.start_soon(self._resend_cancel, order.key, "acked_after_cancel")

    async def _send_create(self, order: TrackedOrder) -> None:
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
                slot_taken=True,
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
                        if self._cancel_pending(key):
                            # A cancel was requested before we knew the order existed.
                            await self._resend_cancel(key, "resolved_after_cancel")
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
        if key in self._state.creates_in_flight:
            return False  # the create is still awaited: a NotFound now proves nothing
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
        The cancel itself is confirmed by the private stream or :meth:`cancel_all_resting`; an
        order still resting ``cancel_retry_s`` later gets the cancel again (see the module
        docstring), so a failed or early cancel is never forgotten.
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
        self._cancel_sent[order.key] = trio.current_time()
        by_link = bool(order.order_link_id)
        try:
            await self._rest.cancel_order(
                order.symbol,
                order_link_id=order.order_link_id if by_link else None,
                order_id=None if by_link else order.order_id,
            )
        except OrderNotFoundError:
            # Already final (a fill won the race) or not landed (yet): the query decides. An
            # order that lands later is still resting with its cancel requested: it gets the
            # cancel again (_retry_cancels, cancel_all_resting, or at once on its ack).
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

    def _cancel_pending(self, key: str) -> bool:
        """Resting although its cancel was requested: the cancel must (still) be sent."""
        order = self._state.tracker.get(key)
        return (
            order is not None and order.cancel_requested_at is not None and order.state.is_resting
        )

    async def _resend_cancel(self, key: str, source: str) -> str | None:
        """Send the cancel of a resting order again (idempotent); error text as _send_cancel."""
        if not self._cancel_pending(key):
            return None
        order = self._state.tracker[key]
        self.metrics.cancel_retries.labels(source).inc()
        log.info(
            "order_cancel_retry",
            order_link_id=key,
            source=source,
            state=order.state.value,
            requested_s_ago=round(trio.current_time() - (order.cancel_requested_at or 0.0), 3),
        )
        return await self._send_cancel(order)

    def _cancels_due(self, now: float) -> list[str]:
        """Keys whose cancel was requested, still resting, last cancel >= cancel_retry_s ago."""
        due: list[str] = []
        live: set[str] = set()
        for order in self._state.tracker.non_final():
            live.add(order.key)
            if order.cancel_requested_at is None or not order.state.is_resting:
                continue
            last = self._cancel_sent.get(order.key, order.cancel_requested_at)
            if now - last >= self._cancel_retry_s:
                due.append(order.key)
        for key in set(self._cancel_sent) - live:
            del self._cancel_sent[key]  # final now: nothing more to cancel
        return due

    async def _retry_cancels(self) -> None:
        """Background task: re-send the cancel of every order still resting ``cancel_retry_s``
        after its last cancel (a cancel that failed, or met 110001 before the create landed).
        Without it such an order would rest unwatched: the strategy counts it as "cancelling"
        and quotes beside it."""
        tick = min(1.0, self._cancel_retry_s / 2)
        while True:
            await trio.sleep(tick)
            for key in self._cancels_due(trio.current_time()):
                await self._resend_cancel(key, "still_resting")

    async def _refresh(self, key: str) -> None:
        """Query one order and apply the answer (NotFound honours the grace period and is not
        believed at all while the order's create is still awaited)."""
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
        elif order.state is not OrderState.PENDING and key not in self._state.creates_in_flight:
            self._apply(key, NotFound(at=now, grace_s=self._grace_s))

    async def cancel_all_resting(
        self, *, timeout_s: float | None = None, include_external: bool = False
    ) -> CancelReport:
        """Cancel every non-final order we own and confirm each by query.

        Sends one cancel per order (by orderLinkId), then, until all are final or ``timeout_s``
        passes: queries the ones not confirmed, and sends the cancel again to each that is still
        resting (the first failed, or met 110001 because the create had not landed yet; a cancel
        is idempotent). Orders that appear meanwhile (a create answered late) are included.
        Returns what was confirmed. The caller shields the call for shutdown
        (``trio.move_on_after(t, shield=True)``); ``timeout_s`` lets it get a report back before
        its own deadline. Adopted external orders are left alone unless ``include_external``.
        """
        deadline = trio.current_time() + timeout_s if timeout_s is not None else float("inf")
        keys: list[str] = []
        errors: dict[str, str] = {}
        with trio.move_on_at(deadline):
            attempt = 0
            while True:
                for order in self._cancel_targets(include_external, exclude=keys):
                    keys.append(order.key)
                    await self._first_cancel(order.key, errors)
                pending = self._not_final(tuple(keys))
                for key in pending:
                    await self._refresh(key)
                if not self._not_final(tuple(keys)) and not self._cancel_targets(
                    include_external, exclude=keys
                ):
                    break
                await trio.sleep(self._backoff.delay(attempt, self._rng))
                attempt += 1
                for key in self._not_final(tuple(keys)):
                    if self._cancel_pending(key):
                        error = await self._resend_cancel(key, "cancel_all")
                        if error is None:
                            errors.pop(key, None)
                        else:
                            errors[key] = error
        requested = tuple(keys)
        unconfirmed = self._not_final(requested)
        confirmed = tuple(k for k in requested if k not in unconfirmed)
        errors = {k: v for k, v in errors.items() if k in unconfirmed}
        report = CancelReport(requested, confirmed, unconfirmed, errors)
        log.info(
            "cancel_all_resting_done",
            requested=len(requested),
            confirmed=len(confirmed),
            unconfirmed=list(unconfirmed),
            errors=len(errors),
        )
        return report

    def _cancel_targets(self, include_external: bool, *, exclude: list[str]) -> list[TrackedOrder]:
        skip = set(exclude)
        return [
            o
            for o in self._state.tracker.non_final()
            if (include_external or not o.is_external) and o.key not in skip
        ]

    async def _first_cancel(self, key: str, errors: dict[str, str]) -> None:
        current = self._state.tracker.get(key)
        if current is None or current.state.is_final:
            return
        self._apply(key, CancelRequested(at=trio.current_time()))
        if self._state.tracker[key].state is OrderState.WITHDRAWN:
            self.metrics.cancel_requests.labels("withdrawn").inc()
            return
        error = await self._send_cancel(self._state.tracker[key])
        if error is not None:
            errors[key] = error

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
