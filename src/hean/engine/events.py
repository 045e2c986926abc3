"""The private-event applier: order/execution/position/wallet pushes -> state + journal.

The private stream's reader hands every push to a bounded, lossless channel
(:class:`hean.engine.ws_session.PrivateStream`); :meth:`PrivateEventApplier.run` consumes it and
applies each message synchronously under :attr:`EngineState.lock` (so the reconciler can hold the
consumer while it fetches REST truth). Applying is idempotent, because the stream, REST queries
and reconciliation all deliver the same facts, possibly twice and out of order:

* **orders** go through the order state machine; stale and duplicate snapshots are ignored by it,
  and every change is journaled. An order the engine does not know is adopted as *external* and
  logged (it was placed outside the engine, or the journal lost it).
* **executions** are booked by the portfolio once per ``execId`` and journaled with the symbol's
  new position baseline in the same transaction. An execution whose order is unknown is still
  booked (fills are the truth) and the order is handed to ``on_unknown_order`` so the reconciler
  queries and adopts it. ``execution.fast`` pushes are ignored: they carry no fee, and the full
  ``execution`` push for the same ``execId`` follows.
* **positions** are stored as the exchange's view; a difference with the local position is normal
  for a moment (the position push often beats the execution push), so only reconciliation, after
  every fill has been fetched, may call it a mismatch and fail closed.
* **wallets** replace the stored wallet.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
import trio

from hean.bybit.types import Execution, Order, Position, PrivateMessage, Wallet
from hean.engine.journal import Journal
from hean.engine.metrics import EngineMetrics, note_unordered_fills
from hean.engine.orders import ExchangeUpdate, Outcome, Transition
from hean.engine.portfolio import is_position_fill
from hean.engine.state import EngineState

__all__ = ["PrivateEventApplier", "record_transition"]

log = structlog.get_logger("hean.engine.events")

UnknownOrderHook = Callable[[str, str], None]
"""``hook(order_id, symbol)``: an execution arrived for an order the engine does not track."""


def record_transition(journal: Journal, transition: Transition) -> None:
    """Journal the order after ``transition`` if it changed (the one way shells journal orders)."""
    if transition.changed:
        journal.record_order(transition.after)


def count_execution(
    state: EngineState, metrics: EngineMetrics, e: Execution, *, source: str
) -> None:
    """Count one newly applied execution (stream or reconciliation) in the status counters and
    the metrics: every execution as applied, fills also by side and liquidity."""
    metrics.executions_applied.labels(source).inc()
    if not is_position_fill(e):
        return
    liquidity = "maker" if e.is_maker else "taker"
    metrics.fills.labels(e.symbol, e.side.value, liquidity).inc()
    state.counters.fills += 1
    if e.is_maker:
        state.counters.maker_fills += 1
    else:
        state.counters.taker_fills += 1


class PrivateEventApplier:
    """Applies private pushes to :class:`EngineState` and the journal (see the module docstring).

    Args:
        state: the shared engine state.
        journal: where every change is recorded.
        metrics: shared engine metrics.
        on_unknown_order: called for an execution of an order the engine does not track
            (the app wires :meth:`hean.engine.reconciler.Reconciler.request_order_query`).
        source: the ``source`` label of execution metrics (``stream``).
    """

    def __init__(
        self,
        state: EngineState,
        journal: Journal,
        *,
        metrics: EngineMetrics | None = None,
        on_unknown_order: UnknownOrderHook | None = None,
        source: str = "stream",
    ) -> None:
        self._state = state
        self._journal = journal
        self.metrics = metrics if metrics is not None else EngineMetrics()
        self._on_unknown_order = on_unknown_order
        self._source = source

    async def run(
        self,
        receive: trio.MemoryReceiveChannel[PrivateMessage],
        *,
        on_received: Callable[[int], None] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Apply every message from ``receive`` until the channel ends (or cancellation).

        The channel belongs to the application (it outlives stream reconnects), so it is not
        closed here. ``on_received`` gets the buffer use after each receive (the channel gauge).
        """
        task_status.started()
        while True:
            try:
                msg = await receive.receive()
            except trio.EndOfChannel:
                return
            if on_received is not None:
                on_received(receive.statistics().current_buffer_used)
            async with self._state.lock:
                self.apply(msg)

    def apply(self, msg: PrivateMessage) -> None:
        """Apply one push (idempotent: applying it again changes nothing)."""
        topic = msg.topic
        if topic.startswith("execution.fast"):
            return
        kind = topic.split(".", 1)[0]
        self.metrics.private_events.labels(kind).inc()
        for item in msg.data:
            if isinstance(item, Order):
                self._on_order(item)
            elif isinstance(item, Execution):
                self._on_execution(item)
            elif isinstance(item, Position):
                self._state.exchange_positions[item.symbol] = item
            elif isinstance(item, Wallet):
                self._on_wallet(item)

    # ------------------------------------------------------------------ orders

    def _on_order(self, order: Order) -> None:
        state = self._state
        now = trio.current_time()
        state.portfolio.observe_order(order)
        tracked = state.tracker.lookup(order)
        if tracked is None:
            adopted = state.tracker.adopt(
                order, now, "pushed by the private stream, unknown to the journal"
            )
            self._journal.record_order(adopted)
            state.counters.external_orders += 1
            self.metrics.external_orders.labels("stream").inc()
            log.warning(
                "external_order_adopted",
                source="stream",
                key=adopted.key,
                order_id=order.order_id,
                symbol=order.symbol,
                side=order.side.value,
                qty=str(order.qty),
                status=order.order_status.value,
            )
            return
        transition = state.tracker.apply(tracked.key, ExchangeUpdate(order, now))
        record_transition(self._journal, transition)
        if transition.outcome is Outcome.CONFLICT:
            self.metrics.order_conflicts.inc()
            log.warning(
                "order_update_conflict",
                key=tracked.key,
                local_state=tracked.state.value,
                exchange_status=order.order_status.value,
            )
        elif transition.state_changed:
            log.info(
                "order_state",
                key=tracked.key,
                state=transition.after.state.value,
                cum_exec_qty=str(order.cum_exec_qty),
            )

    # ------------------------------------------------------------------ executions

    def _on_execution(self, e: Execution) -> None:
        state = self._state
        unordered = state.portfolio.unordered_fills
        if not state.portfolio.apply_execution(e):
            self.metrics.executions_duplicate.labels(self._source).inc()
            return
        note_unordered_fills(
            self.metrics, unordered, state.portfolio.unordered_fills, source=self._source
        )
        self._journal.record_execution(e, state.portfolio.position(e.symbol))
        count_execution(state, self.metrics, e, source=self._source)
        log.info(
            "execution_applied",
            exec_id=e.exec_id,
            order_link_id=e.order_link_id,
            symbol=e.symbol,
            side=e.side.value,
            qty=str(e.exec_qty),
            price=str(e.exec_price),
            liquidity="maker" if e.is_maker else "taker",
            position=str(state.portfolio.position(e.symbol).size),
        )
        if not self._knows_order(e):
            log.warning(
                "execution_for_unknown_order",
                exec_id=e.exec_id,
                order_id=e.order_id,
                symbol=e.symbol,
            )
            if self._on_unknown_order is not None and e.order_id:
                self._on_unknown_order(e.order_id, e.symbol)

    def _knows_order(self, e: Execution) -> bool:
        tracker = self._state.tracker
        if e.order_link_id and e.order_link_id in tracker:
            return True
        if not e.order_id or not is_position_fill(e):
            # A funding/settlement charge belongs to no order. Bybit still fills in orderId on
            # such rows (a synthetic "1682553600-BTCUSDT-592334-Sell" or a UUID, docs
            # v5/pre-upgrade/execution.mdx), so an orderId alone does not name a real order.
            return True
        return tracker.by_order_id(e.order_id) is not None or f"#{e.order_id}" in tracker

    # ------------------------------------------------------------------ wallet

    def _on_wallet(self, wallet: Wallet) -> None:
        current = self._state.wallet
        if current is None or wallet.account_type == current.account_type:
            self._state.wallet = wallet
