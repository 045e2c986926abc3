"""The engine rig for integration tests: the real pieces on the in-memory network, fake clock.

SimServer on MemNet, BybitRestClient through a wrapping transport (request hooks, listing
filters), a SQLite journal, EngineState, RiskGate, ExecutionRouter, Reconciler and
PrivateEventApplier — wired as the app wires them, so router/reconciler/events tests exercise the
same paths production does.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
from attrs import define
from prometheus_client import CollectorRegistry

from hean.bybit.instruments import round_price
from hean.bybit.signing import Credentials
from hean.bybit.types import OrderType, Side, TimeInForce
from hean.config import SimConfig
from hean.engine.events import PrivateEventApplier
from hean.engine.intents import Signal
from hean.engine.journal import Journal
from hean.engine.metrics import EngineMetrics
from hean.engine.reconcile_plan import DEFAULT_CURSOR_OVERLAP_MS
from hean.engine.reconciler import Reconciler
from hean.engine.rest_client import BybitRestClient
from hean.engine.risk_gate import RiskGate, RiskLimits
from hean.engine.router import ExecutionRouter
from hean.engine.state import EngineState
from hean.sim.memnet import MemNet
from hean.sim.server import SimServer

D = Decimal
CREDS = Credentials("hean-paper-key", "hean-paper-secret")
CREATE = "/v5/order/create"

# --------------------------------------------------------------------------- the rig


class HookTransport(httpx.AsyncBaseTransport):
    """The venue's transport with test hooks: ``before`` runs before a request reaches the venue;
    ``hide(path, item)`` drops items from list answers (simulates a lagging listing)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.before: list[Callable[[httpx.Request], None]] = []
        self.hide: Callable[[str, Mapping[str, Any]], bool] | None = None
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        for hook in self.before:
            hook(request)
        response = await self.inner.handle_async_request(request)
        if self.hide is None or path not in ("/v5/execution/list", "/v5/position/list"):
            return response
        obj = orjson.loads(await response.aread())
        result = obj.get("result") or {}
        if isinstance(result.get("list"), list):
            hide = self.hide
            result["list"] = [item for item in result["list"] if not hide(path, item)]
        headers = [(k, v) for k, v in response.headers.items() if k.lower() != "content-length"]
        return httpx.Response(response.status_code, headers=headers, content=orjson.dumps(obj))


class DelayCreate(httpx.AsyncBaseTransport):
    """Order creates reach the venue ``delay_s`` after they left (network / gateway latency);
    everything else passes at once. Wrap ``rig.transport.inner`` with it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == CREATE:
            await trio.sleep(self.delay_s)
        return await self.inner.handle_async_request(request)


@define
class Rig:
    server: SimServer
    net: MemNet
    transport: HookTransport
    rest: BybitRestClient
    journal: Journal
    journal_path: Path
    state: EngineState
    metrics: EngineMetrics
    risk: RiskGate
    router: ExecutionRouter
    reconciler: Reconciler
    applier: PrivateEventApplier
    nursery: trio.Nursery

    async def refresh_ticker(self, symbol: str = "BTCUSDT") -> tuple[Decimal, Decimal]:
        (ticker,) = await self.rest.tickers(symbol)
        self.state.update_ticker(ticker, snapshot=True)
        assert ticker.bid1_price is not None
        assert ticker.ask1_price is not None
        return ticker.bid1_price, ticker.ask1_price

    async def passive_price(self, side: Side = Side.BUY, symbol: str = "BTCUSDT") -> Decimal:
        """A limit price 2 % away from the touch: rests, does not fill during a test."""
        bid, ask = await self.refresh_ticker(symbol)
        inst = self.state.instruments[symbol]
        if side is Side.BUY:
            return round_price(inst, bid * D("0.98"), rounding="down")
        return round_price(inst, ask * D("1.02"), rounding="up")

    async def aggressive_price(self, side: Side = Side.BUY, symbol: str = "BTCUSDT") -> Decimal:
        """A limit price through the touch: fills at once (as taker)."""
        bid, ask = await self.refresh_ticker(symbol)
        inst = self.state.instruments[symbol]
        if side is Side.BUY:
            return round_price(inst, ask * D("1.002"), rounding="down")
        return round_price(inst, bid * D("0.998"), rounding="up")

    def resting(self, key: str | None) -> bool:
        """Is the order under ``key`` known and resting at the venue?"""
        order = None if key is None else self.state.tracker.get(key)
        return order is not None and order.state.is_resting

    def final(self, key: str | None) -> bool:
        order = None if key is None else self.state.tracker.get(key)
        return order is not None and order.state.is_final

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def journal_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Read the journal through a separate connection: only committed rows are visible."""
        conn = sqlite3.connect(self.journal_path)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


@asynccontextmanager
async def open_rig(
    tmp_path: Path,
    *,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    queue_size: int = 8,
    ttl_s: float = 5.0,
    limits: RiskLimits | None = None,
    run_router: bool = True,
    missed_events_alert: int = 5,
    cursor_overlap_ms: int = DEFAULT_CURSOR_OVERLAP_MS,
    grace_s: float = 15.0,
    settle_timeout_s: float | None = None,
) -> AsyncIterator[Rig]:
    async with trio.open_nursery() as nursery:
        server = SimServer.from_config(SimConfig(symbols=symbols))
        net: MemNet = await nursery.start(MemNet.serve, server)
        transport = HookTransport(net.http_transport())
        rest = BybitRestClient(
            "http://sim",
            credentials=CREDS,
            transport=transport,
            clock=net.now_ms,
            rng=random.Random(7),
        )
        journal_path = tmp_path / "journal.sqlite3"
        journal = Journal.open(journal_path, wall_ms=net.now_ms)
        try:
            metrics = EngineMetrics(CollectorRegistry())
            state = EngineState(instruments=await rest.instruments(symbols))
            risk = RiskGate(limits or RiskLimits(), ttl_s=ttl_s)
            router = ExecutionRouter(
                state,
                rest,
                journal,
                risk,
                metrics=metrics,
                queue_size=queue_size,
                not_found_grace_s=grace_s,
                rng=random.Random(3),
            )
            reconciler = Reconciler(
                state,
                rest,
                journal,
                metrics=metrics,
                missed_events_alert=missed_events_alert,
                not_found_grace_s=grace_s,
                settle_timeout_s=settle_timeout_s,
                cursor_overlap_ms=cursor_overlap_ms,
                rng=random.Random(5),
            )
            applier = PrivateEventApplier(
                state, journal, metrics=metrics, on_unknown_order=reconciler.request_order_query
            )
            rig = Rig(
                server,
                net,
                transport,
                rest,
                journal,
                journal_path,
                state,
                metrics,
                risk,
                router,
                reconciler,
                applier,
                nursery,
            )
            for symbol in symbols:
                await rig.refresh_ticker(symbol)
            if run_router:
                await nursery.start(router.run)
            yield rig
        finally:
            nursery.cancel_scope.cancel()
            journal.close()
            await rest.aclose()


_signal_ids = iter(range(1, 1_000_000))


def make_signal(
    price: Decimal | None,
    *,
    side: Side = Side.BUY,
    qty: str = "0.01",
    symbol: str = "BTCUSDT",
    signal_id: str | None = None,
    reduce_only: bool = False,
) -> Signal:
    return Signal(
        strategy="test",
        signal_id=signal_id or f"sig{next(_signal_ids)}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=price,
        order_type=OrderType.LIMIT if price is not None else OrderType.MARKET,
        time_in_force=TimeInForce.GTC,
        reduce_only=reduce_only,
        created_at=trio.current_time(),
    )


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll ``predicate`` on the fake clock (the state it reads is changed by several tasks)."""
    with trio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - no single event to wait on
            await trio.sleep(0.01)
