"""Bybit v5 WebSocket frames: parse what the server sends, build what a client sends, and back.

One codec serves both ends: the engine parses public/private pushes and builds
subscribe/ping/auth requests; the embedded simulator parses those requests
(:func:`parse_client`) and builds its pushes and acks with the server-side builders, so a change of
wire shape cannot drift between the two. Pure: no trio, no I/O, time comes in as arguments.

Shapes (``shared/bybit-v5.md`` §6-§7): public acks carry ``success/ret_msg/conn_id/req_id/op`` and
the public pong is ``op:"ping"`` with ``ret_msg:"pong"``; the private pong is ``op:"pong"`` with the
server time in ``args`` and no ``success`` key; data pushes are
``{"topic", "type", "ts", "data", ...}`` (public) and ``{"id", "topic", "creationTime", "data":
[...]}`` (private). Anything unknown raises :class:`StreamParseError` with the reason; the reader
logs it and carries on with the next frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson
from attrs import frozen

from hean.bybit.signing import Credentials, ws_auth_signature
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
from hean.bybit.wire import (
    CATEGORY,
    WireError,
    execution_from_wire,
    execution_to_wire,
    order_from_wire,
    order_to_wire,
    orderbook_from_wire,
    orderbook_to_wire,
    parse_int,
    position_from_wire,
    position_to_wire,
    public_trade_from_wire,
    public_trade_to_wire,
    ticker_from_wire,
    ticker_to_wire,
    wallet_from_wire,
    wallet_to_wire,
)

__all__ = [
    "CLIENT_OPS",
    "PRIVATE_KINDS",
    "ClientFrame",
    "PublicMessage",
    "StreamParseError",
    "auth_msg",
    "auth_params",
    "orderbook_msg",
    "orderbook_topic",
    "parse_client",
    "parse_private",
    "parse_public",
    "ping_msg",
    "private_ack",
    "private_msg",
    "private_pong",
    "private_topic_kind",
    "public_ack",
    "public_pong",
    "subscribe_msg",
    "ticker_msg",
    "tickers_topic",
    "trades_msg",
    "trades_topic",
    "unsubscribe_msg",
]

PublicMessage = OpAck | OrderBookUpdate | TradesMessage | TickerMessage

#: Ops a client may send (and so the ops a server acknowledges).
CLIENT_OPS: Final = frozenset({"subscribe", "unsubscribe", "ping", "auth"})
# Ops that appear in server replies: the client ops plus the private pong.
_ACK_OPS: Final = CLIENT_OPS | {"pong"}

#: Private topic kinds this codec parses (all-in-one names; ``.linear`` variants map onto them).
PRIVATE_KINDS: Final = frozenset({"order", "execution", "position", "wallet"})


class StreamParseError(WireError):
    """A WebSocket frame that cannot be turned into a message; ``str()`` says why.

    Raised for invalid JSON, an unknown ``op`` or ``topic``, and malformed payloads (the underlying
    :class:`~hean.bybit.wire.WireError` is chained and its text included).
    """


@frozen
class ClientFrame:
    """A request a client sent to the server (what the simulator receives)."""

    op: str
    args: tuple[str | int, ...] = ()
    req_id: str = ""


# --------------------------------------------------------------------------- helpers


def _dumps(obj: Mapping[str, Any]) -> str:
    return orjson.dumps(obj).decode()


def _load(text: str | bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise StreamParseError(f"frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise StreamParseError(f"frame is not a JSON object: {type(obj).__name__}")
    return obj


def _str_field(obj: Mapping[str, Any], *keys: str) -> str:
    """The first present key among ``keys`` as a string (``req_id`` may be sent as a number)."""
    for key in keys:
        value = obj.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise StreamParseError(f"{key}: expected a string, got {type(value).__name__}")
    return ""


def _require(obj: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return obj[key]
    except KeyError:
        raise StreamParseError(f"{what}: missing required key {key!r}") from None


def _require_list(obj: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = _require(obj, key, what)
    if not isinstance(value, list):
        raise StreamParseError(f"{what}: {key!r} is not a list")
    return value


def _int(obj: Mapping[str, Any], key: str, what: str) -> int:
    try:
        return parse_int(_require(obj, key, what), f"{what}.{key}")
    except StreamParseError:
        raise
    except WireError as exc:
        raise StreamParseError(str(exc)) from exc


def _update_type(obj: Mapping[str, Any], topic: str) -> BookUpdateType:
    value = _require(obj, "type", topic)
    try:
        return BookUpdateType(value)
    except ValueError:
        raise StreamParseError(f"{topic}: unknown message type {value!r}") from None


def _parse_ack(obj: Mapping[str, Any]) -> OpAck:
    op = obj["op"]
    if not isinstance(op, str) or op not in _ACK_OPS:
        raise StreamParseError(f"unknown op {op!r}")
    success_raw = obj.get("success")
    if isinstance(success_raw, bool):
        success = success_raw
    elif "retCode" in obj:
        # The trade stream (and Bybit's newer frames) answer with retCode/retMsg instead.
        success = obj["retCode"] == 0
    elif op == "pong":
        success = True  # the private pong has no success flag: arriving at all is the success
    else:
        raise StreamParseError(f"{op} ack: missing 'success'")
    raw_args = obj.get("args")
    if raw_args is None and op == "pong":
        raw_args = obj.get("data")  # trade-stream pong puts the server time under "data"
    if raw_args is None:
        raw_args = []
    if not isinstance(raw_args, list):
        raise StreamParseError(f"{op} ack: 'args' is not a list")
    return OpAck(
        op=op,
        success=success,
        ret_msg=_str_field(obj, "ret_msg", "retMsg"),
        conn_id=_str_field(obj, "conn_id", "connId"),
        req_id=_str_field(obj, "req_id", "reqId"),
        args=tuple(str(a) for a in raw_args),
    )


def _topic(obj: Mapping[str, Any]) -> str:
    """The topic of a data frame (called once the frame is known not to be an ``op`` ack)."""
    if "topic" not in obj:
        raise StreamParseError("frame has neither 'op' nor 'topic'")
    topic = obj["topic"]
    if not isinstance(topic, str):
        raise StreamParseError(f"topic is not a string: {topic!r}")
    return topic


# --------------------------------------------------------------------------- topics


def orderbook_topic(depth: int, symbol: str) -> str:
    return f"orderbook.{depth}.{symbol}"


def trades_topic(symbol: str) -> str:
    return f"publicTrade.{symbol}"


def tickers_topic(symbol: str) -> str:
    return f"tickers.{symbol}"


def private_topic_kind(topic: str) -> str:
    """``"order"`` for both ``order`` and ``order.linear``; raises for anything else.

    All-in-one and categorised private topics carry the same items, so consumers dispatch on the
    kind; :attr:`PrivateMessage.topic` keeps the topic as sent.
    """
    kind = topic.removesuffix(f".{CATEGORY}")
    if kind in PRIVATE_KINDS:
        return kind
    if kind.startswith("execution.fast"):
        raise StreamParseError(
            f"topic {topic!r} is not supported: execution.fast items lack execValue/execFee, "
            "subscribe to 'execution' instead"
        )
    raise StreamParseError(f"unknown private topic {topic!r}")


# --------------------------------------------------------------------------- public stream


def parse_public(text: str | bytes) -> PublicMessage:
    """Parse one frame from ``/v5/public/linear``.

    Returns an :class:`OpAck` (subscribe/unsubscribe ack, success or failure, or the pong, which
    keeps ``op="ping"`` with ``ret_msg="pong"``), an :class:`OrderBookUpdate` (depth from the
    topic), a :class:`TradesMessage` or a :class:`TickerMessage`. Raises :class:`StreamParseError`.
    """
    obj = _load(text)
    if "op" in obj:
        return _parse_ack(obj)
    topic = _topic(obj)
    parts = topic.split(".")
    try:
        if parts[0] == "orderbook" and len(parts) == 3:
            return _parse_orderbook(obj, topic, parts[1], parts[2])
        if parts[0] == "publicTrade" and len(parts) == 2:
            return _parse_trades(obj, topic)
        if parts[0] == "tickers" and len(parts) == 2:
            return _parse_ticker(obj, topic)
    except StreamParseError:
        raise
    except WireError as exc:
        raise StreamParseError(f"{topic}: {exc}") from exc
    raise StreamParseError(f"unknown public topic {topic!r}")


def _parse_orderbook(
    obj: Mapping[str, Any], topic: str, depth_s: str, symbol: str
) -> OrderBookUpdate:
    if not depth_s.isdigit():
        raise StreamParseError(f"{topic}: depth {depth_s!r} is not a number")
    ts = _int(obj, "ts", topic)
    update = orderbook_from_wire(
        _require(obj, "data", topic),
        type=_update_type(obj, topic),
        depth=int(depth_s),
        ts=ts,
        # cts is engine time; very old frames lack it, and ts is the closest stand-in.
        cts=_int(obj, "cts", topic) if "cts" in obj else ts,
    )
    if update.symbol != symbol:
        raise StreamParseError(f"{topic}: data is for symbol {update.symbol!r}")
    return update


def _parse_trades(obj: Mapping[str, Any], topic: str) -> TradesMessage:
    data = _require_list(obj, "data", topic)
    return TradesMessage(
        topic=topic,
        ts=_int(obj, "ts", topic),
        trades=tuple(public_trade_from_wire(item) for item in data),
    )


def _parse_ticker(obj: Mapping[str, Any], topic: str) -> TickerMessage:
    return TickerMessage(
        topic=topic,
        type=_update_type(obj, topic),
        ts=_int(obj, "ts", topic),
        cs=_int(obj, "cs", topic) if "cs" in obj else 0,
        ticker=ticker_from_wire(_require(obj, "data", topic)),
    )


# --------------------------------------------------------------------------- private stream


def parse_private(text: str | bytes) -> OpAck | PrivateMessage:
    """Parse one frame from ``/v5/private``: an ack (auth, subscribe, pong) or a data push.

    ``data`` is always a list. Items of another product category (an all-in-one subscription on a
    unified account also delivers spot/option orders, whose symbols can equal linear ones) are
    dropped here so they can never be mistaken for linear state; HEAN trades linear only.
    """
    obj = _load(text)
    if "op" in obj:
        return _parse_ack(obj)
    topic = _topic(obj)
    kind = private_topic_kind(topic)
    data = _require_list(obj, "data", topic)
    items = [
        item
        for item in data
        if not (isinstance(item, Mapping) and item.get("category", CATEGORY) != CATEGORY)
    ]
    try:
        parsed: (
            tuple[Order, ...] | tuple[Execution, ...] | tuple[Position, ...] | tuple[Wallet, ...]
        )
        if kind == "order":
            parsed = tuple(order_from_wire(i) for i in items)
        elif kind == "execution":
            parsed = tuple(execution_from_wire(i) for i in items)
        elif kind == "position":
            parsed = tuple(position_from_wire(i) for i in items)
        else:
            parsed = tuple(wallet_from_wire(i) for i in items)
    except WireError as exc:
        raise StreamParseError(f"{topic}: {exc}") from exc
    return PrivateMessage(
        id=_str_field(obj, "id"),
        topic=topic,
        creation_time=_int(obj, "creationTime", topic),
        data=parsed,
    )


# --------------------------------------------------------------------------- client frames


def _op_msg(op: str, args: list[str | int] | None, req_id: str | None) -> str:
    msg: dict[str, Any] = {"op": op}
    if args is not None:
        msg["args"] = args
    if req_id is not None:
        msg["req_id"] = req_id
    return _dumps(msg)


def subscribe_msg(topics: Iterable[str], req_id: str | None = None) -> str:
    """``{"op":"subscribe","args":[...]}``; Bybit rejects an empty list, so that is a ValueError."""
    args: list[str | int] = list(topics)
    if not args:
        raise ValueError("subscribe needs at least one topic")
    return _op_msg("subscribe", args, req_id)


def unsubscribe_msg(topics: Iterable[str], req_id: str | None = None) -> str:
    args: list[str | int] = list(topics)
    if not args:
        raise ValueError("unsubscribe needs at least one topic")
    return _op_msg("unsubscribe", args, req_id)


def ping_msg(req_id: str | None = None) -> str:
    """The application heartbeat Bybit expects every 20 s (WebSocket-level pings do not count)."""
    return _op_msg("ping", None, req_id)


def auth_msg(creds: Credentials, expires_ms: int, req_id: str | None = None) -> str:
    """The private-stream login: ``args = [apiKey, expires, hex HMAC("GET/realtime" + expires)]``.

    ``expires_ms`` is a wall-clock time in the near future (now + a few seconds) supplied by the
    caller; the secret itself never enters the frame.
    """
    signature = ws_auth_signature(creds.api_secret, expires_ms)
    return _op_msg("auth", [creds.api_key, expires_ms, signature], req_id)


def parse_client(text: str | bytes) -> ClientFrame:
    """Server side: parse a client request (``subscribe``/``unsubscribe``/``ping``/``auth``)."""
    obj = _load(text)
    op = obj.get("op")
    if not isinstance(op, str):
        raise StreamParseError("client frame: missing or non-string 'op'")
    if op not in CLIENT_OPS:
        raise StreamParseError(f"client frame: unknown op {op!r}")
    raw_args = obj.get("args", [])
    if not isinstance(raw_args, list):
        raise StreamParseError(f"{op}: 'args' is not a list")
    args: list[str | int] = []
    for a in raw_args:
        if isinstance(a, bool) or not isinstance(a, str | int):
            raise StreamParseError(f"{op}: argument {a!r} is neither a string nor an integer")
        args.append(a)
    return ClientFrame(op=op, args=tuple(args), req_id=_str_field(obj, "req_id", "reqId"))


def auth_params(frame: ClientFrame) -> tuple[str, int, str]:
    """Server side: ``(api_key, expires_ms, signature)`` from an ``auth`` frame.

    ``expires`` may arrive as a number (Bybit's docs) or a numeric string (some SDKs).
    """
    if frame.op != "auth":
        raise StreamParseError(f"not an auth frame: op {frame.op!r}")
    if len(frame.args) != 3:
        raise StreamParseError(f"auth: expected 3 args, got {len(frame.args)}")
    api_key, expires, signature = frame.args
    if not isinstance(api_key, str) or not isinstance(signature, str):
        raise StreamParseError("auth: api key and signature must be strings")
    try:
        expires_ms = parse_int(expires, "auth.expires")
    except WireError as exc:
        raise StreamParseError(str(exc)) from exc
    return api_key, expires_ms, signature


# --------------------------------------------------------------------------- server frames


def public_ack(
    op: str, success: bool, ret_msg: str = "", conn_id: str = "", req_id: str = ""
) -> str:
    """A public-stream reply: ``{"success","ret_msg","conn_id","req_id","op"}`` (req_id always)."""
    return _dumps(
        {"success": success, "ret_msg": ret_msg, "conn_id": conn_id, "req_id": req_id, "op": op}
    )


def public_pong(conn_id: str = "", req_id: str = "") -> str:
    """The linear public pong: the op stays ``"ping"``, ``ret_msg`` is ``"pong"``."""
    return public_ack("ping", True, "pong", conn_id, req_id)


def private_ack(
    op: str, success: bool, ret_msg: str = "", conn_id: str = "", req_id: str = ""
) -> str:
    """A private-stream reply (auth/subscribe/...); ``req_id`` only if the client sent one."""
    msg: dict[str, Any] = {"success": success, "ret_msg": ret_msg, "op": op, "conn_id": conn_id}
    if req_id:
        msg["req_id"] = req_id
    return _dumps(msg)


def private_pong(req_id: str, now_ms: int, conn_id: str = "") -> str:
    """The private pong: ``op:"pong"`` with the server time (ms, as a string) in ``args``."""
    msg: dict[str, Any] = {}
    if req_id:
        msg["req_id"] = req_id
    msg.update({"op": "pong", "args": [str(now_ms)], "conn_id": conn_id})
    return _dumps(msg)


def orderbook_msg(update: OrderBookUpdate) -> str:
    return _dumps(
        {
            "topic": orderbook_topic(update.depth, update.symbol),
            "type": update.type.value,
            "ts": update.ts,
            "data": orderbook_to_wire(update),
            "cts": update.cts,
        }
    )


def trades_msg(msg: TradesMessage) -> str:
    return _dumps(
        {
            "topic": msg.topic,
            "type": BookUpdateType.SNAPSHOT.value,  # Bybit labels every trade push a snapshot
            "ts": msg.ts,
            "data": [public_trade_to_wire(t) for t in msg.trades],
        }
    )


def ticker_msg(msg: TickerMessage) -> str:
    """A ``tickers`` push; for a delta build the Ticker with only the changed fields set."""
    return _dumps(
        {
            "topic": msg.topic,
            "type": msg.type.value,
            "data": ticker_to_wire(msg.ticker),
            "cs": msg.cs,
            "ts": msg.ts,
        }
    )


def _private_item(item: Order | Execution | Position | Wallet) -> dict[str, Any]:
    if isinstance(item, Order):
        return order_to_wire(item, ws=True)
    if isinstance(item, Execution):
        return execution_to_wire(item, ws=True)
    if isinstance(item, Position):
        return position_to_wire(item, ws=True)
    return wallet_to_wire(item)


def private_msg(msg: PrivateMessage) -> str:
    """A private push in the WebSocket shapes (orders with ``category``, positions with
    ``entryPrice``, ...); the topic is written as given (``order`` or ``order.linear``)."""
    items: tuple[Order | Execution | Position | Wallet, ...] = msg.data
    return _dumps(
        {
            "id": msg.id,
            "topic": msg.topic,
            "creationTime": msg.creation_time,
            "data": [_private_item(i) for i in items],
        }
    )
