"""The engine application end to end on the in-memory venue, under trio's fake clock.

Each test is one line of the issue's "Done when": signal -> order -> fill -> position -> journal;
a private stream killed while an order fills; a lost response to an accepted order; a 10006
storm; a child crash cancelling its siblings; a graceful stop leaving no resting order; the demo
strategy making fills on the simulator.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import attrs
import httpx
import trio

from hean.bybit.types import OrderType, Side, TimeInForce
from hean.engine.app import Engine, EngineFailed
from hean.engine.intents import Signal
from hean.engine.journal import Journal
from hean.engine.loss_guard import LossKind
from hean.engine.orders import OrderState
from hean.engine.risk_gate import RejectReason
from hean.sim.faults import RestFault, RestFaultKind, StreamKind
from tests.conftest import RestCall, SimHarness, engine_config, start_engine

SYMBOL = "BTCUSDT"


def taker_signal(
    sim: SimHarness, signal_id: str, side: Side = Side.BUY, qty: str = "0.002"
) -> Signal:
    """A limit order priced through the touch: it fills at once as a taker."""
    bid, ask = sim.best_bid_ask(SYMBOL)
    price = ask * Decimal("1.001") if side is Side.BUY else bid * Decimal("0.999")
    return Signal(
        strategy="test",
        signal_id=signal_id,
        symbol=SYMBOL,
        side=side,
        qty=Decimal(qty),
        price=price,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.IOC,
        created_at=trio.current_time(),
    )


def resting_signal(sim: SimHarness, signal_id: str, side: Side = Side.BUY) -> Signal:
    """A limit order far from the touch: it rests."""
    bid, ask = sim.best_bid_ask(SYMBOL)
    price = bid * Decimal("0.98") if side is Side.BUY else ask * Decimal("1.02")
    return Signal(
        strategy="test",
        signal_id=signal_id,
        symbol=SYMBOL,
        side=side,
        qty=Decimal("0.002"),
        price=price,
        created_at=trio.current_time(),
    )


def journal_of(path: Path) -> Journal:
    return Journal.open(path)


async def wait_until(predicate: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Poll ``predicate`` on the fake clock (cheap: autojump skips the sleeps)."""
    with trio.fail_after(limit_s):
        while not predicate():  # noqa: ASYNC110 - conditions span several objects; no one Event
            await trio.sleep(0.05)


def order_state(engine: Engine, link: str | None) -> OrderState | None:
    assert engine.state is not None
    assert link is not None
    order = engine.state.tracker.get(link)
    return None if order is None else order.state


def engine_state(engine: Engine):  # type: ignore[no-untyped-def]
    assert engine.state is not None
    return engine.state


# --------------------------------------------------------------------------- the happy path


async def test_signal_to_order_to_fill_to_position_to_journal(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    runner = await sim.start_engine(engine_config(), path, strategy=False)
    engine = runner.engine
    state = engine_state(engine)
    assert engine.router is not None

    result = engine.router.submit(taker_signal(sim, "s1"))
    assert result.accepted, result
    link = result.order_link_id
    await wait_until(lambda: state.portfolio.position(SYMBOL).size == Decimal("0.002"))

    order = state.tracker[link]
    assert order.state is OrderState.FILLED
    assert sim.position(SYMBOL) == Decimal("0.002")
    assert [c.link_id for c in sim.transport.creates()] == [link]
    # The private pushes went through the bounded channel, whose use is published.
    channel = {"channel": "private_events"}
    assert engine.registry.get_sample_value("hean_channel_buffer_size", channel) == 1024
    assert engine.registry.get_sample_value("hean_channel_buffer_used", channel) == 0  # drained

    await runner.stop()
    assert runner.error is None
    with journal_of(path) as journal:
        loaded = journal.load()
    assert set(loaded.intents) == {link}
    assert loaded.orders[link].state is OrderState.FILLED
    fills = [e for e in loaded.executions if e.order_link_id == link]
    assert sum(e.exec_qty for e in fills) == Decimal("0.002")
    assert loaded.rebuild_portfolio().position(SYMBOL).size == Decimal("0.002")


# --------------------------------------------------------------------------- private stream killed


async def test_private_stream_killed_while_an_order_fills(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    """The fill's push is lost with the connection; after the reconnect the reconciliation
    applies it exactly once, and no order reaches the venue between the drop and the end of
    that reconciliation."""
    path = tmp_path / "j.sqlite3"
    runner = await sim.start_engine(engine_config(), path, strategy=False)
    engine = runner.engine
    state = engine_state(engine)
    assert engine.router is not None
    dropped_at: list[float] = []

    async def kill_private(request: httpx.Request, call: RestCall) -> None:
        if call.path == "/v5/order/create" and not dropped_at:
            # The connection dies as the order reaches matching: its fill is never pushed.
            sim.server.pause_private(True)
            sim.server.drop_websockets(StreamKind.PRIVATE)
            dropped_at.append(trio.current_time())

    async def resume_private(request: httpx.Request, call: RestCall) -> None:
        if call.path == "/v5/order/create":
            sim.server.pause_private(False)

    sim.transport.before.append(kill_private)
    sim.transport.after.append(resume_private)

    first = engine.router.submit(taker_signal(sim, "killed-1"))
    assert first.accepted
    # Queued behind the first: the router reaches it right after the drop, while the state is
    # unknown; it must wait for the reconnect's reconciliation.
    second = engine.router.submit(taker_signal(sim, "killed-2", qty="0.003"))
    assert second.accepted
    await wait_until(lambda: state.portfolio.position(SYMBOL).size == Decimal("0.005"))
    sim.transport.before.remove(kill_private)

    # The first fill came from the reconciliation, once; the venue agrees on the position.
    assert sim.server.private_dropped > 0
    assert state.counters.missed_fills >= 1
    assert sim.position(SYMBOL) == Decimal("0.005")
    assert state.tracker[first.order_link_id].state is OrderState.FILLED
    assert state.tracker[second.order_link_id].state is OrderState.FILLED

    # No create between the drop and the end of the reconnect's reconciliation.
    drop = dropped_at[0]
    reconnect = next(
        r for r in engine.reconciles if r.trigger == "private_connect" and r.started_at > drop
    )
    assert reconnect.report.complete
    creates = sim.transport.creates()
    assert [c.link_id for c in creates] == [first.order_link_id, second.order_link_id]
    assert creates[1].sent_at >= reconnect.ended_at
    assert not [c for c in creates if drop < c.sent_at < reconnect.ended_at]

    await runner.stop()
    with journal_of(path) as journal:
        loaded = journal.load()
    first_fills = [e for e in loaded.executions if e.order_link_id == first.order_link_id]
    assert sum(e.exec_qty for e in first_fills) == Decimal("0.002")
    assert len({e.exec_id for e in loaded.executions}) == len(loaded.executions)
    assert loaded.rebuild_portfolio().position(SYMBOL).size == Decimal("0.005")


# --------------------------------------------------------------------------- lost response


async def test_stop_right_after_a_create_that_never_landed_is_clean(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    """Found by chaos/fault_storm: a create answered 503 (not processed) leaves an UNKNOWN order
    that only the not-found grace settles; a stop inside that grace must still end clean (exit
    0) once the final reconciliation has settled it, not be judged on the cancel step alone."""
    # The default shutdown budget (20 s) outlasts the not-found grace (15 s); the test config's
    # shorter one would not, and a stop that cannot settle its orders is rightly unclean.
    cfg = engine_config(shutdown_timeout_s=20.0)
    runner = await sim.start_engine(cfg, tmp_path / "j.sqlite3", strategy=False)
    engine = runner.engine
    assert engine.router is not None
    sim.server.inject_rest_fault(
        RestFault(RestFaultKind.HTTP, http_status=503, path_prefix="/v5/order/create")
    )
    result = engine.router.submit(resting_signal(sim, "never-landed"))
    assert result.accepted
    await wait_until(lambda: order_state(engine, result.order_link_id) is OrderState.UNKNOWN)
    await runner.stop()
    assert runner.error is None
    report = engine.shutdown_report
    assert report is not None
    assert report.open_orders == 0
    assert report.clean
    assert order_state(engine, result.order_link_id) is OrderState.LOST
    assert sim.open_orders(SYMBOL) == []


async def test_lost_response_to_an_accepted_order_is_settled_by_query_never_resent(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    runner = await sim.start_engine(engine_config(), path, strategy=False)
    engine = runner.engine
    state = engine_state(engine)
    assert engine.router is not None

    # The venue creates the order, then the connection dies without an answer; the private
    # push is lost too, so only a query can tell the router what happened.
    sim.server.inject_rest_fault(
        RestFault(RestFaultKind.DROP, process=True, path_prefix="/v5/order/create")
    )

    async def mute(request: httpx.Request, call: RestCall) -> None:
        if call.path == "/v5/order/create":
            sim.server.pause_private(True)

    async def unmute(request: httpx.Request, call: RestCall) -> None:
        if call.path == "/v5/order/create":
            sim.server.pause_private(False)

    sim.transport.before.append(mute)
    sim.transport.after.append(unmute)

    result = engine.router.submit(resting_signal(sim, "lost-1"))
    assert result.accepted
    link = result.order_link_id
    await wait_until(lambda: order_state(engine, link) is OrderState.NEW)

    creates = sim.transport.creates()
    assert len(creates) == 1
    assert creates[0].ret_code is None
    queries = [c for c in sim.transport.calls if c.path == "/v5/order/realtime"]
    assert any(c.sent_at > creates[0].sent_at for c in queries)
    venue_orders = [o for o in sim.open_orders(SYMBOL) if o.order_link_id == link]
    assert len(venue_orders) == 1
    assert state.tracker[link].order_id == venue_orders[0].order_id

    await runner.stop()
    assert sim.open_orders(SYMBOL) == []
    with journal_of(path) as journal:
        loaded = journal.load()
    assert list(loaded.intents) == [link]
    assert list(loaded.orders) == [link]
    assert loaded.orders[link].state is OrderState.CANCELLED


# --------------------------------------------------------------------------- 10006 storm


async def test_rate_limit_storm_is_met_with_backoff_and_no_request_over_the_limit(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    runner = await sim.start_engine(engine_config(), tmp_path / "j.sqlite3", strategy=False)
    engine = runner.engine
    assert engine.reconciler is not None
    path = "/v5/position/list"
    before = len(sim.transport.calls)
    sim.server.inject_rest_fault(
        RestFault(
            RestFaultKind.ERROR, ret_code=10006, ret_msg="Too many visits!", path_prefix=path
        ),
        count=3,
    )
    report = await engine.reconciler.reconcile("storm", gate=False)
    assert report.complete

    calls = [c for c in sim.transport.calls[before:] if c.path == path]
    assert [c.ret_code for c in calls] == [10006, 10006, 10006, 0]
    # Each 10006 says "reset in 1 s": the client waits for it instead of hammering.
    for refused, retry in itertools.pairwise(calls):
        assert refused.done_at is not None
        assert retry.sent_at - refused.done_at >= 0.99
    # The venue's own limiter never had to refuse anything: every 10006 was an injected one.
    assert sum(1 for c in sim.transport.calls if c.ret_code == 10006) == 3
    await runner.stop()
    assert runner.error is None


# --------------------------------------------------------------------------- supervision


class Boom(Exception):
    pass


class OneShotCrasher:
    """A trading-nursery child that raises :class:`Boom` once ``trigger`` is set; the copy the
    restarted group runs stays healthy. ``crashed`` holds when it raised."""

    def __init__(self) -> None:
        self.trigger = trio.Event()
        self.crashed: list[float] = []

    async def __call__(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await self.trigger.wait()
        if not self.crashed:
            self.crashed.append(trio.current_time())
            raise Boom("injected")
        await trio.sleep_forever()


async def test_child_crash_cancels_siblings_cancels_orders_and_restarts_after_reconcile(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    crasher = OneShotCrasher()
    trigger = crasher.trigger
    sibling_cancelled: list[float] = []

    async def sibling(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            sibling_cancelled.append(trio.current_time())

    runner = await sim.start_engine(
        engine_config(),
        tmp_path / "j.sqlite3",
        strategy=False,
        extra_children=[("sibling", sibling), ("crasher", crasher)],
    )
    engine = runner.engine
    state = engine_state(engine)
    assert engine.router is not None
    resting = engine.router.submit(resting_signal(sim, "rest-1"))
    await wait_until(lambda: len(sim.open_orders(SYMBOL)) == 1)
    old_private = engine.private

    trigger.set()
    await wait_until(lambda: engine.restarts == 1 and state.gate.is_open)
    assert len(sibling_cancelled) == 1  # the crash took its siblings down
    assert engine.private is not old_private  # the streams were rebuilt too
    assert old_private is not None
    assert old_private.state.value == "down"
    assert sim.open_orders(SYMBOL) == []  # nobody watched it any more: cancelled
    assert state.tracker[resting.order_link_id].state is OrderState.CANCELLED
    assert [r.trigger for r in engine.reconciles].count("restart") == 1
    assert runner.error is None

    # Trading works again after the restart.
    again = engine.router.submit(taker_signal(sim, "after-restart"))
    assert again.accepted
    await wait_until(lambda: state.portfolio.position(SYMBOL).size == Decimal("0.002"))
    await runner.stop()
    assert runner.error is None


async def test_restart_budget_exhausted_exits_with_engine_failed(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    async def always_crash(
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await trio.sleep(1.0)
        raise Boom("again")

    cfg = engine_config(max_restarts=2, restart_window_s=60.0)
    runner = await sim.start_engine(
        cfg, tmp_path / "j.sqlite3", strategy=False, extra_children=[("bad", always_crash)]
    )
    await runner.done.wait()
    assert isinstance(runner.error, EngineFailed)
    assert isinstance(runner.error.__cause__, BaseException)
    assert runner.engine.restarts == 2
    assert len(runner.engine.crashes) == 3


# --------------------------------------------------------------------------- strategy + shutdown


async def test_demo_strategy_fills_and_graceful_stop_leaves_no_resting_order(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    runner = await sim.start_engine(engine_config(), path)
    engine = runner.engine
    state = engine_state(engine)
    await trio.sleep(60.0)

    assert state.counters.fills > 0  # the status line moves within a minute
    assert state.counters.maker_fills > 0
    assert sim.position(SYMBOL) == state.portfolio.position(SYMBOL).size
    mark = engine.mark(SYMBOL)
    assert mark is not None
    order_notional = engine.cfg.strategy.order_notional_usdt
    limit = engine.cfg.strategy.max_position_notional_usdt
    assert abs(state.portfolio.position(SYMBOL).size) * mark <= limit + 2 * order_notional
    status = engine.status()
    assert status.fills == state.counters.fills
    assert status.streams
    assert all(v.state == "ready" for v in status.streams)
    # Every link id went to the venue once.
    links = [c.link_id for c in sim.transport.creates()]
    assert len(links) == len(set(links))
    await wait_until(lambda: len(sim.open_orders(SYMBOL)) > 0)

    report = await engine.shutdown("test")
    await runner.done.wait()
    assert runner.error is None
    assert report is not None
    assert report.clean, report
    assert sim.open_orders() == []
    with journal_of(path) as journal:
        loaded = journal.load()
    assert loaded.non_final_orders == ()
    assert loaded.rebuild_portfolio().position(SYMBOL).size == sim.position(SYMBOL)
    assert {o.state for o in loaded.orders.values()} <= {
        OrderState.CANCELLED,
        OrderState.FILLED,
        OrderState.PARTIALLY_FILLED_CANCELED,
    }


async def test_stop_requested_before_ready_still_exits_cleanly(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    engine = sim.make_engine(engine_config(), tmp_path / "j.sqlite3", strategy=False)
    engine.request_stop("early")
    with trio.fail_after(30):
        await engine.run()
    assert not engine.ready.is_set()
    assert engine.shutdown_report is not None
    assert engine.shutdown_report.clean


async def test_stop_is_honoured_while_the_private_stream_cannot_come_up(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    """After a crash the trading nursery restarts, but the private WebSocket is unreachable: a
    SIGTERM must still run the graceful shutdown (REST only) at once, not after escalation."""
    broken = False
    inner = sim.connect_ws

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[object]:
        if broken and "private" in url:
            await trio.sleep(20.0)  # e.g. a connect/handshake timeout
            raise OSError("private endpoint unreachable")
        async with inner(url) as ws:
            yield ws

    crasher = OneShotCrasher()
    trigger = crasher.trigger

    cfg = engine_config()
    engine = sim.make_engine(
        cfg, tmp_path / "j.sqlite3", strategy=False, extra_children=[("crasher", crasher)]
    )
    engine._connect_ws = connect  # the WebSocket seam, as the constructor takes it
    runner = await start_engine(sim.nursery, engine)
    broken = True
    trigger.set()
    await wait_until(lambda: engine.restarts == 1)
    await trio.sleep(5.0)  # the restarted trading nursery is stuck starting the private stream
    assert engine.private is not None
    t0 = trio.current_time()
    engine.request_stop("SIGTERM")
    with trio.move_on_after(cfg.engine.shutdown_timeout_s + 5.0):
        await runner.done.wait()
    assert runner.done.is_set(), "the stop waited for the trading nursery to start"
    assert trio.current_time() - t0 <= cfg.engine.shutdown_timeout_s
    assert runner.error is None
    report = engine.shutdown_report
    assert report is not None
    assert report.clean
    assert report.final_reconcile is not None


# --------------------------------------------------------------------------- loss limits


async def test_daily_loss_limit_refuses_new_exposure_lets_a_close_through_and_survives_restart(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    """Taker round trips (spread + fees) lose more than a 0.5 USDT daily limit: the next status
    tick blocks new exposure (``loss_limit``), cancels our resting opening order, alerts once;
    a reduce-only close still goes; a trading restart's new router is blocked too."""
    crasher = OneShotCrasher()
    trigger = crasher.trigger

    cfg = engine_config()
    cfg = attrs.evolve(cfg, risk=attrs.evolve(cfg.risk, daily_loss_limit_usdt=Decimal("0.5")))
    runner = await sim.start_engine(
        cfg, tmp_path / "j.sqlite3", strategy=False, extra_children=[("crasher", crasher)]
    )
    engine = runner.engine
    state = engine_state(engine)
    guard = engine.loss_guard
    assert engine.router is not None
    # The reporter's first check ran as trading started: the day's start equity is known.
    await wait_until(lambda: guard.day_start_equity is not None)
    start = guard.day_start_equity
    assert start is not None
    assert engine.loss_breach is None

    def position() -> Decimal:
        return state.portfolio.position(SYMBOL).size

    # Hold a long to close later, and rest a buy far from the touch.
    assert engine.router.submit(taker_signal(sim, "hold")).accepted
    await wait_until(lambda: position() == Decimal("0.002"))
    rest = engine.router.submit(resting_signal(sim, "rest"))
    assert rest.accepted
    await wait_until(lambda: order_state(engine, rest.order_link_id) is OrderState.NEW)

    # Lose money: every round trip pays the spread and two taker fees.
    for i in range(20):
        wallet = state.wallet
        assert wallet is not None
        if start - wallet.total_equity > Decimal("0.5"):
            break
        assert engine.router.submit(taker_signal(sim, f"b{i}")).accepted
        await wait_until(lambda: position() == Decimal("0.004"))
        assert engine.router.submit(taker_signal(sim, f"s{i}", Side.SELL)).accepted
        await wait_until(lambda: position() == Decimal("0.002"))
    else:
        raise AssertionError("the round trips did not lose 0.5 USDT")

    # At the latest one status tick later the limit is in force.
    await wait_until(lambda: engine.loss_breach is not None, cfg.engine.status_interval_s + 1)
    breach = engine.loss_breach
    assert breach is not None
    assert breach.kind is LossKind.DAILY_LOSS
    assert breach.limit == Decimal("0.5")
    assert breach.value >= Decimal("0.5")
    alerts = {"kind": "loss_limit"}
    assert engine.registry.get_sample_value("hean_alerts_total", alerts) == 1
    snapshot = engine.status()
    assert snapshot.loss_limit == breach.detail
    assert not snapshot.trading
    # The resting opening order was cancelled: it could still have filled.
    await wait_until(lambda: order_state(engine, rest.order_link_id) is OrderState.CANCELLED)
    assert sim.open_orders(SYMBOL) == []

    # New exposure is refused, in either direction.
    for sig in (taker_signal(sim, "more"), resting_signal(sim, "more-ask", Side.SELL)):
        refused = engine.router.submit(sig)
        assert not refused.accepted
        assert refused.reason is RejectReason.LOSS_LIMIT
    assert (
        engine.registry.get_sample_value("hean_intents_rejected_total", {"reason": "loss_limit"})
        == 2
    )

    # A trading restart builds a new router: it is blocked from the start.
    old_router = engine.router
    trigger.set()
    await wait_until(lambda: engine.restarts == 1 and state.gate.is_open)
    assert engine.router is not old_router
    refused = engine.router.submit(taker_signal(sim, "after-restart"))
    assert refused.reason is RejectReason.LOSS_LIMIT

    # ... and a reduce-only close goes through.
    close = attrs.evolve(taker_signal(sim, "close", Side.SELL), reduce_only=True)
    closed = engine.router.submit(close)
    assert closed.accepted, closed
    await wait_until(lambda: position() == 0)
    assert sim.position(SYMBOL) == 0
    assert engine.loss_breach is breach  # the daily breach holds for the rest of the UTC day
    assert engine.registry.get_sample_value("hean_alerts_total", alerts) == 1

    await runner.stop()
    assert runner.error is None
