"""The demo strategy's pure core: a small market maker's quote planning (:func:`plan_quotes`).

The trio task that runs it is :class:`hean.engine.strategy_task.DemoMaker`.

What it does, per symbol, every ``requote_interval_s``:

* reads the *conflated* order book (only the latest snapshot matters to a quoter) and the local
  position;
* wants one bid ``quote_offset_ticks`` below the mid and one ask as far above it, sized at
  ``order_notional_usdt``, as PostOnly limit orders (a maker never wants to take; Bybit cancels a
  PostOnly order that would cross instead of filling it);
* skews both quotes away from its inventory (long: the bid moves away from the mid, the ask moves
  towards it), and stops quoting the side whose fill would take the position past
  ``max_position_notional_usdt``;
* keeps a resting quote whose price is still right (cancelling it would throw away its place in
  the FIFO queue), and cancels and replaces one whose price is wrong, through the router;
* never flattens: closing a position is the job of the risk layer and the operator.

Signal ids are deterministic: ``{symbol}-{epoch}-{seq}{b|s}``, where ``epoch`` is the wall-clock
millisecond (base 36) at which this strategy instance started and ``seq`` counts its signals. The
router derives each ``orderLinkId`` from (strategy, signal id, purpose), so a retry of one signal
reuses its link id (Bybit answers a duplicate with 110072), and a restarted engine — a new epoch —
can never collide with the link ids of its previous life that the journal still tracks.

It quotes only while the trading gate is open and the book is fresh: a quote computed from a
stale book (public stream down) or queued while the state is unknown would trade on old prices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from attrs import frozen

from hean.bybit.instruments import round_price, round_qty
from hean.bybit.types import Instrument, OrderBookUpdate, OrderType, Side, TimeInForce
from hean.config import StrategyConfig
from hean.engine.intents import Signal
from hean.engine.orders import TrackedOrder

__all__ = [
    "DEFAULT_MAX_BOOK_AGE_MS",
    "Cancel",
    "LiveQuote",
    "MakerParams",
    "Quote",
    "QuotePlan",
    "SignalIds",
    "desired_quotes",
    "live_quotes",
    "plan_quotes",
    "quote_signal",
]

DEFAULT_MAX_BOOK_AGE_MS: Final = 5_000
"""A book older than this (exchange ms vs the wall clock) is not quoted from."""

_SIDES: Final = (Side.BUY, Side.SELL)


@frozen
class MakerParams:
    """The strategy's parameters for one symbol (from ``[strategy]``)."""

    symbol: str
    order_notional: Decimal
    quote_offset_ticks: int
    max_position_notional: Decimal
    strategy: str = "demo_maker"
    max_book_age_ms: int = DEFAULT_MAX_BOOK_AGE_MS

    @classmethod
    def from_config(cls, cfg: StrategyConfig, symbol: str) -> MakerParams:
        return cls(
            symbol=symbol,
            order_notional=cfg.order_notional_usdt,
            quote_offset_ticks=cfg.quote_offset_ticks,
            max_position_notional=cfg.max_position_notional_usdt,
            strategy=cfg.name,
        )


@frozen
class Quote:
    """One order the strategy wants resting."""

    side: Side
    price: Decimal
    qty: Decimal


@frozen
class LiveQuote:
    """One of the strategy's own orders that may still trade (pending, in flight or resting).

    ``cancelling``: a cancel was already requested; it is on its way out and no longer counts as
    the side's quote (a replacement may be placed beside it).
    """

    link_id: str
    side: Side
    price: Decimal | None
    qty: Decimal
    cancelling: bool = False


@frozen
class Cancel:
    link_id: str
    side: Side
    reason: str


@frozen
class QuotePlan:
    """What to do now: cancel these, then place these. ``idle`` says why nothing is quoted."""

    cancels: tuple[Cancel, ...] = ()
    places: tuple[Quote, ...] = ()
    idle: str | None = None


def _best(levels: Sequence[tuple[Decimal, Decimal]]) -> Decimal | None:
    return levels[0][0] if levels else None


def desired_quotes(
    params: MakerParams,
    inst: Instrument,
    best_bid: Decimal,
    best_ask: Decimal,
    position_size: Decimal,
) -> dict[Side, Quote]:
    """The bid and ask the strategy wants for this book and position (a side may be absent).

    Skew: with ``f`` the position's notional over ``max_position_notional`` (clamped to
    [-1, 1]), ``round(f * (offset + 1))`` ticks are added to the offset of the side that would
    grow the position and taken from the other (never below 0 ticks from the mid). The bid stays
    below the best ask and the ask above the best bid, one tick apart at least.
    """
    if best_bid <= 0 or best_ask <= 0 or best_bid >= best_ask:
        return {}
    mid = (best_bid + best_ask) / 2
    qty = round_qty(inst, params.order_notional / mid)
    if qty < inst.min_order_qty or qty * mid < inst.min_notional_value:
        return {}
    limit = params.max_position_notional
    fraction = max(Decimal(-1), min(Decimal(1), position_size * mid / limit))
    skew = int((fraction * (params.quote_offset_ticks + 1)).to_integral_value(ROUND_HALF_EVEN))
    offset = params.quote_offset_ticks
    tick = inst.tick_size
    bid_px = round_price(inst, mid - max(0, offset + skew) * tick, rounding="down")
    ask_px = round_price(inst, mid + max(0, offset - skew) * tick, rounding="up")
    # Never cross the book (PostOnly would only be cancelled) and never quote a zero-width
    # market: with 0 ticks of offset on an on-grid mid both sides would land on the mid.
    bid_px = min(bid_px, best_ask - tick)
    ask_px = max(ask_px, best_bid + tick)
    if bid_px >= ask_px:
        ask_px = bid_px + tick
    out: dict[Side, Quote] = {}
    for side, price in ((Side.BUY, bid_px), (Side.SELL, ask_px)):
        if price <= 0:
            continue
        projected = position_size + qty * side.sign
        # Stop the side that would take the position past the limit (reducing is always fine).
        if abs(projected) > abs(position_size) and abs(projected) * mid > limit:
            continue
        out[side] = Quote(side, price, qty)
    return out


def plan_quotes(
    params: MakerParams,
    inst: Instrument,
    book: OrderBookUpdate | None,
    position_size: Decimal,
    live: Iterable[LiveQuote],
    *,
    now_ms: int,
) -> QuotePlan:
    """Compare the wanted quotes with the live ones: keep, cancel, place.

    Without a usable book (none, one-sided, crossed or older than ``max_book_age_ms``) every
    live quote is cancelled and nothing is placed: a maker must not rest on prices it can no
    longer see.
    """
    live = [q for q in live if not q.cancelling]
    bid = _best(book.bids) if book is not None else None
    ask = _best(book.asks) if book is not None else None
    idle: str | None = None
    if book is None or bid is None or ask is None:
        idle = "no_book"
    elif now_ms - book.ts > params.max_book_age_ms:
        idle = "stale_book"
    elif bid >= ask:
        idle = "crossed_book"
    if idle is not None:
        return QuotePlan(cancels=tuple(Cancel(q.link_id, q.side, idle) for q in live), idle=idle)
    assert bid is not None
    assert ask is not None
    wanted = desired_quotes(params, inst, bid, ask, position_size)
    cancels: list[Cancel] = []
    places: list[Quote] = []
    for side in _SIDES:
        mine = [q for q in live if q.side is side]
        want = wanted.get(side)
        keep: LiveQuote | None = None
        if want is not None:
            keep = next((q for q in mine if q.price == want.price), None)
        for q in mine:
            if q is keep:
                continue
            reason = "side_stopped" if want is None else ("duplicate" if keep else "requote")
            cancels.append(Cancel(q.link_id, side, reason))
        if want is not None and keep is None:
            places.append(want)
    return QuotePlan(cancels=tuple(cancels), places=tuple(places))


def live_quotes(orders: Iterable[TrackedOrder], *, strategy: str, symbol: str) -> list[LiveQuote]:
    """The strategy's own non-final orders for ``symbol``, as the planner sees them."""
    out: list[LiveQuote] = []
    for o in orders:
        if o.state.is_final or o.symbol != symbol:
            continue
        if o.intent is None or o.intent.strategy != strategy:
            continue  # an adopted/external order, or another strategy's: not ours to requote
        out.append(
            LiveQuote(
                link_id=o.order_link_id,
                side=o.side,
                price=o.price,
                qty=o.leaves_qty,
                cancelling=o.cancel_requested_at is not None,
            )
        )
    return out


class SignalIds:
    """Deterministic signal ids ``{symbol}-{epoch36}-{seq}{b|s}`` (see the module docstring)."""

    __slots__ = ("_epoch", "_seq")

    def __init__(self, epoch_ms: int, *, start: int = 1) -> None:
        if epoch_ms < 0:
            raise ValueError("epoch_ms must be >= 0")
        self._epoch = _base36(epoch_ms)
        self._seq = start

    def next(self, symbol: str, side: Side) -> str:
        sid = f"{symbol}-{self._epoch}-{self._seq}{'b' if side is Side.BUY else 's'}"
        self._seq += 1
        return sid


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def quote_signal(params: MakerParams, quote: Quote, signal_id: str, created_at: float) -> Signal:
    """The router's input for one quote: a PostOnly limit order."""
    return Signal(
        strategy=params.strategy,
        signal_id=signal_id,
        symbol=params.symbol,
        side=quote.side,
        qty=quote.qty,
        price=quote.price,
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.POST_ONLY,
        reduce_only=False,
        created_at=created_at,
    )
