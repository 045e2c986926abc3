"""hean.bybit.stream: WebSocket frame parsing and building (both ends)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit import stream
from hean.bybit.signing import Credentials, ws_auth_signature
from hean.bybit.stream import ClientFrame, StreamParseError
from hean.bybit.types import (
    BookUpdateType,
    Execution,
    OpAck,
    Order,
    OrderBookUpdate,
    Position,
    PrivateMessage,
    TickerMessage,
    TradesMessage,
    Wallet,
)
from hean.bybit.wire import WireError

from . import strategies as hs


def _frame(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


# --------------------------------------------------------------------------- public acks


def test_public_subscribe_ack() -> None:
    ack = stream.parse_public(
        '{"success":true,"ret_msg":"","conn_id":"3cd84cb1-4d06-4a05-930a-2efe5fc70f0f",'
        '"req_id":"test","op":"subscribe"}'
    )
    assert ack == OpAck(
        op="subscribe",
        success=True,
        ret_msg="",
        conn_id="3cd84cb1-4d06-4a05-930a-2efe5fc70f0f",
        req_id="test",
    )
    assert not ack.is_pong


def test_public_subscribe_failure_ack() -> None:
    ack = stream.parse_public(
        '{"success":false,"ret_msg":"Invalid topic: orderbook.7.BTCUSDT",'
        '"conn_id":"c1","op":"subscribe"}'
    )
    assert isinstance(ack, OpAck)
    assert ack.success is False
    assert ack.ret_msg == "Invalid topic: orderbook.7.BTCUSDT"
    assert ack.req_id == ""


def test_public_unsubscribe_ack() -> None:
    ack = stream.parse_public(
        '{"success":true,"ret_msg":"","conn_id":"c1","req_id":"customised_id","op":"unsubscribe"}'
    )
    assert isinstance(ack, OpAck)
    assert ack.op == "unsubscribe"
    assert ack.req_id == "customised_id"


def test_public_pong_keeps_op_ping() -> None:
    ack = stream.parse_public(
        '{"success":true,"ret_msg":"pong","conn_id":"0970e817","req_id":"","op":"ping"}'
    )
    assert isinstance(ack, OpAck)
    assert ack.op == "ping"
    assert ack.is_pong


# --------------------------------------------------------------------------- public data

ORDERBOOK_SNAPSHOT = (
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,'
    '"data":{"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],'
    '"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724},'
    '"cts":1672304484976}'
)


def test_orderbook_snapshot_takes_depth_from_topic() -> None:
    u = stream.parse_public(ORDERBOOK_SNAPSHOT)
    assert isinstance(u, OrderBookUpdate)
    assert u.symbol == "BTCUSDT"
    assert u.depth == 50
    assert u.type is BookUpdateType.SNAPSHOT
    assert u.bids[0] == (Decimal("16493.5"), Decimal("0.006"))
    assert u.asks[1] == (Decimal("16612"), Decimal("0.213"))
    assert u.update_id == 18521288
    assert u.seq == 7961638724
    assert (u.ts, u.cts) == (1672304484978, 1672304484976)


def test_orderbook_delta_key_order_irrelevant() -> None:
    u = stream.parse_public(
        '{"data":{"u":18521289,"seq":7961638725,"a":[],"b":[["16493.50","0"]],"s":"BTCUSDT"},'
        '"cts":5,"ts":6,"type":"delta","topic":"orderbook.1.BTCUSDT"}'
    )
    assert isinstance(u, OrderBookUpdate)
    assert u.depth == 1
    assert u.type is BookUpdateType.DELTA
    assert u.bids == ((Decimal("16493.5"), Decimal(0)),)


def test_orderbook_symbol_must_match_topic() -> None:
    with pytest.raises(StreamParseError, match="ETHUSDT"):
        stream.parse_public(ORDERBOOK_SNAPSHOT.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"'))


def test_public_trades() -> None:
    msg = stream.parse_public(
        '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,'
        '"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",'
        '"L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"RPI":true,'
        '"seq":123}]}'
    )
    assert isinstance(msg, TradesMessage)
    assert msg.ts == 1672304486868
    (trade,) = msg.trades
    assert trade.price == Decimal("16578.5")
    assert trade.rpi is True
    assert trade.seq == 123


def test_tickers_snapshot_and_delta() -> None:
    snap = stream.parse_public(
        '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
        '"tickDirection":"PlusTick","lastPrice":"17216.00","markPrice":"17217.33",'
        '"nextFundingTime":"1673280000000","fundingRate":"-0.000212"},'
        '"cs":24987956059,"ts":1673272861686}'
    )
    assert isinstance(snap, TickerMessage)
    assert snap.type is BookUpdateType.SNAPSHOT
    assert snap.cs == 24987956059
    assert snap.ticker.last_price == Decimal("17216")
    delta = stream.parse_public(
        '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT",'
        '"markPrice":"17218.00"},"cs":24987956060,"ts":1673272861786}'
    )
    assert isinstance(delta, TickerMessage)
    assert delta.type is BookUpdateType.DELTA
    assert delta.ticker.last_price is None
    assert snap.ticker.merged(delta.ticker).mark_price == Decimal("17218")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"hello": 1}', "neither 'op' nor 'topic'"),
        ('{"topic":"kline.5.BTCUSDT","type":"snapshot","ts":1,"data":[]}', "unknown public topic"),
        ('{"topic":"orderbook.x.BTCUSDT","type":"snapshot","ts":1,"data":{}}', "not a number"),
        ('{"topic":"tickers.BTCUSDT","type":"weird","ts":1,"data":{}}', "unknown message type"),
        (
            '{"topic":"publicTrade.BTCUSDT","type":"snapshot","data":[]}',
            "missing required key 'ts'",
        ),
        ('{"topic":"publicTrade.BTCUSDT","ts":1,"data":{}}', "'data' is not a list"),
        (
            '{"topic":"publicTrade.BTCUSDT","ts":1,"data":[{"s":"BTCUSDT"}]}',
            r"publicTrade\.BTCUSDT: publicTrade: missing required key 'T'",
        ),
        ('{"op":"dance","success":true}', "unknown op 'dance'"),
        ('{"op":"subscribe"}', "missing 'success'"),
    ],
)
def test_public_parse_errors_say_why(text: str, reason: str) -> None:
    with pytest.raises(StreamParseError, match=reason) as info:
        stream.parse_public(text)
    assert isinstance(info.value, WireError)
    assert isinstance(info.value, ValueError)


def test_parse_accepts_bytes() -> None:
    assert isinstance(stream.parse_public(ORDERBOOK_SNAPSHOT.encode()), OrderBookUpdate)


# --------------------------------------------------------------------------- private


@pytest.mark.parametrize(
    ("text", "success", "msg"),
    [
        ('{"success":true,"ret_msg":"","op":"auth","conn_id":"cejreaspqfh3sjdnldmg-p"}', True, ""),
        (
            '{"success":false,"ret_msg":"Params Error","op":"auth","conn_id":"c","req_id":"1"}',
            False,
            "Params Error",
        ),
    ],
)
def test_private_auth_ack(text: str, success: bool, msg: str) -> None:
    ack = stream.parse_private(text)
    assert isinstance(ack, OpAck)
    assert ack.op == "auth"
    assert ack.success is success
    assert ack.ret_msg == msg


def test_private_subscribe_ack() -> None:
    ack = stream.parse_private('{"success":true,"ret_msg":"","op":"subscribe","conn_id":"c"}')
    assert ack == OpAck(op="subscribe", success=True, conn_id="c")


def test_private_pong_has_no_success_key() -> None:
    ack = stream.parse_private(
        '{"req_id":"test","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0"}'
    )
    assert isinstance(ack, OpAck)
    assert ack.success
    assert ack.is_pong
    assert ack.args == ("1675418560633",)
    assert ack.req_id == "test"


def test_trade_stream_style_pong() -> None:
    ack = stream.parse_private(
        '{"retCode":0,"retMsg":"OK","op":"pong","data":["1711002002529"],"connId":"x"}'
    )
    assert isinstance(ack, OpAck)
    assert ack.success
    assert ack.args == ("1711002002529",)
    assert ack.conn_id == "x"
    assert ack.ret_msg == "OK"


def _order_item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "orderId": "o-1",
        "orderLinkId": "link-1",
        "side": "Buy",
        "orderType": "Limit",
        "price": "65000.1",
        "qty": "0.010",
        "timeInForce": "PostOnly",
        "orderStatus": "New",
        "positionIdx": 0,
        "avgPrice": "",
        "cumExecFee": "0",
        "cumFeeDetail": {},
        "closedPnl": "0",
        "createdTime": "1700000000000",
        "updatedTime": "1700000000001",
    }
    item.update(overrides)
    return item


@pytest.mark.parametrize("topic", ["order", "order.linear"])
def test_private_order_push(topic: str) -> None:
    msg = stream.parse_private(
        _frame(
            {
                "id": "5923240c6880ab-c59f-420b-9adb-3639adc9dd90",
                "topic": topic,
                "creationTime": 1672364262474,
                "data": [_order_item(), _order_item(orderId="o-2", orderStatus="Cancelled")],
            }
        )
    )
    assert isinstance(msg, PrivateMessage)
    assert msg.topic == topic
    assert stream.private_topic_kind(msg.topic) == "order"
    assert msg.creation_time == 1672364262474
    assert [o.order_id for o in msg.data if isinstance(o, Order)] == ["o-1", "o-2"]


def test_private_push_drops_other_categories() -> None:
    msg = stream.parse_private(
        _frame(
            {
                "id": "x",
                "topic": "order",
                "creationTime": 1,
                "data": [_order_item(category="spot", orderId="spot-1"), _order_item()],
            }
        )
    )
    assert isinstance(msg, PrivateMessage)
    assert [o.order_id for o in msg.data if isinstance(o, Order)] == ["o-1"]


def test_private_execution_position_wallet_pushes() -> None:
    execution = {
        "category": "linear",
        "symbol": "XRPUSDT",
        "execFee": "0.005061",
        "execId": "7e2ae69c",
        "execPrice": "0.3374",
        "execQty": "25",
        "execType": "Trade",
        "execValue": "8.435",
        "isMaker": False,
        "orderId": "f6e3",
        "orderLinkId": "",
        "side": "Sell",
        "execTime": "1672364174443",
        "seq": 4688002127,
    }
    e = stream.parse_private(
        _frame({"id": "1", "topic": "execution", "creationTime": 2, "data": [execution]})
    )
    assert isinstance(e, PrivateMessage)
    assert isinstance(e.data[0], Execution)
    assert e.data[0].exec_fee == Decimal("0.005061")

    position = {
        "category": "linear",
        "symbol": "XRPUSDT",
        "side": "",
        "size": "0",
        "entryPrice": "0",
        "positionIdx": 0,
        "seq": 4688002127,
    }
    p = stream.parse_private(
        _frame({"id": "2", "topic": "position.linear", "creationTime": 3, "data": [position]})
    )
    assert isinstance(p, PrivateMessage)
    assert isinstance(p.data[0], Position)
    assert p.data[0].side is None

    wallet = {
        "accountType": "UNIFIED",
        "totalEquity": "100",
        "totalWalletBalance": "100",
        "totalMarginBalance": "100",
        "totalAvailableBalance": "90",
        "coin": [{"coin": "USDT", "equity": "100", "walletBalance": "100"}],
    }
    w = stream.parse_private(
        _frame({"id": "3", "topic": "wallet", "creationTime": 4, "data": [wallet]})
    )
    assert isinstance(w, PrivateMessage)
    assert isinstance(w.data[0], Wallet)
    assert w.data[0].total_available_balance == 90


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"id": "1", "topic": "execution.fast", "creationTime": 1, "data": []}, "execution.fast"),
        ({"id": "1", "topic": "execution.fast.linear", "creationTime": 1, "data": []}, "execValue"),
        ({"id": "1", "topic": "greeks", "creationTime": 1, "data": []}, "unknown private topic"),
        ({"id": "1", "topic": "order.spot", "creationTime": 1, "data": []}, "unknown private"),
        ({"id": "1", "topic": "order", "creationTime": 1, "data": {}}, "'data' is not a list"),
        ({"id": "1", "topic": "order", "data": []}, "missing required key 'creationTime'"),
        (
            {"id": "1", "topic": "order", "creationTime": 1, "data": [{"orderId": "x"}]},
            "order: order: missing required key",
        ),
    ],
)
def test_private_parse_errors_say_why(obj: dict[str, Any], reason: str) -> None:
    with pytest.raises(StreamParseError, match=reason):
        stream.parse_private(_frame(obj))


# --------------------------------------------------------------------------- client frames


def test_subscribe_and_unsubscribe_frames() -> None:
    sub = orjson.loads(stream.subscribe_msg(["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"], "r1"))
    assert sub == {
        "op": "subscribe",
        "args": ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"],
        "req_id": "r1",
    }
    unsub = orjson.loads(stream.unsubscribe_msg(iter(["publicTrade.BTCUSDT"])))
    assert unsub == {"op": "unsubscribe", "args": ["publicTrade.BTCUSDT"]}
    with pytest.raises(ValueError, match="at least one topic"):
        stream.subscribe_msg([])
    with pytest.raises(ValueError, match="at least one topic"):
        stream.unsubscribe_msg([])


def test_ping_frame() -> None:
    assert orjson.loads(stream.ping_msg()) == {"op": "ping"}
    assert orjson.loads(stream.ping_msg("100001")) == {"op": "ping", "req_id": "100001"}


def test_auth_frame_signs_and_hides_the_secret() -> None:
    creds = Credentials(api_key="KEY123", api_secret="s3cr3t-value")
    text = stream.auth_msg(creds, 1662350400000, req_id="10001")
    assert "s3cr3t-value" not in text
    frame = orjson.loads(text)
    assert frame == {
        "op": "auth",
        "args": ["KEY123", 1662350400000, ws_auth_signature("s3cr3t-value", 1662350400000)],
        "req_id": "10001",
    }
    parsed = stream.parse_client(text)
    assert stream.auth_params(parsed) == (
        "KEY123",
        1662350400000,
        ws_auth_signature("s3cr3t-value", 1662350400000),
    )


def test_parse_client_frames() -> None:
    assert stream.parse_client(stream.subscribe_msg(["tickers.BTCUSDT"], "a")) == ClientFrame(
        op="subscribe", args=("tickers.BTCUSDT",), req_id="a"
    )
    assert stream.parse_client(stream.ping_msg()) == ClientFrame(op="ping")
    # Some SDKs send expires as a string, and req_id as a number.
    frame = stream.parse_client('{"op":"auth","args":["k","1662350400000","sig"],"req_id":7}')
    assert frame.req_id == "7"
    assert stream.auth_params(frame) == ("k", 1662350400000, "sig")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"args":[]}', "missing or non-string 'op'"),
        ('{"op":"order.create","args":[]}', "unknown op"),
        ('{"op":"subscribe","args":"x"}', "not a list"),
        ('{"op":"subscribe","args":[{"a":1}]}', "neither a string nor an integer"),
    ],
)
def test_parse_client_errors(text: str, reason: str) -> None:
    with pytest.raises(StreamParseError, match=reason):
        stream.parse_client(text)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (ClientFrame(op="ping"), "not an auth frame"),
        (ClientFrame(op="auth", args=("k", 1)), "expected 3 args"),
        (ClientFrame(op="auth", args=(1, 1, "s")), "must be strings"),
        (ClientFrame(op="auth", args=("k", "soon", "s")), "not an integer"),
    ],
)
def test_auth_params_errors(frame: ClientFrame, reason: str) -> None:
    with pytest.raises(StreamParseError, match=reason):
        stream.auth_params(frame)


# --------------------------------------------------------------------------- server frames


def test_server_acks_parse_back() -> None:
    text = stream.public_ack("subscribe", False, "Invalid topic", "c1", "r1")
    assert orjson.loads(text) == {
        "success": False,
        "ret_msg": "Invalid topic",
        "conn_id": "c1",
        "req_id": "r1",
        "op": "subscribe",
    }
    assert stream.parse_public(text) == OpAck(
        op="subscribe", success=False, ret_msg="Invalid topic", conn_id="c1", req_id="r1"
    )
    pong = stream.parse_public(stream.public_pong("c1", "p1"))
    assert isinstance(pong, OpAck)
    assert pong.is_pong
    assert pong.op == "ping"

    auth = stream.private_ack("auth", True, "", "c2")
    assert "req_id" not in orjson.loads(auth)
    assert stream.parse_private(auth) == OpAck(op="auth", success=True, conn_id="c2")
    assert stream.parse_private(stream.private_ack("subscribe", True, "", "c2", "q")) == OpAck(
        op="subscribe", success=True, conn_id="c2", req_id="q"
    )

    ppong = stream.parse_private(stream.private_pong("t", 1675418560633, "c3"))
    assert ppong == OpAck(
        op="pong", success=True, conn_id="c3", req_id="t", args=("1675418560633",)
    )
    assert "req_id" not in orjson.loads(stream.private_pong("", 1))


@given(hs.orderbook_updates())
@settings(max_examples=100)
def test_orderbook_msg_round_trip(u: OrderBookUpdate) -> None:
    assert stream.parse_public(stream.orderbook_msg(u)) == u


@given(hs.trades_messages())
@settings(max_examples=100)
def test_trades_msg_round_trip(msg: TradesMessage) -> None:
    assert stream.parse_public(stream.trades_msg(msg)) == msg


@given(hs.ticker_messages())
@settings(max_examples=100)
def test_ticker_msg_round_trip(msg: TickerMessage) -> None:
    assert stream.parse_public(stream.ticker_msg(msg)) == msg


_private_payloads = st.one_of(
    st.tuples(st.sampled_from(["order", "order.linear"]), st.lists(hs.orders(ws=True), max_size=3)),
    st.tuples(
        st.sampled_from(["execution", "execution.linear"]),
        st.lists(hs.executions(ws=True), max_size=3),
    ),
    st.tuples(
        st.sampled_from(["position", "position.linear"]), st.lists(hs.positions(), max_size=3)
    ),
    st.tuples(st.just("wallet"), st.lists(hs.wallets, max_size=2)),
)


@given(_private_payloads, hs.ids, hs.timestamps_ms)
@settings(max_examples=150)
def test_private_msg_round_trip(
    payload: tuple[str, list[Order] | list[Execution] | list[Position] | list[Wallet]],
    msg_id: str,
    creation_time: int,
) -> None:
    topic, items = payload
    msg = PrivateMessage(
        id=msg_id,
        topic=topic,
        creation_time=creation_time,
        data=tuple(items),  # type: ignore[arg-type]
    )
    assert stream.parse_private(stream.private_msg(msg)) == msg


def test_topic_builders() -> None:
    assert stream.orderbook_topic(50, "BTCUSDT") == "orderbook.50.BTCUSDT"
    assert stream.trades_topic("BTCUSDT") == "publicTrade.BTCUSDT"
    assert stream.tickers_topic("BTCUSDT") == "tickers.BTCUSDT"
