"""Shared fixtures: the embedded venue on the in-memory network, and engines trading against it.

Everything here runs under trio's fake clock (request ``autojump_clock`` in the test): no
sockets, so virtual time can jump safely (trio-notes §4).

* ``sim`` (fixture) -> :class:`SimHarness`: a :class:`~hean.sim.server.SimServer` on
  :class:`~hean.sim.memnet.MemNet`, the two engine seams bound to it (``transport`` — an
  ``httpx`` transport that also records every REST call — and ``connect_ws``), and views of the
  venue's truth (open orders, positions) for assertions.
* :func:`engine_config` -> a :class:`~hean.config.HeanConfig` with test-sized timers.
* :class:`EngineRunner` (``await sim.start_engine(cfg, journal_path)``): an
  :class:`~hean.engine.app.Engine` running in its own cancel scope, so a test can stop it
  gracefully (:meth:`EngineRunner.stop`) or kill it like a crashed process
  (:meth:`EngineRunner.crash`: cancelled, no cleanup beyond closing files) and start a new one on
  the same journal and venue.

Other helpers may add fixtures here; keep each one small and documented.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
from trio_websocket import WebSocketConnection

from hean.bybit.signing import Credentials
from hean.config import HeanConfig, SimConfig, VenueUrls
from hean.engine.supervisor import wait_any
from hean.sim.http_app import SimTransport
from hean.sim.memnet import MemNet
from hean.sim.orders import UserOrder
from hean.sim.server import SimServer

PAPER_KEY = "hean-paper-key"
PAPER_SECRET = "hean-paper-secret"  # not a secret: the simulator's paper account
MEM_URLS = VenueUrls(
    rest="http://sim", ws_public="ws://sim/v5/public/linear", ws_private="ws://sim/v5/private"
)


# --------------------------------------------------------------------------- REST recording


@attrs.define
class RestCall:
    """One REST request as the venue saw it (times are trio seconds)."""

    sent_at: float
    method: str
    path: str
    link_id: str | None  # orderLinkId of an order create/cancel, from the body
    done_at: float | None = None
    ret_code: int | None = None  # None: no answer (dropped, or cancelled in flight)
    http_status: int | None = None


Hook = Callable[[httpx.Request, RestCall], Awaitable[None]]


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the venue's in-process transport: records every call and runs test hooks.

    ``before`` hooks run when a request reaches the venue (before it is processed); ``after``
    hooks run once the venue has processed it and before the answer goes back. A hook may
    inject faults, or cancel the engine (a crash "mid-trade").
    """

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.calls: list[RestCall] = []
        self.before: list[Hook] = []
        self.after: list[Hook] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        link_id: str | None = None
        if request.method == "POST" and body:
            parsed = orjson.loads(body)
            if isinstance(parsed, dict) and isinstance(parsed.get("orderLinkId"), str):
                link_id = parsed["orderLinkId"]
        call = RestCall(trio.current_time(), request.method, request.url.path, link_id)
        self.calls.append(call)
        for hook in list(self.before):
            await hook(request, call)
        response = await self._inner.handle_async_request(request)
        await response.aread()
        call.done_at = trio.current_time()
        call.http_status = response.status_code
        try:
            envelope = orjson.loads(response.content)
            call.ret_code = envelope.get("retCode") if isinstance(envelope, dict) else None
        except orjson.JSONDecodeError:
            call.ret_code = None
        for hook in list(self.after):
            await hook(request, call)
        return response

    def creates(self) -> list[RestCall]:
        return [c for c in self.calls if c.path == "/v5/order/create"]


def crash_on_next_create(
    transport: RecordingTransport, holder: list[EngineRunner], crashed: list[str]
) -> None:
    """Once ``holder`` has a runner: after the venue processed the next order create, kill that
    engine before it hears the answer (the worst moment to die), recording the link id."""

    async def hook(request: httpx.Request, call: RestCall) -> None:
        if call.path == "/v5/order/create" and not crashed and holder:
            assert call.link_id is not None
            crashed.append(call.link_id)
            holder[0].scope.cancel()
            await trio.lowlevel.checkpoint()  # the answer never gets back

    transport.after.append(hook)


def assert_each_link_id_sent_once(transport: RecordingTransport) -> None:
    """Nothing placed twice: no orderLinkId was created twice, and the venue never had to say
    "duplicate" (110072)."""
    links = [c.link_id for c in transport.creates()]
    assert len(links) == len(set(links)), "an orderLinkId was sent twice"
    assert all(c.ret_code != 110072 for c in transport.calls)


# --------------------------------------------------------------------------- WebSocket seam


def memnet_connect_ws(
    net: MemNet,
) -> Callable[[str], AbstractAsyncContextManager[WebSocketConnection]]:
    """The engine's ``connect_ws`` seam over the in-memory network.

    The connection's reader runs in a nursery owned by the context manager; on exit the close
    handshake gets one (virtual) second, then the reader is cancelled — a dead peer must not hold
    a shutdown for trio-websocket's 60 s default.
    """

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[WebSocketConnection]:
        async with trio.open_nursery() as nursery:
            ws = await net.connect_ws(url, nursery=nursery)
            try:
                yield ws
            finally:
                with trio.move_on_after(1.0, shield=True):
                    await ws.aclose()
                nursery.cancel_scope.cancel()

    return connect


# --------------------------------------------------------------------------- config


def engine_config(tmp_path: Path | None = None, **engine: Any) -> HeanConfig:
    """A paper config with test-sized timers; ``engine`` overrides ``[engine]`` keys.

    The strategy/risk sections keep their defaults; tests that must not quote pass
    ``strategy=False`` to :meth:`SimHarness.start_engine` instead.
    """
    base: dict[str, Any] = {
        "symbols": ("BTCUSDT",),
        "reconcile_interval_s": 30.0,
        "ping_interval_s": 5.0,
        "pong_timeout_s": 3.0,
        "stale_after_s": 10.0,
        "reconnect_base_s": 0.5,
        "reconnect_cap_s": 2.0,
        "status_interval_s": 5.0,
        "shutdown_timeout_s": 10.0,
        "max_restarts": 3,
        "restart_window_s": 60.0,
    }
    if tmp_path is not None:
        base["journal_path"] = str(tmp_path / "journal.sqlite3")
    base.update(engine)
    cfg = HeanConfig()
    return attrs.evolve(
        cfg,
        sim=attrs.evolve(cfg.sim, symbols=("BTCUSDT", "ETHUSDT"), seed=7),
        engine=attrs.evolve(cfg.engine, **base),
    )


# --------------------------------------------------------------------------- the harness


class EngineRunner:
    """One engine running in its own cancel scope (see the module docstring)."""

    def __init__(self, engine: Any, scope: trio.CancelScope, done: trio.Event) -> None:
        self.engine = engine
        self.scope = scope
        self.done = done
        self.error: BaseException | None = None

    async def stop(self) -> None:
        """Graceful stop (the ``hean run`` shutdown order); waits until the engine has exited."""
        await self.engine.shutdown()
        await self.done.wait()

    async def crash(self) -> None:
        """Kill it like a dead process: cancelled, nothing graceful happens."""
        self.scope.cancel()
        await self.done.wait()


class SimHarness:
    """The venue on the in-memory network plus the engine seams bound to it."""

    def __init__(self, server: SimServer, net: MemNet, nursery: trio.Nursery) -> None:
        self.server = server
        self.net = net
        self.nursery = nursery
        self.transport = RecordingTransport(SimTransport(server.rest.handle))
        self.connect_ws = memnet_connect_ws(net)
        self.credentials = Credentials(api_key=PAPER_KEY, api_secret=PAPER_SECRET)

    # ---- the venue's truth

    def open_orders(self, symbol: str | None = None) -> list[UserOrder]:
        registry = self.server.venue.exchange.registries[PAPER_KEY]
        return list(registry.open_orders(symbol))

    def position(self, symbol: str) -> Decimal:
        return self.server.venue.exchange.accounts[PAPER_KEY].position_size(symbol)

    def best_bid_ask(self, symbol: str) -> tuple[Decimal, Decimal]:
        bids, asks = self.server.venue.book_levels(symbol, 1)
        return bids[0][0], asks[0][0]

    # ---- engines

    def make_engine(self, cfg: HeanConfig, journal_path: Path, **kwargs: Any) -> Any:
        from hean.engine.app import Engine

        return Engine(
            cfg,
            self.credentials,
            urls=MEM_URLS,
            transport=self.transport,
            connect_ws=self.connect_ws,
            journal_path=journal_path,
            wall_ms=self.server.now_ms,
            **kwargs,
        )

    async def start_engine(
        self, cfg: HeanConfig, journal_path: Path, **kwargs: Any
    ) -> EngineRunner:
        """Start an engine on this venue; returns once it is ready (see :func:`start_engine`)."""
        return await start_engine(self.nursery, self.make_engine(cfg, journal_path, **kwargs))


async def start_engine(nursery: trio.Nursery, engine: Any) -> EngineRunner:
    """Run ``engine`` in ``nursery`` inside its own cancel scope; return once it is ready.

    The engine's own exception, if it fails later, is kept in :attr:`EngineRunner.error` (a test
    asserts on it) instead of tearing down the nursery.
    """
    runner = EngineRunner(engine, trio.CancelScope(), trio.Event())

    async def run() -> None:
        with runner.scope:
            try:
                await engine.run()
            except Exception as exc:
                runner.error = exc
            finally:
                runner.done.set()

    nursery.start_soon(run)
    await wait_any(engine.ready, runner.done)
    if not engine.ready.is_set():
        raise RuntimeError(f"engine did not become ready: {runner.error!r}") from runner.error
    return runner


@pytest.fixture
async def sim() -> AsyncIterator[SimHarness]:
    """The venue (seed 7, BTCUSDT and ETHUSDT) on the in-memory network; use with
    ``autojump_clock``."""
    server = SimServer.from_config(SimConfig(symbols=("BTCUSDT", "ETHUSDT"), seed=7))
    async with trio.open_nursery() as nursery:
        net = await nursery.start(MemNet.serve, server)
        yield SimHarness(server, net, nursery)
        nursery.cancel_scope.cancel()
