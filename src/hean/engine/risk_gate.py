"""The risk gate: a strategy's :class:`Signal` in, an :class:`OrderIntent` or a refusal out. Pure.

No trio, no I/O; the caller passes in everything the decision depends on (position, open orders,
mark price, instrument, fail-closed flag, monotonic ``now``). That keeps it a clean seam: a later
risk governor (drawdown, daily loss, circuit breaker, sizing) replaces or wraps
:meth:`RiskGate.check` without touching the router.

What it checks today (limits from :class:`hean.config.RiskConfig`), in order:

1. ``halted`` — intake stopped (shutdown, operator): every signal is refused;
2. fail-closed — the engine cannot explain its state: only ``reduce_only`` orders pass (the
   exchange enforces reduce-only against its own, true position, so they cannot add exposure);
   the same holds while new exposure is blocked (:meth:`RiskGate.block_exposure`, e.g. a loss
   limit of :mod:`hean.engine.loss_guard` was breached: ``loss_limit``);
3. rounding onto the instrument grid (quantity down onto ``qtyStep``; a buy price down and a sell
   price up onto ``tickSize``, so rounding never makes a price more aggressive) and the
   instrument's own rules (min/max qty, min notional, price band);
4. open orders per symbol (every non-final order counts: pending, in flight, unknown, resting);
5. order notional (``qty * price``; a market order is valued at the mark price);
6. projected position notional: the position plus every same-side non-final order plus this
   one, valued at the mark price (or the order price when no mark is known). Reduce-only orders
   cannot grow the position and skip this check.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from attrs import frozen

from hean.bybit.instruments import check_order, round_price, round_qty
from hean.bybit.types import ZERO, Instrument, OrderType, Side
from hean.engine.intents import OrderIntent, Signal
from hean.engine.orders import TrackedOrder
from hean.engine.portfolio import PositionState

if TYPE_CHECKING:
    from hean.config import RiskConfig

__all__ = [
    "DEFAULT_INTENT_TTL_S",
    "ExposureBlock",
    "RejectReason",
    "RiskDecision",
    "RiskGate",
    "RiskLimits",
]

DEFAULT_INTENT_TTL_S = 5.0
"""``EngineConfig.intent_ttl_s`` default: an intent not placed within it is dropped unsent."""


class RejectReason(enum.StrEnum):
    """Why a signal or intent was refused (the ``reason`` label of ``hean_intents_rejected``)."""

    HALTED = "halted"
    FAIL_CLOSED = "fail_closed"
    LOSS_LIMIT = "loss_limit"
    UNKNOWN_SYMBOL = "unknown_symbol"
    NO_PRICE = "no_price"
    INSTRUMENT_RULE = "instrument_rule"
    MAX_OPEN_ORDERS = "max_open_orders"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    # Decided by the router, listed here so that every reason lives in one enum.
    DUPLICATE = "duplicate"
    DUPLICATE_LINK_ID = "duplicate_link_id"
    CHANNEL_FULL = "channel_full"
    ROUTER_CLOSED = "router_closed"


@frozen
class RiskLimits:
    """The limits the gate enforces (a subset of ``RiskConfig``; build with :meth:`from_config`)."""

    max_order_notional_usdt: Decimal = Decimal("2000")
    max_position_notional_usdt: Decimal = Decimal("10000")
    max_open_orders_per_symbol: int = 10

    @classmethod
    def from_config(cls, risk: RiskConfig) -> RiskLimits:
        return cls(
            max_order_notional_usdt=risk.max_order_notional_usdt,
            max_position_notional_usdt=risk.max_position_notional_usdt,
            max_open_orders_per_symbol=risk.max_open_orders_per_symbol,
        )


@frozen
class RiskDecision:
    """The gate's answer: ``intent`` when allowed, ``reason`` (+ a human ``detail``) when not."""

    intent: OrderIntent | None
    reason: RejectReason | None = None
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.intent is not None

    @classmethod
    def allow(cls, intent: OrderIntent) -> RiskDecision:
        return cls(intent)

    @classmethod
    def reject(cls, reason: RejectReason, detail: str = "") -> RiskDecision:
        return cls(None, reason, detail)


@frozen
class ExposureBlock:
    """Why new exposure is refused: the rejection ``reason`` and a human ``detail``."""

    reason: RejectReason
    detail: str


def default_purpose(signal: Signal) -> str:
    """The link-id purpose of a signal's order: ``close`` for reduce-only, else ``open``."""
    return "close" if signal.reduce_only else "open"


class RiskGate:
    """Simple pre-trade limits (see the module docstring). Pure.

    Its state is two switches: ``halted`` (nothing passes) and ``exposure_block`` (only
    reduce-only orders pass). They are independent: a shutdown's halt/resume leaves a loss-limit
    block in place, and the other way round.
    """

    __slots__ = ("exposure_block", "halted", "limits", "ttl_s")

    def __init__(self, limits: RiskLimits | None = None, *, ttl_s: float = DEFAULT_INTENT_TTL_S):
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be > 0, got {ttl_s}")
        self.limits = limits if limits is not None else RiskLimits()
        self.ttl_s = ttl_s
        self.halted: str | None = None
        self.exposure_block: ExposureBlock | None = None

    def halt(self, reason: str) -> None:
        """Refuse every signal from now on (shutdown: "stop intake")."""
        self.halted = reason

    def resume(self) -> None:
        self.halted = None

    def block_exposure(self, detail: str, reason: RejectReason = RejectReason.LOSS_LIMIT) -> None:
        """Refuse every signal that could add exposure (reduce-only ones still pass) until
        :meth:`unblock_exposure`; ``reason`` labels the rejections (default ``loss_limit``)."""
        self.exposure_block = ExposureBlock(reason, detail)

    def unblock_exposure(self) -> None:
        self.exposure_block = None

    def check(
        self,
        signal: Signal,
        *,
        position: PositionState,
        open_orders: Sequence[TrackedOrder],
        mark_price: Decimal | None,
        instrument: Instrument | None,
        fail_closed: bool,
        now: float,
        purpose: str | None = None,
    ) -> RiskDecision:
        """Gate, round and size ``signal``; ``open_orders`` are the symbol's non-final orders.

        ``now`` is monotonic seconds; the intent's TTL runs from ``signal.created_at`` (never
        later than ``now``).
        """
        if self.halted is not None:
            return RiskDecision.reject(RejectReason.HALTED, self.halted)
        if fail_closed and not signal.reduce_only:
            return RiskDecision.reject(
                RejectReason.FAIL_CLOSED, "fail-closed: only reduce-only orders are allowed"
            )
        block = self.exposure_block
        if block is not None and not signal.reduce_only:
            return RiskDecision.reject(block.reason, block.detail)
        if instrument is None or instrument.symbol != signal.symbol:
            return RiskDecision.reject(RejectReason.UNKNOWN_SYMBOL, signal.symbol)

        is_market = signal.order_type is OrderType.MARKET
        qty = round_qty(instrument, signal.qty)
        price: Decimal | None = None
        if not is_market:
            assert signal.price is not None  # Signal enforces a price on limit orders
            # Rounding never makes a limit price more aggressive than the strategy asked for.
            if signal.side is Side.BUY:
                price = round_price(instrument, signal.price, rounding="down")
            else:
                price = round_price(instrument, signal.price, rounding="up")
        reference = price if price is not None else mark_price
        if reference is None:
            return RiskDecision.reject(RejectReason.NO_PRICE, "market order without a mark price")
        violation = check_order(
            instrument, qty=qty, price=price, is_market=is_market, reference_price=reference
        )
        if violation is not None or qty <= 0:
            detail = (
                "quantity rounds to zero"
                if violation is None
                else f"{violation.rule}: {violation.field}={violation.value}"
            )
            return RiskDecision.reject(RejectReason.INSTRUMENT_RULE, detail)

        limits = self.limits
        live = [o for o in open_orders if o.symbol == signal.symbol and not o.state.is_final]
        if len(live) >= limits.max_open_orders_per_symbol:
            return RiskDecision.reject(
                RejectReason.MAX_OPEN_ORDERS,
                f"{len(live)} open orders >= {limits.max_open_orders_per_symbol}",
            )

        notional = qty * reference
        if notional > limits.max_order_notional_usdt:
            return RiskDecision.reject(
                RejectReason.MAX_ORDER_NOTIONAL,
                f"order notional {notional} > {limits.max_order_notional_usdt}",
            )

        if not signal.reduce_only:
            pending = sum(
                (o.leaves_qty for o in live if o.side is signal.side and not _reduces(o)),
                ZERO,
            )
            projected = abs(position.size + signal.side.sign * (pending + qty))
            value_at = mark_price if mark_price is not None else reference
            projected_notional = projected * value_at
            if projected_notional > limits.max_position_notional_usdt:
                return RiskDecision.reject(
                    RejectReason.MAX_POSITION_NOTIONAL,
                    f"projected position notional {projected_notional} > "
                    f"{limits.max_position_notional_usdt}",
                )

        intent = OrderIntent.from_signal(
            signal,
            qty=qty,
            price=price,
            purpose=purpose if purpose is not None else default_purpose(signal),
            # The TTL runs from the strategy's decision: its price is as old as the signal.
            created_at=min(signal.created_at, now),
            ttl_s=self.ttl_s,
        )
        return RiskDecision.allow(intent)


def _reduces(order: TrackedOrder) -> bool:
    return order.intent is not None and order.intent.reduce_only
