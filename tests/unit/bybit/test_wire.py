"""hean.bybit.wire: Bybit JSON <-> domain values."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit import wire
from hean.bybit.types import (
    BookUpdateType,
    ExecType,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Ticker,
    TimeInForce,
)
from hean.bybit.wire import WireError, decimal_str

from . import strategies as hs

# --------------------------------------------------------------------------- samples
# Shapes as documented by Bybit (docs v5 examples), trimmed of nothing: unknown keys included on
# purpose, since the parser must ignore them.

REST_ORDER: dict[str, Any] = {
    "orderId": "fd4300ae-7847-404e-b947-b46980a4d140",
    "orderLinkId": "test-000005",
    "blockTradeId": "",
    "symbol": "ETHUSDT",
    "price": "1600.00",
    "qty": "0.10",
    "side": "Buy",
    "isLeverage": "",
    "positionIdx": 1,
    "orderStatus": "New",
    "cancelType": "UNKNOWN",
    "rejectReason": "EC_NoError",
    "avgPrice": "0",
    "leavesQty": "0.10",
    "leavesValue": "160",
    "cumExecQty": "0.00",
    "cumExecValue": "0",
    "cumExecFee": "0",
    "timeInForce": "GTC",
    "orderType": "Limit",
    "stopOrderType": "UNKNOWN",
    "orderIv": "",
    "triggerPrice": "0.00",
    "takeProfit": "2500.00",
    "stopLoss": "1500.00",
    "tpTriggerBy": "LastPrice",
    "slTriggerBy": "LastPrice",
    "triggerDirection": 0,
    "triggerBy": "UNKNOWN",
    "lastPriceOnCreated": "",
    "reduceOnly": False,
    "closeOnTrigger": False,
    "smpType": "None",
    "smpGroup": 0,
    "smpOrderId": "",
    "tpslMode": "Full",
    "tpLimitPrice": "",
    "slLimitPrice": "",
    "placeType": "",
    "createdTime": "1684738540559",
    "updatedTime": "1684738540561",
}

WS_ORDER: dict[str, Any] = {
    "category": "linear",
    "symbol": "XRPUSDT",
    "orderId": "f6e324ff-99c2-4e89-9739-3086e47f9381",
    "side": "Sell",
    "orderType": "Market",
    "cancelType": "UNKNOWN",
    "price": "0.3207",
    "qty": "25",
    "orderIv": "",
    "timeInForce": "IOC",
    "orderStatus": "Filled",
    "orderLinkId": "",
    "lastPriceOnCreated": "0.3374",
    "reduceOnly": False,
    "leavesQty": "0",
    "leavesValue": "0",
    "cumExecQty": "25",
    "cumExecValue": "8.435",
    "avgPrice": "0.3374",
    "blockTradeId": "",
    "positionIdx": 0,
    "cumExecFee": "0.005061",
    "cumFeeDetail": {"USDT": "0.0050612"},
    "closedPnl": "0.1",
    "createdTime": "1672364174440",
    "updatedTime": "1672364174443",
    "rejectReason": "EC_NoError",
    "stopOrderType": "",
    "tpslMode": "",
    "triggerPrice": "",
    "takeProfit": "",
    "stopLoss": "",
    "tpTriggerBy": "",
    "slTriggerBy": "",
    "triggerDirection": 0,
    "triggerBy": "",
    "closeOnTrigger": False,
    "placeType": "",
    "smpType": "None",
    "smpGroup": 0,
    "smpOrderId": "",
    "feeCurrency": "",
}

WS_EXECUTION: dict[str, Any] = {
    "category": "linear",
    "symbol": "XRPUSDT",
    "execFee": "0.005061",
    "execId": "7e2ae69c-4edf-5800-a352-893d52b446aa",
    "execPrice": "0.3374",
    "execQty": "25",
    "execType": "Trade",
    "execValue": "8.435",
    "isMaker": False,
    "feeRate": "0.0006",
    "tradeIv": "",
    "markIv": "",
    "blockTradeId": "",
    "markPrice": "0.3391",
    "indexPrice": "",
    "underlyingPrice": "",
    "leavesQty": "0",
    "orderId": "f6e324ff-99c2-4e89-9739-3086e47f9381",
    "orderLinkId": "",
    "orderPrice": "0.3207",
    "orderQty": "25",
    "orderType": "Market",
    "stopOrderType": "UNKNOWN",
    "side": "Sell",
    "execTime": "1672364174443",
    "isLeverage": "0",
    "closedSize": "",
    "seq": 4688002127,
    "execPnl": "0.1",
    "feeCurrency": "",
}

REST_POSITION: dict[str, Any] = {
    "positionIdx": 0,
    "riskId": 1,
    "riskLimitValue": "150",
    "symbol": "BTCUSD",
    "side": "Sell",
    "size": "300",
    "avgPrice": "27464.50441675",
    "positionValue": "0.01092319",
    "tradeMode": 0,
    "positionStatus": "Normal",
    "autoAddMargin": 1,
    "adlRankIndicator": 2,
    "leverage": "10",
    "positionBalance": "0.00139186",
    "markPrice": "28224.50",
    "liqPrice": "",
    "bustPrice": "999999.00",
    "positionMM": "0.0000015",
    "positionIM": "0.00010923",
    "tpslMode": "Full",
    "takeProfit": "0.00",
    "stopLoss": "0.00",
    "trailingStop": "0.00",
    "unrealisedPnl": "-0.00029413",
    "curRealisedPnl": "0.00013123",
    "cumRealisedPnl": "-0.00096902",
    "seq": 5723621632,
    "isReduceOnly": False,
    "mmrSysUpdatedTime": "",
    "leverageSysUpdatedTime": "",
    "sessionAvgPrice": "",
    "createdTime": "1676538056258",
    "updatedTime": "1697673600012",
}

WS_POSITION: dict[str, Any] = {
    "positionIdx": 0,
    "tradeMode": 0,
    "riskId": 41,
    "riskLimitValue": "200000",
    "symbol": "XRPUSDT",
    "side": "Sell",
    "size": "75",
    "entryPrice": "0.3615",
    "leverage": "10",
    "positionValue": "27.1125",
    "positionBalance": "0",
    "markPrice": "0.3374",
    "positionIM": "2.72589075",
    "positionMM": "0.28576575",
    "takeProfit": "0",
    "stopLoss": "0",
    "trailingStop": "0",
    "unrealisedPnl": "1.8075",
    "cumRealisedPnl": "0.64782276",
    "createdTime": "1672121182216",
    "updatedTime": "1672364174449",
    "tpslMode": "Full",
    "liqPrice": "",
    "bustPrice": "",
    "category": "linear",
    "positionStatus": "Normal",
    "adlRankIndicator": 2,
    "autoAddMargin": 0,
    "seq": 4688002127,
    "isReduceOnly": False,
}

WALLET: dict[str, Any] = {
    "totalEquity": "3.31216591",
    "accountIMRate": "0",
    "totalMarginBalance": "3.00326056",
    "totalInitialMargin": "0",
    "accountType": "UNIFIED",
    "totalAvailableBalance": "3.00326056",
    "accountMMRate": "0",
    "totalPerpUPL": "0",
    "totalWalletBalance": "3.00326056",
    "accountLTV": "0",
    "totalMaintenanceMargin": "0",
    "coin": [
        {
            "availableToBorrow": "3",
            "bonus": "0",
            "accruedInterest": "0",
            "availableToWithdraw": "",
            "totalOrderIM": "0",
            "equity": "3.31216591",
            "totalPositionMM": "0",
            "usdValue": "3.31",
            "spotHedgingQty": "0",
            "unrealisedPnl": "0",
            "collateralSwitch": True,
            "borrowAmount": "0.0",
            "totalPositionIM": "0",
            "walletBalance": "3.00326056",
            "cumRealisedPnl": "-0.001",
            "locked": "0",
            "marginCollateral": True,
            "coin": "USDT",
        }
    ],
}

INSTRUMENT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "contractType": "LinearPerpetual",
    "status": "Trading",
    "baseCoin": "BTC",
    "quoteCoin": "USDT",
    "launchTime": "1585526400000",
    "deliveryTime": "0",
    "deliveryFeeRate": "",
    "priceScale": "2",
    "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
    "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
    "lotSizeFilter": {
        "maxOrderQty": "1190.000",
        "minOrderQty": "0.001",
        "qtyStep": "0.001",
        "postOnlyMaxOrderQty": "1190.000",
        "maxMktOrderQty": "500.000",
        "minNotionalValue": "5",
    },
    "unifiedMarginTrade": True,
    "fundingInterval": 480,
    "settleCoin": "USDT",
    "copyTrading": "both",
    "upperFundingRate": "0.00375",
    "lowerFundingRate": "-0.00375",
    "isPreListing": False,
    "preListingInfo": None,
}

TICKER_SNAPSHOT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "tickDirection": "PlusTick",
    "price24hPcnt": "0.017103",
    "lastPrice": "17216.00",
    "prevPrice24h": "16926.50",
    "highPrice24h": "17281.50",
    "lowPrice24h": "16915.00",
    "prevPrice1h": "17238.00",
    "markPrice": "17217.33",
    "indexPrice": "17227.36",
    "openInterest": "68744.761",
    "openInterestValue": "1183601235.91",
    "turnover24h": "1570383121.943499",
    "volume24h": "91705.276",
    "nextFundingTime": "1673280000000",
    "fundingRate": "-0.000212",
    "bid1Price": "17215.50",
    "bid1Size": "84.489",
    "ask1Price": "17216.00",
    "ask1Size": "83.020",
}


# --------------------------------------------------------------------------- decimal_str


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.10", "0.1"),
        ("1E+2", "100"),
        ("1.5E-10", "0.00000000015"),
        ("-0.00", "0"),
        ("65000.00", "65000"),
        ("0", "0"),
        ("-12.3400", "-12.34"),
        ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
    ],
)
def test_decimal_str_renders_plain(value: str, text: str) -> None:
    assert decimal_str(Decimal(value)) == text


@given(
    st.decimals(allow_nan=False, allow_infinity=False)
    | hs.decimals(-(10**12), 10**12, max_places=12)
)
@settings(max_examples=200)
def test_decimal_str_is_exact_and_plain(x: Decimal) -> None:
    text = decimal_str(x)
    assert "e" not in text.lower()
    assert Decimal(text) == x
    assert not (("." in text) and text.endswith("0"))


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_decimal_str_rejects_non_finite(bad: str) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        decimal_str(Decimal(bad))


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "abc", "1_000", True, None, [], "", {}])
def test_parse_decimal_rejects_garbage(bad: object) -> None:
    with pytest.raises(WireError, match=r"x\.y"):
        wire.parse_decimal(bad, "x.y")


def test_parse_decimal_accepts_numbers_exactly() -> None:
    assert wire.parse_decimal(0.1, "x") == Decimal("0.1")
    assert wire.parse_decimal(7, "x") == Decimal(7)
    assert wire.parse_int("1672364174443", "x") == 1672364174443
    assert wire.parse_int(12.0, "x") == 12
    with pytest.raises(WireError):
        wire.parse_int("12.5", "x")
    with pytest.raises(WireError):
        wire.parse_int(False, "x")
    with pytest.raises(WireError):
        wire.parse_int("9" * 5000, "x")


# --------------------------------------------------------------------------- samples parse


def test_rest_order_sample() -> None:
    o = wire.order_from_wire(REST_ORDER)
    assert o.order_id == "fd4300ae-7847-404e-b947-b46980a4d140"
    assert o.order_link_id == "test-000005"
    assert o.side is Side.BUY
    assert o.order_type is OrderType.LIMIT
    assert o.time_in_force is TimeInForce.GTC
    assert o.order_status is OrderStatus.NEW
    assert o.price == Decimal("1600")
    assert o.qty == Decimal("0.1")
    assert o.position_idx == 1
    assert o.avg_price is None  # "0" before the first fill
    assert o.leaves_value == Decimal(160)
    assert o.last_price_on_created == 0  # "" -> default
    assert o.created_time == 1684738540559
    assert o.closed_pnl is None
    assert o.stop_order_type == "UNKNOWN"


def test_ws_order_sample_prefers_cum_fee_detail() -> None:
    o = wire.order_from_wire(WS_ORDER)
    assert o.cum_exec_fee == Decimal("0.0050612")  # cumFeeDetail wins over cumExecFee
    assert o.avg_price == Decimal("0.3374")
    assert o.closed_pnl == Decimal("0.1")
    assert o.trigger_price == 0
    assert o.order_status is OrderStatus.FILLED


@pytest.mark.parametrize("avg", ["", "0", "0.00"])
def test_unfilled_avg_price_is_none(avg: str) -> None:
    assert wire.order_from_wire({**REST_ORDER, "avgPrice": avg}).avg_price is None


@pytest.mark.parametrize(
    ("detail", "exec_fee", "expected"),
    [
        ({}, "0.5", "0.5"),  # empty detail -> deprecated field
        (None, "0.5", "0.5"),
        ({"USDC": "0.7"}, "0.5", "0.7"),  # the only coin
        ({"USDT": "0.3", "MNT": "9"}, "0.5", "0.3"),  # the settle coin
    ],
)
def test_order_fee_sources(detail: dict[str, str] | None, exec_fee: str, expected: str) -> None:
    d = {**REST_ORDER, "cumExecFee": exec_fee}
    if detail is not None:
        d["cumFeeDetail"] = detail
    assert wire.order_from_wire(d).cum_exec_fee == Decimal(expected)


def test_order_without_any_fee_field_has_zero_fee() -> None:
    d = dict(REST_ORDER)
    del d["cumExecFee"]
    assert wire.order_from_wire(d).cum_exec_fee == 0


def test_execution_sample() -> None:
    e = wire.execution_from_wire(WS_EXECUTION)
    assert e.exec_id == "7e2ae69c-4edf-5800-a352-893d52b446aa"
    assert e.exec_type is ExecType.TRADE
    assert e.order_type is OrderType.MARKET
    assert e.exec_fee == Decimal("0.005061")
    assert e.exec_value == Decimal("8.435")
    assert e.is_maker is False
    assert e.closed_size == 0  # "" -> 0
    assert e.fee_currency == "USDT"  # "" -> the linear default
    assert e.exec_pnl == Decimal("0.1")
    assert e.seq == 4688002127
    assert e.exec_time == 1672364174443


def test_funding_row_parses_with_unknown_order_type() -> None:
    # /v5/execution/list returns funding charges with orderType "UNKNOWN"; reconciliation must be
    # able to read them (they are charges, not fills of any order).
    d = {
        **WS_EXECUTION,
        "execType": "Funding",
        "orderType": "UNKNOWN",
        "orderId": "",
        "execQty": "0",
    }
    e = wire.execution_from_wire(d)
    assert (e.exec_type, e.order_type) == (ExecType.FUNDING, OrderType.UNKNOWN)
    assert wire.execution_from_wire(wire.execution_to_wire(e, ws=True)) == e


def test_rest_execution_without_exec_pnl() -> None:
    d = {k: v for k, v in WS_EXECUTION.items() if k not in ("category", "execPnl")}
    assert wire.execution_from_wire(d).exec_pnl == 0


def test_execution_fast_item_is_rejected_not_guessed() -> None:
    fast = {
        "category": "linear",
        "symbol": "ICPUSDT",
        "execId": "3510f361-0add-5c7b-a2e7-9679810944fc",
        "execPrice": "12.015",
        "execQty": "3000",
        "orderId": "443d63fa-b4c3-4297-b7b1-23bca88b04dc",
        "isMaker": False,
        "orderLinkId": "test-00001",
        "side": "Sell",
        "execTime": "1716800399334",
        "seq": 34771365464,
    }
    with pytest.raises(WireError, match="execValue"):
        wire.execution_from_wire(fast)


def test_rest_position_uses_avg_price() -> None:
    p = wire.position_from_wire(REST_POSITION)
    assert p.entry_price == Decimal("27464.50441675")
    assert p.side is Side.SELL
    assert p.size == 300
    assert p.liq_price is None
    assert p.cur_realised_pnl == Decimal("0.00013123")
    assert p.signed_size == -300


def test_ws_position_uses_entry_price() -> None:
    p = wire.position_from_wire(WS_POSITION)
    assert p.entry_price == Decimal("0.3615")
    assert p.cur_realised_pnl == 0  # absent on WS
    assert p.seq == 4688002127


@pytest.mark.parametrize("flat", ["", "None"])
def test_flat_position_has_no_side(flat: str) -> None:
    p = wire.position_from_wire({**REST_POSITION, "side": flat, "size": "0", "avgPrice": "0"})
    assert p.side is None
    assert p.signed_size == 0
    assert wire.position_to_wire(p)["side"] == ""


def test_position_without_price_key_names_both() -> None:
    d = {k: v for k, v in REST_POSITION.items() if k != "avgPrice"}
    with pytest.raises(WireError, match=r"avgPrice.*entryPrice"):
        wire.position_from_wire(d)


def test_wallet_sample() -> None:
    w = wire.wallet_from_wire(WALLET)
    assert w.account_type == "UNIFIED"
    assert w.total_equity == Decimal("3.31216591")
    usdt = w.coin("USDT")
    assert usdt is not None
    assert usdt.wallet_balance == Decimal("3.00326056")
    assert usdt.available_to_withdraw == 0  # deprecated "" -> 0
    assert usdt.cum_realised_pnl == Decimal("-0.001")


def test_instrument_sample() -> None:
    i = wire.instrument_from_wire(INSTRUMENT)
    assert i.symbol == "BTCUSDT"
    assert i.tick_size == Decimal("0.1")
    assert i.qty_step == Decimal("0.001")
    assert i.min_order_qty == Decimal("0.001")
    assert i.max_order_qty == Decimal(1190)
    assert i.max_mkt_order_qty == Decimal(500)
    assert i.min_notional_value == Decimal(5)
    assert i.max_price == Decimal("1999999.8")
    assert i.max_leverage == Decimal(100)
    assert i.funding_interval_minutes == 480
    assert i.launch_time_ms == 1585526400000
    out = wire.instrument_to_wire(i)
    assert out["priceScale"] == "1"


def test_instrument_missing_nested_key_names_path() -> None:
    d = copy.deepcopy(INSTRUMENT)
    del d["lotSizeFilter"]["qtyStep"]
    with pytest.raises(WireError, match=r"instrument\.lotSizeFilter.*'qtyStep'"):
        wire.instrument_from_wire(d)


def test_instrument_optional_lot_fields_fall_back() -> None:
    d = copy.deepcopy(INSTRUMENT)
    del d["lotSizeFilter"]["maxMktOrderQty"]
    del d["lotSizeFilter"]["minNotionalValue"]
    del d["leverageFilter"]
    i = wire.instrument_from_wire(d)
    assert i.max_mkt_order_qty == i.max_order_qty
    assert i.min_notional_value == 0
    assert i.max_leverage == 100


def test_ticker_snapshot_and_partial_delta() -> None:
    snap = wire.ticker_from_wire(TICKER_SNAPSHOT)
    assert snap.last_price == Decimal("17216")
    assert snap.next_funding_time == 1673280000000
    assert snap.tick_direction == "PlusTick"
    assert snap.funding_rate == Decimal("-0.000212")
    delta = wire.ticker_from_wire(
        {"symbol": "BTCUSDT", "tickDirection": "MinusTick", "bid1Price": "17215.00"}
    )
    assert delta.last_price is None
    assert delta.mark_price is None
    assert delta.bid1_price == Decimal("17215")
    merged = snap.merged(delta)
    assert merged.bid1_price == Decimal("17215")
    assert merged.last_price == snap.last_price
    assert merged.tick_direction == "MinusTick"
    # A delta renders back as only what it carries.
    assert wire.ticker_to_wire(delta) == {
        "symbol": "BTCUSDT",
        "tickDirection": "MinusTick",
        "bid1Price": "17215",
    }


def test_public_trade_sample_without_rpi() -> None:
    t = wire.public_trade_from_wire(
        {
            "T": 1672304486865,
            "s": "BTCUSDT",
            "S": "Buy",
            "v": "0.001",
            "p": "16578.50",
            "L": "PlusTick",
            "i": "20f43950-d8dd-5b31-9112-a178eb6023af",
            "BT": False,
        }
    )
    assert t.side is Side.BUY
    assert t.price == Decimal("16578.5")
    assert t.rpi is False
    assert t.seq == 0


def test_orderbook_rest_sample() -> None:
    result = {
        "s": "BTCUSDT",
        "b": [["65485.47", "47.08"]],
        "a": [["65557.7", "16.6"]],
        "ts": 1716863719031,
        "u": 230704,
        "seq": 1432604333,
        "cts": 1716863718905,
    }
    u = wire.orderbook_from_rest(result, depth=1000)
    assert u.type is BookUpdateType.SNAPSHOT
    assert u.bids == ((Decimal("65485.47"), Decimal("47.08")),)
    assert u.update_id == 230704
    assert u.cts == 1716863718905
    assert wire.orderbook_to_rest(u) == result


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("parse", "sample", "key"),
    [
        (wire.order_from_wire, REST_ORDER, "orderId"),
        (wire.order_from_wire, REST_ORDER, "qty"),
        (wire.order_from_wire, REST_ORDER, "orderStatus"),
        (wire.execution_from_wire, WS_EXECUTION, "execId"),
        (wire.execution_from_wire, WS_EXECUTION, "isMaker"),
        (wire.position_from_wire, REST_POSITION, "size"),
        (wire.wallet_from_wire, WALLET, "accountType"),
        (wire.instrument_from_wire, INSTRUMENT, "priceFilter"),
        (wire.ticker_from_wire, TICKER_SNAPSHOT, "symbol"),
    ],
)
def test_missing_required_key_is_named(parse: Any, sample: dict[str, Any], key: str) -> None:
    d = {k: v for k, v in sample.items() if k != key}
    with pytest.raises(WireError, match=f"missing required key '{key}'") as info:
        parse(d)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("side", "Up", "unknown Side"),
        ("orderStatus", "Exploded", "unknown OrderStatus"),
        ("qty", "abc", "order.qty: not a decimal"),
        ("qty", True, "order.qty: expected a decimal"),
        ("reduceOnly", "maybe", "order.reduceOnly: expected a boolean"),
        ("createdTime", "yesterday", "order.createdTime: not an integer"),
        ("cumFeeDetail", 5, "cumFeeDetail: expected an object"),
    ],
)
def test_bad_values_raise_wire_error(key: str, value: object, match: str) -> None:
    with pytest.raises(WireError, match=match):
        wire.order_from_wire({**REST_ORDER, key: value})


def test_non_object_is_rejected() -> None:
    with pytest.raises(WireError, match="expected a JSON object"):
        wire.order_from_wire(["not", "an", "order"])  # type: ignore[arg-type]
    with pytest.raises(WireError, match=r"wallet.coin\[0\]"):
        wire.wallet_from_wire({**WALLET, "coin": ["USDT"]})
    with pytest.raises(WireError, match=r"orderbook.b\[0\]"):
        wire.orderbook_from_wire(
            {"s": "X", "b": [["1"]], "a": [], "u": 1},
            type=BookUpdateType.DELTA,
            depth=50,
            ts=0,
            cts=0,
        )


def test_unknown_keys_are_ignored() -> None:
    extra = {**REST_ORDER, "brandNewField": {"nested": [1, 2]}, "anotherOne": None}
    assert wire.order_from_wire(extra) == wire.order_from_wire(REST_ORDER)


def test_bool_strings_tolerated() -> None:
    assert wire.order_from_wire({**REST_ORDER, "reduceOnly": "true"}).reduce_only is True


# --------------------------------------------------------------------------- wire typing


def test_serialised_types_follow_bybit() -> None:
    o = wire.order_from_wire(WS_ORDER)
    out = wire.order_to_wire(o, ws=True)
    assert out["category"] == "linear"
    assert isinstance(out["price"], str)
    assert isinstance(out["qty"], str)
    assert isinstance(out["createdTime"], str)
    assert isinstance(out["positionIdx"], int)
    assert isinstance(out["reduceOnly"], bool)
    assert out["cumFeeDetail"] == {"USDT": "0.0050612"}
    assert out["closedPnl"] == "0.1"
    rest = wire.order_to_wire(o)
    assert "category" not in rest
    assert "closedPnl" not in rest
    unfilled = wire.order_to_wire(wire.order_from_wire(REST_ORDER))
    assert unfilled["avgPrice"] == "0"
    assert unfilled["cumFeeDetail"] == {}

    e = wire.execution_to_wire(wire.execution_from_wire(WS_EXECUTION), ws=True)
    assert isinstance(e["seq"], int)
    assert isinstance(e["isMaker"], bool)
    assert isinstance(e["execTime"], str)
    assert "execPnl" not in wire.execution_to_wire(wire.execution_from_wire(WS_EXECUTION))

    p = wire.position_from_wire(WS_POSITION)
    assert "entryPrice" in wire.position_to_wire(p, ws=True)
    assert "avgPrice" not in wire.position_to_wire(p, ws=True)
    assert "avgPrice" in wire.position_to_wire(p)


def test_uses_usdc_fee_coin_for_usdc_perps() -> None:
    o = wire.order_from_wire({**WS_ORDER, "symbol": "ETHPERP", "cumFeeDetail": {"USDC": "1.5"}})
    assert o.cum_exec_fee == Decimal("1.5")
    assert wire.order_to_wire(o)["cumFeeDetail"] == {"USDC": "1.5"}


# --------------------------------------------------------------------------- round trips


def _via_json(d: dict[str, Any]) -> Any:
    """What actually crosses the network: everything must be plain JSON."""
    return orjson.loads(orjson.dumps(d))


@given(hs.orders(ws=False))
@settings(max_examples=150)
def test_order_rest_round_trip(o: Order) -> None:
    assert wire.order_from_wire(_via_json(wire.order_to_wire(o))) == o


@given(hs.orders(ws=True))
@settings(max_examples=150)
def test_order_ws_round_trip(o: Order) -> None:
    assert wire.order_from_wire(_via_json(wire.order_to_wire(o, ws=True))) == o


@given(hs.executions(ws=False))
@settings(max_examples=100)
def test_execution_rest_round_trip(e: Any) -> None:
    assert wire.execution_from_wire(_via_json(wire.execution_to_wire(e))) == e


@given(hs.executions(ws=True))
@settings(max_examples=100)
def test_execution_ws_round_trip(e: Any) -> None:
    assert wire.execution_from_wire(_via_json(wire.execution_to_wire(e, ws=True))) == e


@given(hs.positions(), st.booleans())
@settings(max_examples=150)
def test_position_round_trip(p: Any, ws: bool) -> None:
    assert wire.position_from_wire(_via_json(wire.position_to_wire(p, ws=ws))) == p


@given(hs.wallets)
@settings(max_examples=100)
def test_wallet_round_trip(w: Any) -> None:
    assert wire.wallet_from_wire(_via_json(wire.wallet_to_wire(w))) == w


@given(hs.instruments())
@settings(max_examples=100)
def test_instrument_round_trip(i: Any) -> None:
    assert wire.instrument_from_wire(_via_json(wire.instrument_to_wire(i))) == i


@given(hs.tickers(partial=False) | hs.tickers(partial=True))
@settings(max_examples=150)
def test_ticker_round_trip(t: Ticker) -> None:
    out = wire.ticker_to_wire(t)
    assert wire.ticker_from_wire(_via_json(out)) == t
    # Partial means partial: a None field is not on the wire at all.
    assert all(v is not None for v in out.values())


@given(hs.public_trades)
@settings(max_examples=100)
def test_public_trade_round_trip(t: Any) -> None:
    assert wire.public_trade_from_wire(_via_json(wire.public_trade_to_wire(t))) == t


@given(hs.orderbook_updates())
@settings(max_examples=100)
def test_orderbook_round_trip(u: Any) -> None:
    data = _via_json(wire.orderbook_to_wire(u))
    assert wire.orderbook_from_wire(data, type=u.type, depth=u.depth, ts=u.ts, cts=u.cts) == u
    rest = _via_json(wire.orderbook_to_rest(u))
    assert wire.orderbook_from_rest(rest, depth=u.depth) == u.__class__(
        symbol=u.symbol,
        depth=u.depth,
        type=BookUpdateType.SNAPSHOT,
        bids=u.bids,
        asks=u.asks,
        update_id=u.update_id,
        seq=u.seq,
        ts=u.ts,
        cts=u.cts,
    )


@pytest.mark.parametrize("exec_type", ["FutureSpread", "UNKNOWN", "Settle", "Delivery"])
def test_every_documented_exec_type_parses(exec_type: str) -> None:
    # docs v5/enum.mdx lists them; one unparseable row would stop reconciliation for 7 days.
    e = wire.execution_from_wire({**WS_EXECUTION, "execType": exec_type})
    assert e.exec_type.value == exec_type
