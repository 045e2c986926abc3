"""Domain value types shared by the codec, the simulator and the engine.

Everything here is a frozen attrs value: money and quantities are ``Decimal`` (Bybit sends strings),
exchange timestamps are integer epoch milliseconds exactly as Bybit sends them. No I/O, no clocks.

The wire names live in :mod:`hean.bybit.wire` (parse and serialise); these classes use Python names.
"""

from __future__ import annotations

import enum
from decimal import Decimal

from attrs import asdict, evolve, field, frozen

ZERO = Decimal(0)


class Side(enum.StrEnum):
    BUY = "Buy"
    SELL = "Sell"

    @property
    def sign(self) -> int:
        """+1 for Buy, -1 for Sell: a fill of qty q changes a signed position by sign * q."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "Market"
    LIMIT = "Limit"
    # Bybit reports orderType "UNKNOWN" on executions that belong to no order (Funding rows in
    # /v5/execution/list). Only parsed, never sent: request builders and the venue refuse it.
    UNKNOWN = "UNKNOWN"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PostOnly"


class OrderStatus(enum.StrEnum):
    """Bybit's ``orderStatus`` (docs v5/enum.mdx)."""

    NEW = "New"
    PARTIALLY_FILLED = "PartiallyFilled"
    UNTRIGGERED = "Untriggered"
    REJECTED = "Rejected"
    PARTIALLY_FILLED_CANCELED = "PartiallyFilledCanceled"  # spot only; kept so parsing never fails
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    TRIGGERED = "Triggered"
    DEACTIVATED = "Deactivated"

    @property
    def is_open(self) -> bool:
        """Open orders can still trade (or be triggered)."""
        return self in _OPEN_STATUSES

    @property
    def is_final(self) -> bool:
        return not self.is_open and self is not OrderStatus.TRIGGERED


_OPEN_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNTRIGGERED})


class ExecType(enum.StrEnum):
    TRADE = "Trade"
    ADL_TRADE = "AdlTrade"
    FUNDING = "Funding"
    BUST_TRADE = "BustTrade"
    DELIVERY = "Delivery"
    SETTLE = "Settle"
    BLOCK_TRADE = "BlockTrade"
    MOVE_POSITION = "MovePosition"
    FUTURE_SPREAD = "FutureSpread"
    UNKNOWN = "UNKNOWN"  # listed in docs v5/enum.mdx; a row of it must parse, not stop reconciling


class BookUpdateType(enum.StrEnum):
    SNAPSHOT = "snapshot"
    DELTA = "delta"


# --------------------------------------------------------------------------- instruments


@frozen
class Instrument:
    """The trading rules of one linear contract (``/v5/market/instruments-info``)."""

    symbol: str
    status: str
    base_coin: str
    quote_coin: str
    settle_coin: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    qty_step: Decimal
    min_order_qty: Decimal
    max_order_qty: Decimal
    max_mkt_order_qty: Decimal
    min_notional_value: Decimal
    min_leverage: Decimal = Decimal(1)
    max_leverage: Decimal = Decimal(100)
    leverage_step: Decimal = Decimal("0.01")
    contract_type: str = "LinearPerpetual"
    funding_interval_minutes: int = 480
    launch_time_ms: int = 0


# --------------------------------------------------------------------------- private objects


@frozen
class Order:
    """One order as Bybit reports it (REST realtime/history and the private ``order`` topic)."""

    order_id: str
    order_link_id: str
    symbol: str
    side: Side
    order_type: OrderType
    price: Decimal
    qty: Decimal
    time_in_force: TimeInForce
    order_status: OrderStatus
    created_time: int
    updated_time: int
    position_idx: int = 0
    avg_price: Decimal | None = None  # Bybit sends "" or "0" before the first fill
    leaves_qty: Decimal = ZERO
    leaves_value: Decimal = ZERO
    cum_exec_qty: Decimal = ZERO
    cum_exec_value: Decimal = ZERO
    cum_exec_fee: Decimal = ZERO
    reduce_only: bool = False
    close_on_trigger: bool = False
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    create_type: str = "CreateByUser"
    stop_order_type: str = ""
    trigger_price: Decimal = ZERO
    last_price_on_created: Decimal = ZERO
    closed_pnl: Decimal | None = None  # present on the WebSocket stream only


@frozen
class Execution:
    """One fill (or other execution) of an order; ``exec_id`` is unique venue-wide."""

    exec_id: str
    symbol: str
    order_id: str
    order_link_id: str
    side: Side
    exec_price: Decimal
    exec_qty: Decimal
    exec_value: Decimal
    exec_fee: Decimal
    exec_time: int
    is_maker: bool
    exec_type: ExecType = ExecType.TRADE
    order_type: OrderType = OrderType.LIMIT
    order_price: Decimal = ZERO
    order_qty: Decimal = ZERO
    leaves_qty: Decimal = ZERO
    fee_rate: Decimal = ZERO
    closed_size: Decimal = ZERO
    exec_pnl: Decimal = ZERO
    mark_price: Decimal = ZERO
    fee_currency: str = "USDT"
    seq: int = 0


@frozen
class Position:
    """A one-way position (``positionIdx`` 0). ``side`` is None when flat (Bybit sends ``""``)."""

    symbol: str
    side: Side | None
    size: Decimal
    entry_price: Decimal  # REST ``avgPrice``, WebSocket ``entryPrice``
    position_value: Decimal = ZERO
    mark_price: Decimal = ZERO
    leverage: Decimal = Decimal(10)
    unrealised_pnl: Decimal = ZERO
    cur_realised_pnl: Decimal = ZERO
    cum_realised_pnl: Decimal = ZERO
    liq_price: Decimal | None = None
    position_im: Decimal = ZERO
    position_mm: Decimal = ZERO
    position_status: str = "Normal"
    position_idx: int = 0
    created_time: int = 0
    updated_time: int = 0
    seq: int = 0

    @property
    def signed_size(self) -> Decimal:
        if self.side is None:
            return ZERO
        return self.size * self.side.sign


@frozen
class CoinBalance:
    coin: str
    equity: Decimal
    wallet_balance: Decimal
    unrealised_pnl: Decimal = ZERO
    cum_realised_pnl: Decimal = ZERO
    total_order_im: Decimal = ZERO
    total_position_im: Decimal = ZERO
    total_position_mm: Decimal = ZERO
    usd_value: Decimal = ZERO
    available_to_withdraw: Decimal = ZERO


@frozen
class Wallet:
    """A UNIFIED account wallet (``/v5/account/wallet-balance`` item / ``wallet`` topic)."""

    account_type: str
    total_equity: Decimal
    total_wallet_balance: Decimal
    total_margin_balance: Decimal
    total_available_balance: Decimal
    total_perp_upl: Decimal = ZERO
    total_initial_margin: Decimal = ZERO
    total_maintenance_margin: Decimal = ZERO
    coins: tuple[CoinBalance, ...] = ()

    def coin(self, name: str) -> CoinBalance | None:
        return next((c for c in self.coins if c.coin == name), None)


# --------------------------------------------------------------------------- public market data

PriceLevel = tuple[Decimal, Decimal]
"""(price, size); a size of 0 in a delta deletes the level."""


@frozen
class OrderBookUpdate:
    """One ``orderbook.{depth}.{symbol}`` message (snapshot or delta)."""

    symbol: str
    depth: int
    type: BookUpdateType
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
    update_id: int  # ``u``
    seq: int
    ts: int
    cts: int


@frozen
class PublicTrade:
    time: int  # ``T``
    symbol: str
    side: Side  # taker side
    size: Decimal
    price: Decimal
    trade_id: str
    tick_direction: str = "ZeroPlusTick"
    block_trade: bool = False
    rpi: bool = False
    seq: int = 0


@frozen
class Ticker:
    """A ticker; in a delta, every field that did not change is ``None``."""

    symbol: str
    last_price: Decimal | None = None
    mark_price: Decimal | None = None
    index_price: Decimal | None = None
    bid1_price: Decimal | None = None
    bid1_size: Decimal | None = None
    ask1_price: Decimal | None = None
    ask1_size: Decimal | None = None
    prev_price_24h: Decimal | None = None
    price_24h_pcnt: Decimal | None = None
    high_price_24h: Decimal | None = None
    low_price_24h: Decimal | None = None
    volume_24h: Decimal | None = None
    turnover_24h: Decimal | None = None
    open_interest: Decimal | None = None
    funding_rate: Decimal | None = None
    next_funding_time: int | None = None
    tick_direction: str | None = None

    def merged(self, delta: Ticker) -> Ticker:
        """Apply a ticker delta: every non-None field of ``delta`` replaces ours."""
        changes = {k: v for k, v in asdict(delta, recurse=False).items() if v is not None}
        return evolve(self, **changes)


# --------------------------------------------------------------------------- WebSocket envelopes


@frozen
class TradesMessage:
    topic: str
    ts: int
    trades: tuple[PublicTrade, ...]


@frozen
class TickerMessage:
    topic: str
    type: BookUpdateType
    ts: int
    cs: int
    ticker: Ticker


@frozen
class OpAck:
    """A reply to ``subscribe``/``unsubscribe``/``auth``/``ping`` on the public or private stream.

    Public pongs arrive as ``op="ping"`` with ``ret_msg="pong"``; private pongs as ``op="pong"``
    with the server time in ``args``.
    """

    op: str
    success: bool
    ret_msg: str = ""
    conn_id: str = ""
    req_id: str = ""
    args: tuple[str, ...] = field(default=())

    @property
    def is_pong(self) -> bool:
        return self.op == "pong" or (self.op == "ping" and self.ret_msg == "pong")


@frozen
class PrivateMessage:
    """A private-topic push: ``data`` holds Orders, Executions, Positions or Wallets."""

    id: str
    topic: str
    creation_time: int
    data: tuple[Order, ...] | tuple[Execution, ...] | tuple[Position, ...] | tuple[Wallet, ...]
