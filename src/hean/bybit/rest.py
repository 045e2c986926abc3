"""Bybit v5 REST request builders (category ``linear``). Pure: no I/O, time passed in.

Each builder validates its arguments, then freezes the request into the exact bytes that will be
sent: the query string of a GET, the JSON body of a POST. :meth:`RestRequest.signed` signs those
same bytes, so the signature can never disagree with the wire (Bybit verifies the HMAC over what
it received, docs ``v5/guide.mdx``).

Encoding rules, chosen to be deterministic and to match Bybit's own examples:

* Parameters keep a fixed order (``category`` first, then the order the builder lists them);
  ``None`` means "omit".
* JSON bodies are compact UTF-8 (orjson), booleans native, ``positionIdx`` a number, every price
  and quantity a plain decimal *string* ("0.001", never ``1E-3`` and never a float).
* Query values are sent unescaped when they are URL-safe, as pybit and ccxt do. Bybit's
  ``nextPageCursor`` comes back already percent-encoded (``page_args%3D...%26``) and is meant to be
  echoed verbatim, so ``%`` is left alone; any other unsafe character is percent-encoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final, cast
from urllib.parse import quote

import orjson
from attrs import frozen

from hean.bybit.link_id import is_valid_order_link_id
from hean.bybit.signing import Credentials, rest_signature
from hean.bybit.types import OrderType, Side, TimeInForce
from hean.bybit.wire import decimal_str

__all__ = [
    "CATEGORY",
    "DEFAULT_RATE_LIMITS",
    "DEFAULT_RECV_WINDOW_MS",
    "MAX_TIME_WINDOW_MS",
    "RestRequest",
    "SignedRequest",
    "amend_order",
    "cancel_all",
    "cancel_order",
    "create_order",
    "executions",
    "instruments_info",
    "open_orders",
    "order_history",
    "orderbook",
    "plain_decimal",
    "positions",
    "server_time",
    "tickers",
    "wallet_balance",
]

CATEGORY: Final = "linear"
DEFAULT_RECV_WINDOW_MS: Final = 5000
#: History and execution queries accept at most a 7-day ``[startTime, endTime]`` window.
MAX_TIME_WINDOW_MS: Final = 7 * 24 * 60 * 60 * 1000

# Paths (the rate-limit key of each request is its path).
ORDER_CREATE: Final = "/v5/order/create"
ORDER_AMEND: Final = "/v5/order/amend"
ORDER_CANCEL: Final = "/v5/order/cancel"
ORDER_CANCEL_ALL: Final = "/v5/order/cancel-all"
ORDER_REALTIME: Final = "/v5/order/realtime"
ORDER_HISTORY: Final = "/v5/order/history"
EXECUTION_LIST: Final = "/v5/execution/list"
POSITION_LIST: Final = "/v5/position/list"
WALLET_BALANCE: Final = "/v5/account/wallet-balance"
INSTRUMENTS_INFO: Final = "/v5/market/instruments-info"
TICKERS: Final = "/v5/market/tickers"
ORDERBOOK: Final = "/v5/market/orderbook"
SERVER_TIME: Final = "/v5/market/time"

#: Bybit's default per-UID limits for linear contracts, requests per rolling second (docs
#: v5/rate-limit/rate-limit.mdx); VIP/PRO tiers get more. Market-data endpoints are not in the UID
#: table (they share the per-IP cap). The engine paces itself by them before any
#: ``X-Bapi-Limit*`` header arrives; the simulator enforces them.
DEFAULT_RATE_LIMITS: Final[Mapping[str, int]] = MappingProxyType(
    {
        ORDER_CREATE: 10,
        ORDER_AMEND: 10,
        ORDER_CANCEL: 10,
        ORDER_CANCEL_ALL: 10,
        ORDER_REALTIME: 50,
        ORDER_HISTORY: 50,
        EXECUTION_LIST: 50,
        POSITION_LIST: 50,
        WALLET_BALANCE: 50,
    }
)

# Bybit symbols and coins are uppercase ASCII ("uppercase only" in the docs); linear delivery
# futures carry a dash (BTC-26JUL24).
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9-]{0,39}")
_COIN = re.compile(r"[A-Z0-9]{1,20}")
_ACCOUNT_TYPE = re.compile(r"[A-Z]{1,20}")
# Characters sent as-is in a query value: RFC 3986 unreserved, plus "%" (cursors arrive already
# percent-encoded) and "," (Bybit's list separator, e.g. coin=USDT,USDC).
_QUERY_SAFE: Final = "-_.~%,"

_Param = str | int | bool | Decimal


@frozen
class SignedRequest:
    """A request plus its headers, ready for the transport. Headers are ordered pairs."""

    request: RestRequest
    headers: tuple[tuple[str, str], ...]

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def body(self) -> bytes:
        return self.request.body

    @property
    def url_path(self) -> str:
        """Path plus query, exactly as signed (append to the base URL)."""
        req = self.request
        return f"{req.path}?{req.query}" if req.query else req.path


@frozen
class RestRequest:
    """One REST call with its wire bytes fixed.

    ``query`` is the raw query string sent (no ``?``; ``""`` if none); ``body`` the raw JSON bytes
    sent (``b""`` for GET). ``auth`` says whether the endpoint needs signing; ``endpoint`` is the
    rate-limit key (Bybit limits per UID per endpoint), equal to ``path``.
    """

    method: str
    path: str
    query: str
    body: bytes
    auth: bool
    endpoint: str

    @property
    def sign_payload(self) -> str:
        """What Bybit signs after ``timestamp + key + recvWindow``: the query or the body text."""
        return self.query if self.method == "GET" else self.body.decode("utf-8")

    def signed(
        self,
        creds: Credentials,
        timestamp_ms: int,
        recv_window_ms: int = DEFAULT_RECV_WINDOW_MS,
    ) -> SignedRequest:
        """Attach Bybit's auth headers, signing exactly ``query`` (GET) or ``body`` (POST).

        ``timestamp_ms`` is the caller's estimate of Bybit server time in ms (wall clock plus the
        measured offset); it must satisfy ``server - recv_window <= ts < server + 1000``.
        """
        if timestamp_ms <= 0:
            raise ValueError(f"timestamp_ms must be positive, got {timestamp_ms}")
        if recv_window_ms <= 0:
            raise ValueError(f"recv_window_ms must be positive, got {recv_window_ms}")
        signature = rest_signature(
            creds.api_secret, timestamp_ms, creds.api_key, recv_window_ms, self.sign_payload
        )
        headers = (
            ("X-BAPI-API-KEY", creds.api_key),
            ("X-BAPI-TIMESTAMP", str(timestamp_ms)),
            ("X-BAPI-SIGN", signature),
            ("X-BAPI-RECV-WINDOW", str(recv_window_ms)),
            # Not in the v5 header list, but Bybit's own examples and pybit send "2" (HMAC).
            ("X-BAPI-SIGN-TYPE", "2"),
            *self._content_headers(),
        )
        return SignedRequest(request=self, headers=headers)

    def unsigned(self) -> SignedRequest:
        """The request without auth headers, for public (market-data) endpoints."""
        return SignedRequest(request=self, headers=self._content_headers())

    def _content_headers(self) -> tuple[tuple[str, str], ...]:
        return (("Content-Type", "application/json"),) if self.method == "POST" else ()


# --------------------------------------------------------------------------- encoding helpers


def plain_decimal(x: Decimal) -> str:
    """``x`` in plain notation without exponent or trailing fractional zeros (``1E+1`` -> ``"10"``).

    :func:`hean.bybit.wire.decimal_str` with a runtime type check in front: a float or a bool
    slipping through an untyped call site would otherwise reach Bybit with binary noise.
    ``Decimal(plain_decimal(x)) == x`` for every finite ``x``.
    """
    if not isinstance(cast(object, x), Decimal):
        raise TypeError(f"expected Decimal, got {type(x).__name__}")
    return decimal_str(x)


def _render(value: _Param) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return plain_decimal(value)
    return str(value)


def _get(path: str, params: Iterable[tuple[str, _Param | None]], *, auth: bool) -> RestRequest:
    pairs = [("category", CATEGORY), *params]
    query = "&".join(
        f"{key}={quote(_render(value), safe=_QUERY_SAFE)}"
        for key, value in pairs
        if value is not None
    )
    return RestRequest(method="GET", path=path, query=query, body=b"", auth=auth, endpoint=path)


def _get_uncategorised(path: str) -> RestRequest:
    return RestRequest(method="GET", path=path, query="", body=b"", auth=False, endpoint=path)


def _post(path: str, fields: Iterable[tuple[str, _Param | None]]) -> RestRequest:
    doc: dict[str, str | int | bool] = {"category": CATEGORY}
    for key, value in fields:
        if value is None:
            continue
        doc[key] = plain_decimal(value) if isinstance(value, Decimal) else value
    body = orjson.dumps(doc)
    return RestRequest(method="POST", path=path, query="", body=body, auth=True, endpoint=path)


# --------------------------------------------------------------------------- validation


def _symbol(symbol: str) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise ValueError(f"symbol must be an uppercase Bybit symbol like BTCUSDT, got {symbol!r}")
    return symbol


def _opt_symbol(symbol: str | None) -> str | None:
    return None if symbol is None else _symbol(symbol)


def _coin(name: str, coin: str | None) -> str | None:
    if coin is None:
        return None
    if not isinstance(coin, str) or not all(_COIN.fullmatch(part) for part in coin.split(",")):
        raise ValueError(f"{name} must be a coin like 'USDT' (or 'USDT,USDC'), got {coin!r}")
    return coin


def _positive(name: str, value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    dec = Decimal(value)
    if not dec.is_finite() or dec <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return dec


def _link_id(order_link_id: str | None) -> str | None:
    if order_link_id is None:
        return None
    if not isinstance(order_link_id, str) or not is_valid_order_link_id(order_link_id):
        raise ValueError(f"orderLinkId must be 1-36 chars of [A-Za-z0-9_-], got {order_link_id!r}")
    return order_link_id


def _order_id(order_id: str | None) -> str | None:
    if order_id is not None and (not isinstance(order_id, str) or not order_id.strip()):
        raise ValueError(f"orderId must be a non-empty string, got {order_id!r}")
    return order_id


def _ids(order_id: str | None, order_link_id: str | None, *, what: str) -> tuple[str | None, ...]:
    oid, lid = _order_id(order_id), _link_id(order_link_id)
    if oid is None and lid is None:
        raise ValueError(f"{what} needs order_id or order_link_id")
    return oid, lid


def _limit(limit: int | None, high: int) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= high:
        raise ValueError(f"limit must be an int in [1, {high}], got {limit!r}")
    return limit


def _cursor(cursor: str | None) -> str | None:
    # An empty cursor is Bybit's "no more pages"; sending it back would fetch page 1 again.
    if cursor is not None and not cursor:
        raise ValueError("cursor is empty: the previous page was the last one")
    return cursor


def _time_window(
    start_time: int | None, end_time: int | None, *, both_or_neither: bool
) -> tuple[int | None, int | None]:
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"{name} must be int epoch ms, got {type(value).__name__}")
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0 epoch ms, got {value}")
    if both_or_neither and (start_time is None) != (end_time is None):
        raise ValueError("start_time and end_time must be passed together")
    if start_time is not None and end_time is not None:
        if end_time < start_time:
            raise ValueError(f"end_time {end_time} is before start_time {start_time}")
        if end_time - start_time > MAX_TIME_WINDOW_MS:
            raise ValueError("start_time..end_time may span at most 7 days")
    return start_time, end_time


# --------------------------------------------------------------------------- trade (POST)


def create_order(
    symbol: str,
    side: Side | str,
    order_type: OrderType | str,
    qty: Decimal,
    *,
    price: Decimal | None = None,
    time_in_force: TimeInForce | str | None = None,
    order_link_id: str | None = None,
    reduce_only: bool = False,
    position_idx: int = 0,
) -> RestRequest:
    """``POST /v5/order/create``.

    A Limit order needs a price; a Market order must not carry one (Bybit ignores it and uses its
    own IOC protection price, so a price here is almost certainly a caller bug) and cannot be
    PostOnly. ``time_in_force=None`` omits the field (Bybit's default: GTC for Limit).
    ``reduceOnly`` is sent only when true; ``positionIdx`` always (0 one-way, 1/2 hedge).
    """
    side_v = Side(side)
    type_v = OrderType(order_type)
    if type_v is OrderType.UNKNOWN:
        raise ValueError("orderType must be Market or Limit")
    tif_v = None if time_in_force is None else TimeInForce(time_in_force)
    qty_v = _positive("qty", qty)
    price_v = _positive("price", price)
    if type_v is OrderType.LIMIT and price_v is None:
        raise ValueError("a Limit order needs a price")
    if type_v is OrderType.MARKET and price_v is not None:
        raise ValueError("a Market order takes no price (Bybit ignores it)")
    if type_v is OrderType.MARKET and tif_v is TimeInForce.POST_ONLY:
        raise ValueError("a Market order cannot be PostOnly")
    if isinstance(position_idx, bool) or position_idx not in (0, 1, 2):
        raise ValueError(f"position_idx must be 0, 1 or 2, got {position_idx!r}")
    if not isinstance(reduce_only, bool):
        raise TypeError("reduce_only must be a bool")
    return _post(
        ORDER_CREATE,
        (
            ("symbol", _symbol(symbol)),
            ("side", side_v.value),
            ("orderType", type_v.value),
            ("qty", qty_v),
            ("price", price_v),
            ("timeInForce", None if tif_v is None else tif_v.value),
            ("orderLinkId", _link_id(order_link_id)),
            ("reduceOnly", True if reduce_only else None),
            ("positionIdx", position_idx),
        ),
    )


def amend_order(
    symbol: str,
    *,
    order_id: str | None = None,
    order_link_id: str | None = None,
    qty: Decimal | None = None,
    price: Decimal | None = None,
) -> RestRequest:
    """``POST /v5/order/amend``: new qty and/or price for an open order.

    Identify the order by ``order_id`` or ``order_link_id`` (both may be sent; Bybit uses
    ``orderId`` then). Unchanged fields are omitted, so at least one of qty/price is required.
    """
    oid, lid = _ids(order_id, order_link_id, what="amend_order")
    qty_v, price_v = _positive("qty", qty), _positive("price", price)
    if qty_v is None and price_v is None:
        raise ValueError("amend_order needs qty or price (an amend changing nothing is a bug)")
    return _post(
        ORDER_AMEND,
        (
            ("symbol", _symbol(symbol)),
            ("orderId", oid),
            ("orderLinkId", lid),
            ("qty", qty_v),
            ("price", price_v),
        ),
    )


def cancel_order(
    symbol: str, *, order_id: str | None = None, order_link_id: str | None = None
) -> RestRequest:
    """``POST /v5/order/cancel`` by ``order_id`` or ``order_link_id`` (``orderId`` wins if both)."""
    oid, lid = _ids(order_id, order_link_id, what="cancel_order")
    return _post(
        ORDER_CANCEL, (("symbol", _symbol(symbol)), ("orderId", oid), ("orderLinkId", lid))
    )


def cancel_all(symbol: str | None = None, *, settle_coin: str | None = None) -> RestRequest:
    """``POST /v5/order/cancel-all`` for one symbol or a whole settle coin (exactly one of them:
    linear requires a scope, and passing both would silently ignore ``settle_coin``)."""
    if (symbol is None) == (settle_coin is None):
        raise ValueError("cancel_all needs exactly one of symbol or settle_coin")
    return _post(
        ORDER_CANCEL_ALL,
        (("symbol", _opt_symbol(symbol)), ("settleCoin", _coin("settle_coin", settle_coin))),
    )


# --------------------------------------------------------------------------- private queries (GET)


def open_orders(
    *,
    symbol: str | None = None,
    order_id: str | None = None,
    order_link_id: str | None = None,
    open_only: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
    settle_coin: str | None = None,
) -> RestRequest:
    """``GET /v5/order/realtime``: open orders, or (``open_only=1``, or any by-id query) the last
    500 closed ones too. Linear requires ``symbol`` or ``settle_coin`` even for by-id queries."""
    if symbol is None and settle_coin is None:
        raise ValueError("open_orders needs symbol or settle_coin for category=linear")
    if open_only is not None and (isinstance(open_only, bool) or open_only not in (0, 1, 2)):
        raise ValueError(f"open_only must be 0, 1 or 2, got {open_only!r}")
    return _get(
        ORDER_REALTIME,
        (
            ("symbol", _opt_symbol(symbol)),
            ("settleCoin", _coin("settle_coin", settle_coin)),
            ("orderId", _order_id(order_id)),
            ("orderLinkId", _link_id(order_link_id)),
            ("openOnly", open_only),
            ("limit", _limit(limit, 50)),
            ("cursor", _cursor(cursor)),
        ),
        auth=True,
    )


def order_history(
    *,
    symbol: str | None = None,
    order_id: str | None = None,
    order_link_id: str | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> RestRequest:
    """``GET /v5/order/history`` (may lag; ``startTime``/``endTime`` together, at most 7 days)."""
    start, end = _time_window(start_time, end_time, both_or_neither=True)
    return _get(
        ORDER_HISTORY,
        (
            ("symbol", _opt_symbol(symbol)),
            ("orderId", _order_id(order_id)),
            ("orderLinkId", _link_id(order_link_id)),
            ("startTime", start),
            ("endTime", end),
            ("limit", _limit(limit, 50)),
            ("cursor", _cursor(cursor)),
        ),
        auth=True,
    )


def executions(
    *,
    symbol: str | None = None,
    order_id: str | None = None,
    order_link_id: str | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> RestRequest:
    """``GET /v5/execution/list`` (one bound alone means +/-7 days; both at most 7 days apart)."""
    start, end = _time_window(start_time, end_time, both_or_neither=False)
    return _get(
        EXECUTION_LIST,
        (
            ("symbol", _opt_symbol(symbol)),
            ("orderId", _order_id(order_id)),
            ("orderLinkId", _link_id(order_link_id)),
            ("startTime", start),
            ("endTime", end),
            ("limit", _limit(limit, 100)),
            ("cursor", _cursor(cursor)),
        ),
        auth=True,
    )


def positions(
    *,
    symbol: str | None = None,
    settle_coin: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> RestRequest:
    """``GET /v5/position/list``: by symbol (a row even when flat) or settle coin (size > 0)."""
    if symbol is None and settle_coin is None:
        raise ValueError("positions needs symbol or settle_coin for category=linear")
    return _get(
        POSITION_LIST,
        (
            ("symbol", _opt_symbol(symbol)),
            ("settleCoin", _coin("settle_coin", settle_coin)),
            ("limit", _limit(limit, 200)),
            ("cursor", _cursor(cursor)),
        ),
        auth=True,
    )


def wallet_balance(account_type: str = "UNIFIED", coin: str | None = None) -> RestRequest:
    """``GET /v5/account/wallet-balance`` (no ``category``: the wallet is account-wide)."""
    if not isinstance(account_type, str) or not _ACCOUNT_TYPE.fullmatch(account_type):
        raise ValueError(f"account_type must be e.g. 'UNIFIED', got {account_type!r}")
    pairs: list[tuple[str, str]] = [("accountType", account_type)]
    coin_v = _coin("coin", coin)
    if coin_v is not None:
        pairs.append(("coin", coin_v))
    query = "&".join(f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in pairs)
    return RestRequest(
        method="GET", path=WALLET_BALANCE, query=query, body=b"", auth=True, endpoint=WALLET_BALANCE
    )


# --------------------------------------------------------------------------- market data (GET)


def instruments_info(
    *, symbol: str | None = None, limit: int | None = None, cursor: str | None = None
) -> RestRequest:
    """``GET /v5/market/instruments-info`` (>500 linear symbols: paginate with ``cursor``)."""
    return _get(
        INSTRUMENTS_INFO,
        (
            ("symbol", _opt_symbol(symbol)),
            ("limit", _limit(limit, 1000)),
            ("cursor", _cursor(cursor)),
        ),
        auth=False,
    )


def tickers(symbol: str | None = None) -> RestRequest:
    """``GET /v5/market/tickers`` for one symbol or all linear symbols."""
    return _get(TICKERS, (("symbol", _opt_symbol(symbol)),), auth=False)


def orderbook(symbol: str, limit: int | None = None) -> RestRequest:
    """``GET /v5/market/orderbook`` (linear depth 1-1000, Bybit's default 25)."""
    return _get(
        ORDERBOOK, (("symbol", _symbol(symbol)), ("limit", _limit(limit, 1000))), auth=False
    )


def server_time() -> RestRequest:
    """``GET /v5/market/time``: Bybit's clock, for the timestamp offset used in signing."""
    return _get_uncategorised(SERVER_TIME)
