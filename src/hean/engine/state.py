"""The one in-memory state the trading tasks share. No I/O.

:class:`EngineState` gathers the pure cores (:class:`~hean.engine.orders.OrderTracker`,
:class:`~hean.engine.portfolio.Portfolio`) with the little the shells need around them: the
:class:`TradingGate`, the fail-closed flag, the latest wallet, market snapshots for pricing
risk checks, the execution cursor and status counters.

Concurrency model: every task runs on one trio thread, so a synchronous block of code is atomic.
Only work that spans ``await`` points needs :attr:`EngineState.lock`: the reconciler holds it
while it fetches REST truth and applies its plan, so the private-event consumer (which takes it
per message) cannot change the state between the fetch and the plan, and the router (which takes
it before journaling a new order) does not start orders mid-reconciliation. Pushes that arrive
meanwhile wait in the private channel; none is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import structlog
import trio
from attrs import define

from hean.bybit.types import Instrument, Position, Ticker, Wallet
from hean.engine.journal import JournalState
from hean.engine.orders import OrderTracker
from hean.engine.portfolio import Portfolio

__all__ = ["EngineState", "StatusCounters", "TradingGate"]

log = structlog.get_logger("hean.engine.state")


class TradingGate:
    """The switch behind "orders are blocked while state is unknown" (ARCHITECTURE §2).

    Closed at construction (reason ``"startup"``): nothing may be placed before the first
    successful reconciliation. The app blocks it when the private stream drops; the reconciler
    opens it after a reconciliation that settled every order and fill. The router waits on
    :meth:`wait_open` before placing; intents whose TTL passes meanwhile are dropped and counted.
    """

    __slots__ = ("_listeners", "_opened", "_reason")

    def __init__(self, reason: str = "startup") -> None:
        self._reason: str | None = reason
        self._opened = trio.Event()
        self._listeners: list[Callable[[bool], None]] = []

    def add_listener(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(is_open)`` now and on every open/close (e.g. to drive a gauge)."""
        self._listeners.append(listener)
        listener(self.is_open)

    def remove_listener(self, listener: Callable[[bool], None]) -> None:
        """Stop calling ``listener`` (no-op if it is not registered)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener(self.is_open)

    @property
    def is_open(self) -> bool:
        return self._reason is None

    @property
    def reason(self) -> str | None:
        """Why the gate is closed (None while open)."""
        return self._reason

    def block(self, reason: str) -> None:
        """Close the gate (idempotent; the newest reason wins, for the logs and /health)."""
        was_open = self._reason is None
        self._reason = reason
        if was_open:
            self._opened = trio.Event()
            log.warning("trading_gate_closed", reason=reason)
            self._notify()

    def open(self) -> None:
        """Open the gate and wake every task waiting in :meth:`wait_open`."""
        was = self._reason
        self._reason = None
        self._opened.set()
        if was is not None:
            log.info("trading_gate_opened", was=was)
            self._notify()

    async def wait_open(self) -> None:
        """Return once the gate is open (at once, after a checkpoint, if it already is)."""
        while self._reason is not None:
            await self._opened.wait()
        await trio.lowlevel.checkpoint()


@define
class StatusCounters:
    """Running totals for the status line and the shutdown summary (the metrics hold the rest)."""

    intents_accepted: int = 0
    intents_rejected: int = 0
    intents_expired: int = 0
    orders_placed: int = 0
    orders_rejected: int = 0
    orders_unknown: int = 0
    orders_lost: int = 0
    fills: int = 0
    maker_fills: int = 0
    taker_fills: int = 0
    reconciles: int = 0
    missed_fills: int = 0
    external_orders: int = 0


class EngineState:
    """Orders, positions, gate and market snapshots of one engine (see the module docstring).

    Attributes:
        tracker: every order the engine knows.
        portfolio: positions and PnL from executions (dedupe by execId).
        gate: may new orders be placed?
        lock: held by the reconciler across its fetch/plan/apply (see the module docstring).
        instruments: trading rules by symbol (loaded at startup).
        wallet: the newest wallet (stream push or reconciliation), None before the first.
        exchange_positions: the newest position snapshot per symbol from the exchange.
        tickers: the newest (merged) ticker per symbol, for pricing risk checks.
        exec_cursor_ms: newest reconciled ``execTime`` (mirrors the journal's cursor).
        fail_closed: why the engine refuses new exposure (None = it does not).
        counters: running totals for the status line.
        creates_in_flight: keys of orders whose create request the router is awaiting right
            now. A NotFound for one of them proves nothing (the create may still land), so
            reconciliation leaves them unresolved instead of declaring them lost.
    """

    def __init__(
        self,
        *,
        tracker: OrderTracker | None = None,
        portfolio: Portfolio | None = None,
        instruments: dict[str, Instrument] | None = None,
        exec_cursor_ms: int | None = None,
    ) -> None:
        self.tracker = tracker if tracker is not None else OrderTracker()
        self.portfolio = portfolio if portfolio is not None else Portfolio()
        self.gate = TradingGate()
        self.lock = trio.Lock()
        self.instruments: dict[str, Instrument] = dict(instruments or {})
        self.wallet: Wallet | None = None
        self.exchange_positions: dict[str, Position] = {}
        self.tickers: dict[str, Ticker] = {}
        self.exec_cursor_ms = exec_cursor_ms
        self.fail_closed: str | None = None
        self.counters = StatusCounters()
        self.creates_in_flight: set[str] = set()

    @classmethod
    def restore(
        cls,
        journal_state: JournalState,
        *,
        now: float,
        instruments: dict[str, Instrument] | None = None,
    ) -> EngineState:
        """The state a restarted engine had, from :meth:`Journal.load` (``now``: trio seconds).

        Orders that were pending or in flight become UNKNOWN (see ``OrderTracker.restore``); the
        startup reconciliation queries each by orderLinkId before the gate opens.
        """
        return cls(
            tracker=journal_state.rebuild_tracker(now),
            portfolio=journal_state.rebuild_portfolio(),
            instruments=instruments,
            exec_cursor_ms=journal_state.cursor_ms,
        )

    # ---- fail-closed

    def set_fail_closed(self, reason: str) -> None:
        """Refuse new exposure from now on (reduce-only orders still pass the risk gate).

        It is never cleared automatically: a state the engine could not explain needs a human
        (or an explicit policy) to decide, see :meth:`clear_fail_closed`.
        """
        if self.fail_closed is None:
            log.error("engine_fail_closed", reason=reason)
        self.fail_closed = reason

    def clear_fail_closed(self) -> None:
        """An operator's (or a policy's) explicit decision that the state is trusted again."""
        if self.fail_closed is not None:
            log.warning("engine_fail_closed_cleared", was=self.fail_closed)
        self.fail_closed = None

    # ---- market snapshots

    def update_ticker(self, ticker: Ticker, *, snapshot: bool = False) -> Ticker:
        """Store a ticker snapshot, or merge a delta into the stored one; returns the result."""
        prev = self.tickers.get(ticker.symbol)
        merged = ticker if snapshot or prev is None else prev.merged(ticker)
        self.tickers[ticker.symbol] = merged
        return merged

    def mark_price(self, symbol: str) -> Decimal | None:
        """Best price to value exposure: mark, else last, else the mid of bid1/ask1."""
        t = self.tickers.get(symbol)
        if t is None:
            return None
        if t.mark_price is not None and t.mark_price > 0:
            return t.mark_price
        if t.last_price is not None and t.last_price > 0:
            return t.last_price
        if t.bid1_price is not None and t.ask1_price is not None:
            return (t.bid1_price + t.ask1_price) / 2
        return None
