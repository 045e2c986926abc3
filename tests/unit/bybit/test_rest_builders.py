"""REST builders: exact wire bytes for every endpoint, and clear errors for bad input."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit import rest
from hean.bybit.rest import RestRequest, plain_decimal
from hean.bybit.types import OrderType, Side, TimeInForce

D = Decimal


def _get(req: RestRequest, path: str, query: str, *, auth: bool) -> None:
    assert (req.method, req.path, req.query, req.body, req.auth, req.endpoint) == (
        "GET",
        path,
        query,
        b"",
        auth,
        path,
    )


def _post(req: RestRequest, path: str, body: bytes) -> None:
    assert (req.method, req.path, req.query, req.body, req.auth, req.endpoint) == (
        "POST",
        path,
        "",
        body,
        True,
        path,
    )


# --------------------------------------------------------------------------- create


def test_create_limit_order_exact_body() -> None:
    req = rest.create_order(
        "BTCUSDT",
        Side.BUY,
        OrderType.LIMIT,
        D("0.001"),
        price=D("65000.10"),
        time_in_force=TimeInForce.POST_ONLY,
        order_link_id="strat-1_sig-2",
    )
    _post(
        req,
        "/v5/order/create",
        b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit",'
        b'"qty":"0.001","price":"65000.1","timeInForce":"PostOnly",'
        b'"orderLinkId":"strat-1_sig-2","positionIdx":0}',
    )


def test_create_market_reduce_only_exact_body() -> None:
    req = rest.create_order(
        "ETHUSDT", "Sell", "Market", D("1E+1"), reduce_only=True, position_idx=2
    )
    _post(
        req,
        "/v5/order/create",
        b'{"category":"linear","symbol":"ETHUSDT","side":"Sell","orderType":"Market",'
        b'"qty":"10","reduceOnly":true,"positionIdx":2}',
    )


def test_create_accepts_ioc_for_market_and_int_qty() -> None:
    req = rest.create_order("BTCUSDT", "Buy", "Market", 3, time_in_force="IOC")  # type: ignore[arg-type]
    doc = orjson.loads(req.body)
    assert doc["qty"] == "3"
    assert doc["timeInForce"] == "IOC"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"order_type": "Limit"}, "needs a price"),
        ({"order_type": "Market", "price": D(1)}, "takes no price"),
        ({"order_type": "Market", "time_in_force": "PostOnly"}, "PostOnly"),
        ({"qty": D(0)}, "qty must be"),
        ({"qty": D("-0.001")}, "qty must be"),
        ({"qty": D("NaN")}, "qty must be"),
        ({"qty": D("Infinity")}, "qty must be"),
        ({"price": D(0), "order_type": "Limit"}, "price must be"),
        ({"side": "buy"}, "buy"),
        ({"order_type": "StopLimit"}, "StopLimit"),
        ({"time_in_force": "GTD", "price": D(1), "order_type": "Limit"}, "GTD"),
        ({"order_link_id": "x" * 37}, "orderLinkId"),
        ({"order_link_id": ""}, "orderLinkId"),
        ({"order_link_id": "has space"}, "orderLinkId"),
        ({"position_idx": 3}, "position_idx"),
        ({"position_idx": True}, "position_idx"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "BTC/USDT"}, "symbol"),
        ({"symbol": "btcusdt"}, "symbol"),
        ({"symbol": "BTCUSDTÉ"}, "symbol"),
    ],
)
def test_create_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "side": "Buy",
        "order_type": "Market",
        "qty": D("0.01"),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        rest.create_order(**args)


def test_delivery_future_symbols_are_accepted() -> None:
    req = rest.cancel_order("BTC-26JUL24", order_id="1")
    assert orjson.loads(req.body)["symbol"] == "BTC-26JUL24"


def test_create_rejects_float_qty() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        rest.create_order("BTCUSDT", "Buy", "Market", 0.1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- amend / cancel


def test_amend_exact_body() -> None:
    req = rest.amend_order("BTCUSDT", order_id="1321003749386327552", price=D("64000.50"))
    _post(
        req,
        "/v5/order/amend",
        b'{"category":"linear","symbol":"BTCUSDT","orderId":"1321003749386327552",'
        b'"price":"64000.5"}',
    )
    req = rest.amend_order("BTCUSDT", order_link_id="abc", qty=D("0.002"), price=D(64000))
    _post(
        req,
        "/v5/order/amend",
        b'{"category":"linear","symbol":"BTCUSDT","orderLinkId":"abc","qty":"0.002",'
        b'"price":"64000"}',
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"qty": D(1)}, "order_id or order_link_id"),
        ({"order_id": "1"}, "qty or price"),
        ({"order_id": "1", "qty": D(0)}, "qty must be"),
        ({"order_id": "1", "price": D(-1)}, "price must be"),
        ({"order_id": "", "qty": D(1)}, "orderId"),
    ],
)
def test_amend_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rest.amend_order("BTCUSDT", **kwargs)


def test_cancel_exact_body() -> None:
    _post(
        rest.cancel_order("BTCUSDT", order_id="42"),
        "/v5/order/cancel",
        b'{"category":"linear","symbol":"BTCUSDT","orderId":"42"}',
    )
    # Both ids may be sent; Bybit then uses orderId.
    _post(
        rest.cancel_order("BTCUSDT", order_id="42", order_link_id="L-1"),
        "/v5/order/cancel",
        b'{"category":"linear","symbol":"BTCUSDT","orderId":"42","orderLinkId":"L-1"}',
    )


def test_cancel_needs_an_id() -> None:
    with pytest.raises(ValueError, match="order_id or order_link_id"):
        rest.cancel_order("BTCUSDT")


def test_cancel_all_exact_body() -> None:
    _post(
        rest.cancel_all("BTCUSDT"),
        "/v5/order/cancel-all",
        b'{"category":"linear","symbol":"BTCUSDT"}',
    )
    _post(
        rest.cancel_all(settle_coin="USDT"),
        "/v5/order/cancel-all",
        b'{"category":"linear","settleCoin":"USDT"}',
    )


@pytest.mark.parametrize(("symbol", "settle"), [(None, None), ("BTCUSDT", "USDT")])
def test_cancel_all_needs_exactly_one_scope(symbol: str | None, settle: str | None) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        rest.cancel_all(symbol, settle_coin=settle)


# --------------------------------------------------------------------------- private queries


def test_open_orders_exact_query() -> None:
    _get(
        rest.open_orders(symbol="BTCUSDT"),
        "/v5/order/realtime",
        "category=linear&symbol=BTCUSDT",
        auth=True,
    )
    _get(
        rest.open_orders(
            symbol="BTCUSDT",
            order_id="1",
            order_link_id="L",
            open_only=1,
            limit=50,
            cursor="page_args%3Dfd4300ae%26symbol%3D6%26",
        ),
        "/v5/order/realtime",
        "category=linear&symbol=BTCUSDT&orderId=1&orderLinkId=L&openOnly=1&limit=50"
        "&cursor=page_args%3Dfd4300ae%26symbol%3D6%26",
        auth=True,
    )
    _get(
        rest.open_orders(settle_coin="USDT", open_only=0),
        "/v5/order/realtime",
        "category=linear&settleCoin=USDT&openOnly=0",
        auth=True,
    )


def test_query_values_with_unsafe_characters_are_escaped() -> None:
    req = rest.open_orders(symbol="BTCUSDT", cursor="a b&c=d#e")
    assert req.query == "category=linear&symbol=BTCUSDT&cursor=a%20b%26c%3Dd%23e"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "symbol or settle_coin"),
        ({"order_link_id": "L"}, "symbol or settle_coin"),
        ({"symbol": "BTCUSDT", "limit": 0}, "limit"),
        ({"symbol": "BTCUSDT", "limit": 51}, "limit"),
        ({"symbol": "BTCUSDT", "limit": True}, "limit"),
        ({"symbol": "BTCUSDT", "open_only": 3}, "open_only"),
        ({"symbol": "BTCUSDT", "cursor": ""}, "cursor"),
        ({"settle_coin": "US DT"}, "settle_coin"),
    ],
)
def test_open_orders_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rest.open_orders(**kwargs)


def test_order_history_exact_query() -> None:
    _get(rest.order_history(), "/v5/order/history", "category=linear", auth=True)
    _get(
        rest.order_history(
            symbol="BTCUSDT",
            order_link_id="L",
            start_time=1_700_000_000_000,
            end_time=1_700_000_000_000 + rest.MAX_TIME_WINDOW_MS,
            limit=20,
            cursor="page_token%3D39380%26",
        ),
        "/v5/order/history",
        "category=linear&symbol=BTCUSDT&orderLinkId=L&startTime=1700000000000"
        "&endTime=1700604800000&limit=20&cursor=page_token%3D39380%26",
        auth=True,
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start_time": 1}, "together"),
        ({"end_time": 1}, "together"),
        ({"start_time": 10, "end_time": 5}, "before"),
        ({"start_time": 0, "end_time": rest.MAX_TIME_WINDOW_MS + 1}, "7 days"),
        ({"start_time": -1, "end_time": 5}, ">= 0"),
        ({"limit": 51}, "limit"),
    ],
)
def test_order_history_rejects_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rest.order_history(**kwargs)


def test_executions_exact_query() -> None:
    _get(rest.executions(), "/v5/execution/list", "category=linear", auth=True)
    _get(
        rest.executions(start_time=1_700_000_000_000, limit=100),
        "/v5/execution/list",
        "category=linear&startTime=1700000000000&limit=100",
        auth=True,
    )
    _get(
        rest.executions(
            symbol="BTCUSDT",
            order_id="9",
            order_link_id="L",
            start_time=1,
            end_time=2,
            limit=1,
            cursor="132766%3A2%2C132766%3A2",
        ),
        "/v5/execution/list",
        "category=linear&symbol=BTCUSDT&orderId=9&orderLinkId=L&startTime=1&endTime=2"
        "&limit=1&cursor=132766%3A2%2C132766%3A2",
        auth=True,
    )


def test_executions_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="limit"):
        rest.executions(limit=101)
    with pytest.raises(ValueError, match="7 days"):
        rest.executions(start_time=0, end_time=rest.MAX_TIME_WINDOW_MS + 1)
    with pytest.raises(TypeError, match="epoch ms"):
        rest.executions(start_time=1.5)  # type: ignore[arg-type]


def test_positions_exact_query() -> None:
    _get(
        rest.positions(symbol="BTCUSDT"),
        "/v5/position/list",
        "category=linear&symbol=BTCUSDT",
        auth=True,
    )
    _get(
        rest.positions(settle_coin="USDT", limit=200, cursor="c%3D1"),
        "/v5/position/list",
        "category=linear&settleCoin=USDT&limit=200&cursor=c%3D1",
        auth=True,
    )
    with pytest.raises(ValueError, match="symbol or settle_coin"):
        rest.positions()
    with pytest.raises(ValueError, match="limit"):
        rest.positions(symbol="BTCUSDT", limit=201)


def test_wallet_balance_exact_query() -> None:
    _get(rest.wallet_balance(), "/v5/account/wallet-balance", "accountType=UNIFIED", auth=True)
    _get(
        rest.wallet_balance("UNIFIED", "USDT,USDC"),
        "/v5/account/wallet-balance",
        "accountType=UNIFIED&coin=USDT,USDC",
        auth=True,
    )
    with pytest.raises(ValueError, match="account_type"):
        rest.wallet_balance("")
    with pytest.raises(ValueError, match="coin"):
        rest.wallet_balance(coin="USDT,")


# --------------------------------------------------------------------------- market data


def test_market_data_exact_queries() -> None:
    _get(rest.instruments_info(), "/v5/market/instruments-info", "category=linear", auth=False)
    _get(
        rest.instruments_info(symbol="BTCUSDT", limit=1000, cursor="next"),
        "/v5/market/instruments-info",
        "category=linear&symbol=BTCUSDT&limit=1000&cursor=next",
        auth=False,
    )
    _get(rest.tickers(), "/v5/market/tickers", "category=linear", auth=False)
    _get(
        rest.tickers("ETHUSDT"), "/v5/market/tickers", "category=linear&symbol=ETHUSDT", auth=False
    )
    _get(
        rest.orderbook("BTCUSDT"),
        "/v5/market/orderbook",
        "category=linear&symbol=BTCUSDT",
        auth=False,
    )
    _get(
        rest.orderbook("BTCUSDT", 500),
        "/v5/market/orderbook",
        "category=linear&symbol=BTCUSDT&limit=500",
        auth=False,
    )
    _get(rest.server_time(), "/v5/market/time", "", auth=False)


def test_market_data_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="limit"):
        rest.orderbook("BTCUSDT", 1001)
    with pytest.raises(ValueError, match="limit"):
        rest.instruments_info(limit=1001)
    with pytest.raises(ValueError, match="symbol"):
        rest.tickers("btc usdt")


def test_rate_limit_key_is_the_path() -> None:
    for req in (rest.server_time(), rest.cancel_all("BTCUSDT"), rest.positions(symbol="X1")):
        assert req.endpoint == req.path


# --------------------------------------------------------------------------- decimals


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1E+1"), "10"),
        (D("1E-8"), "0.00000001"),
        (D("0.0010"), "0.001"),
        (D("100"), "100"),
        (D("100.000"), "100"),
        (D("0"), "0"),
        (D("-0"), "0"),
        (D("0E-10"), "0"),
        (D("-1.50"), "-1.5"),
        (D("123456789012345678901234567890.123456789"), "123456789012345678901234567890.123456789"),
    ],
)
def test_plain_decimal(value: Decimal, text: str) -> None:
    assert plain_decimal(value) == text


def test_plain_decimal_rejects_non_finite_and_non_decimal() -> None:
    for bad in (D("NaN"), D("sNaN"), D("Infinity"), D("-Infinity")):
        with pytest.raises(ValueError, match="finite"):
            plain_decimal(bad)
    with pytest.raises(TypeError):
        plain_decimal(1.5)  # type: ignore[arg-type]


@settings(max_examples=200)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_plain_decimal_round_trips_without_exponent(x: Decimal) -> None:
    text = plain_decimal(x)
    assert Decimal(text) == x
    assert "e" not in text.lower()
    assert text == "0" or not text.endswith(("0", ".")) or "." not in text


@settings(max_examples=150)
@given(
    qty=st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e15"), allow_nan=False),
    price=st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e15"), allow_nan=False),
)
def test_builder_decimals_round_trip_through_the_body(qty: Decimal, price: Decimal) -> None:
    req = rest.create_order("BTCUSDT", "Buy", "Limit", qty, price=price)
    doc = orjson.loads(req.body)
    for key, value in (("qty", qty), ("price", price)):
        assert isinstance(doc[key], str)
        assert "e" not in doc[key].lower()
        assert Decimal(doc[key]) == value
    amend = rest.amend_order("BTCUSDT", order_id="1", qty=qty, price=price)
    doc = orjson.loads(amend.body)
    assert Decimal(doc["qty"]) == qty
    assert Decimal(doc["price"]) == price
