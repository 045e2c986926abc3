"""Signals, order intents and the duplicate guard. Pure: no trio, no I/O, time is passed in.

The path of an order through the engine starts here::

    strategy ──Signal──▶ risk gate (sizing, limits, rounding) ──OrderIntent──▶ router ──▶ journal

* :class:`Signal` is what a strategy wants (its own idea of quantity and price).
* :class:`OrderIntent` is what the engine has decided to send: gated, sized, rounded onto the
  instrument's grid, and carrying its deterministic ``orderLinkId``
  (:func:`hean.bybit.link_id.make_order_link_id`). The intent is journaled *before* the request
  leaves, so the link id is the key that ties the journal, the exchange and the order tracker
  together; a retry of the same (strategy, signal, purpose) reuses it and Bybit answers 110072.
* :class:`DuplicateGuard` refuses an identical order (:class:`Fingerprint`) within a short window,
  the last line of defence against a strategy that emits the same signal twice under two ids.

Times: ``created_at``/``expires_at`` are monotonic seconds of the current process
(``trio.current_time()``). They are meaningless in another process; a restarted engine never uses
a journaled intent's expiry, it resolves journaled orders by querying the exchange.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import Any

from attrs import field, frozen

from hean.bybit.link_id import make_order_link_id
from hean.bybit.types import OrderType, Side, TimeInForce

__all__ = [
    "DEFAULT_DUPLICATE_WINDOW_S",
    "DuplicateGuard",
    "Fingerprint",
    "OrderIntent",
    "Signal",
    "intent_from_dict",
    "intent_to_dict",
]

DEFAULT_DUPLICATE_WINDOW_S = 5.0
"""How long an identical order is refused after the first (``EngineConfig.duplicate_window_s``)."""


def _positive(_inst: object, attribute: Any, value: Decimal) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value}")


def _positive_or_none(_inst: object, attribute: Any, value: Decimal | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 or None, got {value}")


def _non_empty(_inst: object, attribute: Any, value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


def _check_limit_price(order_type: OrderType, price: Decimal | None) -> None:
    if order_type is OrderType.LIMIT and price is None:
        raise ValueError("a Limit order needs a price")


@frozen
class Fingerprint:
    """What makes two orders "the same order": symbol, side, quantity and price.

    Decimals compare by value, so ``Decimal("1.0")`` and ``Decimal("1")`` are the same fingerprint
    (and hash alike), as they are the same order on the exchange.
    """

    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None


@frozen
class Signal:
    """A strategy's wish, before risk gating and sizing.

    Attributes:
        strategy: the strategy's name (part of the ``orderLinkId``).
        signal_id: unique per strategy; with ``strategy`` and the purpose it makes the link id.
        qty: the strategy's quantity (the gate may shrink or round it).
        price: limit price, or None for a market order (a market order may carry a reference
            price the sizer uses; it is never sent).
        created_at: monotonic seconds when the strategy emitted it.
    """

    strategy: str = field(validator=_non_empty)
    signal_id: str = field(validator=_non_empty)
    symbol: str = field(validator=_non_empty)
    side: Side
    qty: Decimal = field(validator=_positive)
    price: Decimal | None = field(validator=_positive_or_none)
    created_at: float
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False

    def __attrs_post_init__(self) -> None:
        _check_limit_price(self.order_type, self.price)


@frozen
class OrderIntent:
    """A gated, sized and rounded order, ready to be journaled and sent.

    Build it with :meth:`from_signal` so that ``order_link_id`` is always the deterministic one.
    ``price`` is None for market orders (the router sends none; Bybit fills market orders as IOC
    inside its own protection band).

    Attributes:
        purpose: why this order exists ("open", "close", "tp", "flatten", ...); part of the link
            id, so two orders for one signal (an entry and its exit) get distinct ids.
        expires_at: monotonic seconds after which the router drops the intent unsent (a stale
            intent in a full channel must not trade on an old price).
    """

    strategy: str = field(validator=_non_empty)
    signal_id: str = field(validator=_non_empty)
    purpose: str = field(validator=_non_empty)
    order_link_id: str = field(validator=_non_empty)
    symbol: str = field(validator=_non_empty)
    side: Side
    qty: Decimal = field(validator=_positive)
    price: Decimal | None = field(validator=_positive_or_none)
    order_type: OrderType
    time_in_force: TimeInForce
    reduce_only: bool
    created_at: float
    expires_at: float

    def __attrs_post_init__(self) -> None:
        _check_limit_price(self.order_type, self.price)
        if self.order_type is OrderType.MARKET and self.price is not None:
            raise ValueError("a Market intent carries no price (Bybit ignores it)")
        if self.expires_at < self.created_at:
            raise ValueError("expires_at is before created_at")

    @classmethod
    def from_signal(
        cls,
        signal: Signal,
        *,
        qty: Decimal,
        price: Decimal | None,
        purpose: str,
        created_at: float,
        ttl_s: float,
        reduce_only: bool | None = None,
    ) -> OrderIntent:
        """The intent for ``signal`` with the gate's sized/rounded ``qty`` and ``price``.

        ``price`` must already be on the tick grid (``hean.bybit.instruments.round_price``) and
        must be None for market orders; ``reduce_only`` defaults to the signal's.
        """
        return cls(
            strategy=signal.strategy,
            signal_id=signal.signal_id,
            purpose=purpose,
            order_link_id=make_order_link_id(signal.strategy, signal.signal_id, purpose),
            symbol=signal.symbol,
            side=signal.side,
            qty=qty,
            price=price,
            order_type=signal.order_type,
            time_in_force=signal.time_in_force,
            reduce_only=signal.reduce_only if reduce_only is None else reduce_only,
            created_at=created_at,
            expires_at=created_at + ttl_s,
        )

    @property
    def fingerprint(self) -> Fingerprint:
        return Fingerprint(self.symbol, self.side, self.qty, self.price)

    def expired(self, now: float) -> bool:
        """True once ``now`` (monotonic seconds) reached ``expires_at``."""
        return now >= self.expires_at


def intent_to_dict(intent: OrderIntent) -> dict[str, Any]:
    """A JSON-ready dict (Decimals as strings) for the journal."""
    return {
        "strategy": intent.strategy,
        "signal_id": intent.signal_id,
        "purpose": intent.purpose,
        "order_link_id": intent.order_link_id,
        "symbol": intent.symbol,
        "side": intent.side.value,
        "qty": str(intent.qty),
        "price": None if intent.price is None else str(intent.price),
        "order_type": intent.order_type.value,
        "time_in_force": intent.time_in_force.value,
        "reduce_only": intent.reduce_only,
        "created_at": intent.created_at,
        "expires_at": intent.expires_at,
    }


def intent_from_dict(d: dict[str, Any]) -> OrderIntent:
    """Inverse of :func:`intent_to_dict`; ``intent_from_dict(intent_to_dict(i)) == i``.

    The stored ``order_link_id`` is kept as written (not recomputed), so a journal written by an
    older link-id scheme still matches what the exchange knows.
    """
    price = d["price"]
    return OrderIntent(
        strategy=d["strategy"],
        signal_id=d["signal_id"],
        purpose=d["purpose"],
        order_link_id=d["order_link_id"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        qty=Decimal(d["qty"]),
        price=None if price is None else Decimal(price),
        order_type=OrderType(d["order_type"]),
        time_in_force=TimeInForce(d["time_in_force"]),
        reduce_only=bool(d["reduce_only"]),
        created_at=float(d["created_at"]),
        expires_at=float(d["expires_at"]),
    )


class DuplicateGuard:
    """Refuses an identical :class:`Fingerprint` seen less than ``window_s`` seconds ago.

    Pure and in memory: ``now`` is monotonic seconds passed by the caller. Entries older than the
    window are pruned on every call, so memory is bounded by the order rate times the window.
    A refused fingerprint does not extend the window (the first order's time counts), so a
    strategy that keeps re-emitting is let through again once per window at most.
    """

    __slots__ = ("_seen", "window_s")

    def __init__(self, window_s: float = DEFAULT_DUPLICATE_WINDOW_S) -> None:
        if window_s < 0:
            raise ValueError(f"window_s must be >= 0, got {window_s}")
        self.window_s = window_s
        # Insertion order == time order (times are monotonic), so pruning pops from the front.
        self._seen: OrderedDict[Fingerprint, float] = OrderedDict()

    def check(self, fingerprint: Fingerprint, now: float) -> bool:
        """True (and remember it) if the order may go; False if it duplicates a recent one."""
        self.prune(now)
        if fingerprint in self._seen:
            return False
        self._seen[fingerprint] = now
        return True

    def is_duplicate(self, fingerprint: Fingerprint, now: float) -> bool:
        """Whether ``check`` would refuse it, without recording anything."""
        seen_at = self._seen.get(fingerprint)
        return seen_at is not None and now - seen_at < self.window_s

    def forget(self, fingerprint: Fingerprint) -> None:
        """Let an identical order through at once (e.g. the first was withdrawn unsent)."""
        self._seen.pop(fingerprint, None)

    def prune(self, now: float) -> None:
        """Drop every entry at least ``window_s`` old."""
        while self._seen:
            fingerprint, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self.window_s:
                break
            del self._seen[fingerprint]

    def __len__(self) -> int:
        return len(self._seen)
