"""The engine application: wires the trading components into the supervised nursery tree.

::

    Engine.run
    ├─ REST client (opened first, closed last: cleanup needs it)   ─┐ outside the trading nursery
    ├─ journal (opened, loaded, rebuilt into EngineState)           ─┘
    ├─ startup reconciliation (gate closed until it completes)
    └─ trading nursery (one_for_all; restarted as a whole after a crash)
       ├─ private applier      lossless bounded channel -> state + journal
       ├─ private stream       supervised: connect -> auth -> subscribe -> RECONCILE -> started()
       ├─ public stream        supervised: connect -> subscribe -> snapshots -> deltas
       ├─ market pump          conflated books/tickers -> state (latest wins)
       ├─ reconciler           every reconcile_interval_s and on demand
       ├─ execution router     intents -> journal -> venue; unknown outcomes resolved by query
       ├─ strategy             the demo maker (stopped first at shutdown: "stop intake")
       └─ status reporter      one ``status`` event every status_interval_s; loss limits

Why each rule is there:

* **Ready means reconciled.** ``task_status.started()`` is sent once the trading nursery is up,
  and the private stream is only up after its reconciliation; the gate opens only when a
  reconciliation settled every order and fill (:class:`~hean.engine.reconciler.Reconciler`).
* **Blocked while state is unknown.** The private stream child closes the
  :class:`~hean.engine.state.TradingGate` the moment its connection ends, before the supervisor's
  backoff; the reconcile of the next connection reopens it. The router holds intents meanwhile.
* **A crash is never swallowed.** An unexpected exception in any trading child cancels the whole
  trading nursery (streams included). Then, before anything else: resting orders are cancelled
  (shielded, bounded) because nobody watches them any more, the reason is logged, and either the
  nursery is re-entered after a full reconciliation — at most ``max_restarts`` times per
  ``restart_window_s`` — or :class:`EngineFailed` is raised, so the process exits non-zero and
  systemd restarts it from the journal.
* **Components are rebuilt per attempt.** A crashed router's queued intents are treated as never
  sent (a fresh channel), stream sessions start clean; the shared state, journal and REST client
  carry over.
* **A stop is honoured while trading starts.** Starting the trading nursery waits for the private
  stream to connect and reconcile, which can take minutes when the venue's WebSocket is
  unreachable. The start races the stop request: if the stop wins, the half-started children are
  cancelled and the graceful shutdown runs on REST alone (cancel-all and the final
  reconciliation need nothing else).

* **Loss limits refuse new exposure.** The status reporter feeds the wallet's total equity to the
  :class:`~hean.engine.loss_guard.LossGuard` when trading starts and on every tick, whichever
  way the wallet arrived (private push or reconciliation). A breach of ``risk.max_drawdown_pct``
  (from peak equity; in force until the process is restarted) or ``risk.daily_loss_limit_usdt``
  (until the next UTC day) blocks new exposure on the router's risk gate (``loss_limit``; reduce-
  only orders still pass), also on routers built after a restart; our own resting orders that
  could add exposure are cancelled; positions are left to the operator. The reporter's tick is
  the check's latency bound (``status_interval_s``).

Graceful shutdown (:meth:`Engine.shutdown`), in the documented order: stop intake (risk gate
halted, strategy stopped, the router's dispatch stopped once a create already on the wire has its
answer) -> cancel resting orders and confirm each by query, re-sending the cancel of any still
resting (shielded, bounded by ``shutdown_timeout_s``) -> final reconciliation -> leave the trading
nursery (the WebSockets close here: the private applier writes to the journal, so it must stop
before the journal closes) -> journal closed -> HTTP client closed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from os import PathLike
from pathlib import Path
from typing import Final

import httpx
import structlog
import trio
from attrs import frozen
from prometheus_client import CollectorRegistry

from hean.bybit.errors import AuthError
from hean.bybit.signing import Credentials
from hean.bybit.types import Instrument, OrderBookUpdate, PrivateMessage, Ticker
from hean.config import HeanConfig, VenueUrls
from hean.engine.backoff import Backoff
from hean.engine.clock import WallClock
from hean.engine.events import PrivateEventApplier
from hean.engine.journal import Journal
from hean.engine.loss_guard import LossBreach, LossGuard
from hean.engine.metrics import ChannelMonitor, EngineMetrics
from hean.engine.reconciler import Reconciler, ReconcileReport
from hean.engine.rest_client import BybitRestClient, RestMetrics
from hean.engine.risk_gate import RejectReason, RiskGate, RiskLimits
from hean.engine.router import CancelReport, ExecutionRouter
from hean.engine.state import EngineState
from hean.engine.status import StatusSnapshot, StreamView, build_snapshot, status_fields
from hean.engine.strategy import MakerParams
from hean.engine.strategy_task import DemoMaker
from hean.engine.supervisor import exception_leaves, one_for_all, supervise, wait_any
from hean.engine.ws_session import (
    Conflator,
    ConnectWs,
    MarketData,
    MarketKey,
    MarketKind,
    PrivateStream,
    PublicStream,
    StreamMetrics,
)

__all__ = [
    "PRIVATE_CHANNEL_SIZE",
    "Child",
    "Engine",
    "EngineConfigError",
    "EngineFailed",
    "ReconcileRun",
    "ShutdownReport",
]

log = structlog.get_logger("hean.engine.app")

STREAM_HEALTHY_AFTER_S: Final = 60.0
"""A stream up this long before it dropped restarts with a clean history (see ``supervise``):
only streams that fail again within a minute of (re)connecting count towards escalation."""

PRIVATE_CHANNEL_SIZE: Final = 1024
"""Private pushes waiting for the applier. Lossless: a full channel fails the stream loudly and
the reconnect's reconciliation repairs what was not applied (ws_session.PrivateBacklogOverflow)."""

Child = Callable[..., Awaitable[None]]
"""A trading-nursery member: ``async def child(*, task_status)``; ``started()`` means ready."""


class EngineFailed(Exception):
    """The trading nursery crashed more than ``max_restarts`` times within ``restart_window_s``
    (the last crash is the ``__cause__``): the process must exit non-zero."""


class EngineConfigError(Exception):
    """The venue does not list a configured symbol (checked before anything is traded)."""


@frozen
class ReconcileRun:
    """One reconciliation the app asked for (startup, restart, private_connect, shutdown), with
    its trio start/end times: what tests and the status line use to tell "state known" apart."""

    trigger: str
    started_at: float
    ended_at: float
    report: ReconcileReport


@frozen
class ShutdownReport:
    """What the graceful shutdown achieved; the exit code is derived from it."""

    cancel: CancelReport | None
    final_reconcile: ReconcileReport | None
    timed_out: bool
    fail_closed: str | None
    open_orders: int  # our own orders still not final (adopted external ones are not counted)

    @property
    def clean(self) -> bool:
        """No resting order left, state reconciled and trusted.

        Judged on the state after the final reconciliation, not on the cancel step's own
        report: an order whose create never landed stays "unconfirmed" for the cancel step until
        the not-found grace has passed, and the final reconciliation is what settles it.
        """
        return (
            not self.timed_out
            and self.final_reconcile is not None
            and self.fail_closed is None
            and self.open_orders == 0
        )


class Engine:
    """One trading engine: config + credentials + the two venue seams (see the module docstring).

    Args:
        cfg: the whole configuration.
        credentials: the API key pair (the simulator's in paper mode).
        urls: the venue's REST and WebSocket endpoints.
        transport: the HTTP seam (None: real HTTP; tests pass the simulator's transport).
        connect_ws: the WebSocket seam (``ws_session.default_connect_ws`` for real TCP).
        journal_path: the SQLite journal (default: ``cfg.engine.journal_path``).
        wall_ms: wall-clock milliseconds for exchange timestamps.
        registry: Prometheus registry (default: a private one per engine).
        rng: jitter source for backoffs (seed it in tests).
        strategy: run the demo strategy (tests that drive the router themselves turn it off).
        extra_children: more trading-nursery members, started after the built-in ones (an
            operator task, or a fault injected by a test).
        on_status: also called with every status snapshot (``hean run`` prints a human line
            when stdout is a terminal).
    """

    def __init__(
        self,
        cfg: HeanConfig,
        credentials: Credentials,
        *,
        urls: VenueUrls,
        transport: httpx.AsyncBaseTransport | None,
        connect_ws: ConnectWs,
        journal_path: str | PathLike[str] | None = None,
        wall_ms: WallClock,
        registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
        strategy: bool = True,
        extra_children: Sequence[tuple[str, Child]] = (),
        on_status: Callable[[StatusSnapshot], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._creds = credentials
        self.urls = urls
        self._transport = transport
        self._connect_ws = connect_ws
        self.journal_path = Path(
            journal_path if journal_path is not None else cfg.engine.journal_path
        )
        self._wall_ms = wall_ms
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.metrics = EngineMetrics(self.registry)
        self._rest_metrics = RestMetrics(self.registry)
        self._stream_metrics = StreamMetrics(self.registry)
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._strategy_enabled = strategy
        self._extra_children = tuple(extra_children)
        self._on_status = on_status
        self._backoff = Backoff(
            base_s=cfg.engine.reconnect_base_s,
            cap_s=max(cfg.engine.reconnect_base_s, cfg.engine.reconnect_cap_s),
        )
        self.conflator: Conflator[MarketKey, MarketData] = Conflator(
            on_overwrite=self.metrics.market_data_overwrites.inc
        )
        self._private_channel = ChannelMonitor(self.metrics, "private_events", PRIVATE_CHANNEL_SIZE)
        # Outlives the trading nursery's restarts: a breach is not forgotten by a crash.
        self.loss_guard = LossGuard.from_config(cfg.risk)
        self.loss_breach: LossBreach | None = None  # the breach in force, as last applied
        self.books: dict[str, OrderBookUpdate] = {}

        # Set once run() has opened the journal and rebuilt the state.
        self.state: EngineState | None = None
        self.reconciler: Reconciler | None = None
        self.router: ExecutionRouter | None = None
        self.strategy: DemoMaker | None = None
        self.public: PublicStream | None = None
        self.private: PrivateStream | None = None
        self.reconciles: list[ReconcileRun] = []

        self.ready = trio.Event()  # the first full reconciliation passed and trading is up
        self.finished = trio.Event()  # run() has returned or raised
        self._stop = trio.Event()
        self.stop_reason: str | None = None
        self.restarts = 0
        self.crashes: list[tuple[float, tuple[str, ...]]] = []
        self.shutdown_report: ShutdownReport | None = None
        self._intake: trio.CancelScope | None = None
        self._started_at: float | None = None

    # ------------------------------------------------------------------ public API

    def request_stop(self, reason: str) -> None:
        """Ask for a graceful stop (returns at once; :meth:`shutdown` also waits for it)."""
        if not self._stop.is_set():
            self.stop_reason = reason
            log.info("engine_stop_requested", reason=reason)
            self._stop.set()

    async def shutdown(self, reason: str = "requested") -> ShutdownReport | None:
        """Graceful stop in the documented order; returns once :meth:`run` has finished."""
        self.request_stop(reason)
        await self.finished.wait()
        return self.shutdown_report

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def instrument(self, symbol: str) -> Instrument | None:
        return None if self.state is None else self.state.instruments.get(symbol)

    def mark(self, symbol: str) -> Decimal | None:
        """Mid of the latest book, else the ticker's mark (for PnL display)."""
        book = self.books.get(symbol)
        if book is not None and book.bids and book.asks:
            return (book.bids[0][0] + book.asks[0][0]) / 2
        return None if self.state is None else self.state.mark_price(symbol)

    def status(self) -> StatusSnapshot:
        """The status line's numbers, now."""
        state = self.state
        uptime = 0.0 if self._started_at is None else trio.current_time() - self._started_at
        streams = [
            StreamView(s.name, s.state.value, s.counters.reconnects)
            for s in (self.public, self.private)
            if s is not None
        ]
        if state is None:
            return build_snapshot(
                mode=self.cfg.venue.mode,
                uptime_s=uptime,
                equity=None,
                positions={},
                marks={},
                open_orders=0,
                fills=0,
                maker_fills=0,
                streams=streams,
                trading=False,
                blocked_reason="starting",
                restarts=self.restarts,
            )
        positions = state.portfolio.positions()
        marks = {s: m for s in positions if (m := self.mark(s)) is not None}
        return build_snapshot(
            mode=self.cfg.venue.mode,
            uptime_s=uptime,
            equity=None if state.wallet is None else state.wallet.total_equity,
            positions=positions,
            marks=marks,
            open_orders=len(state.tracker.open_orders()),
            fills=state.counters.fills,
            maker_fills=state.counters.maker_fills,
            streams=streams,
            trading=state.gate.is_open and state.fail_closed is None and self.loss_breach is None,
            blocked_reason=state.gate.reason,
            fail_closed=state.fail_closed,
            restarts=self.restarts,
            loss_limit=None if self.loss_breach is None else self.loss_breach.detail,
        )

    # ------------------------------------------------------------------ run

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run until a graceful stop completes (returns) or the restart budget is spent (raises
        :class:`EngineFailed`). ``started()`` after the first full reconciliation."""
        self._started_at = trio.current_time()
        cfg = self.cfg.engine
        log.info(
            "engine_starting",
            mode=self.cfg.venue.mode,
            rest_url=self.urls.rest,
            symbols=list(cfg.symbols),
            journal=str(self.journal_path),
        )
        try:
            async with BybitRestClient(
                self.urls.rest,
                credentials=self._creds,
                transport=self._transport,
                clock=self._wall_ms,
                request_timeout_s=cfg.request_timeout_s,
                recv_window_ms=self.cfg.venue.recv_window_ms,
                rng=self._rng,
                metrics=self._rest_metrics,
            ) as rest:
                journal = Journal.open(self.journal_path, wall_ms=self._wall_ms)
                try:
                    await self._run_with(rest, journal, task_status)
                finally:
                    journal.close()
                    log.info("journal_closed", path=str(self.journal_path))
        finally:
            self.finished.set()
            log.info("engine_stopped", reason=self.stop_reason, restarts=self.restarts)

    async def _run_with(
        self, rest: BybitRestClient, journal: Journal, task_status: trio.TaskStatus[None]
    ) -> None:
        cfg = self.cfg.engine
        loaded = journal.load()
        state = EngineState.restore(loaded, now=trio.current_time())
        self.state = state
        log.info(
            "journal_loaded",
            orders=len(loaded.orders),
            non_final=len(loaded.non_final_orders),
            executions=len(loaded.executions),
            cursor_ms=loaded.cursor_ms,
        )
        await rest.sync_clock()
        instruments = await rest.instruments(cfg.symbols)
        missing = [s for s in cfg.symbols if s not in instruments]
        if missing:
            raise EngineConfigError(f"the venue does not list {missing}")
        state.instruments.update(instruments)
        reconciler = Reconciler(
            state,
            rest,
            journal,
            metrics=self.metrics,
            missed_events_alert=cfg.missed_events_alert,
            rng=self._rng,
        )
        self.reconciler = reconciler

        crashes: deque[float] = deque()
        trigger = "startup"
        while True:
            try:
                if self.stopping and not self.ready.is_set():
                    # Stopped before ever trading: nothing of ours may rest unwatched either.
                    await self._reconcile(trigger)
                    await self._final_cleanup(journal, rest)
                    return
                await self._reconcile(trigger)
                await self._trading(rest, journal, task_status)
                return  # left the trading nursery after a graceful shutdown
            except Exception as exc:
                causes = tuple(repr(leaf) for leaf in exception_leaves(exc))
                now = trio.current_time()
                self.crashes.append((now, causes))
                state.gate.block("trading restart")
                log.error("trading_crashed", causes=causes, restarts=self.restarts)
                await self._cancel_after_crash(rest, journal)
                crashes.append(now)
                while crashes and now - crashes[0] >= cfg.restart_window_s:
                    crashes.popleft()
                if len(crashes) > cfg.max_restarts or self.stopping:
                    why = "stopping" if self.stopping else "too_many_restarts"
                    log.error(
                        "engine_failed",
                        reason=why,
                        crashes_in_window=len(crashes),
                        window_s=cfg.restart_window_s,
                    )
                    raise EngineFailed(
                        f"trading crashed {len(crashes)} times within {cfg.restart_window_s:g} s"
                        if why == "too_many_restarts"
                        else "trading crashed during shutdown"
                    ) from exc
                delay = self._backoff.delay(len(crashes) - 1, self._rng)
                self.restarts += 1
                log.warning("trading_restart", delay_s=round(delay, 3), restarts=self.restarts)
                await trio.sleep(delay)
                trigger = "restart"

    async def _reconcile(self, trigger: str, *, gate: bool | None = None) -> ReconcileReport:
        assert self.reconciler is not None
        started = trio.current_time()
        report = await self.reconciler.reconcile(trigger, gate=gate)
        self.reconciles.append(ReconcileRun(trigger, started, trio.current_time(), report))
        return report

    # ------------------------------------------------------------------ the trading nursery

    async def _trading(
        self, rest: BybitRestClient, journal: Journal, task_status: trio.TaskStatus[None]
    ) -> None:
        state = self.state
        reconciler = self.reconciler
        assert state is not None
        assert reconciler is not None
        cfg = self.cfg.engine
        send, receive = trio.open_memory_channel[PrivateMessage](PRIVATE_CHANNEL_SIZE)
        applier = PrivateEventApplier(
            state, journal, metrics=self.metrics, on_unknown_order=reconciler.request_order_query
        )
        router = ExecutionRouter(
            state,
            rest,
            journal,
            RiskGate(RiskLimits.from_config(self.cfg.risk), ttl_s=cfg.intent_ttl_s),
            metrics=self.metrics,
            queue_size=cfg.intent_queue_size,
            duplicate_window_s=cfg.duplicate_window_s,
            rng=self._rng,
        )
        if self.stopping:
            router.risk.halt("shutdown")
        if self.loss_breach is not None:
            router.risk.block_exposure(self.loss_breach.detail, RejectReason.LOSS_LIMIT)
        self.router = router
        self.private = PrivateStream(
            self.urls.ws_private,
            self._creds,
            send,
            clock=rest.server_clock,
            connect_ws=self._connect_ws,
            ping_interval_s=cfg.ping_interval_s,
            pong_timeout_s=cfg.pong_timeout_s,
            stale_after_s=cfg.stale_after_s,
            request_timeout_s=cfg.request_timeout_s,
            on_ready=partial(self._private_ready, "private_connect"),
            on_down=self._private_down,
            on_queued=self._private_channel.observe,
            metrics=self._stream_metrics,
        )
        self.public = PublicStream(
            self.urls.ws_public,
            cfg.symbols,
            self.conflator,
            connect_ws=self._connect_ws,
            ping_interval_s=cfg.ping_interval_s,
            pong_timeout_s=cfg.pong_timeout_s,
            stale_after_s=cfg.stale_after_s,
            request_timeout_s=cfg.request_timeout_s,
            metrics=self._stream_metrics,
        )
        children: list[tuple[str, Child]] = [
            (
                "private_applier",
                partial(applier.run, receive, on_received=self._private_channel.observe),
            ),
            ("private_stream", partial(self._supervised, "private_stream", self._private_child)),
            ("public_stream", partial(self._supervised, "public_stream", self.public.run)),
            ("market_pump", self._market_pump),
            ("reconciler", partial(reconciler.run_periodic, cfg.reconcile_interval_s)),
            ("router", router.run),
        ]
        if self._strategy_enabled:
            self.strategy = DemoMaker(
                [MakerParams.from_config(self.cfg.strategy, s) for s in cfg.symbols],
                self.instrument,
                router,
                book=self.books.get,
                position=lambda s: state.portfolio.position(s).size,
                orders=state.tracker.non_final,
                gate_open=lambda: state.gate.is_open and not self.stopping,
                wall_ms=self._wall_ms,
                interval_s=self.cfg.strategy.requote_interval_s,
            )
            children.append(("strategy", self._intake_child))
        children.append(("status", self._status_reporter))
        children.extend(self._extra_children)

        with send, receive:
            try:
                async with trio.open_nursery() as trading:
                    if await self._start_unless_stopped(trading, children):
                        if not self.ready.is_set():
                            self.ready.set()
                            log.info(
                                "engine_ready", gate=state.gate.reason or "open", **self._brief()
                            )
                            task_status.started()
                        else:
                            log.info("engine_resumed", restarts=self.restarts, **self._brief())
                    await self._stop.wait()
                    await self._graceful(router, journal)
                    trading.cancel_scope.cancel()
            finally:
                router.close()

    async def _start_unless_stopped(
        self, trading: trio.Nursery, children: Sequence[tuple[str, Child]]
    ) -> bool:
        """Start ``children`` (one_for_all) in ``trading``; True once all are ready, False if a
        stop was requested first.

        Readiness includes the private stream's connect and reconciliation, which can take
        minutes while the venue's WebSocket is unreachable; a SIGTERM must not wait for that.
        When the stop wins, the half-started children are cancelled (the caller's graceful
        shutdown needs only REST). A crash while starting still propagates through ``trading``.
        """
        up = trio.Event()
        starting = trio.CancelScope()

        async def start() -> None:
            with starting:
                await trading.start(one_for_all, children)
                up.set()

        trading.start_soon(start)
        await wait_any(up, self._stop)
        if up.is_set():
            return True
        starting.cancel()
        log.warning("trading_start_abandoned", reason=self.stop_reason, gate=self._gate_reason())
        return False

    def _gate_reason(self) -> str | None:
        return None if self.state is None else self.state.gate.reason

    def _brief(self) -> dict[str, object]:
        state = self.state
        assert state is not None
        return {
            "open_orders": len(state.tracker.open_orders()),
            "positions": {
                s: str(p.size) for s, p in state.portfolio.positions().items() if p.size != 0
            },
            "fail_closed": state.fail_closed,
        }

    async def _supervised(
        self,
        name: str,
        child: Child,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """One stream, restarted with backoff+jitter after a drop (one_for_one); bad credentials
        and a restart storm escalate to the trading nursery."""
        cfg = self.cfg.engine
        await supervise(
            child,
            name=name,
            max_restarts=cfg.max_restarts,
            window_s=cfg.restart_window_s,
            backoff=self._backoff,
            rng=self._rng,
            escalate_on=(AuthError,),
            healthy_after_s=STREAM_HEALTHY_AFTER_S,
            task_status=task_status,
        )

    async def _private_child(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """One private connection; the gate is closed whenever it is not up and reconciled."""
        state, private = self.state, self.private
        assert state is not None
        assert private is not None
        state.gate.block("private stream connecting")
        try:
            await private.run(task_status=task_status)
        finally:
            self._private_down()

    def _private_down(self) -> None:
        """The private connection is known dead: close the gate at once (synchronous), before
        the close handshake and the supervisor's backoff — nothing is placed on a state we can
        no longer see."""
        assert self.state is not None
        self.state.gate.block("private stream down")
        self.metrics.trading_gate_open.set(0)

    async def _private_ready(self, trigger: str) -> None:
        """The private stream's ``on_ready``: authenticated, subscribed, reader running (pushes
        queue in the channel) -> reconcile; the reconciler opens the gate on success and raises
        otherwise, which fails this connection and the supervisor tries again."""
        await self._reconcile(trigger)

    async def _intake_child(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The strategy, in a scope :meth:`_graceful` cancels first ("stop intake")."""
        assert self.strategy is not None
        with trio.CancelScope() as scope:
            self._intake = scope
            await self.strategy.run(task_status=task_status)

    async def _market_pump(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Conflated market data -> state: latest book per symbol, merged tickers for pricing."""
        state = self.state
        assert state is not None
        task_status.started()
        while True:
            batch = await self.conflator.drain()
            for key, value in batch.items():
                if key.kind is MarketKind.BOOK and isinstance(value, OrderBookUpdate):
                    self.books[key.symbol] = value
                elif key.kind is MarketKind.TICKER and isinstance(value, Ticker):
                    state.update_ticker(value, snapshot=True)

    async def _status_reporter(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Every ``status_interval_s``: check the loss limits, then log the status line.

        The loss limits are checked here rather than on each private wallet push: this one place
        sees the wallet whichever way it arrived (push or reconciliation), every check happens on
        a steady clock, and the applier stays free of policy. The first check runs at once (the
        private stream is up, so the wallet is reconciled), which fixes the day's starting equity
        when trading starts.
        """
        task_status.started()
        await self._check_loss_limits()
        while True:
            await trio.sleep(self.cfg.engine.status_interval_s)
            await self._check_loss_limits()
            snapshot = self.status()
            log.info("status", **status_fields(snapshot))
            if self._on_status is not None:
                self._on_status(snapshot)

    async def _check_loss_limits(self) -> None:
        """Feed the account equity to the loss guard and apply what changed (see the module
        docstring). Without a wallet (none received yet) there is nothing to check."""
        state, router = self.state, self.router
        if state is None or state.wallet is None:
            return
        equity = state.wallet.total_equity
        breach = self.loss_guard.observe(equity, self._wall_ms())
        previous, self.loss_breach = self.loss_breach, breach
        if breach is previous:
            return
        if breach is None:
            assert previous is not None
            log.warning("loss_limit_cleared", was=previous.kind.value, equity=str(equity))
            if router is not None:
                router.risk.unblock_exposure()
            return
        log.error(
            "loss_limit_breached",
            kind=breach.kind.value,
            value=str(breach.value),
            limit=str(breach.limit),
            equity=str(equity),
            detail=breach.detail,
        )
        self.metrics.alerts.labels("loss_limit").inc()
        if router is None:
            return
        router.risk.block_exposure(breach.detail, RejectReason.LOSS_LIMIT)
        if previous is None:
            await self._cancel_opening_orders(router)

    async def _cancel_opening_orders(self, router: ExecutionRouter) -> None:
        """Cancel our resting orders that could add exposure (a quote resting when a loss limit
        is breached would otherwise still fill). Reduce-only orders stay: they can only close;
        adopted external orders are the operator's. Bounded like a shutdown's cancels; a cancel
        that fails is re-sent by the router (``cancel_retry_s``)."""
        state = self.state
        assert state is not None
        keys = [
            o.key
            for o in state.tracker.non_final()
            if not o.is_external and (o.intent is None or not o.intent.reduce_only)
        ]
        if not keys:
            return
        log.warning("loss_limit_cancelling_orders", keys=keys)
        with trio.move_on_after(self.cfg.engine.shutdown_timeout_s):
            for key in keys:
                await router.cancel_order(key)

    # ------------------------------------------------------------------ cleanup

    async def _graceful(self, router: ExecutionRouter, journal: Journal) -> None:
        """Stop intake, cancel and confirm, reconcile; shielded and bounded as a whole."""
        state = self.state
        assert state is not None
        budget = self.cfg.engine.shutdown_timeout_s
        log.info("engine_shutdown_started", reason=self.stop_reason, budget_s=budget)
        cancel: CancelReport | None = None
        final: ReconcileReport | None = None
        timed_out = True
        with trio.move_on_after(budget, shield=True):
            # Leave a margin of the budget for the final reconciliation.
            cancel_deadline = trio.current_time() + budget * 0.6
            router.risk.halt("shutdown")
            if self._intake is not None:
                self._intake.cancel()
            # Nothing may be placed behind the cancels; a create already on the wire is let
            # finish so its order is known before they go. Bounded: if its answer is slow,
            # cancel_all_resting handles the in-flight order anyway (110001, then re-sent once
            # the order shows up resting).
            with trio.move_on_after(budget * 0.25):
                await router.stop_dispatch()
            cancel = await router.cancel_all_resting(
                timeout_s=max(0.0, cancel_deadline - trio.current_time())
            )
            final = await self._final_reconcile()
            timed_out = False
        left = state.tracker.non_final()
        ours = [o for o in left if not o.is_external]
        if len(ours) < len(left):
            # Orders placed outside the engine (adopted) are the operator's: reported, not
            # cancelled, and they do not make the stop unclean.
            log.warning("external_orders_left_resting", keys=[o.key for o in left if o.is_external])
        self.shutdown_report = ShutdownReport(
            cancel=cancel,
            final_reconcile=final,
            timed_out=timed_out,
            fail_closed=state.fail_closed,
            open_orders=len(ours),
        )
        log.info(
            "engine_shutdown_done",
            clean=self.shutdown_report.clean,
            timed_out=timed_out,
            cancelled=None if cancel is None else len(cancel.confirmed),
            unconfirmed=None if cancel is None else list(cancel.unconfirmed),
            open_orders=self.shutdown_report.open_orders,
            fail_closed=state.fail_closed,
        )

    async def _final_reconcile(self) -> ReconcileReport | None:
        try:
            report = await self._reconcile("shutdown", gate=False)
        except Exception as exc:
            # Reported (the shutdown is then not clean, exit code 1), not raised: the journal
            # must still be closed and the sockets too.
            log.error("final_reconcile_failed", error=repr(exc))
            return None
        return report

    async def _final_cleanup(self, journal: Journal, rest: BybitRestClient) -> None:
        """Shutdown requested before trading started: cancel what the journal left resting."""
        assert self.state is not None
        assert self.reconciler is not None
        router = ExecutionRouter(self.state, rest, journal, RiskGate(), metrics=self.metrics)
        try:
            await self._graceful(router, journal)
        finally:
            router.close()

    async def _cancel_after_crash(self, rest: BybitRestClient, journal: Journal) -> None:
        """After a crash nobody watches our resting orders: cancel them (shielded, bounded)."""
        state = self.state
        assert state is not None
        budget = self.cfg.engine.shutdown_timeout_s
        router = ExecutionRouter(state, rest, journal, RiskGate(), metrics=self.metrics)
        with trio.move_on_after(budget, shield=True):
            try:
                report = await router.cancel_all_resting(timeout_s=budget * 0.8)
            except Exception as exc:
                # The crash that got us here is the one that matters; this one is logged and
                # the restart's reconciliation finds whatever is left.
                log.error("crash_cancel_failed", error=repr(exc))
                return
            finally:
                router.close()
            log.warning(
                "crash_orders_cancelled",
                confirmed=len(report.confirmed),
                unconfirmed=list(report.unconfirmed),
            )
