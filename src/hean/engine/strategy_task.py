"""The demo strategy's thin trio task: every ``requote_interval_s``, plan quotes with the pure
core (:mod:`hean.engine.strategy`), cancel what is wrong, place what is missing, via the router."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Protocol

import structlog
import trio
from attrs import frozen

from hean.bybit.types import Instrument, OrderBookUpdate
from hean.engine.intents import Signal
from hean.engine.orders import TrackedOrder
from hean.engine.strategy import (
    MakerParams,
    QuotePlan,
    SignalIds,
    live_quotes,
    plan_quotes,
    quote_signal,
)

__all__ = ["DemoMaker", "QuoteRouter"]

log = structlog.get_logger("hean.engine.strategy")


class QuoteRouter(Protocol):
    """What the strategy needs from the execution router (:class:`ExecutionRouter`)."""

    def submit(self, signal: Signal) -> object: ...

    async def cancel_order(self, link_id: str) -> None: ...


@frozen
class _Inputs:
    """Read-only views of the engine state the task needs (callables: always the latest)."""

    book: Callable[[str], OrderBookUpdate | None]
    position: Callable[[str], Decimal]
    orders: Callable[[], Iterable[TrackedOrder]]
    gate_open: Callable[[], bool]
    wall_ms: Callable[[], int]


class DemoMaker:
    """The thin trio shell: every ``interval_s``, plan per symbol, cancel, re-plan, place.

    Cancels are awaited before placing so that a cancel that lost the race against a fill is
    seen (the position moved) before the replacement is sized. Errors propagate: the strategy is
    a child of the trading nursery, and a crash there is a crash of the engine's trading state.
    """

    def __init__(
        self,
        params: Sequence[MakerParams],
        instruments: Callable[[str], Instrument | None],
        router: QuoteRouter,
        *,
        book: Callable[[str], OrderBookUpdate | None],
        position: Callable[[str], Decimal],
        orders: Callable[[], Iterable[TrackedOrder]],
        gate_open: Callable[[], bool],
        wall_ms: Callable[[], int],
        interval_s: float,
    ) -> None:
        if not interval_s > 0 or not math.isfinite(interval_s):
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.params = tuple(params)
        self._instruments = instruments
        self._router = router
        self._in = _Inputs(book, position, orders, gate_open, wall_ms)
        self.interval_s = interval_s
        self.ids = SignalIds(wall_ms())
        self.placed = 0
        self.cancelled = 0
        self.rounds = 0
        self._last_idle: dict[str, str | None] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        log.info(
            "strategy_started",
            symbols=[p.symbol for p in self.params],
            interval_s=self.interval_s,
        )
        task_status.started()
        while True:
            await self.step()
            await trio.sleep(self.interval_s)

    async def step(self) -> None:
        """One quoting round over every symbol."""
        self.rounds += 1
        if not self._in.gate_open():
            return  # the router would hold the intents until they go stale: do not make them
        for params in self.params:
            await self._quote(params)

    def _plan(self, params: MakerParams, inst: Instrument) -> QuotePlan:
        mine = live_quotes(self._in.orders(), strategy=params.strategy, symbol=params.symbol)
        return plan_quotes(
            params,
            inst,
            self._in.book(params.symbol),
            self._in.position(params.symbol),
            mine,
            now_ms=self._in.wall_ms(),
        )

    async def _quote(self, params: MakerParams) -> None:
        inst = self._instruments(params.symbol)
        if inst is None:
            return
        plan = self._plan(params, inst)
        if plan.idle != self._last_idle.get(params.symbol):
            self._last_idle[params.symbol] = plan.idle
            if plan.idle is not None:
                log.info("strategy_idle", symbol=params.symbol, reason=plan.idle)
        for cancel in plan.cancels:
            log.debug("strategy_cancel", link_id=cancel.link_id, reason=cancel.reason)
            await self._router.cancel_order(cancel.link_id)
            self.cancelled += 1
        if plan.cancels:
            plan = self._plan(params, inst)  # the position may have moved while cancelling
        if not self._in.gate_open():
            return
        now = trio.current_time()
        for quote in plan.places:
            signal = quote_signal(params, quote, self.ids.next(params.symbol, quote.side), now)
            result = self._router.submit(signal)
            self.placed += 1
            log.debug(
                "strategy_quote",
                symbol=params.symbol,
                side=quote.side.value,
                price=str(quote.price),
                qty=str(quote.qty),
                signal_id=signal.signal_id,
                result=repr(result),
            )
