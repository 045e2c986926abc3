"""Wire compatibility: Bybit's official Python SDK (pybit) against a real ``hean sim`` process.

pybit is a third-party Bybit v5 client, so if it works unchanged against the simulator, the
simulator speaks Bybit's protocol (signing, envelopes, field names and types, WebSocket auth,
subscribe acks, snapshots/deltas) rather than merely agreeing with our own codec.

Pointing pybit at the simulator is the only thing we change, and pybit offers no supported
parameter for an arbitrary base URL (it only composes ``https://api[-testnet].{domain}.{tld}``
and ``wss://stream[-testnet].{domain}.{tld}/...``), so we override the values pybit itself reads:

* REST: the ``HTTP`` session's ``endpoint`` attribute (set in ``__post_init__``, read by every
  request method as ``f"{self.endpoint}{path}"``) becomes ``http://127.0.0.1:<port>``.
* WebSocket: the URL templates ``pybit.unified_trading.PUBLIC_WSS`` / ``PRIVATE_WSS`` (which
  ``WebSocket.__init__`` formats and connects to at once) become the printed ``ws://`` URLs.

Both swap only scheme/host/port: the paths (``/v5/...``), headers, signatures, bodies and frames
are pybit's own, byte for byte.

pybit is synchronous (requests + websocket-client threads), so this file is plain sync pytest.
The WebSocket tests wait for pybit's callbacks (delivered on pybit's own threads) with a
thread-safe queue and one real-time deadline of at most 10 s per test; it only bounds a hang.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import pybit.unified_trading
import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP, WebSocket

if TYPE_CHECKING:
    from tests.e2e.conftest import SimProcess

pytestmark = pytest.mark.e2e

WS_WAIT_S = 10.0  # the one real-time wait: pybit's callbacks arrive on its own threads
Json = dict[str, Any]


# --------------------------------------------------------------------------- pybit, pointed at us


@pytest.fixture(scope="module")
def http(hean_sim: SimProcess) -> Iterator[HTTP]:
    """pybit's ``HTTP`` session with the paper keys; only its base URL is redirected."""
    session = HTTP(testnet=False, api_key=hean_sim.api_key, api_secret=hean_sim.api_secret)
    assert session.endpoint == "https://api.bybit.com"  # what we replace (pybit's default)
    session.endpoint = hean_sim.rest_url
    yield session
    session.client.close()


class ObservedWebSocket(WebSocket):  # type: ignore[misc]
    """pybit's ``WebSocket`` plus a record of the acks pybit itself processed.

    pybit exposes no hook for auth/subscribe acks, but a test must not place an order before the
    venue has the subscription (the push would go to nobody and the wait would fail). The overrides
    call pybit's handling first (which raises on a failed auth) and only then record the message;
    ``_on_error`` records exceptions raised inside pybit's threads so a failure names its cause
    instead of surfacing as a bare timeout.
    """

    def __init__(self, **kwargs: Any) -> None:
        # Before super().__init__: pybit connects (and sends auth) inside its constructor.
        self.hean_acks: queue.Queue[Json] = queue.Queue()
        self.hean_errors: list[BaseException] = []
        super().__init__(**kwargs)

    def _process_auth_message(self, message: Json) -> None:
        super()._process_auth_message(message)
        self.hean_acks.put(message)

    def _process_subscription_message(self, message: Json) -> None:
        super()._process_subscription_message(message)
        self.hean_acks.put(message)

    def _on_error(self, error: BaseException) -> None:
        self.hean_errors.append(error)
        self.hean_acks.put({"op": "error"})  # wake wait_ack: a failed auth raises here
        super()._on_error(error)

    def wait_ack(self, op: str, deadline: float) -> Json:
        """The next successful ack of ``op`` that pybit processed (fails on a failed one)."""
        while True:
            ack = _get(self.hean_acks, deadline, f"{op} ack", self)
            if ack.get("op") == "error":
                pytest.fail(f"pybit failed while waiting for the {op} ack: {self.hean_errors}")
            if ack.get("op") == op:
                assert ack.get("success") is True, ack
                return ack


def _get(q: queue.Queue[Json], deadline: float, what: str, ws: ObservedWebSocket) -> Json:
    try:
        return q.get(timeout=max(deadline - time.monotonic(), 0.0))
    except queue.Empty:
        pytest.fail(f"no {what} within {WS_WAIT_S} s; errors in pybit's threads: {ws.hean_errors}")


class Inbox:
    """A pybit topic callback that queues every message for the test thread."""

    def __init__(self) -> None:
        self.messages: queue.Queue[Json] = queue.Queue()

    def __call__(self, message: Json) -> None:
        self.messages.put(message)

    def next(self, deadline: float, what: str, ws: ObservedWebSocket) -> Json:
        return _get(self.messages, deadline, what, ws)


@pytest.fixture
def ws_urls(hean_sim: SimProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point pybit's WebSocket URL templates at the simulator for one test."""
    public = hean_sim.ws_public_url
    assert public.endswith("/v5/public/linear"), public
    assert hean_sim.ws_private_url.endswith("/v5/private"), hean_sim.ws_private_url
    # pybit fills {CHANNEL_TYPE} itself (channel_type="linear" gives back the printed URL) and
    # then calls .format(SUBDOMAIN=..., DOMAIN=..., TLD=...), a no-op on these URLs.
    monkeypatch.setattr(
        pybit.unified_trading, "PUBLIC_WSS", public.removesuffix("linear") + "{CHANNEL_TYPE}"
    )
    monkeypatch.setattr(pybit.unified_trading, "PRIVATE_WSS", hean_sim.ws_private_url)


# --------------------------------------------------------------------------- helpers


def _ok(response: Json) -> Json:
    """Bybit's envelope with retCode 0; returns ``result``."""
    assert response["retCode"] == 0, response
    assert isinstance(response["retMsg"], str)
    assert isinstance(response["time"], int)
    assert isinstance(response["retExtInfo"], dict)
    result = response["result"]
    assert isinstance(result, dict)
    return result


def _instrument(http: HTTP, symbol: str) -> Json:
    result = _ok(http.get_instruments_info(category="linear", symbol=symbol))
    (inst,) = result["list"]
    assert isinstance(inst, dict)
    return inst


def _passive_buy_price(http: HTTP, symbol: str, factor: str = "0.95") -> Decimal:
    """A price on the tick grid well below the best bid: the order rests and never fills."""
    tick = Decimal(_instrument(http, symbol)["priceFilter"]["tickSize"])
    book = _ok(http.get_orderbook(category="linear", symbol=symbol, limit=1))
    best_bid = Decimal(book["b"][0][0])
    return (best_bid * Decimal(factor)).quantize(tick, rounding=ROUND_DOWN)


def _only_order(http: HTTP, link_id: str) -> Json:
    """The order with ``link_id`` from /v5/order/realtime (by-id queries include closed ones)."""
    result = _ok(http.get_open_orders(category="linear", orderLinkId=link_id))
    (order,) = result["list"]
    assert isinstance(order, dict)
    return order


def _place_limit(http: HTTP, symbol: str, link_id: str, price: Decimal, qty: str) -> str:
    result = _ok(
        http.place_order(
            category="linear",
            symbol=symbol,
            side="Buy",
            orderType="Limit",
            qty=qty,
            price=str(price),
            timeInForce="GTC",
            orderLinkId=link_id,
        )
    )
    assert result["orderLinkId"] == link_id
    order_id = result["orderId"]
    assert isinstance(order_id, str)
    assert order_id
    return order_id


# --------------------------------------------------------------------------- market data (public)


def test_server_time(http: HTTP) -> None:
    response = http.get_server_time()
    result = _ok(response)
    assert isinstance(result["timeSecond"], str)
    assert isinstance(result["timeNano"], str)
    assert int(result["timeNano"]) // 1_000_000_000 == int(result["timeSecond"])
    # the envelope time (ms) is stamped when the answer leaves: never before the body's time
    assert response["time"] >= int(result["timeNano"]) // 1_000_000


def test_instruments_info(http: HTTP) -> None:
    result = _ok(http.get_instruments_info(category="linear"))
    assert result["category"] == "linear"
    by_symbol = {inst["symbol"]: inst for inst in result["list"]}
    assert {"BTCUSDT", "ETHUSDT"} <= by_symbol.keys()

    btc = _instrument(http, "BTCUSDT")
    assert btc == by_symbol["BTCUSDT"]
    assert btc["contractType"] == "LinearPerpetual"
    assert btc["status"] == "Trading"
    assert (btc["baseCoin"], btc["quoteCoin"], btc["settleCoin"]) == ("BTC", "USDT", "USDT")
    assert Decimal(btc["priceFilter"]["tickSize"]) == Decimal("0.1")
    assert Decimal(btc["lotSizeFilter"]["qtyStep"]) == Decimal("0.001")
    assert Decimal(btc["lotSizeFilter"]["minOrderQty"]) == Decimal("0.001")
    for key in ("minPrice", "maxPrice", "tickSize"):
        assert isinstance(btc["priceFilter"][key], str)
    for key in ("minLeverage", "maxLeverage", "leverageStep"):
        assert isinstance(btc["leverageFilter"][key], str)


def test_tickers(http: HTTP) -> None:
    result = _ok(http.get_tickers(category="linear", symbol="BTCUSDT"))
    assert result["category"] == "linear"
    (ticker,) = result["list"]
    assert ticker["symbol"] == "BTCUSDT"
    for key in ("lastPrice", "markPrice", "indexPrice", "bid1Price", "ask1Price", "volume24h"):
        assert isinstance(ticker[key], str), key
    assert Decimal(ticker["lastPrice"]) > 0
    assert Decimal(ticker["bid1Price"]) < Decimal(ticker["ask1Price"])


def test_orderbook(http: HTTP) -> None:
    book = _ok(http.get_orderbook(category="linear", symbol="BTCUSDT", limit=5))
    assert book["s"] == "BTCUSDT"
    for key in ("ts", "u", "seq", "cts"):
        assert isinstance(book[key], int), key
    bids = [Decimal(price) for price, _ in book["b"]]
    asks = [Decimal(price) for price, _ in book["a"]]
    assert 0 < len(bids) <= 5
    assert 0 < len(asks) <= 5
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    assert all(Decimal(size) > 0 for _, size in book["b"] + book["a"])


# --------------------------------------------------------------------------- trading (private)


def test_create_realtime_amend_cancel_history(http: HTTP) -> None:
    link = "pybit-lifecycle-1"
    price = _passive_buy_price(http, "BTCUSDT")
    order_id = _place_limit(http, "BTCUSDT", link, price, "0.001")

    order = _only_order(http, link)
    assert order["orderId"] == order_id
    assert order["orderStatus"] == "New"
    assert (order["symbol"], order["side"], order["orderType"]) == ("BTCUSDT", "Buy", "Limit")
    assert Decimal(order["price"]) == price
    assert Decimal(order["qty"]) == Decimal("0.001")
    assert order["positionIdx"] == 0
    assert order["reduceOnly"] is False

    new_price = price - Decimal(_instrument(http, "BTCUSDT")["priceFilter"]["tickSize"]) * 10
    amended = _ok(
        http.amend_order(
            category="linear", symbol="BTCUSDT", orderLinkId=link, price=str(new_price), qty="0.002"
        )
    )
    assert (amended["orderId"], amended["orderLinkId"]) == (order_id, link)
    order = _only_order(http, link)
    assert Decimal(order["price"]) == new_price
    assert Decimal(order["qty"]) == Decimal("0.002")
    assert order["orderStatus"] == "New"

    cancelled = _ok(http.cancel_order(category="linear", symbol="BTCUSDT", orderId=order_id))
    assert (cancelled["orderId"], cancelled["orderLinkId"]) == (order_id, link)
    assert _only_order(http, link)["orderStatus"] == "Cancelled"

    still_open = _ok(http.get_open_orders(category="linear", symbol="BTCUSDT"))["list"]
    assert link not in {o["orderLinkId"] for o in still_open}

    history = _ok(http.get_order_history(category="linear", orderLinkId=link))
    (past,) = history["list"]
    assert past["orderId"] == order_id
    assert past["orderStatus"] == "Cancelled"
    assert Decimal(past["cumExecQty"]) == 0


def test_cancel_all(http: HTTP) -> None:
    price = _passive_buy_price(http, "BTCUSDT")
    links = ("pybit-cancel-all-1", "pybit-cancel-all-2")
    placed = {(_place_limit(http, "BTCUSDT", link, price, "0.001"), link) for link in links}

    result = _ok(http.cancel_all_orders(category="linear", symbol="BTCUSDT"))
    assert result["success"] == "1"
    assert {(o["orderId"], o["orderLinkId"]) for o in result["list"]} >= placed
    assert not _ok(http.get_open_orders(category="linear", symbol="BTCUSDT"))["list"]
    for link in links:
        assert _only_order(http, link)["orderStatus"] == "Cancelled"


def test_duplicate_order_link_id_raises_110072(http: HTTP) -> None:
    link = "pybit-duplicate-1"
    price = _passive_buy_price(http, "BTCUSDT")
    first = _place_limit(http, "BTCUSDT", link, price, "0.001")
    with pytest.raises(InvalidRequestError) as caught:
        _place_limit(http, "BTCUSDT", link, price, "0.001")
    assert caught.value.status_code == 110072
    # the first order is untouched: query it, as an engine does after a 110072
    assert _only_order(http, link)["orderId"] == first
    _ok(http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId=link))


def test_fill_shows_in_history_executions_position_and_wallet(http: HTTP) -> None:
    # ETHUSDT: no other test here trades it, so the position is exactly this fill.
    link = "pybit-fill-1"
    qty = Decimal(_instrument(http, "ETHUSDT")["lotSizeFilter"]["minOrderQty"])
    before = _ok(http.get_wallet_balance(accountType="UNIFIED"))

    placed = _ok(
        http.place_order(
            category="linear",
            symbol="ETHUSDT",
            side="Buy",
            orderType="Market",
            qty=str(qty),
            orderLinkId=link,
        )
    )
    order_id = placed["orderId"]

    # The venue matches a market order inside the create request, so the answers are final.
    (order,) = _ok(http.get_order_history(category="linear", orderId=order_id))["list"]
    assert order["orderLinkId"] == link
    assert order["orderStatus"] == "Filled"
    assert order["orderType"] == "Market"
    assert Decimal(order["cumExecQty"]) == qty
    avg_price = Decimal(order["avgPrice"])
    assert avg_price > 0

    fills = _ok(http.get_executions(category="linear", symbol="ETHUSDT"))["list"]
    mine = [f for f in fills if f["orderId"] == order_id]
    assert mine
    assert sum(Decimal(f["execQty"]) for f in mine) == qty
    for fill in mine:
        assert fill["orderLinkId"] == link
        assert fill["execType"] == "Trade"
        assert fill["isMaker"] is False
        assert fill["side"] == "Buy"
        assert fill["feeCurrency"] == "USDT"
        assert isinstance(fill["execId"], str)
        assert isinstance(fill["execTime"], str)
    fees = sum(Decimal(f["execFee"]) for f in mine)
    assert fees > 0
    assert sum(Decimal(f["execValue"]) for f in mine) == Decimal(order["cumExecValue"])

    (position,) = _ok(http.get_positions(category="linear", symbol="ETHUSDT"))["list"]
    assert position["symbol"] == "ETHUSDT"
    assert position["positionIdx"] == 0
    assert position["side"] == "Buy"
    assert Decimal(position["size"]) == qty
    assert Decimal(position["avgPrice"]) == avg_price

    after = _ok(http.get_wallet_balance(accountType="UNIFIED"))
    (acct_before,) = before["list"]
    (acct_after,) = after["list"]
    assert acct_after["accountType"] == "UNIFIED"
    usdt_before = {c["coin"]: c for c in acct_before["coin"]}["USDT"]
    usdt_after = {c["coin"]: c for c in acct_after["coin"]}["USDT"]
    # Opening a position pays only the taker fee; unrealised PnL is not in walletBalance.
    assert Decimal(usdt_after["walletBalance"]) == Decimal(usdt_before["walletBalance"]) - fees
    assert Decimal(usdt_after["totalPositionIM"]) > Decimal(usdt_before["totalPositionIM"])


# --------------------------------------------------------------------------- WebSockets


@pytest.mark.usefixtures("ws_urls")
def test_public_ws_orderbook_and_trades(http: HTTP) -> None:
    deadline = time.monotonic() + WS_WAIT_S
    ws = ObservedWebSocket(testnet=False, channel_type="linear")
    try:
        books, trades = Inbox(), Inbox()
        ws.orderbook_stream(depth=50, symbol="BTCUSDT", callback=books)
        ws.wait_ack("subscribe", deadline)
        ws.trade_stream(symbol="BTCUSDT", callback=trades)
        ws.wait_ack("subscribe", deadline)

        # pybit keeps the book itself: the first message must be a snapshot (pybit would crash
        # applying a delta to no book), then it applies our deltas (insert/replace/"0" delete).
        first = books.next(deadline, "orderbook snapshot", ws)
        assert first["topic"] == "orderbook.50.BTCUSDT"
        assert isinstance(first["ts"], int)
        assert isinstance(first["cts"], int)
        snap = first["data"]
        assert snap["s"] == "BTCUSDT"
        assert snap["b"]
        assert snap["a"]
        assert Decimal(snap["b"][0][0]) < Decimal(snap["a"][0][0])
        last_u = snap["u"]
        for _ in range(5):  # several deltas through pybit's own book maintenance
            book = books.next(deadline, "orderbook delta", ws)["data"]
            assert book["u"] > last_u
            last_u = book["u"]
            for side in ("b", "a"):
                prices = [price for price, _ in book[side]]
                assert len(prices) == len(set(prices)) <= 50
                assert all(Decimal(size) > 0 for _, size in book[side])
        best_bid = max(Decimal(p) for p, _ in book["b"])
        best_ask = min(Decimal(p) for p, _ in book["a"])
        assert best_bid < best_ask

        # Our own taker trade guarantees a public trade to wait for.
        _ok(
            http.place_order(
                category="linear",
                symbol="BTCUSDT",
                side="Buy",
                orderType="Market",
                qty="0.001",
                orderLinkId="pybit-public-trade-1",
            )
        )
        message = trades.next(deadline, "publicTrade message", ws)
        assert message["topic"] == "publicTrade.BTCUSDT"
        assert message["type"] == "snapshot"
        assert isinstance(message["ts"], int)
        assert message["data"]
        for trade in message["data"]:
            assert trade["s"] == "BTCUSDT"
            assert trade["S"] in {"Buy", "Sell"}
            assert isinstance(trade["T"], int)
            assert isinstance(trade["i"], str)
            assert Decimal(trade["p"]) > 0
            assert Decimal(trade["v"]) > 0
            assert isinstance(trade["BT"], bool)
        assert ws.is_connected()
        assert not ws.hean_errors
    finally:
        ws.exit()


@pytest.mark.usefixtures("ws_urls")
def test_private_ws_auth_and_order_updates(hean_sim: SimProcess, http: HTTP) -> None:
    deadline = time.monotonic() + WS_WAIT_S
    ws = ObservedWebSocket(
        testnet=False,
        channel_type="private",
        api_key=hean_sim.api_key,
        api_secret=hean_sim.api_secret,
    )
    try:
        ws.wait_ack("auth", deadline)  # pybit signs "GET/realtime{expires}" itself
        assert ws.auth is True
        orders = Inbox()
        ws.order_stream(callback=orders)
        ws.wait_ack("subscribe", deadline)

        link = "pybit-private-ws-1"
        price = _passive_buy_price(http, "BTCUSDT")
        order_id = _place_limit(http, "BTCUSDT", link, price, "0.001")

        def next_update_for_link() -> Json:
            while True:
                message = orders.next(deadline, f"order update for {link}", ws)
                assert message["topic"] == "order"
                assert isinstance(message["creationTime"], int)
                assert isinstance(message["data"], list)
                for item in message["data"]:
                    if item["orderLinkId"] == link:
                        assert isinstance(item, dict)
                        return item

        created = next_update_for_link()
        assert created["orderId"] == order_id
        assert created["category"] == "linear"
        assert created["orderStatus"] == "New"
        assert Decimal(created["price"]) == price

        _ok(http.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId=link))
        cancelled = next_update_for_link()
        assert cancelled["orderId"] == order_id
        assert cancelled["orderStatus"] == "Cancelled"
        assert cancelled["cancelType"] == "CancelByUser"
        assert ws.is_connected()
        assert not ws.hean_errors
    finally:
        ws.exit()
