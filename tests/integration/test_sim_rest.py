"""REST conformance of the venue shell on the in-memory network, under the fake clock.

Raw client: httpx with hand-signed requests (no engine code).
"""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
import trio
from trio.testing import MockClock

from hean.bybit.signing import rest_signature
from tests.integration.sim_harness import KEY, SECRET, limit_order, running_sim


def far_bid(sim, symbol: str = "BTCUSDT") -> Decimal:
    """A resting buy price 3 % under the best bid, on the tick grid (never fills)."""
    bids, _ = sim.server.venue.book_levels(symbol, 1)
    tick = sim.server.venue.instruments()[symbol].tick_size
    return ((bids[0][0] * Decimal("0.97")) // tick) * tick


async def test_public_envelope_and_headers(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        before = sim.now()
        r = await sim.get("/v5/market/time", signed=False)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert len(r.headers["traceid"]) == 32
        assert int(r.headers["timenow"]) >= before
        assert "x-bapi-limit" not in r.headers  # market data is not UID-limited
        # Bybit's key order and types, compact JSON
        assert list(orjson.loads(r.content)) == [
            "retCode",
            "retMsg",
            "result",
            "retExtInfo",
            "time",
        ]
        body = orjson.loads(r.content)
        assert body["retCode"] == 0
        assert body["retMsg"] == "OK"
        assert body["retExtInfo"] == {}
        assert isinstance(body["time"], int)
        assert body["result"]["timeSecond"] == str(int(body["result"]["timeNano"]) // 10**9)
        other = await sim.get("/v5/market/time", signed=False)
        assert other.headers["traceid"] != r.headers["traceid"]


async def test_unknown_path_wrong_method_and_get_with_body(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        assert (await sim.http.get("/v5/nope")).status_code == 404
        assert (await sim.http.post("/v5/market/time", content=b"{}")).status_code == 404
        assert (await sim.http.get("/v5/order/create")).status_code == 404
        r = await sim.http.request("GET", "/v5/market/time", content=b"{}")
        assert r.status_code == 403


async def test_business_error_envelope(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        r = await sim.post("/v5/order/cancel", {"category": "linear", "symbol": "BTCUSDT"})
        body = r.json()
        assert r.status_code == 200
        assert body["retCode"] == 10001
        assert body["result"] == {}
        r = await sim.post(
            "/v5/order/cancel",
            {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "missing"},
        )
        assert r.json()["retCode"] == 110001


async def test_auth_failures(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        q = "accountType=UNIFIED"
        # 10002: timestamp outside the recv window, with Bybit's text
        stale = sim.now() - 6000
        r = await sim.get("/v5/account/wallet-balance", q, ts=stale)
        body = r.json()
        assert body["retCode"] == 10002
        assert body["retMsg"].startswith(
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{stale}],server_timestamp["
        )
        assert body["retMsg"].endswith(",recv_window[5000]")
        future = sim.now() + 1000
        assert (await sim.get("/v5/account/wallet-balance", q, ts=future)).json()[
            "retCode"
        ] == 10002
        # 10003: unknown key (HTTP 401 with the envelope)
        r = await sim.get("/v5/account/wallet-balance", q, key="nobody")
        assert r.status_code == 401
        assert r.json()["retCode"] == 10003
        assert r.json()["retMsg"] == "API key is invalid."
        # missing headers
        r = await sim.get("/v5/account/wallet-balance", q, signed=False)
        assert r.status_code == 401
        assert r.json()["retCode"] == 10003
        # 10004: wrong secret
        r = await sim.get("/v5/account/wallet-balance", q, secret="wrong")
        assert r.json()["retCode"] == 10004
        assert r.json()["retMsg"].startswith("error sign! origin_string[")
        # 10004: body re-serialised by the client after signing (signed compact, sent spaced)
        spaced = b'{"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "x"}'
        compact = orjson.dumps(orjson.loads(spaced))
        r = await sim.post("/v5/order/cancel", spaced, sign_body=compact)
        assert r.json()["retCode"] == 10004
        assert r.json()["retMsg"].endswith(spaced.decode() + "]")
        # ...while the same spaced body signed as sent is accepted (raw-byte verification)
        r = await sim.post("/v5/order/cancel", spaced)
        assert r.json()["retCode"] == 110001


async def test_rate_limit_10006_and_headers(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        price = far_bid(sim)
        start = trio.current_time()
        codes = []
        for i in range(11):
            r = await sim.post(
                "/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, f"rl-{i}")
            )
            codes.append((r.json()["retCode"], r.headers["x-bapi-limit-status"]))
        assert trio.current_time() - start < 1.0  # all 11 inside one rolling second
        assert [c for c, _ in codes[:10]] == [0] * 10
        assert [s for _, s in codes[:10]] == [str(9 - i) for i in range(10)]
        last = r
        assert last.json()["retCode"] == 10006
        assert last.json()["retMsg"] == "Too many visits!"
        assert last.headers["x-bapi-limit"] == "10"
        assert last.headers["x-bapi-limit-status"] == "0"
        reset = int(last.headers["x-bapi-limit-reset-timestamp"])
        assert reset > sim.now() - 20
        # the refused order does not exist
        q = "category=linear&orderLinkId=rl-10"
        assert (await sim.get("/v5/order/realtime", q)).json()["result"]["list"] == []
        # after the reset time the endpoint admits again; other endpoints were never limited
        await trio.sleep_until(sim.server.trio_time_at(reset))
        r = await sim.post(
            "/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, "rl-late")
        )
        assert r.json()["retCode"] == 0


async def test_pagination_of_open_orders(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        price = far_bid(sim)
        links = set()
        for i in range(23):
            link = f"page-{i}"
            r = await sim.post(
                "/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", price, link)
            )
            assert r.json()["retCode"] == 0, r.json()
            links.add(link)
            await trio.sleep(0.11)  # stay under 10 creates per second
        seen: list[str] = []
        cursor = ""
        pages = 0
        while True:
            q = "category=linear&symbol=BTCUSDT&limit=10" + (f"&cursor={cursor}" if cursor else "")
            result = (await sim.get("/v5/order/realtime", q)).json()["result"]
            pages += 1
            seen += [o["orderLinkId"] for o in result["list"]]
            cursor = result["nextPageCursor"]
            if not cursor:
                break
        assert pages == 3
        assert len(seen) == len(set(seen)) == 23
        assert set(seen) == links


async def test_latency_model_is_applied(autojump_clock: MockClock) -> None:
    async with running_sim(order_latency_ms=30, response_latency_ms=20) as sim:
        t = trio.current_time()
        await sim.get("/v5/market/time", signed=False)
        assert trio.current_time() - t == pytest.approx(0.020)
        t = trio.current_time()
        r = await sim.post(
            "/v5/order/create", limit_order("BTCUSDT", "Buy", "0.001", far_bid(sim), "lat-1")
        )
        assert r.json()["retCode"] == 0
        assert trio.current_time() - t == pytest.approx(0.050)
        # the order reached matching after the entry latency: createdTime = send time + 30 ms
        q = "category=linear&orderLinkId=lat-1"
        order = (await sim.get("/v5/order/realtime", q)).json()["result"]["list"][0]
        sent_ms = sim.server.start_ms + round(
            (t - sim.server.trio_time_at(sim.server.start_ms)) * 1000
        )
        assert int(order["createdTime"]) == sent_ms + 30


async def test_signature_uses_raw_query_order(autojump_clock: MockClock) -> None:
    async with running_sim() as sim:
        # unsorted query, signed as sent: accepted
        q = "symbol=BTCUSDT&category=linear"
        assert (await sim.get("/v5/order/realtime", q)).json()["retCode"] == 0
        # signed sorted but sent unsorted: refused
        ts = sim.now()
        headers = {
            "X-BAPI-API-KEY": KEY,
            "X-BAPI-TIMESTAMP": str(ts),
            "X-BAPI-RECV-WINDOW": "5000",
            "X-BAPI-SIGN": rest_signature(SECRET, ts, KEY, 5000, "category=linear&symbol=BTCUSDT"),
        }
        r = await sim.http.get(f"/v5/order/realtime?{q}", headers=headers)
        assert r.json()["retCode"] == 10004
