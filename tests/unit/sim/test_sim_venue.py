"""REST semantics of the venue core on a quiet market (no synthetic participants).

A second account ("bob") plays the other side, so every fill here is deliberate and exact.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hean.bybit.errors import (
    AuthError,
    BybitError,
    DuplicateOrderLinkIdError,
    InsufficientBalanceError,
    NotModifiedError,
    OrderNotFoundError,
    ReduceOnlyError,
    RejectedError,
)
from hean.bybit.types import Execution, Order, Position, Wallet
from hean.bybit.wire import order_from_wire, position_from_wire
from hean.sim import RouteNotFound, Venue, VenueSettings
from hean.sim.market import ModelParams
from hean.sim.orders import DAY_MS

D = Decimal
T0 = 1_767_225_600_000
QUIET = ModelParams(touch_rate=0, depth_rate=0, taker_rate=0, cancel_rate=0)


def make_venue(balance: str = "100000") -> Venue:
    settings = VenueSettings(
        seed=3,
        symbols=("BTCUSDT", "ETHUSDT"),
        initial_balance_usdt=D(balance),
        maker_fee_rate=D("0.0002"),
        taker_fee_rate=D("0.00055"),
        volatility=0.0,
        tick_interval_ms=100,
    )
    v = Venue(settings, model=QUIET)
    v.open_account("alice", "alice-secret")
    v.open_account("bob", "bob-secret", balance=D("1000000"))
    return v


@pytest.fixture
def venue() -> Venue:
    return make_venue()


def call(v: Venue, key: str | None, path: str, now: int = T0, **params: Any) -> dict[str, Any]:
    return v.handle(path, {"category": "linear", **params}, api_key=key, now_ms=now)


def place(
    v: Venue, key: str, side: str, qty: str, price: str | None = None, now: int = T0, **extra: Any
) -> str:
    params: dict[str, Any] = {"symbol": "BTCUSDT", "side": side, "qty": qty, **extra}
    if price is None:
        params["orderType"] = "Market"
    else:
        params["orderType"] = "Limit"
        params["price"] = price
    return str(call(v, key, "/v5/order/create", now, **params)["orderId"])


def order_of(v: Venue, key: str, order_id: str) -> Order:
    rows = call(v, key, "/v5/order/realtime", orderId=order_id)["list"]
    assert len(rows) == 1
    return order_from_wire(rows[0])


def position_of(v: Venue, key: str, symbol: str = "BTCUSDT") -> Position:
    rows = call(v, key, "/v5/position/list", symbol=symbol)["list"]
    return position_from_wire(rows[0])


def topics(v: Venue, key: str) -> list[str]:
    return [m.topic for k, m in v.drain_events().private if k == key]


# ---------------------------------------------------------------------------- create


def test_limit_order_rests_and_is_listed(venue: Venue) -> None:
    venue.drain_events()
    oid = place(venue, "alice", "Buy", "0.010", "94000", orderLinkId="a-1")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "New"
    assert o.leaves_qty == D("0.01")
    assert o.order_link_id == "a-1"
    assert o.avg_price in (None, D(0))
    events = venue.drain_events()
    assert [m.topic for _, m in events.private] == ["order", "position"]
    assert events.books_changed == frozenset({"BTCUSDT"})
    assert venue.book_levels("BTCUSDT", 5)[0] == ((D("94000"), D("0.010")),)
    listed = call(venue, "alice", "/v5/order/realtime", symbol="BTCUSDT")
    assert [r["orderId"] for r in listed["list"]] == [oid]
    assert listed["nextPageCursor"] == ""
    assert isinstance(listed["list"][0]["createdTime"], str)


def test_duplicate_order_link_id_is_110072_for_life(venue: Venue) -> None:
    oid = place(venue, "alice", "Buy", "0.010", "94000", orderLinkId="dup")
    call(venue, "alice", "/v5/order/cancel", symbol="BTCUSDT", orderId=oid)
    with pytest.raises(DuplicateOrderLinkIdError) as err:
        place(venue, "alice", "Buy", "0.010", "94000", orderLinkId="dup")
    assert err.value.ret_code == 110072
    assert err.value.ret_msg == "OrderLinkedID is duplicate"
    place(venue, "bob", "Buy", "0.010", "94000", orderLinkId="dup")  # per account


@pytest.mark.parametrize("link_id", ["x" * 37, "bad id", "ü"])
def test_invalid_order_link_id_is_10001(venue: Venue, link_id: str) -> None:
    with pytest.raises(RejectedError) as err:
        place(venue, "alice", "Buy", "0.010", "94000", orderLinkId=link_id)
    assert err.value.ret_code == 10001


@pytest.mark.parametrize(
    ("params", "text"),
    [
        ({"symbol": "NOPEUSDT"}, "params error: symbol invalid"),
        ({"positionIdx": 1}, "position idx not match position mode"),
        ({"side": "Up"}, "params error: side invalid"),
        ({"qty": "abc"}, "params error: qty err"),
        ({"timeInForce": "GTD"}, "params error: timeInForce invalid"),
        ({"category": "spot"}, "Illegal category"),
        ({"triggerPrice": "90000"}, "params error: triggerPrice is not supported by this venue"),
        ({"orderType": "UNKNOWN"}, "params error: orderType invalid"),
    ],
)
def test_bad_create_params_are_10001(venue: Venue, params: dict[str, Any], text: str) -> None:
    body = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": "0.01",
        "price": "94000",
        **params,
    }
    with pytest.raises(RejectedError) as err:
        venue.handle("/v5/order/create", body, api_key="alice", now_ms=T0)
    assert (err.value.ret_code, err.value.ret_msg) == (10001, text)


def test_instrument_rules_use_bybit_codes(venue: Venue) -> None:
    with pytest.raises(RejectedError) as err:
        place(venue, "alice", "Buy", "0.0001", "94000")
    assert err.value.ret_code == 10001
    with pytest.raises(RejectedError) as err:
        place(venue, "alice", "Buy", "0.010", "94000.05")
    assert err.value.ret_code == 10001
    with pytest.raises(RejectedError) as err:
        place(venue, "alice", "Buy", "0.001", "1000")
    assert err.value.ret_code == 110094


def test_market_order_fills_across_levels_then_cancels_the_rest(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.002", "95000")
    place(venue, "bob", "Sell", "0.003", "95010")
    place(venue, "bob", "Sell", "0.005", "200000")  # outside the 5 % band
    venue.drain_events()
    oid = place(venue, "alice", "Buy", "0.010")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "Cancelled"
    assert o.cum_exec_qty == D("0.005")
    assert o.time_in_force.value == "IOC"
    assert o.price == D("99750")  # protection price: best ask + 5 %, onto the tick
    assert o.avg_price == D("95006")
    execs = call(venue, "alice", "/v5/execution/list", symbol="BTCUSDT")["list"]
    assert [e["execQty"] for e in execs] == ["0.003", "0.002"]  # newest first
    assert all(e["isMaker"] is False and e["feeRate"] == "0.00055" for e in execs)
    assert len({e["execId"] for e in execs}) == 2
    events = venue.drain_events()
    assert [m.topic for k, m in events.private if k == "alice"] == [
        "order",
        "execution",
        "position",
        "wallet",
    ]
    assert [(t.side.value, t.size, t.price) for t in events.trades] == [
        ("Buy", D("0.002"), D("95000")),
        ("Buy", D("0.003"), D("95010")),
    ]
    assert events.trades[0].seq == events.trades[1].seq == venue.cross_seq("BTCUSDT")
    bob = [m for k, m in events.private if k == "bob"]
    assert [m.topic for m in bob] == ["order", "execution", "position", "wallet"]
    assert len(bob[0].data) == 2  # both maker orders in one push, as Bybit may batch them
    assert all(isinstance(e, Execution) and e.is_maker for e in bob[1].data)


def test_market_order_on_an_empty_book_is_cancelled_unfilled(venue: Venue) -> None:
    oid = place(venue, "alice", "Sell", "0.010")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "Cancelled"
    assert o.cum_exec_qty == 0
    assert o.reject_reason == "EC_NoImmediateQtyToFill"


def test_post_only_that_would_cross_is_cancelled(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.010", "95000")
    oid = place(venue, "alice", "Buy", "0.010", "95000", timeInForce="PostOnly")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "Cancelled"
    assert o.reject_reason == "EC_PostOnlyWillTakeLiquidity"
    ok = place(venue, "alice", "Buy", "0.010", "94999.9", timeInForce="PostOnly")
    assert order_of(venue, "alice", ok).order_status.value == "New"


def test_fok_fills_fully_or_not_at_all(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.005", "95000")
    oid = place(venue, "alice", "Buy", "0.010", "95000", timeInForce="FOK")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "Cancelled"
    assert o.cum_exec_qty == 0
    assert o.reject_reason == "EC_CancelForNoFullFill"
    oid = place(venue, "alice", "Buy", "0.005", "95000", timeInForce="FOK")
    assert order_of(venue, "alice", oid).order_status.value == "Filled"


def test_ioc_partial_fill_then_cancelled(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.004", "95000")
    oid = place(venue, "alice", "Buy", "0.010", "95000", timeInForce="IOC")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "Cancelled"
    assert o.cum_exec_qty == D("0.004")
    assert o.leaves_qty == 0
    assert venue.book_levels("BTCUSDT", 5) == ((), ())


def test_gtc_crossing_limit_takes_then_rests(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.004", "95000")
    oid = place(venue, "alice", "Buy", "0.010", "95100")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "PartiallyFilled"
    assert o.cum_exec_qty == D("0.004")
    assert o.avg_price == D("95000")  # price improvement: the maker's price
    assert venue.book_levels("BTCUSDT", 5)[0] == ((D("95100"), D("0.006")),)


def test_maker_fee_and_fifo_between_accounts(venue: Venue) -> None:
    first = place(venue, "bob", "Buy", "0.010", "94000")
    second = place(venue, "alice", "Buy", "0.010", "94000")
    place(venue, "bob", "Sell", "0.015", "94000")  # self-trade with bob's own bid first
    assert order_of(venue, "bob", first).order_status.value == "Filled"
    mine = order_of(venue, "alice", second)
    assert mine.order_status.value == "PartiallyFilled"
    assert mine.cum_exec_qty == D("0.005")
    assert mine.cum_exec_fee == D("0.094")  # 0.005 * 94000 * 0.0002


def test_negative_maker_fee_is_a_rebate() -> None:
    settings = VenueSettings(
        seed=1,
        symbols=("BTCUSDT",),
        initial_balance_usdt=D("10000"),
        maker_fee_rate=D("-0.0001"),
        taker_fee_rate=D("0.00055"),
        volatility=0.0,
        tick_interval_ms=100,
    )
    v = Venue(settings, model=QUIET)
    v.open_account("a", "s")
    v.open_account("b", "s")
    place(v, "a", "Buy", "0.010", "94000")
    place(v, "b", "Sell", "0.010")
    wallet = call(v, "a", "/v5/account/wallet-balance", accountType="UNIFIED")["list"][0]
    assert D(wallet["totalWalletBalance"]) == D("10000.094")


# ---------------------------------------------------------------------------- reduce-only, margin


def test_reduce_only_without_position_is_110017(venue: Venue) -> None:
    with pytest.raises(ReduceOnlyError) as err:
        place(venue, "alice", "Sell", "0.010", "96000", reduceOnly=True)
    assert err.value.ret_code == 110017


def test_reduce_only_is_truncated_and_never_increases(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.010", "95000")
    place(venue, "alice", "Buy", "0.010")  # long 0.010
    with pytest.raises(ReduceOnlyError):
        place(venue, "alice", "Buy", "0.010", "90000", reduceOnly=True)  # same side
    oid = place(venue, "alice", "Sell", "0.050", "96000", reduceOnly=True)
    o = order_of(venue, "alice", oid)
    assert o.qty == D("0.010")
    assert o.reduce_only
    # the position shrinks elsewhere: the reduce-only order shrinks with it, then goes
    place(venue, "bob", "Buy", "0.004", "94000")
    place(venue, "alice", "Sell", "0.004")
    assert order_of(venue, "alice", oid).qty == D("0.006")
    place(venue, "bob", "Buy", "0.006", "94000")
    place(venue, "alice", "Sell", "0.006")
    gone = order_of(venue, "alice", oid)
    assert gone.order_status.value == "Cancelled"
    assert gone.cancel_type == "CancelByReduceOnly"
    assert position_of(venue, "alice").size == 0


def test_margin_check_rejects_with_110007() -> None:
    v = make_venue(balance="100")
    # 0.011 BTC at 90000 = 990 USDT notional, 99 USDT margin at 10x: fits.
    place(v, "alice", "Buy", "0.011", "90000")
    with pytest.raises(InsufficientBalanceError) as err:
        place(v, "alice", "Buy", "0.001", "90000")
    assert (err.value.ret_code, err.value.ret_msg) == (110007, "ab not enough for new order")
    # the other side needs no more margin than the larger side: allowed
    place(v, "alice", "Sell", "0.010", "95000")


# ---------------------------------------------------------------------------- amend / cancel


def test_amend_price_loses_priority_qty_decrease_keeps_it(venue: Venue) -> None:
    mine = place(venue, "alice", "Buy", "0.010", "94000")
    place(venue, "bob", "Buy", "0.010", "94000")
    call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId=mine, qty="0.005")
    place(venue, "bob", "Sell", "0.005")
    assert order_of(venue, "alice", mine).order_status.value == "Filled"  # still first

    mine = place(venue, "alice", "Buy", "0.010", "93000")
    place(venue, "bob", "Buy", "0.010", "93000")
    call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId=mine, price="93000.1")
    call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId=mine, price="93000")
    place(venue, "bob", "Sell", "0.010", "93000")
    assert order_of(venue, "alice", mine).cum_exec_qty == 0  # went to the back


def test_amend_qty_increase_goes_to_the_back(venue: Venue) -> None:
    mine = place(venue, "alice", "Buy", "0.010", "94000")
    place(venue, "bob", "Buy", "0.010", "94000")
    call(
        venue,
        "alice",
        "/v5/order/amend",
        symbol="BTCUSDT",
        orderLinkId=None,
        orderId=mine,
        qty="0.011",
    )
    place(venue, "bob", "Sell", "0.010", "94000")
    assert order_of(venue, "alice", mine).cum_exec_qty == 0


def test_amend_errors(venue: Venue) -> None:
    oid = place(venue, "alice", "Buy", "0.010", "94000")
    place(venue, "bob", "Sell", "0.006", "94000")
    with pytest.raises(RejectedError) as err:
        call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId=oid, qty="0.006")
    assert err.value.ret_code == 110064
    with pytest.raises(NotModifiedError):
        call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId=oid, price="94000")
    with pytest.raises(RejectedError) as err:
        call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT")
    assert err.value.ret_msg == "params error: OrderId or orderLinkId is required"
    with pytest.raises(OrderNotFoundError) as missing:
        call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId="nope", qty="1")
    assert missing.value.ret_code == 110001
    call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId=oid, qty="0.007")
    o = order_of(venue, "alice", oid)
    assert o.qty == D("0.007")
    assert o.leaves_qty == D("0.001")


def test_amend_crossing_price_trades(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.010", "95000")
    oid = place(venue, "alice", "Buy", "0.010", "94000")
    call(venue, "alice", "/v5/order/amend", symbol="BTCUSDT", orderId=oid, price="95000")
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "Filled"
    assert o.price == D("95000")


def test_cancel_and_cancel_errors(venue: Venue) -> None:
    oid = place(venue, "alice", "Buy", "0.010", "94000", orderLinkId="c-1")
    venue.drain_events()
    res = call(venue, "alice", "/v5/order/cancel", symbol="BTCUSDT", orderLinkId="c-1")
    assert res == {"orderId": oid, "orderLinkId": "c-1"}
    assert topics(venue, "alice") == ["order", "position"]
    o = order_of(venue, "alice", oid)
    assert o.order_status.value == "Cancelled"
    assert o.cancel_type == "CancelByUser"
    with pytest.raises(OrderNotFoundError):
        call(venue, "alice", "/v5/order/cancel", symbol="BTCUSDT", orderId=oid)
    other = place(venue, "bob", "Buy", "0.010", "94000")
    with pytest.raises(OrderNotFoundError):  # someone else's order
        call(venue, "alice", "/v5/order/cancel", symbol="BTCUSDT", orderId=other)
    with pytest.raises(RejectedError) as err:
        call(venue, "alice", "/v5/order/cancel", symbol="BTCUSDT")
    assert err.value.ret_code == 10001


def test_cancel_all_by_symbol_and_settle_coin(venue: Venue) -> None:
    a = place(venue, "alice", "Buy", "0.010", "94000")
    b = place(venue, "alice", "Sell", "0.010", "96000")
    call(
        venue,
        "alice",
        "/v5/order/create",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.10",
        price="3000",
    )
    res = call(venue, "alice", "/v5/order/cancel-all", symbol="BTCUSDT")
    assert res["success"] == "1"
    assert {r["orderId"] for r in res["list"]} == {a, b}
    res = call(venue, "alice", "/v5/order/cancel-all", settleCoin="USDT")
    assert len(res["list"]) == 1
    with pytest.raises(RejectedError):
        call(venue, "alice", "/v5/order/cancel-all")
    assert call(venue, "alice", "/v5/order/realtime", settleCoin="USDT")["list"] == []


# ---------------------------------------------------------------------------- queries


def test_realtime_keeps_the_last_500_closed_for_by_id_queries(venue: Venue) -> None:
    first = place(venue, "alice", "Buy", "0.010", "94000")
    call(venue, "alice", "/v5/order/cancel", symbol="BTCUSDT", orderId=first)
    assert order_of(venue, "alice", first).order_status.value == "Cancelled"
    for _ in range(500):
        oid = place(venue, "alice", "Buy", "0.010", "94000")
        call(venue, "alice", "/v5/order/cancel", symbol="BTCUSDT", orderId=oid)
    assert call(venue, "alice", "/v5/order/realtime", orderId=first)["list"] == []
    # history still has it (cancelled without fills: 24 h)
    hist = call(venue, "alice", "/v5/order/history", orderId=first)["list"]
    assert [r["orderId"] for r in hist] == [first]
    later = T0 + DAY_MS + 1
    assert call(venue, "alice", "/v5/order/history", later, orderId=first)["list"] == []
    closed = call(venue, "alice", "/v5/order/realtime", symbol="BTCUSDT", openOnly=1, limit=50)
    assert len(closed["list"]) == 50
    assert closed["nextPageCursor"]


def test_history_pagination_and_window(venue: Venue) -> None:
    ids = []
    for i in range(5):
        oid = place(venue, "alice", "Buy", "0.010", "94000", now=T0 + i)
        call(venue, "alice", "/v5/order/cancel", T0 + i, symbol="BTCUSDT", orderId=oid)
        ids.append(oid)
    later = T0 + 10
    page1 = call(venue, "alice", "/v5/order/history", later, symbol="BTCUSDT", limit=2)
    page2 = call(
        venue,
        "alice",
        "/v5/order/history",
        later,
        symbol="BTCUSDT",
        limit=2,
        cursor=page1["nextPageCursor"],
    )
    page3 = call(
        venue,
        "alice",
        "/v5/order/history",
        later,
        symbol="BTCUSDT",
        limit=2,
        cursor=page2["nextPageCursor"],
    )
    got = [r["orderId"] for p in (page1, page2, page3) for r in p["list"]]
    assert got == ids[::-1]
    assert page3["nextPageCursor"] == ""
    window = call(
        venue, "alice", "/v5/order/history", startTime=T0 + 1, endTime=T0 + 2, symbol="BTCUSDT"
    )
    assert [r["orderId"] for r in window["list"]] == [ids[2], ids[1]]
    with pytest.raises(RejectedError):
        call(venue, "alice", "/v5/order/history", startTime=T0, endTime=T0 + 8 * DAY_MS)
    with pytest.raises(RejectedError):
        call(venue, "alice", "/v5/order/history", limit=51)
    # One bound alone: /execution/list reads it as +/-7 days, /order/history refuses it.
    for bound in ("startTime", "endTime"):
        with pytest.raises(RejectedError):
            call(venue, "alice", "/v5/order/history", later, symbol="BTCUSDT", **{bound: T0})


def test_execution_list_pagination_window_and_filters(venue: Venue) -> None:
    for i in range(7):
        place(venue, "bob", "Sell", "0.001", "95000", now=T0 + i)
        place(venue, "alice", "Buy", "0.001", now=T0 + i, orderLinkId=f"m-{i}")
    seen: list[str] = []
    cursor = ""
    while True:
        res = call(
            venue, "alice", "/v5/execution/list", T0 + 10, symbol="BTCUSDT", limit=3, cursor=cursor
        )
        seen += [r["execId"] for r in res["list"]]
        cursor = res["nextPageCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7
    by_link = call(venue, "alice", "/v5/execution/list", T0 + 10, orderLinkId="m-3")["list"]
    assert len(by_link) == 1
    assert by_link[0]["execTime"] == str(T0 + 3)
    only_start = call(venue, "alice", "/v5/execution/list", startTime=T0 + 5)["list"]
    assert len(only_start) == 2
    assert call(venue, "alice", "/v5/execution/list", T0 + 8 * DAY_MS)["list"] == []
    with pytest.raises(RejectedError):
        call(venue, "alice", "/v5/execution/list", limit=101)
    with pytest.raises(RejectedError):
        call(venue, "alice", "/v5/execution/list", cursor="garbage")


def test_position_list_shapes(venue: Venue) -> None:
    flat = call(venue, "alice", "/v5/position/list", symbol="ETHUSDT")["list"]
    assert flat[0]["side"] == ""
    assert flat[0]["size"] == "0"
    assert flat[0]["positionIdx"] == 0
    assert call(venue, "alice", "/v5/position/list", settleCoin="USDT")["list"] == []
    place(venue, "bob", "Buy", "0.010", "94000")
    place(venue, "alice", "Sell", "0.010")
    rows = call(venue, "alice", "/v5/position/list", settleCoin="USDT")["list"]
    assert [(r["symbol"], r["side"], r["size"], r["avgPrice"]) for r in rows] == [
        ("BTCUSDT", "Sell", "0.01", "94000"),
    ]
    with pytest.raises(RejectedError):
        call(venue, "alice", "/v5/position/list")


def test_wallet_after_round_trip(venue: Venue) -> None:
    place(venue, "bob", "Sell", "0.010", "95000")
    place(venue, "alice", "Buy", "0.010")
    place(venue, "bob", "Buy", "0.010", "96000")
    place(venue, "alice", "Sell", "0.010")
    w = call(venue, "alice", "/v5/account/wallet-balance", accountType="UNIFIED")["list"][0]
    # +10 realised, taker fees 0.5225 + 0.528
    assert D(w["totalWalletBalance"]) == D("100000") + D("10") - D("0.5225") - D("0.528")
    assert w["accountType"] == "UNIFIED"
    assert w["coin"][0]["coin"] == "USDT"
    with pytest.raises(RejectedError):
        call(venue, "alice", "/v5/account/wallet-balance", accountType="CONTRACT")
    events = venue.drain_events()
    wallets = [m for k, m in events.private if k == "alice" and m.topic == "wallet"]
    assert len(wallets) == 2
    assert isinstance(wallets[-1].data[0], Wallet)


def test_public_endpoints(venue: Venue) -> None:
    t = venue.handle("/v5/market/time", {}, api_key=None, now_ms=T0 + 1234)
    assert t == {"timeSecond": str((T0 + 1234) // 1000), "timeNano": str((T0 + 1234) * 10**6)}
    info = call(venue, None, "/v5/market/instruments-info")
    assert [i["symbol"] for i in info["list"]] == ["BTCUSDT", "ETHUSDT"]
    assert info["list"][0]["priceFilter"]["tickSize"] == "0.1"
    place(venue, "bob", "Buy", "0.010", "94000")
    book = call(venue, None, "/v5/market/orderbook", symbol="BTCUSDT", limit=1)
    assert book["b"] == [["94000", "0.01"]]
    assert book["a"] == []
    assert book["s"] == "BTCUSDT"
    tick = call(venue, None, "/v5/market/tickers", symbol="BTCUSDT")["list"][0]
    assert tick["bid1Price"] == "94000"
    assert tick["markPrice"] == "95000"
    with pytest.raises(RejectedError):
        call(venue, None, "/v5/market/tickers", symbol="NOPE")


def test_auth_and_routes(venue: Venue) -> None:
    with pytest.raises(RouteNotFound):
        call(venue, "alice", "/v5/order/nope")
    with pytest.raises(AuthError) as err:
        call(venue, None, "/v5/order/realtime", symbol="BTCUSDT")
    assert err.value.ret_code == 10003
    with pytest.raises(AuthError):
        call(venue, "mallory", "/v5/order/realtime", symbol="BTCUSDT")
    assert venue.account_secret("alice") == "alice-secret"
    assert venue.account_secret("mallory") is None
    with pytest.raises(ValueError, match="exists"):
        venue.open_account("alice", "x")


def test_errors_are_bybit_errors_with_codes(venue: Venue) -> None:
    with pytest.raises(BybitError) as err:
        call(venue, "alice", "/v5/order/realtime")
    assert err.value.ret_code == 10001
