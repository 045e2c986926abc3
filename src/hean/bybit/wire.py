"""Bybit v5 JSON objects <-> domain values (:mod:`hean.bybit.types`).

One codec for both sides of the wire: the engine parses what Bybit (or the simulator) sends with the
``*_from_wire`` functions, and the simulator renders its state with the ``*_to_wire`` functions, so
the two can never disagree on a key name or a number format.

Wire typing follows Bybit (see ``shared/bybit-v5.md``): prices, quantities, values, fees and object
timestamps (``createdTime``, ``execTime``) are strings; ``ts``/``u``/``seq``/``positionIdx`` are
numbers; ``reduceOnly``/``isMaker`` and friends are booleans. Parsers are tolerant where Bybit is
loose (unknown extra keys are ignored, numbers that arrive as strings or vice versa are accepted,
``""`` stands for "no value" in the places Bybit uses it that way) and strict where a silent default
would corrupt state: a missing required key raises :class:`WireError` naming the key.

The round-trip law ``x_from_wire(x_to_wire(v)) == v`` holds for every value that the wire can
represent: the REST shape has no ``closedPnl``/``execPnl``, so a REST round trip keeps those only
when they are absent/zero; ``avgPrice`` ``"0"`` means "no fill yet", so ``avg_price`` is ``None`` or
positive.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from hean.bybit.types import (
    ZERO,
    BookUpdateType,
    CoinBalance,
    ExecType,
    Execution,
    Instrument,
    Order,
    OrderBookUpdate,
    OrderStatus,
    OrderType,
    Position,
    PriceLevel,
    PublicTrade,
    Side,
    Ticker,
    TimeInForce,
    Wallet,
)

__all__ = [
    "CATEGORY",
    "WireError",
    "decimal_str",
    "execution_from_wire",
    "execution_to_wire",
    "instrument_from_wire",
    "instrument_to_wire",
    "levels_from_wire",
    "levels_to_wire",
    "order_from_wire",
    "order_to_wire",
    "orderbook_from_rest",
    "orderbook_from_wire",
    "orderbook_to_rest",
    "orderbook_to_wire",
    "parse_decimal",
    "parse_int",
    "position_from_wire",
    "position_to_wire",
    "public_trade_from_wire",
    "public_trade_to_wire",
    "settle_coin_of",
    "ticker_from_wire",
    "ticker_to_wire",
    "wallet_from_wire",
    "wallet_to_wire",
]

CATEGORY: Final = "linear"
"""The only product category HEAN trades (USDT/USDC perpetuals)."""

JsonDict = dict[str, Any]
_E = TypeVar("_E", bound=enum.Enum)


class WireError(ValueError):
    """A Bybit JSON object is missing a required key or holds a value of the wrong shape.

    The message names the object kind and the key (``"order: missing required key 'orderId'"``),
    so a log line is enough to find the offending field. Subclasses ``ValueError`` because it is a
    data problem, never a transport one: the caller logs and skips (stream) or fails the request.
    """


# --------------------------------------------------------------------------- scalars

# At most 19 digits: every integer Bybit sends fits an int64 (and Python refuses to parse
# very long digit strings anyway, with a plain ValueError we would rather not leak).
_INT_RE: Final = re.compile(r"-?[0-9]{1,19}")


def decimal_str(x: Decimal) -> str:
    """Render a Decimal the way Bybit writes numbers: plain notation, no exponent.

    Trailing fractional zeros are stripped (``Decimal("0.10")`` -> ``"0.1"``; ``1E+2`` -> ``"100"``)
    and negative zero becomes ``"0"``. String manipulation rather than ``normalize()`` keeps every
    digit: ``normalize`` rounds to the context precision (28 digits) and would corrupt large values.
    """
    if not x.is_finite():
        raise ValueError(f"cannot render non-finite decimal {x!r} on the wire")
    s = format(x, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s == "-0":
        s = "0"
    return s


def parse_decimal(value: object, where: str) -> Decimal:
    """Convert a Bybit numeric value (normally a string) to a finite Decimal.

    Integers are accepted (some endpoints send numbers), floats go through ``repr`` so no binary
    artefacts leak in; booleans, NaN, infinities and ``"1_000"``-style strings are rejected.
    """
    if isinstance(value, bool):
        raise WireError(f"{where}: expected a decimal, got a boolean")
    if isinstance(value, str):
        if "_" in value:
            raise WireError(f"{where}: not a decimal: {value!r}")
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise WireError(f"{where}: not a decimal: {value!r}") from None
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise WireError(f"{where}: expected a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise WireError(f"{where}: not a finite decimal: {value!r}")
    return result


def parse_int(value: object, where: str) -> int:
    """Convert a Bybit integer (a JSON number, or a string for object timestamps) to ``int``."""
    if isinstance(value, bool):
        raise WireError(f"{where}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INT_RE.fullmatch(text):
            return int(text)
        raise WireError(f"{where}: not an integer: {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise WireError(f"{where}: expected an integer, got {value!r}")


def _parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    # Bybit is consistent about JSON booleans on the fields we read, but older payloads and some
    # SDK-built fixtures carry "true"/"false" strings; accepting them costs nothing.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise WireError(f"{where}: expected a boolean, got {value!r}")


def _is_blank(value: object) -> bool:
    return value is None or value == ""


_MISSING: Final[Any] = object()


class _Reader:
    """Typed access to one JSON object with error messages that name the object and the key."""

    __slots__ = ("_d", "_what")

    def __init__(self, d: object, what: str) -> None:
        if not isinstance(d, Mapping):
            raise WireError(f"{what}: expected a JSON object, got {type(d).__name__}")
        self._d: Mapping[str, Any] = d
        self._what = what

    def where(self, key: str) -> str:
        return f"{self._what}.{key}"

    def has(self, key: str) -> bool:
        return key in self._d

    def raw(self, key: str) -> Any:
        try:
            return self._d[key]
        except KeyError:
            raise WireError(f"{self._what}: missing required key {key!r}") from None

    def get(self, key: str) -> Any:
        return self._d.get(key)

    def child(self, key: str) -> _Reader:
        return _Reader(self.raw(key), self.where(key))

    def str_(self, key: str, default: str = _MISSING) -> str:
        if default is not _MISSING and key not in self._d:
            return default
        value = self.raw(key)
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # ids occasionally arrive as numbers
        if value is None and default is not _MISSING:
            return default
        raise WireError(f"{self.where(key)}: expected a string, got {type(value).__name__}")

    def dec(self, key: str, *, blank: Decimal | None = None) -> Decimal:
        """A required decimal; ``blank`` (if given) is what ``""`` means for this field."""
        value = self.raw(key)
        if blank is not None and _is_blank(value):
            return blank
        return parse_decimal(value, self.where(key))

    def opt_dec(self, key: str, default: Decimal) -> Decimal:
        """An optional decimal: absent or ``""`` -> ``default``."""
        value = self._d.get(key)
        if _is_blank(value):
            return default
        return parse_decimal(value, self.where(key))

    def nullable_dec(self, key: str) -> Decimal | None:
        """A decimal where absent or ``""`` means "no value"."""
        value = self._d.get(key)
        if _is_blank(value):
            return None
        return parse_decimal(value, self.where(key))

    def int_(self, key: str, default: int = _MISSING) -> int:
        if default is not _MISSING and _is_blank(self._d.get(key)):
            return default
        return parse_int(self.raw(key), self.where(key))

    def nullable_int(self, key: str) -> int | None:
        value = self._d.get(key)
        if _is_blank(value):
            return None
        return parse_int(value, self.where(key))

    def bool_(self, key: str, default: bool = _MISSING) -> bool:
        if default is not _MISSING and _is_blank(self._d.get(key)):
            return default
        return _parse_bool(self.raw(key), self.where(key))

    def enum(self, key: str, kind: type[_E], default: _E = _MISSING) -> _E:
        if default is not _MISSING and key not in self._d:
            return default
        value = self.raw(key)
        try:
            return kind(value)
        except ValueError:
            raise WireError(f"{self.where(key)}: unknown {kind.__name__} value {value!r}") from None

    def list_(self, key: str) -> Sequence[Any]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise WireError(f"{self.where(key)}: expected a list, got {type(value).__name__}")
        return value


def _opt(x: Decimal | None) -> str:
    return "" if x is None else decimal_str(x)


def settle_coin_of(symbol: str) -> str:
    """The settle coin of a linear contract, from its name (USDC perps end in USDC or PERP)."""
    return "USDC" if symbol.endswith(("USDC", "PERP")) else "USDT"


# --------------------------------------------------------------------------- orders


def _order_fee(r: _Reader, symbol: str) -> Decimal:
    """Cumulative fee: ``cumFeeDetail`` (current) wins over the deprecated linear ``cumExecFee``.

    ``cumFeeDetail`` is keyed by fee coin; a linear contract pays in its settle coin, so that entry
    is taken, or the only entry if there is just one. An empty detail (no fill yet) falls back to
    ``cumExecFee``, and that to zero.
    """
    detail = r.get("cumFeeDetail")
    if isinstance(detail, Mapping) and detail:
        coin = settle_coin_of(symbol)
        if coin in detail:
            return parse_decimal(detail[coin], r.where(f"cumFeeDetail.{coin}"))
        if len(detail) == 1:
            ((only_coin, only_fee),) = detail.items()
            return parse_decimal(only_fee, r.where(f"cumFeeDetail.{only_coin}"))
    elif detail is not None and not isinstance(detail, Mapping) and detail != "":
        raise WireError(f"{r.where('cumFeeDetail')}: expected an object, got {detail!r}")
    return r.opt_dec("cumExecFee", ZERO)


def order_from_wire(d: Mapping[str, Any]) -> Order:
    """Parse an order from REST ``/v5/order/realtime|history`` or the private ``order`` topic."""
    r = _Reader(d, "order")
    symbol = r.str_("symbol")
    avg = r.nullable_dec("avgPrice")
    closed_pnl = r.nullable_dec("closedPnl")
    return Order(
        order_id=r.str_("orderId"),
        order_link_id=r.str_("orderLinkId"),
        symbol=symbol,
        side=r.enum("side", Side),
        order_type=r.enum("orderType", OrderType),
        # A market order carries its IOC protection price; "" only appears on odd legacy rows.
        price=r.dec("price", blank=ZERO),
        qty=r.dec("qty"),
        time_in_force=r.enum("timeInForce", TimeInForce),
        order_status=r.enum("orderStatus", OrderStatus),
        created_time=r.int_("createdTime"),
        updated_time=r.int_("updatedTime"),
        position_idx=r.int_("positionIdx", 0),
        avg_price=None if avg is None or avg == 0 else avg,
        leaves_qty=r.opt_dec("leavesQty", ZERO),
        leaves_value=r.opt_dec("leavesValue", ZERO),
        cum_exec_qty=r.opt_dec("cumExecQty", ZERO),
        cum_exec_value=r.opt_dec("cumExecValue", ZERO),
        cum_exec_fee=_order_fee(r, symbol),
        reduce_only=r.bool_("reduceOnly", False),
        close_on_trigger=r.bool_("closeOnTrigger", False),
        cancel_type=r.str_("cancelType", "UNKNOWN"),
        reject_reason=r.str_("rejectReason", "EC_NoError"),
        create_type=r.str_("createType", "CreateByUser"),
        stop_order_type=r.str_("stopOrderType", ""),
        trigger_price=r.opt_dec("triggerPrice", ZERO),
        last_price_on_created=r.opt_dec("lastPriceOnCreated", ZERO),
        closed_pnl=closed_pnl,
    )


# Fields Bybit always sends that HEAN never sets (no TP/SL, no SMP, no conditional orders): the
# simulator renders them with Bybit's own placeholders so third-party clients see a familiar shape.
_ORDER_PLACEHOLDERS: Final[Mapping[str, Any]] = {
    "parentOrderLinkId": "",
    "blockTradeId": "",
    "isLeverage": "",
    "triggerDirection": 0,
    "triggerBy": "UNKNOWN",
    "takeProfit": "",
    "stopLoss": "",
    "tpTriggerBy": "UNKNOWN",
    "slTriggerBy": "UNKNOWN",
    "tpslMode": "UNKNOWN",
    "tpLimitPrice": "",
    "slLimitPrice": "",
    "smpType": "None",
    "smpGroup": 0,
    "smpOrderId": "",
    "placeType": "",
}


def order_to_wire(o: Order, *, ws: bool = False) -> JsonDict:
    """Render an order as Bybit does; ``ws=True`` is the private-topic shape.

    The WebSocket shape adds ``category`` and ``closedPnl`` (the latter only when known). The fee
    is written both as the current ``cumFeeDetail`` and the deprecated ``cumExecFee`` so that old
    and new clients read the same number; an order without fees has an empty detail, as on Bybit.
    """
    out: JsonDict = {}
    if ws:
        out["category"] = CATEGORY
    out.update(
        {
            "orderId": o.order_id,
            "orderLinkId": o.order_link_id,
            "symbol": o.symbol,
            "side": o.side.value,
            "orderType": o.order_type.value,
            "price": decimal_str(o.price),
            "qty": decimal_str(o.qty),
            "timeInForce": o.time_in_force.value,
            "orderStatus": o.order_status.value,
            "positionIdx": o.position_idx,
            "avgPrice": "0" if o.avg_price is None else decimal_str(o.avg_price),
            "leavesQty": decimal_str(o.leaves_qty),
            "leavesValue": decimal_str(o.leaves_value),
            "cumExecQty": decimal_str(o.cum_exec_qty),
            "cumExecValue": decimal_str(o.cum_exec_value),
            "cumExecFee": decimal_str(o.cum_exec_fee),
            "cumFeeDetail": (
                {settle_coin_of(o.symbol): decimal_str(o.cum_exec_fee)} if o.cum_exec_fee else {}
            ),
            "reduceOnly": o.reduce_only,
            "closeOnTrigger": o.close_on_trigger,
            "cancelType": o.cancel_type,
            "rejectReason": o.reject_reason,
            "createType": o.create_type,
            "stopOrderType": o.stop_order_type,
            "triggerPrice": decimal_str(o.trigger_price),
            "lastPriceOnCreated": decimal_str(o.last_price_on_created),
            "createdTime": str(o.created_time),
            "updatedTime": str(o.updated_time),
        }
    )
    out.update(_ORDER_PLACEHOLDERS)
    if ws and o.closed_pnl is not None:
        out["closedPnl"] = decimal_str(o.closed_pnl)
    return out


# --------------------------------------------------------------------------- executions


def execution_from_wire(d: Mapping[str, Any]) -> Execution:
    """Parse a fill from REST ``/v5/execution/list`` or the private ``execution`` topic.

    ``execution.fast`` items lack ``execValue``/``execFee`` and are rejected (missing key) rather
    than booked with a made-up fee; subscribe to ``execution`` for accounting.
    """
    r = _Reader(d, "execution")
    return Execution(
        exec_id=r.str_("execId"),
        symbol=r.str_("symbol"),
        order_id=r.str_("orderId"),
        order_link_id=r.str_("orderLinkId"),
        side=r.enum("side", Side),
        exec_price=r.dec("execPrice"),
        exec_qty=r.dec("execQty"),
        exec_value=r.dec("execValue"),
        exec_fee=r.dec("execFee"),
        exec_time=r.int_("execTime"),
        is_maker=r.bool_("isMaker"),
        exec_type=r.enum("execType", ExecType, ExecType.TRADE),
        order_type=r.enum("orderType", OrderType, OrderType.LIMIT),
        order_price=r.opt_dec("orderPrice", ZERO),
        order_qty=r.opt_dec("orderQty", ZERO),
        leaves_qty=r.opt_dec("leavesQty", ZERO),
        fee_rate=r.opt_dec("feeRate", ZERO),
        closed_size=r.opt_dec("closedSize", ZERO),
        exec_pnl=r.opt_dec("execPnl", ZERO),
        mark_price=r.opt_dec("markPrice", ZERO),
        fee_currency=r.str_("feeCurrency", "USDT") or "USDT",
        seq=r.int_("seq", 0),
    )


def execution_to_wire(e: Execution, *, ws: bool = False) -> JsonDict:
    """Render a fill; ``ws=True`` adds ``category`` and ``execPnl`` (absent from REST rows)."""
    out: JsonDict = {}
    if ws:
        out["category"] = CATEGORY
    out.update(
        {
            "symbol": e.symbol,
            "orderId": e.order_id,
            "orderLinkId": e.order_link_id,
            "side": e.side.value,
            "orderPrice": decimal_str(e.order_price),
            "orderQty": decimal_str(e.order_qty),
            "leavesQty": decimal_str(e.leaves_qty),
            "orderType": e.order_type.value,
            "stopOrderType": "UNKNOWN",
            "execId": e.exec_id,
            "execPrice": decimal_str(e.exec_price),
            "execQty": decimal_str(e.exec_qty),
            "execValue": decimal_str(e.exec_value),
            "execFee": decimal_str(e.exec_fee),
            "feeRate": decimal_str(e.fee_rate),
            "feeCurrency": e.fee_currency,
            "execType": e.exec_type.value,
            "execTime": str(e.exec_time),
            "isMaker": e.is_maker,
            "markPrice": decimal_str(e.mark_price),
            "closedSize": decimal_str(e.closed_size),
            "blockTradeId": "",
            "seq": e.seq,
        }
    )
    if ws:
        out["execPnl"] = decimal_str(e.exec_pnl)
    return out


# --------------------------------------------------------------------------- positions


def _position_side(r: _Reader) -> Side | None:
    value = r.raw("side")
    # "" is v5's flat marker; "None" is what older (v3-era) payloads used for the same thing.
    if value in ("", "None", None):
        return None
    try:
        return Side(value)
    except ValueError:
        raise WireError(f"{r.where('side')}: unknown Side value {value!r}") from None


def position_from_wire(d: Mapping[str, Any]) -> Position:
    """Parse a position from REST ``/v5/position/list`` (``avgPrice``) or WS (``entryPrice``)."""
    r = _Reader(d, "position")
    if r.has("entryPrice"):
        entry = r.dec("entryPrice", blank=ZERO)
    elif r.has("avgPrice"):
        entry = r.dec("avgPrice", blank=ZERO)
    else:
        raise WireError("position: missing required key 'avgPrice' (REST) / 'entryPrice' (WS)")
    return Position(
        symbol=r.str_("symbol"),
        side=_position_side(r),
        size=r.dec("size"),
        entry_price=entry,
        position_value=r.opt_dec("positionValue", ZERO),
        mark_price=r.opt_dec("markPrice", ZERO),
        # Portfolio-margin accounts send leverage ""; keep the domain default rather than fail.
        leverage=r.opt_dec("leverage", Decimal(10)),
        unrealised_pnl=r.opt_dec("unrealisedPnl", ZERO),
        cur_realised_pnl=r.opt_dec("curRealisedPnl", ZERO),
        cum_realised_pnl=r.opt_dec("cumRealisedPnl", ZERO),
        liq_price=r.nullable_dec("liqPrice"),
        position_im=r.opt_dec("positionIM", ZERO),
        position_mm=r.opt_dec("positionMM", ZERO),
        position_status=r.str_("positionStatus", "Normal"),
        position_idx=r.int_("positionIdx", 0),
        created_time=r.int_("createdTime", 0),
        updated_time=r.int_("updatedTime", 0),
        seq=r.int_("seq", 0),
    )


def position_to_wire(p: Position, *, ws: bool = False) -> JsonDict:
    """Render a position; REST writes ``avgPrice``, WS writes ``entryPrice`` plus ``category``."""
    out: JsonDict = {}
    if ws:
        out["category"] = CATEGORY
    out.update(
        {
            "positionIdx": p.position_idx,
            "symbol": p.symbol,
            "side": "" if p.side is None else p.side.value,
            "size": decimal_str(p.size),
            ("entryPrice" if ws else "avgPrice"): decimal_str(p.entry_price),
            "positionValue": decimal_str(p.position_value),
            "tradeMode": 0,
            "autoAddMargin": 0,
            "positionStatus": p.position_status,
            "leverage": decimal_str(p.leverage),
            "markPrice": decimal_str(p.mark_price),
            "liqPrice": _opt(p.liq_price),
            "positionIM": decimal_str(p.position_im),
            "positionMM": decimal_str(p.position_mm),
            "takeProfit": "0",
            "stopLoss": "0",
            "trailingStop": "0",
            "unrealisedPnl": decimal_str(p.unrealised_pnl),
            "curRealisedPnl": decimal_str(p.cur_realised_pnl),
            "cumRealisedPnl": decimal_str(p.cum_realised_pnl),
            "isReduceOnly": False,
            "createdTime": str(p.created_time),
            "updatedTime": str(p.updated_time),
            "seq": p.seq,
        }
    )
    return out


# --------------------------------------------------------------------------- wallet


def _coin_from_wire(d: object, where: str) -> CoinBalance:
    r = _Reader(d, where)
    return CoinBalance(
        coin=r.str_("coin"),
        equity=r.dec("equity", blank=ZERO),
        wallet_balance=r.dec("walletBalance", blank=ZERO),
        unrealised_pnl=r.opt_dec("unrealisedPnl", ZERO),
        cum_realised_pnl=r.opt_dec("cumRealisedPnl", ZERO),
        total_order_im=r.opt_dec("totalOrderIM", ZERO),
        total_position_im=r.opt_dec("totalPositionIM", ZERO),
        total_position_mm=r.opt_dec("totalPositionMM", ZERO),
        usd_value=r.opt_dec("usdValue", ZERO),
        # Deprecated for UNIFIED accounts: Bybit now sends "" here.
        available_to_withdraw=r.opt_dec("availableToWithdraw", ZERO),
    )


def wallet_from_wire(d: Mapping[str, Any]) -> Wallet:
    """Parse one ``/v5/account/wallet-balance`` list item or ``wallet`` topic item."""
    r = _Reader(d, "wallet")
    coins_raw = r.list_("coin") if r.has("coin") else []
    return Wallet(
        account_type=r.str_("accountType"),
        total_equity=r.dec("totalEquity", blank=ZERO),
        total_wallet_balance=r.dec("totalWalletBalance", blank=ZERO),
        # Empty for isolated-margin accounts; zero is the honest reading there.
        total_margin_balance=r.dec("totalMarginBalance", blank=ZERO),
        total_available_balance=r.dec("totalAvailableBalance", blank=ZERO),
        total_perp_upl=r.opt_dec("totalPerpUPL", ZERO),
        total_initial_margin=r.opt_dec("totalInitialMargin", ZERO),
        total_maintenance_margin=r.opt_dec("totalMaintenanceMargin", ZERO),
        coins=tuple(_coin_from_wire(c, f"wallet.coin[{i}]") for i, c in enumerate(coins_raw)),
    )


def _coin_to_wire(c: CoinBalance) -> JsonDict:
    return {
        "coin": c.coin,
        "equity": decimal_str(c.equity),
        "usdValue": decimal_str(c.usd_value),
        "walletBalance": decimal_str(c.wallet_balance),
        "locked": "0",
        "borrowAmount": "0",
        "availableToWithdraw": decimal_str(c.available_to_withdraw),
        "totalOrderIM": decimal_str(c.total_order_im),
        "totalPositionIM": decimal_str(c.total_position_im),
        "totalPositionMM": decimal_str(c.total_position_mm),
        "unrealisedPnl": decimal_str(c.unrealised_pnl),
        "cumRealisedPnl": decimal_str(c.cum_realised_pnl),
        "marginCollateral": True,
        "collateralSwitch": True,
    }


def wallet_to_wire(w: Wallet) -> JsonDict:
    """Render a wallet item (the same shape for REST and the ``wallet`` topic)."""
    return {
        "accountType": w.account_type,
        "totalEquity": decimal_str(w.total_equity),
        "totalWalletBalance": decimal_str(w.total_wallet_balance),
        "totalMarginBalance": decimal_str(w.total_margin_balance),
        "totalAvailableBalance": decimal_str(w.total_available_balance),
        "totalPerpUPL": decimal_str(w.total_perp_upl),
        "totalInitialMargin": decimal_str(w.total_initial_margin),
        "totalMaintenanceMargin": decimal_str(w.total_maintenance_margin),
        "coin": [_coin_to_wire(c) for c in w.coins],
    }


# --------------------------------------------------------------------------- instruments


def instrument_from_wire(d: Mapping[str, Any]) -> Instrument:
    """Parse one ``/v5/market/instruments-info`` item (linear)."""
    r = _Reader(d, "instrument")
    pf = r.child("priceFilter")
    lf = r.child("lotSizeFilter")
    max_order_qty = lf.dec("maxOrderQty")
    lev = r.child("leverageFilter") if r.has("leverageFilter") else _Reader({}, "leverageFilter")
    return Instrument(
        symbol=r.str_("symbol"),
        status=r.str_("status"),
        base_coin=r.str_("baseCoin"),
        quote_coin=r.str_("quoteCoin"),
        settle_coin=r.str_("settleCoin"),
        tick_size=pf.dec("tickSize"),
        min_price=pf.dec("minPrice"),
        max_price=pf.dec("maxPrice"),
        qty_step=lf.dec("qtyStep"),
        min_order_qty=lf.dec("minOrderQty"),
        max_order_qty=max_order_qty,
        # Both were added to lotSizeFilter later; without them Bybit applies the plain maximum
        # and no notional floor.
        max_mkt_order_qty=lf.opt_dec("maxMktOrderQty", max_order_qty),
        min_notional_value=lf.opt_dec("minNotionalValue", ZERO),
        min_leverage=lev.opt_dec("minLeverage", Decimal(1)),
        max_leverage=lev.opt_dec("maxLeverage", Decimal(100)),
        leverage_step=lev.opt_dec("leverageStep", Decimal("0.01")),
        contract_type=r.str_("contractType", "LinearPerpetual"),
        funding_interval_minutes=r.int_("fundingInterval", 480),
        launch_time_ms=r.int_("launchTime", 0),
    )


def _decimals_of(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def instrument_to_wire(i: Instrument) -> JsonDict:
    """Render an instrument as ``/v5/market/instruments-info`` lists it."""
    return {
        "symbol": i.symbol,
        "contractType": i.contract_type,
        "status": i.status,
        "baseCoin": i.base_coin,
        "quoteCoin": i.quote_coin,
        "settleCoin": i.settle_coin,
        "launchTime": str(i.launch_time_ms),
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(_decimals_of(i.tick_size)),
        "leverageFilter": {
            "minLeverage": decimal_str(i.min_leverage),
            "maxLeverage": decimal_str(i.max_leverage),
            "leverageStep": decimal_str(i.leverage_step),
        },
        "priceFilter": {
            "minPrice": decimal_str(i.min_price),
            "maxPrice": decimal_str(i.max_price),
            "tickSize": decimal_str(i.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": decimal_str(i.max_order_qty),
            "minOrderQty": decimal_str(i.min_order_qty),
            "qtyStep": decimal_str(i.qty_step),
            "postOnlyMaxOrderQty": decimal_str(i.max_order_qty),
            "maxMktOrderQty": decimal_str(i.max_mkt_order_qty),
            "minNotionalValue": decimal_str(i.min_notional_value),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": i.funding_interval_minutes,
    }


# --------------------------------------------------------------------------- tickers

# (attribute, wire key) for every Decimal field of Ticker; order = Bybit's REST order.
_TICKER_DECIMALS: Final[tuple[tuple[str, str], ...]] = (
    ("last_price", "lastPrice"),
    ("index_price", "indexPrice"),
    ("mark_price", "markPrice"),
    ("prev_price_24h", "prevPrice24h"),
    ("price_24h_pcnt", "price24hPcnt"),
    ("high_price_24h", "highPrice24h"),
    ("low_price_24h", "lowPrice24h"),
    ("open_interest", "openInterest"),
    ("turnover_24h", "turnover24h"),
    ("volume_24h", "volume24h"),
    ("funding_rate", "fundingRate"),
    ("bid1_price", "bid1Price"),
    ("bid1_size", "bid1Size"),
    ("ask1_price", "ask1Price"),
    ("ask1_size", "ask1Size"),
)


def ticker_from_wire(d: Mapping[str, Any]) -> Ticker:
    """Parse a REST ticker or a ``tickers`` topic snapshot/delta.

    Deltas carry only the fields that changed: an absent (or ``""``) key stays ``None`` so that
    :meth:`Ticker.merged` leaves the previous value in place.
    """
    r = _Reader(d, "ticker")
    decimals = {attr: r.nullable_dec(key) for attr, key in _TICKER_DECIMALS}
    tick = r.get("tickDirection")
    return Ticker(
        symbol=r.str_("symbol"),
        next_funding_time=r.nullable_int("nextFundingTime"),
        tick_direction=tick if isinstance(tick, str) and tick else None,
        **decimals,
    )


def ticker_to_wire(t: Ticker) -> JsonDict:
    """Render a ticker with only its known fields (a delta is partial, a snapshot full)."""
    out: JsonDict = {"symbol": t.symbol}
    if t.tick_direction is not None:
        out["tickDirection"] = t.tick_direction
    for attr, key in _TICKER_DECIMALS:
        value: Decimal | None = getattr(t, attr)
        if value is not None:
            out[key] = decimal_str(value)
    if t.next_funding_time is not None:
        out["nextFundingTime"] = str(t.next_funding_time)
    return out


# --------------------------------------------------------------------------- public trades


def public_trade_from_wire(d: Mapping[str, Any]) -> PublicTrade:
    """Parse one ``publicTrade`` item (``T, s, S, v, p, L, i, BT, RPI, seq``)."""
    r = _Reader(d, "publicTrade")
    return PublicTrade(
        time=r.int_("T"),
        symbol=r.str_("s"),
        side=r.enum("S", Side),
        size=r.dec("v"),
        price=r.dec("p"),
        trade_id=r.str_("i"),
        tick_direction=r.str_("L", "ZeroPlusTick"),
        block_trade=r.bool_("BT", False),
        rpi=r.bool_("RPI", False),
        seq=r.int_("seq", 0),
    )


def public_trade_to_wire(t: PublicTrade) -> JsonDict:
    return {
        "T": t.time,
        "s": t.symbol,
        "S": t.side.value,
        "v": decimal_str(t.size),
        "p": decimal_str(t.price),
        "L": t.tick_direction,
        "i": t.trade_id,
        "BT": t.block_trade,
        "RPI": t.rpi,
        "seq": t.seq,
    }


# --------------------------------------------------------------------------- order books


def levels_from_wire(raw: object, where: str) -> tuple[PriceLevel, ...]:
    """Parse ``[["price","size"], ...]`` into ``(Decimal, Decimal)`` pairs, order preserved."""
    if not isinstance(raw, list):
        raise WireError(f"{where}: expected a list of [price, size], got {type(raw).__name__}")
    levels: list[PriceLevel] = []
    for n, level in enumerate(raw):
        if not isinstance(level, list | tuple) or len(level) != 2:
            raise WireError(f"{where}[{n}]: expected [price, size], got {level!r}")
        price = parse_decimal(level[0], f"{where}[{n}].price")
        levels.append((price, parse_decimal(level[1], f"{where}[{n}].size")))
    return tuple(levels)


def levels_to_wire(levels: Iterable[PriceLevel]) -> list[list[str]]:
    return [[decimal_str(p), decimal_str(s)] for p, s in levels]


def orderbook_from_wire(
    d: Mapping[str, Any], *, type: BookUpdateType, depth: int, ts: int, cts: int
) -> OrderBookUpdate:
    """Parse the ``data`` object of an ``orderbook.{depth}.{symbol}`` message.

    ``type``, ``ts`` and ``cts`` live on the envelope and the depth in the topic, so the stream
    codec passes them in.
    """
    r = _Reader(d, "orderbook")
    return OrderBookUpdate(
        symbol=r.str_("s"),
        depth=depth,
        type=type,
        bids=levels_from_wire(r.raw("b"), "orderbook.b"),
        asks=levels_from_wire(r.raw("a"), "orderbook.a"),
        update_id=r.int_("u"),
        seq=r.int_("seq", 0),
        ts=ts,
        cts=cts,
    )


def orderbook_to_wire(u: OrderBookUpdate) -> JsonDict:
    """Render the ``data`` object of an order-book message (envelope built by the stream codec)."""
    return {
        "s": u.symbol,
        "b": levels_to_wire(u.bids),
        "a": levels_to_wire(u.asks),
        "u": u.update_id,
        "seq": u.seq,
    }


def orderbook_from_rest(result: Mapping[str, Any], *, depth: int) -> OrderBookUpdate:
    """Parse ``GET /v5/market/orderbook`` ``result`` as a snapshot of the requested depth."""
    r = _Reader(result, "orderbook")
    ts = r.int_("ts")
    return orderbook_from_wire(
        result, type=BookUpdateType.SNAPSHOT, depth=depth, ts=ts, cts=r.int_("cts", ts)
    )


def orderbook_to_rest(u: OrderBookUpdate) -> JsonDict:
    """Render an order-book snapshot as the ``result`` of ``GET /v5/market/orderbook``."""
    return {**orderbook_to_wire(u), "ts": u.ts, "cts": u.cts}
