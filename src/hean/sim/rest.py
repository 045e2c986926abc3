"""REST endpoint handlers of the embedded venue: Bybit's parameters, validation, codes and shapes.

Each handler takes the parsed parameters (query dict for GET, JSON body for POST) and returns the
envelope's ``result`` object, built with :mod:`hean.bybit.wire` so every field has Bybit's name
and type. Failures raise :mod:`hean.bybit.errors` classes with Bybit's ``retCode``/``retMsg``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from hean.bybit.types import (
    BookUpdateType,
    OrderBookUpdate,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from hean.bybit.wire import (
    execution_to_wire,
    instrument_to_wire,
    order_to_wire,
    orderbook_to_rest,
    position_to_wire,
    ticker_to_wire,
    wallet_to_wire,
)
from hean.sim.exchange import Exchange
from hean.sim.orders import WEEK_MS, ExecRecord, UserOrder
from hean.sim.params import (
    cursor_param,
    enum_param,
    limit_param,
    opt_bool,
    opt_decimal,
    opt_int,
    opt_str,
    param_error,
    req_str,
    require_linear,
)
from hean.sim.symbols import SymbolState

JsonDict = dict[str, Any]
Params = Mapping[str, Any]
_T = TypeVar("_T")
CATEGORY = "linear"
# Request fields of features the simulator does not offer; a non-empty value is refused loudly
# rather than silently ignored (an engine relying on them must not believe they work).
_UNSUPPORTED_CREATE = ("triggerPrice", "takeProfit", "stopLoss", "tpslMode", "isLeverage")


def _page(
    items: Sequence[_T], key: Callable[[_T], int], cursor: int | None, limit: int
) -> tuple[list[_T], str]:
    """Cursor pagination over items sorted by ``key`` descending; the cursor is the key of the
    last item of the previous page, ``""`` on the last page (as Bybit)."""
    if cursor is not None:
        items = [i for i in items if key(i) < cursor]
    page = list(items[:limit])
    more = len(items) > limit
    return page, (str(key(page[-1])) if more and page else "")


def _offset_page(items: Sequence[_T], cursor: int | None, limit: int) -> tuple[list[_T], str]:
    """Pagination over a list that has no sequence key (instruments, position rows): the cursor
    is the offset of the next page, ``""`` on the last page."""
    start = cursor or 0
    more = start + limit < len(items)
    return list(items[start : start + limit]), (str(start + limit) if more else "")


def _time_window(params: Params, now_ms: int) -> tuple[int, int]:
    """Bybit's 7-day window rules: none -> last 7 days; one bound -> 7 days from/to it."""
    start = opt_int(params, "startTime")
    end = opt_int(params, "endTime")
    if start is None and end is None:
        end = now_ms
        start = now_ms - WEEK_MS
    elif start is None:
        assert end is not None
        start = end - WEEK_MS
    elif end is None:
        end = start + WEEK_MS
    if start > end:
        raise param_error("params error: startTime should be less than endTime")
    if end - start > WEEK_MS:
        raise param_error(
            "params error: The time range between startTime and endTime cannot exceed 7 days"
        )
    return start, end


# ---------------------------------------------------------------------------- market data


def market_time(ex: Exchange, params: Params, now_ms: int) -> JsonDict:
    return {"timeSecond": str(now_ms // 1000), "timeNano": str(now_ms * 1_000_000)}


def instruments_info(ex: Exchange, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    symbol = opt_str(params, "symbol")
    status = opt_str(params, "status")
    base = opt_str(params, "baseCoin")
    limit = limit_param(params, default=500, maximum=1000)
    cursor = cursor_param(params)
    rows = [
        st.inst
        for st in ex.symbols.values()
        if (symbol is None or st.symbol == symbol)
        and (status is None or st.inst.status == status)
        and (base is None or st.inst.base_coin == base)
    ]
    page, next_cursor = _offset_page(rows, cursor, limit)
    return {
        "category": CATEGORY,
        "list": [instrument_to_wire(i) for i in page],
        "nextPageCursor": next_cursor,
    }


def tickers(ex: Exchange, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    symbol = opt_str(params, "symbol")
    states = [ex.symbol(symbol)] if symbol is not None else list(ex.symbols.values())
    return {
        "category": CATEGORY,
        "list": [ticker_to_wire(st.ticker(now_ms, ex.open_interest(st.symbol))) for st in states],
    }


def book_snapshot(st: SymbolState, depth: int, now_ms: int) -> OrderBookUpdate:
    return OrderBookUpdate(
        symbol=st.symbol,
        depth=depth,
        type=BookUpdateType.SNAPSHOT,
        bids=tuple((st.price_of(p), st.qty_of(q)) for p, q in st.book.levels(True, depth)),
        asks=tuple((st.price_of(p), st.qty_of(q)) for p, q in st.book.levels(False, depth)),
        update_id=st.book.version,
        seq=st.cross_seq,
        ts=now_ms,
        cts=now_ms,
    )


def orderbook(ex: Exchange, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    st = ex.symbol(req_str(params, "symbol"))
    depth = limit_param(params, default=25, maximum=1000)
    return orderbook_to_rest(book_snapshot(st, depth, now_ms))


# ---------------------------------------------------------------------------- trading


def _position_idx(params: Params) -> None:
    idx = opt_int(params, "positionIdx")
    if idx is not None and idx != 0:
        raise param_error("position idx not match position mode")


def _order_symbol(ex: Exchange, params: Params) -> str:
    """``category`` and ``symbol`` of a single-order request, checked before any other field
    (so an unknown symbol is reported as such, whatever else is wrong)."""
    require_linear(params)
    symbol = req_str(params, "symbol")
    ex.symbol(symbol)
    return symbol


def _order_ref(order: UserOrder) -> JsonDict:
    """The ids Bybit answers a create/amend/cancel with (and each item of a cancel-all)."""
    return {"orderId": order.order_id, "orderLinkId": order.order_link_id}


def create_order(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    symbol = _order_symbol(ex, params)
    side = enum_param(params, "side", Side, None)
    order_type = enum_param(params, "orderType", OrderType, None)
    if order_type is OrderType.UNKNOWN:  # only ever reported on funding rows, never accepted
        raise param_error("params error: orderType invalid")
    qty = opt_decimal(params, "qty")
    if qty is None:
        raise param_error("Missing some parameters that must filled in, qty")
    price = opt_decimal(params, "price")
    default_tif = TimeInForce.IOC if order_type is OrderType.MARKET else TimeInForce.GTC
    tif = enum_param(params, "timeInForce", TimeInForce, default_tif)
    _position_idx(params)
    for name in _UNSUPPORTED_CREATE:
        value = params.get(name)
        if value not in (None, "", "0", 0, False):
            raise param_error(f"params error: {name} is not supported by this venue")
    link_id = opt_str(params, "orderLinkId") or ""
    reduce_only = bool(opt_bool(params, "reduceOnly"))
    order = ex.create_order(
        api_key,
        symbol=symbol,
        side=side,
        order_type=order_type,
        qty=qty,
        price=price,
        time_in_force=tif,
        order_link_id=link_id,
        reduce_only=reduce_only,
        now_ms=now_ms,
    )
    return _order_ref(order)


def amend_order(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    symbol = _order_symbol(ex, params)
    order = ex.amend_order(
        api_key,
        symbol=symbol,
        order_id=opt_str(params, "orderId"),
        order_link_id=opt_str(params, "orderLinkId"),
        qty=opt_decimal(params, "qty"),
        price=opt_decimal(params, "price"),
        now_ms=now_ms,
    )
    return _order_ref(order)


def cancel_order(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    symbol = _order_symbol(ex, params)
    order = ex.cancel_order(
        api_key,
        symbol=symbol,
        order_id=opt_str(params, "orderId"),
        order_link_id=opt_str(params, "orderLinkId"),
        now_ms=now_ms,
    )
    return _order_ref(order)


def cancel_all(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    cancelled = ex.cancel_all(
        api_key,
        symbol=opt_str(params, "symbol"),
        base_coin=opt_str(params, "baseCoin"),
        settle_coin=opt_str(params, "settleCoin"),
        now_ms=now_ms,
    )
    return {
        "list": [_order_ref(o) for o in cancelled],
        "success": "1",
    }


# ---------------------------------------------------------------------------- queries


def _symbol_filter(ex: Exchange, params: Params) -> Callable[[str], bool]:
    """symbol > baseCoin > settleCoin, as Bybit prioritises them; none given = everything."""
    symbol = opt_str(params, "symbol")
    base = opt_str(params, "baseCoin")
    settle = opt_str(params, "settleCoin")
    if symbol is not None:
        ex.symbol(symbol)
        return lambda s: s == symbol
    if base is not None:
        return lambda s: ex.symbols[s].inst.base_coin == base
    if settle is not None:
        return lambda s: ex.symbols[s].inst.settle_coin == settle
    return lambda s: True


def _order_filter(ex: Exchange, params: Params) -> Callable[[UserOrder], bool]:
    symbol_ok = _symbol_filter(ex, params)
    return lambda o: symbol_ok(o.symbol)


def _by_id(ex: Exchange, api_key: str, params: Params) -> list[UserOrder] | None:
    """Orders matched by ``orderId``/``orderLinkId`` (which override every other filter), or
    None when neither was given."""
    order_id = opt_str(params, "orderId")
    link_id = opt_str(params, "orderLinkId")
    if order_id is None and link_id is None:
        return None
    order = ex.registries[api_key].find(order_id, link_id)
    return [order] if order is not None else []


def _orders_result(orders: Iterable[UserOrder], params: Params, maximum: int) -> JsonDict:
    limit = limit_param(params, default=20, maximum=maximum)
    cursor = cursor_param(params)
    ordered = sorted(orders, key=lambda o: o.seq_no, reverse=True)
    page, next_cursor = _page(ordered, lambda o: o.seq_no, cursor, limit)
    return {
        "category": CATEGORY,
        "nextPageCursor": next_cursor,
        "list": [order_to_wire(o.snapshot()) for o in page],
    }


def open_orders(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    registry = ex.registries[api_key]
    found = _by_id(ex, api_key, params)
    if found is not None:
        # By-id queries ignore openOnly: open or one of the last 500 closed orders.
        return _orders_result([o for o in found if registry.realtime_visible(o)], params, 50)
    if not any(opt_str(params, k) for k in ("symbol", "baseCoin", "settleCoin")):
        raise param_error(
            "Missing some parameters that must filled in, symbol or settleCoin or baseCoin"
        )
    keep = _order_filter(ex, params)
    open_only = opt_int(params, "openOnly") or 0
    if open_only not in (0, 1, 2):
        raise param_error("params error: openOnly invalid")
    pool: Iterable[UserOrder] = (
        registry.open.values() if open_only == 0 else list(registry.recent_closed)
    )
    return _orders_result([o for o in pool if keep(o)], params, 50)


def order_history(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    registry = ex.registries[api_key]
    if (opt_int(params, "startTime") is None) != (opt_int(params, "endTime") is None):
        # Unlike /execution/list, history takes no one-sided window ("startTime and endTime
        # must be passed together", docs v5/order/order-list.mdx).
        raise param_error("params error: startTime and endTime must be passed together")
    start, end = _time_window(params, now_ms)
    status = opt_str(params, "orderStatus")
    if status is not None:
        try:
            wanted: OrderStatus | None = OrderStatus(status)
        except ValueError:
            raise param_error("params error: orderStatus invalid") from None
    else:
        wanted = None
    found = _by_id(ex, api_key, params)
    keep = _order_filter(ex, params)
    pool = found if found is not None else [o for o in registry.history if keep(o)]
    rows = [
        o
        for o in pool
        if registry.history_visible(o, now_ms)
        and (found is not None or start <= o.created_time <= end)
        and (wanted is None or o.status is wanted)
    ]
    return _orders_result(rows, params, 50)


def executions(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    registry = ex.registries[api_key]
    start, end = _time_window(params, now_ms)
    limit = limit_param(params, default=50, maximum=100)
    cursor = cursor_param(params)
    exec_type = opt_str(params, "execType")
    order_id = opt_str(params, "orderId")
    link_id = opt_str(params, "orderLinkId")
    match: Callable[[ExecRecord], bool]
    if order_id is not None:  # orderId, then orderLinkId, override every other filter
        match = lambda r: r.execution.order_id == order_id  # noqa: E731
    elif link_id is not None:
        match = lambda r: r.execution.order_link_id == link_id  # noqa: E731
    else:
        symbol_ok = _symbol_filter(ex, params)
        match = lambda r: symbol_ok(r.execution.symbol)  # noqa: E731
    rows = [
        r
        for r in reversed(registry.executions)
        if start <= r.execution.exec_time <= end
        and (exec_type is None or r.execution.exec_type.value == exec_type)
        and match(r)
    ]
    page, next_cursor = _page(rows, lambda r: r.seq_no, cursor, limit)
    return {
        "category": CATEGORY,
        "nextPageCursor": next_cursor,
        "list": [execution_to_wire(r.execution) for r in page],
    }


def positions(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    require_linear(params)
    account = ex.accounts[api_key]
    symbol = opt_str(params, "symbol")
    settle = opt_str(params, "settleCoin")
    limit = limit_param(params, default=20, maximum=200)
    cursor = cursor_param(params)
    if symbol is not None:
        ex.symbol(symbol)
        names = [symbol]  # a symbol query shows the row even when flat
    elif settle is not None:
        names = sorted(
            s
            for s, st in ex.symbols.items()
            if st.inst.settle_coin == settle and account.position_size(s) != 0
        )
    else:
        raise param_error("Missing some parameters that must filled in, symbol or settleCoin")
    marks = ex.marks()
    page, next_cursor = _offset_page(names, cursor, limit)
    return {
        "category": CATEGORY,
        "nextPageCursor": next_cursor,
        "list": [
            position_to_wire(
                account.position(s).to_position(mark=marks[s], leverage=account.leverage)
            )
            for s in page
        ],
    }


def wallet_balance(ex: Exchange, api_key: str, params: Params, now_ms: int) -> JsonDict:
    account_type = opt_str(params, "accountType")
    if account_type is None:
        raise param_error("Missing some parameters that must filled in, accountType")
    if account_type != "UNIFIED":
        raise param_error("accountType only support UNIFIED")
    wallet = ex.accounts[api_key].wallet(ex.marks(), ex.order_im(api_key))
    out = wallet_to_wire(wallet)
    coins = opt_str(params, "coin")
    if coins is not None:
        wanted = set(coins.split(","))
        out["coin"] = [c for c in out["coin"] if c["coin"] in wanted]
    return {"list": [out]}


PUBLIC: dict[str, Callable[[Exchange, Params, int], JsonDict]] = {
    "/v5/market/time": market_time,
    "/v5/market/instruments-info": instruments_info,
    "/v5/market/tickers": tickers,
    "/v5/market/orderbook": orderbook,
}

PRIVATE: dict[str, Callable[[Exchange, str, Params, int], JsonDict]] = {
    "/v5/order/create": create_order,
    "/v5/order/amend": amend_order,
    "/v5/order/cancel": cancel_order,
    "/v5/order/cancel-all": cancel_all,
    "/v5/order/realtime": open_orders,
    "/v5/order/history": order_history,
    "/v5/execution/list": executions,
    "/v5/position/list": positions,
    "/v5/account/wallet-balance": wallet_balance,
}
