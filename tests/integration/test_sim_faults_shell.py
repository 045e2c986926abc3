"""Every venue fault, on command from Python and from the admin endpoint, on the memory network."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import trio
from trio.testing import MockClock
from trio_websocket import ConnectionClosed

from hean.sim.faults import RestFault, RestFaultKind, StreamKind
from hean.sim.ws_server import FaultStream, WsConn
from tests.integration.sim_harness import limit_order, recv, recv_until, running_sim, send


def far_bid(sim: Any, symbol: str = "BTCUSDT") -> Decimal:
    bids, _ = sim.server.venue.book_levels(symbol, 1)
    tick = sim.server.venue.instruments()[symbol].tick_size
    return ((bids[0][0] * Decimal("0.97")) // tick) * tick


async def order_exists(sim: Any, link: str) -> bool:
    r = await sim.get("/v5/order/realtime", f"category=linear&orderLinkId={link}")
    return bool(r.json()["result"]["list"])


async def expect_closed(ws: Any) -> int:
    with trio.fail_after(5):
        while True:
            try:
                await ws.get_message()
            except ConnectionClosed as exc:
                return int(exc.reason.code)


async def test_drop_websockets_gives_1006(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        pub = await sim.ws()
        await send(pub, {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]})
        await recv(pub)
        priv = await sim.private_ws(("order",))
        assert sim.server.drop_websockets() == 2
        assert await expect_closed(pub) == 1006
        assert await expect_closed(priv) == 1006
        assert sim.server.hub.connections == {}
        # the venue keeps serving new connections
        again = await sim.ws()
        await send(again, {"op": "ping"})
        assert (await recv(again))["ret_msg"] == "pong"


async def test_drop_only_private(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        pub = await sim.ws()
        priv = await sim.private_ws(("order",))
        assert sim.server.drop_websockets(StreamKind.PRIVATE) == 1
        assert await expect_closed(priv) == 1006
        await send(pub, {"op": "ping"})
        assert (await recv(pub))["ret_msg"] == "pong"


async def test_blackhole_stops_bytes_without_closing(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        pub = await sim.ws()
        await send(pub, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT"]})
        await recv(pub)
        await recv(pub)
        assert sim.server.blackhole(StreamKind.PUBLIC) == 1
        # drain what was already in flight, then silence: no data, no pong, no close
        with trio.move_on_after(0.5):
            while True:
                await pub.get_message()
        await send(pub, {"op": "ping"})
        with trio.move_on_after(30) as quiet:
            await pub.get_message()
        assert quiet.cancelled_caught
        assert pub.closed is None
        # a WebSocket-level ping is not answered either (the transport is silent)
        with trio.move_on_after(5) as no_pong:
            await pub.ping(b"hb")
        assert no_pong.cancelled_caught
        # a fresh connection is healthy
        fresh = await sim.ws()
        await send(fresh, {"op": "ping"})
        assert (await recv(fresh))["ret_msg"] == "pong"


async def test_rest_delay(autojump_clock: MockClock) -> None:
    async with running_sim(response_latency_ms=5) as sim:
        sim.server.set_rest_delay(700)
        t = trio.current_time()
        await sim.get("/v5/market/time", signed=False)
        assert trio.current_time() - t == pytest.approx(0.705)
        sim.server.set_rest_delay(0)
        t = trio.current_time()
        await sim.get("/v5/market/time", signed=False)
        assert trio.current_time() - t == pytest.approx(0.005)


async def test_drop_response_after_processing(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        sim.server.inject_rest_fault(
            RestFault(RestFaultKind.DROP, path_prefix="/v5/order/create"), 1
        )
        body = limit_order("BTCUSDT", "Buy", "0.001", far_bid(sim), "lost-ack")
        with pytest.raises(httpx.RemoteProtocolError):
            await sim.post("/v5/order/create", body)
        assert await order_exists(sim, "lost-ack")  # the order exists; the client never heard
        # the fault is consumed: a resend with the same orderLinkId gets 110072
        r = await sim.post("/v5/order/create", body)
        assert r.json()["retCode"] == 110072


@pytest.mark.parametrize(
    ("code", "msg"), [(10006, "Too many visits!"), (10016, None), (10000, None)]
)
async def test_next_n_requests_get_error_codes(
    autojump_clock: MockClock, code: int, msg: str | None
) -> None:
    async with running_sim() as sim:
        sim.server.inject_rest_fault(
            RestFault(RestFaultKind.ERROR, code, msg or "Server error", path_prefix="/v5/order/"),
            2,
        )
        price = far_bid(sim)
        for i in range(2):
            r = await sim.post(
                "/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, f"e{code}-{i}")
            )
            assert r.status_code == 200
            assert r.json()["retCode"] == code
            assert r.json()["result"] == {}
            if code == 10006:
                assert r.json()["retMsg"] == "Too many visits!"
                assert "x-bapi-limit-reset-timestamp" in r.headers
        # not processed
        assert not await order_exists(sim, f"e{code}-0")
        r = await sim.post("/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, "ok"))
        assert r.json()["retCode"] == 0


async def test_http_5xx_and_processed_unknown_outcome(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        sim.server.inject_rest_fault(RestFault(RestFaultKind.HTTP, http_status=503), 1)
        r = await sim.get("/v5/market/time", signed=False)
        assert r.status_code == 503
        sim.server.inject_rest_fault(
            RestFault(RestFaultKind.ERROR, 10000, "Server Timeout", process=True), 1
        )
        body = limit_order("BTCUSDT", "Buy", "0.001", far_bid(sim), "maybe")
        r = await sim.post("/v5/order/create", body)
        assert r.json()["retCode"] == 10000
        assert await order_exists(sim, "maybe")  # processed despite the error answer


async def test_pause_private_loses_events(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        ws = await sim.private_ws(("order",))
        price = far_bid(sim)
        sim.server.pause_private(True)
        r = await sim.post(
            "/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, "dark")
        )
        assert r.json()["retCode"] == 0
        with trio.move_on_after(2) as silent:
            await recv_until(ws, lambda m: m.get("topic") == "order", timeout=10)
        assert silent.cancelled_caught
        assert sim.server.private_dropped > 0
        sim.server.pause_private(False)
        await sim.post("/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, "lit"))
        msg = await recv_until(ws, lambda m: m.get("topic") == "order")
        assert [o["orderLinkId"] for o in msg["data"]] == ["lit"]  # "dark" is never replayed


async def test_admin_endpoint(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        pub = await sim.ws()
        r = await sim.http.post("/sim/admin/fault", content=orjson.dumps({"action": "drop_ws"}))
        assert r.status_code == 200
        assert r.json()["ok"] is True
        assert r.json()["connections_affected"] == 1
        assert await expect_closed(pub) == 1006
        r = await sim.http.post(
            "/sim/admin/fault",
            content=orjson.dumps({"action": "rest_error", "ret_code": 10016, "count": 1}),
        )
        assert r.json()["pending_rest_faults"] == 1
        assert (await sim.get("/v5/market/time", signed=False)).json()["retCode"] == 10016
        r = await sim.http.post("/sim/admin/fault", content=b'{"action": "explode"}')
        assert r.status_code == 400
        assert r.json()["ok"] is False
        assert (await sim.http.get("/sim/admin/fault")).status_code == 405


async def test_admin_disabled_is_404(autojump_clock: MockClock) -> None:
    async with running_sim(admin_enabled=False) as sim:
        r = await sim.http.post("/sim/admin/fault", content=b'{"action": "clear"}')
        assert r.status_code == 404


async def test_slow_consumer_is_disconnected() -> None:
    """The outbound queue is bounded: a push that finds it full aborts the connection."""

    class _Ws:
        async def send_message(self, text: str) -> None:
            await trio.sleep_forever()

    scope = trio.CancelScope()
    conn = WsConn(
        "c",
        StreamKind.PUBLIC,
        _Ws(),
        FaultStream(trio.testing.memory_stream_pair()[0]),
        scope,
        2,
    )
    assert conn.push("a", 0.0)
    assert conn.push("b", 0.0)
    assert not conn.push("c", 0.0)
    assert conn.aborted
    assert scope.cancel_called
    assert not conn.push("d", 0.0)
