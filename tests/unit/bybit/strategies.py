"""Hypothesis strategies for the Bybit domain values (:mod:`hean.bybit.types`).

Shared by every test that needs realistic orders, fills, positions, wallets, instruments, tickers,
trades or book updates (codec, simulator, engine). Values respect the invariants the wire can
represent (see :mod:`hean.bybit.wire`): ``ws=False`` variants leave out what the REST shape lacks
(``closed_pnl``, ``exec_pnl``), ``avg_price`` is None or positive, flat positions have no side.

Decimals are built as ``integer * 10**-places`` so they carry trailing zeros and varied exponents
(``Decimal("1.500")``), exercising the plain-notation renderer.
"""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Any

from attrs import evolve
from hypothesis import strategies as st

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
    TickerMessage,
    TimeInForce,
    TradesMessage,
    Wallet,
)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "1000PEPEUSDT", "ETHPERP")

symbols = st.sampled_from(SYMBOLS)
sides = st.sampled_from(Side)
order_types = st.sampled_from(OrderType)
times_in_force = st.sampled_from(TimeInForce)
order_statuses = st.sampled_from(OrderStatus)
exec_types = st.sampled_from(ExecType)
book_update_types = st.sampled_from(BookUpdateType)
tick_directions = st.sampled_from(["PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick"])

#: Exchange timestamps: epoch ms between 2020 and 2033.
timestamps_ms = st.integers(min_value=1_577_836_800_000, max_value=2_000_000_000_000)
seqs = st.integers(min_value=0, max_value=2**53)

ids = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=36)
"""Opaque id strings (order ids, exec ids, trade ids)."""

link_ids = st.one_of(
    st.just(""), st.text(alphabet=string.ascii_letters + string.digits + "_-", max_size=36)
)
"""``orderLinkId`` values as Bybit echoes them (``""`` when none was set)."""

labels = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=24)
"""Free-form enum-like strings Bybit sends (cancelType, rejectReason, tickDirection ...)."""


def decimals(
    min_value: int | str | Decimal = 0,
    max_value: int | str | Decimal = 1_000_000,
    *,
    max_places: int = 8,
) -> st.SearchStrategy[Decimal]:
    """Decimals in ``[min_value, max_value]`` with up to ``max_places`` decimals, trailing zeros
    and exponents varied."""
    lo, hi = Decimal(min_value), Decimal(max_value)

    @st.composite
    def build(draw: st.DrawFn) -> Decimal:
        places = draw(st.integers(min_value=0, max_value=max_places))
        scale = Decimal(10) ** places
        n = draw(
            st.integers(
                min_value=int((lo * scale).to_integral_value(rounding="ROUND_CEILING")),
                max_value=int((hi * scale).to_integral_value(rounding="ROUND_FLOOR")),
            )
        )
        return Decimal(n).scaleb(-places)

    return build()


def positive_decimals(
    max_value: int | str | Decimal = 1_000_000, *, max_places: int = 8
) -> st.SearchStrategy[Decimal]:
    """Strictly positive decimals (prices, sizes)."""
    return decimals(0, max_value, max_places=max_places).filter(lambda d: d > 0)


prices = positive_decimals(200_000, max_places=6)
quantities = positive_decimals(10_000, max_places=6)
amounts = decimals(-1_000_000, 1_000_000, max_places=8)
"""Signed money amounts (PnL, fees can be negative rebates)."""
non_negative = decimals(0, 10_000_000, max_places=8)
fee_rates = decimals("-0.001", "0.01", max_places=6)


# --------------------------------------------------------------------------- private objects


def orders(*, ws: bool = True) -> st.SearchStrategy[Order]:
    """Orders; ``ws=False`` gives the REST-representable ones (no ``closed_pnl``)."""
    return st.builds(
        Order,
        order_id=ids,
        order_link_id=link_ids,
        symbol=symbols,
        side=sides,
        order_type=order_types,
        price=non_negative,
        qty=quantities,
        time_in_force=times_in_force,
        order_status=order_statuses,
        created_time=timestamps_ms,
        updated_time=timestamps_ms,
        position_idx=st.sampled_from([0, 1, 2]),
        avg_price=st.none() | prices,
        leaves_qty=non_negative,
        leaves_value=non_negative,
        cum_exec_qty=non_negative,
        cum_exec_value=non_negative,
        cum_exec_fee=amounts,
        reduce_only=st.booleans(),
        close_on_trigger=st.booleans(),
        cancel_type=labels,
        reject_reason=labels,
        create_type=labels,
        stop_order_type=st.just("") | labels,
        trigger_price=non_negative,
        last_price_on_created=non_negative,
        closed_pnl=(st.none() | amounts) if ws else st.none(),
    )


def executions(*, ws: bool = True) -> st.SearchStrategy[Execution]:
    """Fills; ``ws=False`` gives the REST-representable ones (``exec_pnl`` zero)."""
    return st.builds(
        Execution,
        exec_id=ids,
        symbol=symbols,
        order_id=ids,
        order_link_id=link_ids,
        side=sides,
        exec_price=prices,
        exec_qty=quantities,
        exec_value=non_negative,
        exec_fee=amounts,
        exec_time=timestamps_ms,
        is_maker=st.booleans(),
        exec_type=exec_types,
        order_type=order_types,
        order_price=non_negative,
        order_qty=non_negative,
        leaves_qty=non_negative,
        fee_rate=fee_rates,
        closed_size=non_negative,
        exec_pnl=amounts if ws else st.just(ZERO),
        mark_price=non_negative,
        fee_currency=st.sampled_from(["USDT", "USDC"]),
        seq=seqs,
    )


@st.composite
def positions(draw: st.DrawFn) -> Position:
    """Positions; a flat one (size 0) has no side, as Bybit reports it."""
    side = draw(st.none() | sides)
    size = ZERO if side is None else draw(quantities)
    return Position(
        symbol=draw(symbols),
        side=side,
        size=size,
        entry_price=ZERO if side is None else draw(prices),
        position_value=draw(non_negative),
        mark_price=draw(non_negative),
        leverage=draw(decimals(1, 100, max_places=2)),
        unrealised_pnl=draw(amounts),
        cur_realised_pnl=draw(amounts),
        cum_realised_pnl=draw(amounts),
        liq_price=draw(st.none() | prices),
        position_im=draw(non_negative),
        position_mm=draw(non_negative),
        position_status=draw(st.sampled_from(["Normal", "Liq", "Adl"])),
        position_idx=draw(st.sampled_from([0, 1, 2])),
        created_time=draw(timestamps_ms),
        updated_time=draw(timestamps_ms),
        seq=draw(seqs),
    )


coin_balances = st.builds(
    CoinBalance,
    coin=st.sampled_from(["USDT", "USDC", "BTC", "ETH"]),
    equity=amounts,
    wallet_balance=amounts,
    unrealised_pnl=amounts,
    cum_realised_pnl=amounts,
    total_order_im=non_negative,
    total_position_im=non_negative,
    total_position_mm=non_negative,
    usd_value=amounts,
    available_to_withdraw=non_negative,
)

wallets = st.builds(
    Wallet,
    account_type=st.just("UNIFIED"),
    total_equity=amounts,
    total_wallet_balance=amounts,
    total_margin_balance=amounts,
    total_available_balance=amounts,
    total_perp_upl=amounts,
    total_initial_margin=non_negative,
    total_maintenance_margin=non_negative,
    coins=st.lists(coin_balances, max_size=4).map(tuple),
)


# --------------------------------------------------------------------------- instruments

TICK_SIZES = ("0.0000001", "0.0001", "0.001", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "10")
QTY_STEPS = ("0.001", "0.01", "0.1", "1", "10", "100")


@st.composite
def instruments(draw: st.DrawFn) -> Instrument:
    """Consistent trading rules: bounds on the grid, min < max, market max <= limit max."""
    tick = Decimal(draw(st.sampled_from(TICK_SIZES)))
    step = Decimal(draw(st.sampled_from(QTY_STEPS)))
    min_qty = step * draw(st.integers(min_value=1, max_value=10))
    steps = draw(st.integers(min_value=1, max_value=1_000_000))
    max_qty = min_qty + step * steps
    max_mkt_qty = min_qty + step * draw(st.integers(min_value=1, max_value=steps))
    min_price = tick * draw(st.integers(min_value=1, max_value=100))
    max_price = min_price + tick * draw(st.integers(min_value=1, max_value=10**9))
    symbol = draw(symbols)
    settle = "USDC" if symbol.endswith("PERP") else "USDT"
    return Instrument(
        symbol=symbol,
        status=draw(st.sampled_from(["Trading", "PreLaunch", "Delivering", "Closed"])),
        base_coin=symbol.removesuffix("USDT").removesuffix("PERP"),
        quote_coin=settle,
        settle_coin=settle,
        tick_size=tick,
        min_price=min_price,
        max_price=max_price,
        qty_step=step,
        min_order_qty=min_qty,
        max_order_qty=max_qty,
        max_mkt_order_qty=max_mkt_qty,
        min_notional_value=draw(st.sampled_from([ZERO, Decimal(1), Decimal(5), Decimal(10)])),
        min_leverage=Decimal(1),
        max_leverage=draw(st.sampled_from([Decimal(25), Decimal(50), Decimal(100)])),
        leverage_step=Decimal("0.01"),
        contract_type="LinearPerpetual",
        funding_interval_minutes=draw(st.sampled_from([60, 240, 480])),
        launch_time_ms=draw(timestamps_ms),
    )


# --------------------------------------------------------------------------- public data

_TICKER_DECIMAL_FIELDS = (
    "last_price",
    "mark_price",
    "index_price",
    "bid1_price",
    "bid1_size",
    "ask1_price",
    "ask1_size",
    "prev_price_24h",
    "price_24h_pcnt",
    "high_price_24h",
    "low_price_24h",
    "volume_24h",
    "turnover_24h",
    "open_interest",
    "funding_rate",
)


@st.composite
def tickers(draw: st.DrawFn, *, partial: bool = False) -> Ticker:
    """A full ticker (snapshot), or with ``partial=True`` any subset of fields set (delta)."""

    def maybe(strategy: st.SearchStrategy[Any]) -> Any:
        return draw(st.none() | strategy) if partial else draw(strategy)

    fields: dict[str, Any] = {name: maybe(amounts) for name in _TICKER_DECIMAL_FIELDS}
    fields["next_funding_time"] = maybe(timestamps_ms)
    fields["tick_direction"] = maybe(tick_directions)
    return Ticker(symbol=draw(symbols), **fields)


public_trades = st.builds(
    PublicTrade,
    time=timestamps_ms,
    symbol=symbols,
    side=sides,
    size=quantities,
    price=prices,
    trade_id=ids,
    tick_direction=tick_directions,
    block_trade=st.booleans(),
    rpi=st.booleans(),
    seq=seqs,
)


@st.composite
def trades_messages(draw: st.DrawFn) -> TradesMessage:
    symbol = draw(symbols)
    trades = draw(st.lists(public_trades, min_size=1, max_size=5))
    return TradesMessage(
        topic=f"publicTrade.{symbol}",
        ts=draw(timestamps_ms),
        trades=tuple(evolve(t, symbol=symbol) for t in trades),
    )


@st.composite
def ticker_messages(draw: st.DrawFn) -> TickerMessage:
    kind = draw(book_update_types)
    ticker = draw(tickers(partial=kind is BookUpdateType.DELTA))
    return TickerMessage(
        topic=f"tickers.{ticker.symbol}",
        type=kind,
        ts=draw(timestamps_ms),
        cs=draw(seqs),
        ticker=ticker,
    )


def price_levels(
    *, min_size: int = 0, max_size: int = 20, allow_zero_size: bool = False
) -> st.SearchStrategy[tuple[PriceLevel, ...]]:
    """Book levels with distinct prices; ``allow_zero_size`` for deltas (size 0 = delete)."""
    size = non_negative if allow_zero_size else quantities
    return st.lists(
        st.tuples(prices, size), min_size=min_size, max_size=max_size, unique_by=lambda x: x[0]
    ).map(tuple)


@st.composite
def orderbook_updates(
    draw: st.DrawFn, *, type: BookUpdateType | None = None, depth: int | None = None
) -> OrderBookUpdate:
    kind = draw(book_update_types) if type is None else type
    is_delta = kind is BookUpdateType.DELTA
    return OrderBookUpdate(
        symbol=draw(symbols),
        depth=draw(st.sampled_from([1, 50, 200, 1000])) if depth is None else depth,
        type=kind,
        bids=draw(price_levels(allow_zero_size=is_delta)),
        asks=draw(price_levels(allow_zero_size=is_delta)),
        update_id=draw(st.integers(min_value=1, max_value=2**40)),
        seq=draw(seqs),
        ts=draw(timestamps_ms),
        cts=draw(timestamps_ms),
    )
