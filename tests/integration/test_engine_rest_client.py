"""BybitRestClient against a fake Bybit behind ``httpx.MockTransport``, under trio's fake clock.

The fake verifies signatures over the raw bytes it receives, enforces the timestamp window, and
counts every request, so retry policy is checked by what actually reached the "exchange".
"""

from __future__ import annotations

import inspect
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import trio
from prometheus_client import CollectorRegistry

from hean.bybit import rest
from hean.bybit.envelope import envelope_bytes
from hean.bybit.errors import (
    AuthError,
    ClockSkewError,
    DuplicateOrderLinkIdError,
    InsufficientBalanceError,
    OrderNotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
)
from hean.bybit.signing import Credentials, verify_rest_signature
from hean.bybit.types import (
    Execution,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from hean.bybit.wire import execution_to_wire, order_to_wire, position_to_wire
from hean.config import SimConfig
from hean.engine.backoff import Backoff
from hean.engine.clock import ServerClock, ServerTimeOffset, TrioOffsetClock
from hean.engine.rest_client import BybitRestClient, Outcome, RestMetrics, classify
from hean.sim.faults import RestFault, RestFaultKind
from hean.sim.memnet import MemNet
from hean.sim.server import SimServer

START_MS = 1_767_225_600_000
KEY, SECRET = "test-key", "test-secret"
DAY_MS = 24 * 3600 * 1000

Route = Callable[[httpx.Request], "httpx.Response | Awaitable[httpx.Response]"]


class FakeBybit:
    """A scripted Bybit: per-path routes, signature/timestamp checks, request log."""

    def __init__(self, *, skew_ms: int = 0) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[float, httpx.Request]] = []
        self.skew_ms = skew_ms  # server clock = local clock + skew

    def now_ms(self) -> int:
        return START_MS + round(trio.current_time() * 1000) + self.skew_ms

    def count(self, path: str) -> int:
        return sum(1 for _, r in self.seen if r.url.path == path)

    def times(self, path: str) -> list[float]:
        return [t for t, r in self.seen if r.url.path == path]

    def ok(self, result: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(
            200, content=envelope_bytes(result, time_ms=self.now_ms()), headers=headers
        )

    def err(
        self, code: int, msg: str, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = envelope_bytes(None, ret_code=code, ret_msg=msg, time_ms=self.now_ms())
        return httpx.Response(status, content=body, headers=headers)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((trio.current_time(), request))
        if "X-BAPI-SIGN" in request.headers:
            h = request.headers
            payload = request.url.query if request.method == "GET" else request.content
            if not verify_rest_signature(
                SECRET,
                timestamp=h["X-BAPI-TIMESTAMP"],
                api_key=h["X-BAPI-API-KEY"],
                recv_window=h["X-BAPI-RECV-WINDOW"],
                payload=payload,
                signature=h["X-BAPI-SIGN"],
            ):
                return self.err(10004, "error sign! origin_string[secret stuff]")
            ts, window, server = (
                int(h["X-BAPI-TIMESTAMP"]),
                int(h["X-BAPI-RECV-WINDOW"]),
                self.now_ms(),
            )
            if not server - window <= ts < server + 1000:
                return self.err(10002, "invalid request, please check your server timestamp")
        route = self.routes.get(request.url.path)
        if route is None:
            return httpx.Response(404, content=b"not found")
        response = route(request)
        if inspect.isawaitable(response):
            response = await response
        return response


def make_client(fake: FakeBybit, **kwargs: Any) -> BybitRestClient:
    params: dict[str, Any] = {
        "credentials": Credentials(KEY, SECRET),
        "transport": httpx.MockTransport(fake.handle),
        "clock": TrioOffsetClock(START_MS),
        "rng": random.Random(1),
        "retry_backoff": Backoff(base_s=0.25, cap_s=5.0, jitter=0.0),
        "request_timeout_s": 10.0,
        "metrics": RestMetrics(CollectorRegistry()),
        **kwargs,
    }
    return BybitRestClient("https://api.test", **params)


async def market_buy(client: BybitRestClient, link_id: str) -> tuple[str, str]:
    """The smallest order entry, for tests about how the call is treated, not about the order."""
    return await client.place_order(
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.MARKET,
        qty=Decimal("0.001"),
        order_link_id=link_id,
    )


def query_params(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.url.query.decode()))


def an_order(link_id: str = "L1", status: OrderStatus = OrderStatus.NEW) -> Order:
    return Order(
        order_id=f"oid-{link_id}",
        order_link_id=link_id,
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=Decimal("65000.5"),
        qty=Decimal("0.010"),
        time_in_force=TimeInForce.GTC,
        order_status=status,
        created_time=START_MS,
        updated_time=START_MS,
        leaves_qty=Decimal("0.010"),
    )


def an_execution(exec_id: str, exec_time: int) -> Execution:
    return Execution(
        exec_id=exec_id,
        symbol="BTCUSDT",
        order_id="oid",
        order_link_id="L1",
        side=Side.SELL,
        exec_price=Decimal("65000"),
        exec_qty=Decimal("0.001"),
        exec_value=Decimal("65"),
        exec_fee=Decimal("0.0143"),
        exec_time=exec_time,
        is_maker=False,
    )


def ack(request: httpx.Request) -> dict[str, Any]:
    import orjson

    body = orjson.loads(request.content)
    return {
        "orderId": "oid-" + body.get("orderLinkId", "x"),
        "orderLinkId": body.get("orderLinkId", ""),
    }


# --------------------------------------------------------------------------- wire exactness


async def test_sends_exactly_the_signed_bytes(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeBybit()
    fake.routes["/v5/order/create"] = lambda r: fake.ok(ack(r))
    fake.routes["/v5/order/realtime"] = lambda r: fake.ok({"list": [], "nextPageCursor": ""})
    async with make_client(fake) as client:
        order_id, link_id = await client.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty=Decimal("0.010"),
            price=Decimal("65000.50"),
            time_in_force=TimeInForce.POST_ONLY,
            order_link_id="demo-1-entry",
        )
        assert (order_id, link_id) == ("oid-demo-1-entry", "demo-1-entry")
        await client.open_orders("BTCUSDT")
    (_, post), (_, get) = fake.seen
    expected = rest.create_order(
        "BTCUSDT",
        Side.BUY,
        OrderType.LIMIT,
        Decimal("0.010"),
        price=Decimal("65000.50"),
        time_in_force=TimeInForce.POST_ONLY,
        order_link_id="demo-1-entry",
    )
    assert post.content == expected.body
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["X-BAPI-TIMESTAMP"] == str(START_MS)
    assert get.url.query.decode() == rest.open_orders(symbol="BTCUSDT", limit=50).query
    assert get.content == b""  # a GET with a body is a 403 at Bybit


async def test_server_time_offset_is_used_for_signing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit(skew_ms=-7_000)  # our clock is 7 s ahead: every signed call would be 10002
    fake.routes["/v5/market/time"] = lambda r: fake.ok(
        {"timeSecond": str(fake.now_ms() // 1000), "timeNano": str(fake.now_ms() * 1_000_000)}
    )
    fake.routes["/v5/position/list"] = lambda r: fake.ok({"list": [], "nextPageCursor": ""})
    async with make_client(fake) as client:
        assert await client.sync_clock() == -7_000
        assert client.server_clock() == fake.now_ms()
        await client.positions("BTCUSDT")
    assert fake.count("/v5/position/list") == 1  # accepted first time


async def test_clock_skew_refreshes_the_offset_and_retries_a_query_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit(skew_ms=-7_000)
    fake.routes["/v5/market/time"] = lambda r: fake.ok(
        {"timeSecond": "0", "timeNano": str(fake.now_ms() * 1_000_000)}
    )
    fake.routes["/v5/position/list"] = lambda r: fake.ok({"list": [], "nextPageCursor": ""})
    fake.routes["/v5/order/create"] = lambda r: fake.ok(ack(r))
    async with make_client(fake) as client:
        assert await client.positions("BTCUSDT") == []
        assert fake.count("/v5/position/list") == 2
        assert fake.count("/v5/market/time") == 1

        fake.skew_ms = +9_000  # the clock steps again: an order entry is not retried...
        with pytest.raises(ClockSkewError):
            await market_buy(client, "x-1")
        assert fake.count("/v5/order/create") == 1
        # ...but the offset was refreshed, so the caller's next attempt goes through.
        await market_buy(client, "x-1")
        assert fake.count("/v5/order/create") == 2


# --------------------------------------------------------------------------- retry policy


async def test_queries_are_retried_with_capped_backoff(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()
    answers: Iterator[Callable[[], httpx.Response]] = iter(
        [
            lambda: fake.err(10016, "Internal server error"),
            lambda: httpx.Response(502, content=b"<html>bad gateway</html>"),
            lambda: fake.err(10000, "Server Timeout"),
            lambda: fake.ok({"list": [position_to_wire(a_position())], "nextPageCursor": ""}),
        ]
    )
    fake.routes["/v5/position/list"] = lambda r: next(answers)()
    async with make_client(fake, max_attempts=4) as client:
        positions = await client.positions("BTCUSDT")
        retries = client.metrics.retries.labels("/v5/position/list", "outcome_unknown")
        assert retries._value.get() == 3
    assert positions == [a_position()]
    times = fake.times("/v5/position/list")
    assert [b - a for a, b in itertools.pairwise(times)] == pytest.approx([0.25, 0.5, 1.0])


async def test_query_retries_are_bounded(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeBybit()
    fake.routes["/v5/position/list"] = lambda r: httpx.Response(503, content=b"")
    async with make_client(fake, max_attempts=3) as client:
        with pytest.raises(OutcomeUnknownError):
            await client.positions("BTCUSDT")
    assert fake.count("/v5/position/list") == 3


def a_position() -> Position:
    return Position(
        symbol="BTCUSDT", side=Side.BUY, size=Decimal("0.01"), entry_price=Decimal("65000")
    )


async def _sleep_an_hour() -> httpx.Response:
    await trio.sleep(3600)
    return httpx.Response(200)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda fake, r: fake.err(10016, "Internal server error"), id="10016"),
        pytest.param(lambda fake, r: fake.err(10000, "Server Timeout"), id="10000"),
        pytest.param(lambda fake, r: httpx.Response(500, content=b"oops"), id="http-500"),
        pytest.param(lambda fake, r: httpx.Response(429, content=b""), id="http-429"),
        pytest.param(lambda fake, r: _sleep_an_hour(), id="timeout"),
        pytest.param(
            lambda fake, r: (_ for _ in ()).throw(httpx.ReadError("connection reset")),
            id="transport",
        ),
        pytest.param(lambda fake, r: httpx.Response(200, content=b"{not json"), id="garbage-200"),
    ],
)
async def test_order_entry_is_never_retried_and_the_outcome_is_unknown(
    autojump_clock: trio.testing.MockClock, answer: Callable[[FakeBybit, httpx.Request], Any]
) -> None:
    fake = FakeBybit()
    fake.routes["/v5/order/create"] = lambda r: answer(fake, r)
    fake.routes["/v5/order/amend"] = lambda r: answer(fake, r)
    async with make_client(fake) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.place_order(
                symbol="BTCUSDT",
                side=Side.SELL,
                order_type=OrderType.LIMIT,
                qty=Decimal("0.001"),
                price=Decimal("70000"),
                order_link_id="s-1-entry",
            )
        assert classify(info.value) is Outcome.UNKNOWN
        with pytest.raises(OutcomeUnknownError):
            await client.amend_order("BTCUSDT", order_link_id="s-1-entry", price=Decimal("70001"))
        unknown = client.metrics.requests.labels("/v5/order/create", "unknown")._value.get()
        assert unknown == 1
    assert fake.count("/v5/order/create") == 1
    assert fake.count("/v5/order/amend") == 1


async def test_request_deadline_fires_exactly_at_request_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()

    async def black_hole(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    fake.routes["/v5/order/create"] = black_hole
    async with make_client(fake, request_timeout_s=2.5) as client:
        with pytest.raises(OutcomeUnknownError, match=r"no response within 2\.5 s"):
            await market_buy(client, "t-1")
        assert trio.current_time() == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (110007, InsufficientBalanceError),
        (110072, DuplicateOrderLinkIdError),
        (10003, AuthError),
        (10006, RateLimitedError),
    ],
)
async def test_rejections_are_final_and_classified(
    autojump_clock: trio.testing.MockClock, code: int, error: type[Exception]
) -> None:
    fake = FakeBybit()
    fake.routes["/v5/order/create"] = lambda r: fake.err(code, "no")
    async with make_client(fake) as client:
        with pytest.raises(error) as info:
            await market_buy(client, "r-1")
        assert classify(info.value) is Outcome.REJECTED
        rejected = client.metrics.requests.labels("/v5/order/create", "rejected")._value.get()
        assert rejected == 1
    assert fake.count("/v5/order/create") == 1


def test_classify_covers_every_kind() -> None:
    assert classify(None) is Outcome.OK
    assert classify(OutcomeUnknownError.transport("x")) is Outcome.UNKNOWN
    assert classify(OrderNotFoundError(110001, "Order does not exist")) is Outcome.REJECTED
    assert classify(ValueError("not a Bybit answer")) is Outcome.UNKNOWN


async def test_cancel_is_retried_but_110001_is_final(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()
    answers: Iterator[Callable[[httpx.Request], httpx.Response]] = iter(
        [lambda r: httpx.Response(504, content=b""), lambda r: fake.ok(ack(r))]
    )
    fake.routes["/v5/order/cancel"] = lambda r: next(answers)(r)
    async with make_client(fake) as client:
        assert await client.cancel_order("BTCUSDT", order_link_id="c-1") == ("oid-c-1", "c-1")
        assert fake.count("/v5/order/cancel") == 2

        fake.routes["/v5/order/cancel"] = lambda r: fake.err(110001, "Order does not exist")
        with pytest.raises(OrderNotFoundError):
            await client.cancel_order("BTCUSDT", order_link_id="c-2")
        assert fake.count("/v5/order/cancel") == 3


async def test_cancel_all_returns_every_cancelled_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()
    rows = [{"orderId": "1", "orderLinkId": "a"}, {"orderId": "2", "orderLinkId": ""}]
    fake.routes["/v5/order/cancel-all"] = lambda r: fake.ok({"list": rows, "success": "1"})
    async with make_client(fake) as client:
        assert await client.cancel_all("BTCUSDT") == [("1", "a"), ("2", "")]
        await client.cancel_all()
    bodies = [r.content for _, r in fake.seen]
    assert b'"symbol":"BTCUSDT"' in bodies[0]
    assert b'"settleCoin":"USDT"' in bodies[1]


async def test_cancel_all_success_zero_is_not_a_success(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """retCode 0 with ``success: "0"`` is Bybit's "fail" (docs v5/order/cancel-all.mdx)."""
    fake = FakeBybit()
    fake.routes["/v5/order/cancel-all"] = lambda r: fake.ok({"list": [], "success": "0"})
    async with make_client(fake) as client:
        with pytest.raises(OutcomeUnknownError):
            await client.cancel_all("BTCUSDT")


# --------------------------------------------------------------------------- rate limits


async def test_default_limits_keep_a_burst_under_bybits_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """120 concurrent queries, no header seen yet: the server never sees more than 50 a second."""
    fake = FakeBybit()
    fake.routes["/v5/order/realtime"] = lambda r: fake.ok({"list": [], "nextPageCursor": ""})
    async with make_client(fake) as client, trio.open_nursery() as nursery:
        for _ in range(120):
            nursery.start_soon(client.open_orders, "BTCUSDT")
    times = sorted(fake.times("/v5/order/realtime"))
    assert len(times) == 120
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 50


async def test_exhausted_budget_waits_for_the_reset_and_never_meets_10006(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The exchange allows 3 per (slow, 2 s) window and says so in the headers: the client learns
    the limit from ``X-Bapi-Limit`` and, when ``X-Bapi-Limit-Status`` hits 0, waits for
    ``X-Bapi-Limit-Reset-Timestamp`` (later than its own 1 s window would allow)."""
    fake = FakeBybit()
    window = {"start": -10.0, "used": 0}
    rejected = 0

    def realtime(request: httpx.Request) -> httpx.Response:
        nonlocal rejected
        now = trio.current_time()
        if now >= window["start"] + 2.0:
            window["start"], window["used"] = now, 0
        reset_ms = START_MS + round((window["start"] + 2.0) * 1000)
        if window["used"] >= 3:
            rejected += 1
            return fake.err(
                10006, "Too many visits!", headers={"X-Bapi-Limit-Reset-Timestamp": str(reset_ms)}
            )
        window["used"] += 1
        headers = {
            "X-Bapi-Limit": "3",
            "X-Bapi-Limit-Status": str(3 - window["used"]),
            "X-Bapi-Limit-Reset-Timestamp": str(reset_ms if window["used"] >= 3 else fake.now_ms()),
        }
        return fake.ok({"list": [], "nextPageCursor": ""}, headers)

    fake.routes["/v5/order/realtime"] = realtime
    async with make_client(fake) as client:
        for _ in range(10):
            await client.open_orders("BTCUSDT")
    assert rejected == 0
    times = fake.times("/v5/order/realtime")
    assert times == pytest.approx([0, 0, 0, 2, 2, 2, 4, 4, 4, 6])


async def test_a_10006_storm_blocks_until_the_reset_then_recovers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Another process used the UID's quota: every request before t=3 s is answered 10006 with
    the reset at 3 s. The client must stop sending until then (no hammering) and recover."""
    fake = FakeBybit()
    storm_end_ms = START_MS + 3_000

    async def realtime(request: httpx.Request) -> httpx.Response:
        await trio.sleep(0.01)  # network latency: all ten are in flight before the first answer
        if fake.now_ms() < storm_end_ms:
            return fake.err(
                10006,
                "Too many visits!",
                headers={"X-Bapi-Limit-Reset-Timestamp": str(storm_end_ms)},
            )
        return fake.ok({"list": [], "nextPageCursor": ""})

    fake.routes["/v5/order/realtime"] = realtime
    async with make_client(fake) as client:
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(client.open_orders, "BTCUSDT")
        assert client.metrics.rate_limited.labels("/v5/order/realtime")._value.get() == 10
    times = fake.times("/v5/order/realtime")
    assert sorted(times) == pytest.approx([0.0] * 10 + [3.0] * 10)  # nothing sent while blocked


async def test_http_403_ip_ban_blocks_every_endpoint_and_is_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()
    fake.routes["/v5/order/realtime"] = lambda r: httpx.Response(
        403, content=b"access too frequent"
    )
    fake.routes["/v5/position/list"] = lambda r: fake.ok({"list": [], "nextPageCursor": ""})
    async with make_client(fake) as client:
        with pytest.raises(RateLimitedError):
            await client.open_orders("BTCUSDT")
        assert fake.count("/v5/order/realtime") == 1
        await client.positions("BTCUSDT")
        assert trio.current_time() >= 600.0  # the ban covers other endpoints for >= 10 min


# --------------------------------------------------------------------------- typed queries


async def test_open_orders_follow_every_page(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeBybit()
    pages = {
        None: (["a", "b"], "page%3D2"),
        "page%3D2": (["c", "d"], "page%3D3"),
        "page%3D3": (["e"], ""),
    }

    def realtime(request: httpx.Request) -> httpx.Response:
        cursor = dict(parse_qsl(request.url.query.decode(), keep_blank_values=True)).get("cursor")
        raw = None if cursor is None else request.url.query.decode().split("cursor=")[1]
        ids, nxt = pages[raw]
        return fake.ok({"list": [order_to_wire(an_order(i)) for i in ids], "nextPageCursor": nxt})

    fake.routes["/v5/order/realtime"] = realtime
    async with make_client(fake) as client:
        orders = await client.open_orders("BTCUSDT")
    assert [o.order_link_id for o in orders] == ["a", "b", "c", "d", "e"]
    assert fake.count("/v5/order/realtime") == 3


async def test_executions_split_into_seven_day_windows_and_follow_cursors(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()
    start = START_MS - 20 * DAY_MS
    end = START_MS
    # One fill per day, plus a duplicate at a window edge (Bybit's bounds are inclusive).
    fills = [an_execution(f"e{d:02d}", start + d * DAY_MS) for d in range(21)]
    windows: list[tuple[int, int]] = []

    def execution_list(request: httpx.Request) -> httpx.Response:
        q = query_params(request)
        lo, hi = int(q["startTime"]), int(q["endTime"])
        assert hi - lo <= rest.MAX_TIME_WINDOW_MS
        in_window = sorted(
            (f for f in fills if lo <= f.exec_time <= hi), key=lambda f: -f.exec_time
        )  # Bybit: newest first
        if "cursor" not in q:
            windows.append((lo, hi))
            page, nxt = in_window[:3], ("more" if len(in_window) > 3 else "")
        else:
            page, nxt = in_window[3:], ""
        return fake.ok({"list": [execution_to_wire(f) for f in page], "nextPageCursor": nxt})

    fake.routes["/v5/execution/list"] = execution_list
    async with make_client(fake) as client:
        got = await client.executions(start, end)
    assert [e.exec_id for e in got] == [f.exec_id for f in fills]  # all, deduped, oldest first
    assert windows[0][0] == start
    assert windows[-1][1] == end
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(windows))
    assert len(windows) == 3


async def test_query_order_tries_realtime_then_history(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()
    filled = an_order("old-1", OrderStatus.FILLED)
    fake.routes["/v5/order/realtime"] = lambda r: fake.ok(
        {"list": [order_to_wire(an_order("live-1"))] if "live-1" in str(r.url) else []}
    )
    fake.routes["/v5/order/history"] = lambda r: fake.ok(
        {"list": [order_to_wire(filled)] if "old-1" in str(r.url) else []}
    )
    async with make_client(fake) as client:
        live = await client.query_order(link_id="live-1")
        assert live is not None
        assert live.order_status is OrderStatus.NEW
        assert fake.count("/v5/order/history") == 0
        assert await client.query_order(link_id="old-1") == filled
        assert await client.query_order(order_id="nope", symbol="BTCUSDT") is None
        with pytest.raises(ValueError, match="exactly one of"):
            await client.query_order()
    realtime_query = query_params(fake.seen[0][1])
    assert realtime_query["settleCoin"] == "USDT"
    assert realtime_query["orderLinkId"] == "live-1"


async def test_market_data_and_wallet(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeBybit()
    fake.routes["/v5/market/orderbook"] = lambda r: fake.ok(
        {
            "s": "BTCUSDT",
            "b": [["65000.1", "1.5"]],
            "a": [["65000.2", "0.5"]],
            "ts": START_MS,
            "u": 42,
            "seq": 7,
            "cts": START_MS - 1,
        }
    )
    fake.routes["/v5/market/tickers"] = lambda r: fake.ok(
        {"category": "linear", "list": [{"symbol": "BTCUSDT", "lastPrice": "65000.1"}]}
    )
    fake.routes["/v5/account/wallet-balance"] = lambda r: fake.ok(
        {
            "list": [
                {
                    "accountType": "UNIFIED",
                    "totalEquity": "10000",
                    "totalWalletBalance": "10000",
                    "totalMarginBalance": "10000",
                    "totalAvailableBalance": "9000",
                    "coin": [],
                }
            ]
        }
    )
    async with make_client(fake) as client:
        book = await client.orderbook("BTCUSDT", 50)
        assert book.update_id == 42
        assert book.bids == ((Decimal("65000.1"), Decimal("1.5")),)
        (ticker,) = await client.tickers("BTCUSDT")
        assert ticker.last_price == Decimal("65000.1")
        wallet = await client.wallet()
        assert wallet.total_available_balance == Decimal("9000")
    market = [r for _, r in fake.seen if r.url.path.startswith("/v5/market/")]
    assert all("X-BAPI-SIGN" not in r.headers for r in market)  # public calls are unsigned


async def test_private_call_without_credentials_is_a_configuration_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeBybit()
    async with make_client(fake, credentials=None) as client:
        with pytest.raises(RuntimeError, match="needs API credentials"):
            await client.wallet()
    assert fake.seen == []


async def test_secrets_never_reach_the_logs(
    autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    import structlog

    fake = FakeBybit()
    fake.routes["/v5/order/realtime"] = lambda r: fake.err(
        10004, f"error sign! origin_string[{KEY}{SECRET}]"
    )
    with structlog.testing.capture_logs() as logs:
        async with make_client(fake) as client:
            with pytest.raises(AuthError):
                await client.open_orders("BTCUSDT")
    text = repr(logs) + capsys.readouterr().out
    assert logs
    assert SECRET not in text


# --------------------------------------------------------------------------- against the simulator


@asynccontextmanager
async def sim_client(**kwargs: Any) -> AsyncIterator[tuple[SimServer, BybitRestClient]]:
    """The embedded venue on the in-memory network, and a client wired to its REST seam."""
    cfg = SimConfig(symbols=("BTCUSDT", "ETHUSDT"), seed=7)
    server = SimServer.from_config(cfg)
    async with trio.open_nursery() as nursery:
        net = await nursery.start(MemNet.serve, server)
        params: dict[str, Any] = {
            "credentials": Credentials(cfg.api_key, cfg.api_secret),
            "transport": net.http_transport(),
            # Deliberately 1 h off: sync_clock must measure and correct the offset.
            "clock": TrioOffsetClock(server.now_ms() + 3_600_000),
            "rng": random.Random(3),
            "metrics": RestMetrics(CollectorRegistry()),
            **kwargs,
        }
        async with BybitRestClient("http://sim", **params) as client:
            yield server, client
        nursery.cancel_scope.cancel()


async def test_order_lifecycle_against_the_simulator(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sim_client() as (server, client):
        offset = await client.sync_clock()
        assert abs(offset + 3_600_000) <= 20  # within the venue's response latency
        instruments = await client.instruments(["BTCUSDT"])
        btc = instruments["BTCUSDT"]
        assert btc.tick_size > 0
        (ticker,) = await client.tickers("BTCUSDT")
        assert ticker.bid1_price is not None
        book = await client.orderbook("BTCUSDT", 50)
        assert book.bids
        assert book.asks
        # A resting buy 5 % under the market; PostOnly so it never takes.
        price = (ticker.bid1_price * Decimal("0.95")).quantize(btc.tick_size)
        order_id, link_id = await client.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty=btc.min_order_qty,
            price=price,
            time_in_force=TimeInForce.POST_ONLY,
            order_link_id="it-1-entry",
        )
        assert link_id == "it-1-entry"
        await trio.sleep(0.1)
        order = await client.query_order(link_id="it-1-entry")
        assert order is not None
        assert order.order_id == order_id
        assert order.order_status is OrderStatus.NEW
        assert [o.order_link_id for o in await client.open_orders("BTCUSDT")] == ["it-1-entry"]

        await client.amend_order("BTCUSDT", order_link_id="it-1-entry", price=price - btc.tick_size)
        await client.cancel_order("BTCUSDT", order_link_id="it-1-entry")
        await trio.sleep(0.1)
        cancelled = await client.query_order(link_id="it-1-entry", symbol="BTCUSDT")
        assert cancelled is not None
        assert cancelled.order_status is OrderStatus.CANCELLED
        assert cancelled.price == price - btc.tick_size
        with pytest.raises(OrderNotFoundError):
            await client.cancel_order("BTCUSDT", order_link_id="it-1-entry")
        assert await client.open_orders() == []
        wallet = await client.wallet()
        assert wallet.total_equity == Decimal("10000")
        assert all(p.size == 0 for p in await client.positions("BTCUSDT"))
        assert await client.executions(server.now_ms() - 3_600_000) == []


async def test_unknown_create_outcome_is_resolved_by_link_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The venue processes the create, then answers 10016 (or drops the connection): the client
    must not resend; a query by orderLinkId finds the order that did land."""
    async with sim_client() as (server, client):
        await client.sync_clock()
        (ticker,) = await client.tickers("BTCUSDT")
        assert ticker.bid1_price is not None
        price = (ticker.bid1_price * Decimal("0.9")).quantize(Decimal("0.1"))
        for n, fault in enumerate(
            [
                RestFault(
                    RestFaultKind.ERROR,
                    ret_code=10016,
                    ret_msg="Internal server error",
                    process=True,
                    path_prefix="/v5/order/create",
                ),
                RestFault(RestFaultKind.DROP, process=True, path_prefix="/v5/order/create"),
            ]
        ):
            server.inject_rest_fault(fault)
            link = f"unk-{n}"
            with pytest.raises(OutcomeUnknownError):
                await client.place_order(
                    symbol="BTCUSDT",
                    side=Side.BUY,
                    order_type=OrderType.LIMIT,
                    qty=Decimal("0.001"),
                    price=price,
                    order_link_id=link,
                )
            landed = await client.query_order(link_id=link)
            assert landed is not None
            assert landed.order_status is OrderStatus.NEW
            # A resend with the same link id is safe: Bybit (and the venue) answer 110072.
            with pytest.raises(DuplicateOrderLinkIdError):
                await client.place_order(
                    symbol="BTCUSDT",
                    side=Side.BUY,
                    order_type=OrderType.LIMIT,
                    qty=Decimal("0.001"),
                    price=price,
                    order_link_id=link,
                )
        assert len(await client.open_orders("BTCUSDT")) == 2


async def test_queries_ride_out_venue_5xx_faults(autojump_clock: trio.testing.MockClock) -> None:
    async with sim_client() as (server, client):
        await client.sync_clock()
        server.inject_rest_fault(
            RestFault(RestFaultKind.HTTP, http_status=503, path_prefix="/v5/position/list"), 2
        )
        positions = await client.positions("BTCUSDT")
        assert [p.symbol for p in positions] == ["BTCUSDT"]
        retries = client.metrics.retries.labels("/v5/position/list", "outcome_unknown")
        assert retries._value.get() == 2


# --------------------------------------------------------------------------- clocks


async def test_trio_offset_clock_follows_the_fake_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = TrioOffsetClock(START_MS, origin_s=trio.current_time())
    assert clock() == START_MS
    await trio.sleep(1.5)
    assert clock() == START_MS + 1_500
    await trio.sleep(3600)
    assert clock() == START_MS + 1_500 + 3_600_000


def test_offset_estimator_trusts_the_fastest_round_trip() -> None:
    est = ServerTimeOffset(max_samples=3)
    assert est.offset_ms == 0
    est.observe(sent_ms=1_000, received_ms=1_400, server_ms=6_000)  # rtt 400 -> offset 4800
    est.observe(sent_ms=2_000, received_ms=2_020, server_ms=7_010)  # rtt 20 -> offset 5000
    est.observe(sent_ms=3_000, received_ms=3_300, server_ms=7_900)  # rtt 300 -> offset 4750
    assert est.offset_ms == 5_000
    est.observe(sent_ms=4_000, received_ms=3_000, server_ms=1)  # local clock stepped back
    assert len(est.samples) == 3
    est.observe(sent_ms=5_000, received_ms=5_100, server_ms=9_950)  # rtt 100, evicts the first
    assert est.offset_ms == 5_000
    est.observe(sent_ms=6_000, received_ms=6_200, server_ms=11_000)  # evicts the rtt-20 sample
    assert est.offset_ms == 4_900
    est.reset()
    assert est.offset_ms == 0
    with pytest.raises(ValueError, match="max_samples"):
        ServerTimeOffset(max_samples=0)


def test_server_clock_is_local_plus_offset() -> None:
    local = iter([1_000, 2_000])
    clock = ServerClock(lambda: next(local))
    assert clock() == 1_000
    clock.offset.observe(sent_ms=0, received_ms=0, server_ms=250)
    assert clock() == 2_250
