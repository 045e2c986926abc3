"""Crash-restart: the engine dies mid-trade and a new one starts on the same journal and venue.

The crash is a cancellation at the worst moment — the venue has processed an order create and
the answer has not reached the engine — so the journal holds the order as in flight, the venue
holds the order (and maybe its fill), and nothing in between was recorded. The new engine must
settle it by ``orderLinkId``: nothing is placed twice, no fill is lost or doubled, and its
positions match the venue's before it trades.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import trio

from hean.bybit.types import OrderType, Side, TimeInForce
from hean.engine.intents import Signal
from hean.engine.journal import Journal
from hean.engine.orders import OrderState
from tests.conftest import (
    EngineRunner,
    SimHarness,
    assert_each_link_id_sent_once,
    crash_on_next_create,
    engine_config,
)

SYMBOL = "BTCUSDT"


def assert_matches_venue(sim: SimHarness, runner: EngineRunner) -> None:
    state = runner.engine.state
    assert state is not None
    assert state.portfolio.position(SYMBOL).size == sim.position(SYMBOL)
    local_open = {o.order_link_id for o in state.tracker.open_orders(SYMBOL)}
    venue_open = {o.order_link_id for o in sim.open_orders(SYMBOL)}
    assert local_open == venue_open


async def test_crash_after_a_taker_fill_then_restart_on_the_same_journal(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    holder: list[EngineRunner] = []
    crashed: list[str] = []
    first = await sim.start_engine(engine_config(), path, strategy=False)
    holder.append(first)
    crash_on_next_create(sim.transport, holder, crashed)
    assert first.engine.router is not None
    _bid, ask = sim.best_bid_ask(SYMBOL)
    result = first.engine.router.submit(
        Signal(
            strategy="test",
            signal_id="crash-1",
            symbol=SYMBOL,
            side=Side.BUY,
            qty=Decimal("0.003"),
            price=ask * Decimal("1.001"),
            order_type=OrderType.LIMIT,
            time_in_force=TimeInForce.IOC,
            created_at=trio.current_time(),
        )
    )
    assert result.accepted
    await first.done.wait()
    assert crashed == [result.order_link_id]
    assert sim.position(SYMBOL) == Decimal("0.003")  # the venue filled it
    with Journal.open(path) as journal:
        dead = journal.load()
    assert dead.orders[result.order_link_id].state is OrderState.IN_FLIGHT
    assert dead.executions == ()  # the fill never reached the dead engine

    second = await sim.start_engine(engine_config(), path, strategy=False)
    state = second.engine.state
    assert state is not None
    # Ready means reconciled: the in-flight order was settled by query and its fill applied.
    assert state.tracker[result.order_link_id].state is OrderState.FILLED
    assert_matches_venue(sim, second)
    await second.stop()
    assert second.error is None
    assert_each_link_id_sent_once(sim.transport)
    with Journal.open(path) as journal:
        loaded = journal.load()
    assert list(loaded.orders) == [result.order_link_id]
    assert sum(e.exec_qty for e in loaded.executions) == Decimal("0.003")
    assert loaded.rebuild_portfolio().position(SYMBOL).size == Decimal("0.003")


async def test_crash_while_quoting_then_restart_places_nothing_twice(
    autojump_clock: trio.testing.MockClock, sim: SimHarness, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    holder: list[EngineRunner] = []
    crashed: list[str] = []
    first = await sim.start_engine(engine_config(), path)
    await trio.sleep(20.0)  # trade a while: fills, requotes, a position
    holder.append(first)
    crash_on_next_create(sim.transport, holder, crashed)
    with trio.fail_after(30):
        await first.done.wait()
    assert first.error is None
    assert len(crashed) == 1
    creates_before = len(sim.transport.creates())
    # The venue has the order the dead engine never heard about.
    assert crashed[0] in sim.server.venue.exchange.registries["hean-paper-key"].by_link

    second = await sim.start_engine(engine_config(), path)
    state = second.engine.state
    assert state is not None
    crashed_order = state.tracker[crashed[0]]
    assert not crashed_order.state.is_unresolved  # settled by orderLinkId, not re-sent
    assert_matches_venue(sim, second)
    await trio.sleep(20.0)
    assert len(sim.transport.creates()) > creates_before  # it trades again
    assert_matches_venue(sim, second)
    await second.stop()
    assert second.error is None
    assert_each_link_id_sent_once(sim.transport)
    assert sim.open_orders() == []

    venue_links = set(sim.server.venue.exchange.registries["hean-paper-key"].by_link)
    with Journal.open(path) as journal:
        loaded = journal.load()
    assert set(loaded.orders) == venue_links  # one journal order per venue order, no more
    assert loaded.rebuild_portfolio().position(SYMBOL).size == sim.position(SYMBOL)
    assert loaded.non_final_orders == ()
