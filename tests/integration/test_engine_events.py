"""PrivateEventApplier: pushes -> state + journal, idempotently; with the real private stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection

from hean.bybit.types import (
    CoinBalance,
    Execution,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PrivateMessage,
    Side,
    TimeInForce,
    Wallet,
)
from hean.bybit.wire import execution_from_wire
from hean.engine.events import PrivateEventApplier
from hean.engine.intents import OrderIntent
from hean.engine.orders import OrderState, Sent
from hean.engine.ws_session import PrivateStream
from hean.sim.faults import StreamKind
from tests.integration.engine_harness import CREDS, Rig, make_signal, open_rig, wait_for

D = Decimal


def journal_snapshot(rig: Rig) -> tuple[list[tuple[Any, ...]], ...]:
    return (
        rig.journal_rows("SELECT key, state, payload FROM orders ORDER BY key"),
        rig.journal_rows("SELECT exec_id, payload FROM executions ORDER BY seq"),
        rig.journal_rows("SELECT symbol, payload FROM positions ORDER BY symbol"),
    )


async def test_applier_is_idempotent(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path, run_router=False) as rig:
        state = rig.state
        intent = OrderIntent.from_signal(
            make_signal(D("90000")),
            qty=D("0.02"),
            price=D("90000"),
            purpose="open",
            created_at=trio.current_time(),
            ttl_s=5.0,
        )
        state.tracker.track_intent(intent, trio.current_time())
        state.tracker.apply(intent.order_link_id, Sent(at=trio.current_time()))
        now_ms = rig.net.now_ms()

        def order(status: OrderStatus, cum: str, t: int) -> Order:
            return Order(
                order_id="oid-1",
                order_link_id=intent.order_link_id,
                symbol="BTCUSDT",
                side=Side.BUY,
                order_type=OrderType.LIMIT,
                price=D("90000"),
                qty=D("0.02"),
                time_in_force=TimeInForce.GTC,
                order_status=status,
                created_time=now_ms,
                updated_time=t,
                leaves_qty=D("0.02") - D(cum),
                cum_exec_qty=D(cum),
            )

        fill = Execution(
            exec_id="e-1",
            symbol="BTCUSDT",
            order_id="oid-1",
            order_link_id=intent.order_link_id,
            side=Side.BUY,
            exec_price=D("90000"),
            exec_qty=D("0.01"),
            exec_value=D("900"),
            exec_fee=D("0.18"),
            exec_time=now_ms + 2,
            is_maker=True,
        )
        position = Position("BTCUSDT", Side.BUY, D("0.01"), D("90000"))
        wallet = Wallet(
            "UNIFIED",
            D("10000"),
            D("10000"),
            D("10000"),
            D("9000"),
            coins=(CoinBalance("USDT", D("10000"), D("10000")),),
        )
        messages = [
            PrivateMessage("1", "order", now_ms, (order(OrderStatus.NEW, "0", now_ms + 1),)),
            PrivateMessage(
                "2", "order", now_ms, (order(OrderStatus.PARTIALLY_FILLED, "0.01", now_ms + 2),)
            ),
            PrivateMessage("3", "execution", now_ms, (fill,)),
            PrivateMessage("4", "position", now_ms, (position,)),
            PrivateMessage("5", "wallet", now_ms, (wallet,)),
        ]
        for msg in messages:
            rig.applier.apply(msg)
        tracked = state.tracker[intent.order_link_id]
        assert tracked.state is OrderState.PARTIALLY_FILLED
        assert tracked.order_id == "oid-1"
        assert state.portfolio.position("BTCUSDT").size == D("0.01")
        assert state.counters.maker_fills == 1
        assert state.exchange_positions["BTCUSDT"] == position
        assert state.wallet == wallet
        before = journal_snapshot(rig)
        assert len(before[1]) == 1

        # Everything again, and the stale "New" snapshot once more after the newer one.
        for msg in [*messages, messages[0]]:
            rig.applier.apply(msg)
        assert journal_snapshot(rig) == before
        assert state.tracker[intent.order_link_id] == tracked
        assert state.portfolio.position("BTCUSDT").size == D("0.01")
        assert state.counters.fills == 1
        assert rig.metric("hean_executions_duplicate_total", {"source": "stream"}) == 1
        # The restarted engine sees the same: journal replay gives the same position.
        assert rig.journal.load().rebuild_portfolio().position("BTCUSDT").size == D("0.01")
        # Fast executions carry no fee: ignored, the full execution push is the one booked.
        fast = PrivateMessage("6", "execution.fast", now_ms, (fill,))
        rig.applier.apply(fast)
        assert journal_snapshot(rig) == before


async def test_execution_of_unknown_order_is_booked_and_the_order_adopted(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path, run_router=False) as rig:
        await rig.reconciler.reconcile("startup")
        await rig.nursery.start(rig.reconciler.run_periodic, 60.0)
        order_id, _ = await rig.rest.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            qty=D("0.01"),
            order_link_id="outside-1",
        )
        fills = await rig.rest.executions(rig.net.now_ms() - 60_000)
        assert {e.order_id for e in fills} == {order_id}
        for e in fills:
            rig.applier.apply(PrivateMessage("x", "execution", e.exec_time, (e,)))
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.01")  # booked at once
        assert len(rig.journal_rows("SELECT exec_id FROM executions")) == len(fills)

        # The applier asked the reconciler to look the order up: an on-demand pass adopts it.
        await wait_for(lambda: rig.state.tracker.by_order_id(order_id) is not None, 5.0)
        adopted = rig.state.tracker.by_order_id(order_id)
        assert adopted is not None
        assert adopted.is_external
        assert adopted.state is OrderState.FILLED
        report = rig.reconciler.last_report
        assert report is not None
        assert report.trigger == "unknown_order"
        assert report.missed_fills == 0  # the stream already delivered them
        assert rig.journal_rows("SELECT key, state FROM orders") == [("outside-1", "Filled")]


async def test_funding_row_with_an_order_id_names_no_order(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Bybit fills in ``orderId`` on funding rows (docs v5/pre-upgrade/execution.mdx: a synthetic
    ``<ts>-<symbol>-<uid>-<side>``; live rows carry a UUID). The charge is booked, but no order
    is looked up for it; a trade of an unknown order still is."""
    async with open_rig(tmp_path, run_router=False) as rig:
        asked: list[tuple[str, str]] = []
        applier = PrivateEventApplier(
            rig.state, rig.journal, on_unknown_order=lambda oid, sym: asked.append((oid, sym))
        )
        funding = execution_from_wire(
            {
                "category": "linear",
                "symbol": "BTCUSDT",
                "orderId": "1682553600-BTCUSDT-592334-Sell",
                "orderLinkId": "",
                "side": "Sell",
                "orderPrice": "0.00",
                "orderQty": "0.000",
                "leavesQty": "0.000",
                "orderType": "UNKNOWN",
                "stopOrderType": "UNKNOWN",
                "execFee": "0.6364003",
                "execId": "11f1c4ed-ff20-4d73-acb7-96e43a917f25",
                "execPrice": "28399.90",
                "execQty": "0.011",
                "execType": "Funding",
                "execValue": "312.3989",
                "execTime": "1682553600000",
                "isMaker": False,
                "feeRate": "0.00203714",
                "markPrice": "28399.90",
                "closedSize": "0.000",
            }
        )
        applier.apply(PrivateMessage("f", "execution", funding.exec_time, (funding,)))
        assert asked == []
        assert rig.journal_rows("SELECT exec_id FROM executions") == [(funding.exec_id,)]
        assert rig.state.portfolio.position("BTCUSDT").size == 0  # a charge moves no position

        trade = Execution(
            exec_id="t-1",
            symbol="BTCUSDT",
            order_id="not-ours",
            order_link_id="",
            side=Side.BUY,
            exec_price=D("28400"),
            exec_qty=D("0.001"),
            exec_value=D("28.4"),
            exec_fee=D("0.01"),
            exec_time=funding.exec_time + 1,
            is_maker=False,
        )
        applier.apply(PrivateMessage("t", "execution", trade.exec_time, (trade,)))
        assert asked == [("not-ours", "BTCUSDT")]


@asynccontextmanager
async def _connect(rig: Rig, url: str) -> AsyncIterator[WebSocketConnection]:
    ws = await rig.net.connect_ws(url)
    try:
        yield ws
    finally:
        await ws.aclose()


async def test_private_stream_end_to_end(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        send, receive = trio.open_memory_channel[PrivateMessage](256)
        stream = PrivateStream(
            "ws://sim/v5/private",
            CREDS,
            send,
            clock=rig.net.now_ms,
            connect_ws=lambda url: _connect(rig, url),
            on_ready=rig.reconciler.on_private_ready,
        )
        await rig.nursery.start(rig.applier.run, receive)
        await rig.nursery.start(stream.run)
        assert rig.state.gate.is_open  # reconciled on connect

        # A fill seen on the stream: order, execution and position arrive as pushes.
        price = await rig.aggressive_price()
        key = rig.router.submit(make_signal(price, qty="0.01")).order_link_id
        assert key is not None
        await wait_for(lambda: rig.final(key))
        assert rig.state.tracker[key].state is OrderState.FILLED
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.01")
        assert rig.metric("hean_executions_applied_total", {"source": "stream"}) >= 1
        report = await rig.reconciler.reconcile("periodic")
        assert report.missed_fills == 0
        assert report.fail_closed is None

        # Pushes lost while the stream is deaf: reconciliation finds the fill, once.
        rig.server.pause_private(True)
        sell = await rig.aggressive_price(Side.SELL)
        key2 = rig.router.submit(make_signal(sell, side=Side.SELL, qty="0.01")).order_link_id
        assert key2 is not None
        await wait_for(lambda: key2 in rig.state.tracker and bool(rig.state.tracker[key2].order_id))
        await trio.sleep(1.0)
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.01")  # not seen yet
        rig.server.pause_private(False)
        report = await rig.reconciler.reconcile("periodic")
        assert report.missed_fills >= 1
        assert report.fail_closed is None
        assert rig.state.portfolio.position("BTCUSDT").size == 0
        assert rig.state.tracker[key2].state is OrderState.FILLED
        rig.server.drop_websockets(StreamKind.PRIVATE)
