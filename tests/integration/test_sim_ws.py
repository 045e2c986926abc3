"""WebSocket conformance of the venue shell (public and private) on the in-memory network.

Raw client: trio-websocket with hand-written JSON frames (no engine code).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from hean.bybit.signing import ws_auth_signature
from tests.integration.sim_harness import (
    KEY,
    PRIVATE_URL,
    SECRET,
    limit_order,
    recv,
    recv_until,
    running_sim,
    send,
)


def far_bid(sim: Any, symbol: str = "BTCUSDT") -> Decimal:
    bids, _ = sim.server.venue.book_levels(symbol, 1)
    tick = sim.server.venue.instruments()[symbol].tick_size
    return ((bids[0][0] * Decimal("0.97")) // tick) * tick


async def test_public_subscribe_acks_and_failures(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.ws()
        await send(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"], "req_id": "r1"})
        ack = await recv(ws)
        assert ack == {
            "success": True,
            "ret_msg": "",
            "conn_id": ack["conn_id"],
            "req_id": "r1",
            "op": "subscribe",
        }
        await send(ws, {"op": "subscribe", "args": ["orderbook.7.BTCUSDT"]})
        bad = await recv_until(ws, lambda m: m.get("op") == "subscribe")
        assert bad["success"] is False
        assert bad["ret_msg"] == "error:handler not found,topic:orderbook.7.BTCUSDT"
        await send(ws, {"op": "subscribe", "args": ["tickers.NOPEUSDT"]})
        bad = await recv_until(ws, lambda m: m.get("op") == "subscribe")
        assert bad["ret_msg"] == "error:handler not found,topic:tickers.NOPEUSDT"
        await send(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
        dup = await recv_until(ws, lambda m: m.get("op") == "subscribe")
        assert dup["success"] is False
        assert "already subscribed" in dup["ret_msg"]


async def test_public_ping_pong_shape(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.ws()
        await send(ws, {"op": "ping", "req_id": "100001"})
        pong = await recv(ws)
        assert pong["op"] == "ping"
        assert pong["ret_msg"] == "pong"
        assert pong["success"] is True
        assert pong["req_id"] == "100001"


async def test_orderbook_snapshot_then_consecutive_deltas(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.ws()
        await send(ws, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
        assert (await recv(ws))["success"] is True
        snap = await recv(ws)
        assert snap["topic"] == "orderbook.50.BTCUSDT"
        assert snap["type"] == "snapshot"
        assert set(snap) >= {"topic", "type", "ts", "data", "cts"}
        book_b = {Decimal(p): Decimal(s) for p, s in snap["data"]["b"]}
        book_a = {Decimal(p): Decimal(s) for p, s in snap["data"]["a"]}
        u, seq = snap["data"]["u"], snap["data"]["seq"]
        last_ts = snap["ts"]
        deltas = 0
        while deltas < 40:
            msg = await recv(ws)
            assert msg["type"] == "delta"
            assert msg["data"]["u"] == u + 1
            assert msg["data"]["seq"] >= seq
            assert msg["ts"] - last_ts >= 20  # depth 50 cadence
            u, seq, last_ts = msg["data"]["u"], msg["data"]["seq"], msg["ts"]
            for side, book in (("b", book_b), ("a", book_a)):
                for p, s in msg["data"][side]:
                    if Decimal(s) == 0:
                        del book[Decimal(p)]
                    else:
                        book[Decimal(p)] = Decimal(s)
            deltas += 1
            assert 0 < len(book_b) <= 50
            assert 0 < len(book_a) <= 50
            assert max(book_b) < min(book_a)
        # a second subscriber gets a snapshot of the current published state, same u lineage
        ws2 = await sim.ws()
        await send(ws2, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
        await recv(ws2)
        snap2 = await recv(ws2)
        assert snap2["type"] == "snapshot"
        assert snap2["data"]["u"] >= u


async def test_depth1_is_snapshot_only_and_u_increases(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.ws()
        await send(ws, {"op": "subscribe", "args": ["orderbook.1.ETHUSDT"]})
        await recv(ws)
        last_u = 0
        for _ in range(10):
            msg = await recv(ws)
            assert msg["type"] == "snapshot"
            assert len(msg["data"]["b"]) == 1
            assert len(msg["data"]["a"]) == 1
            assert msg["data"]["u"] >= last_u
            last_u = msg["data"]["u"]


async def test_tickers_snapshot_then_partial_deltas(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.ws()
        await send(ws, {"op": "subscribe", "args": ["tickers.BTCUSDT"]})
        await recv(ws)
        snap = await recv(ws)
        assert snap["type"] == "snapshot"
        assert "cs" in snap
        assert "ts" in snap
        full = set(snap["data"])
        assert {"symbol", "lastPrice", "markPrice", "bid1Price", "ask1Price"} <= full
        partial_seen = False
        for _ in range(20):
            msg = await recv_until(ws, lambda m: m.get("topic") == "tickers.BTCUSDT")
            assert msg["type"] == "delta"
            assert msg["data"]["symbol"] == "BTCUSDT"
            assert set(msg["data"]) <= full
            partial_seen |= set(msg["data"]) < full
        assert partial_seen


async def test_public_trades_and_unsubscribe(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.ws()
        await send(ws, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
        await recv(ws)
        msg = await recv(ws)
        assert msg["topic"] == "publicTrade.BTCUSDT"
        assert msg["type"] == "snapshot"
        times = [t["T"] for t in msg["data"]]
        assert times == sorted(times)
        assert {"T", "s", "S", "v", "p", "L", "i", "BT", "seq"} <= set(msg["data"][0])
        await send(ws, {"op": "unsubscribe", "args": ["publicTrade.BTCUSDT"], "req_id": "u"})
        ack = await recv_until(ws, lambda m: m.get("op") == "unsubscribe")
        assert ack["success"] is True
        assert ack["req_id"] == "u"
        with trio.move_on_after(3):
            extra = await recv(ws, timeout=10)
            pytest.fail(f"message after unsubscribe: {extra}")


async def test_private_auth_rules_and_pong(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.ws(PRIVATE_URL)
        await send(ws, {"op": "subscribe", "args": ["order"]})
        early = await recv(ws)
        assert early["success"] is False
        assert early["op"] == "subscribe"
        now = sim.now()
        await send(ws, {"op": "auth", "args": [KEY, now, ws_auth_signature(SECRET, now)]})
        expired = await recv(ws)
        assert (expired["success"], expired["ret_msg"], expired["op"]) == (
            False,
            "Params Error",
            "auth",
        )
        exp = now + 10_000
        await send(ws, {"op": "auth", "args": [KEY, exp, "0" * 64], "req_id": "a1"})
        bad = await recv(ws)
        assert bad["success"] is False
        assert bad["req_id"] == "a1"
        await send(ws, {"op": "auth", "args": [KEY, exp, ws_auth_signature(SECRET, exp)]})
        ok = await recv(ws)
        assert ok["success"] is True
        assert ok["op"] == "auth"
        assert "req_id" not in ok
        await send(ws, {"op": "subscribe", "args": ["order", "execution.linear"]})
        mixed = await recv(ws)
        assert mixed["success"] is False
        await send(ws, {"op": "ping", "req_id": "p"})
        pong = await recv(ws)
        assert pong["op"] == "pong"
        assert pong["req_id"] == "p"
        assert pong["args"] == [str(sim.now())]


async def test_private_pushes_follow_rest_and_use_subscribed_topic(
    autojump_clock: MockClock,
) -> None:
    async with running_sim() as sim:
        plain = await sim.private_ws(("order", "position"))
        categorised = await sim.private_ws(("order.linear",))
        price = far_bid(sim)
        r = await sim.post("/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, "p-1"))
        assert r.json()["retCode"] == 0
        msg = await recv_until(plain, lambda m: m.get("topic") == "order")
        assert {"id", "topic", "creationTime", "data"} <= set(msg)
        order = msg["data"][0]
        assert order["orderLinkId"] == "p-1"
        assert order["orderStatus"] == "New"
        assert order["category"] == "linear"
        pos = await recv_until(plain, lambda m: m.get("topic") == "position")
        assert pos["data"][0]["symbol"] == "BTCUSDT"
        cat = await recv_until(categorised, lambda m: "topic" in m)
        assert cat["topic"] == "order.linear"
        assert cat["data"][0]["orderLinkId"] == "p-1"


async def test_private_events_missed_while_disconnected_are_not_replayed(
    autojump_clock: MockClock,
) -> None:
    async with running_sim() as sim:
        ws = await sim.private_ws(("order",))
        await ws.aclose()
        price = far_bid(sim)
        await sim.post("/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, "gone"))
        ws = await sim.private_ws(("order",))
        await sim.post("/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, "seen"))
        first = await recv_until(ws, lambda m: m.get("topic") == "order")
        assert [o["orderLinkId"] for o in first["data"]] == ["seen"]


async def test_unknown_ws_path_is_rejected(autojump_clock: MockClock) -> None:
    from trio_websocket import ConnectionRejected

    async with running_sim() as sim:
        with pytest.RaisesGroup(ConnectionRejected, allow_unwrapped=True, flatten_subgroups=True):
            async with trio.open_nursery() as nursery:
                await sim.net.connect_ws("ws://sim/v5/public/spot", nursery=nursery)
