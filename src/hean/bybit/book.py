"""Local order-book state for one ``orderbook.{depth}.{symbol}`` stream. Pure: no I/O, no clock.

Bybit's rules (``shared/bybit-v5.md`` §6, gotcha 5):

- a ``snapshot`` replaces the book, and so does any message with ``u == 1`` (service restart);
- in a ``delta`` a size of ``0`` deletes the level, an unknown price inserts it, else the size is
  replaced;
- a delta is applied only if ``u == last_u + 1``; anything else is a gap, the book is marked
  invalid and :attr:`BookResult.RESYNC_NEEDED` is returned until the next snapshot arrives (the
  caller resubscribes to get one; its ``u`` may be lower than ours);
- depth 1 is snapshot-only and re-pushed every 3 s with the same ``u``: a snapshot always resets,
  so that is fine.

Each side keeps a dict (price -> size) for O(1) lookups plus a bisect-maintained sorted price list,
so the best level is O(1) and an insert/delete is a memmove over at most ``depth`` prices. The
sorted ``(price, size)`` tuples handed out by :meth:`OrderBook.bids`/:meth:`OrderBook.asks` are
built lazily and cached until the side changes again.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, insort
from collections.abc import Iterable
from decimal import Decimal

from hean.bybit.types import BookUpdateType, OrderBookUpdate, PriceLevel

__all__ = ["BookResult", "OrderBook"]


class BookResult(enum.Enum):
    OK = "ok"
    RESYNC_NEEDED = "resync_needed"


class _Side:
    """One side of the book; ``descending`` is True for bids (best = highest price)."""

    __slots__ = ("_cache", "_descending", "_prices", "_sizes")

    def __init__(self, descending: bool) -> None:
        self._descending = descending
        self._sizes: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []  # always ascending
        self._cache: tuple[PriceLevel, ...] | None = ()

    def reset(self, levels: Iterable[PriceLevel]) -> None:
        # Later duplicates win, zero sizes are not levels: the same reading as applying them.
        sizes = {price: size for price, size in levels}
        self._sizes = {price: size for price, size in sizes.items() if size != 0}
        self._prices = sorted(self._sizes)
        self._cache = None

    def apply(self, levels: Iterable[PriceLevel]) -> None:
        for price, size in levels:
            if size == 0:
                if self._sizes.pop(price, None) is not None:
                    del self._prices[bisect_left(self._prices, price)]
            else:
                if price not in self._sizes:
                    insort(self._prices, price)
                self._sizes[price] = size
            self._cache = None

    def best(self) -> PriceLevel | None:
        if not self._prices:
            return None
        price = self._prices[-1] if self._descending else self._prices[0]
        return price, self._sizes[price]

    def levels(self) -> tuple[PriceLevel, ...]:
        if self._cache is None:
            prices = reversed(self._prices) if self._descending else iter(self._prices)
            self._cache = tuple((p, self._sizes[p]) for p in prices)
        return self._cache

    def __len__(self) -> int:
        return len(self._prices)


class OrderBook:
    """The book of one symbol at one subscribed depth, kept in step with Bybit's messages."""

    __slots__ = ("_asks", "_bids", "_cts", "_seq", "_ts", "_update_id", "_valid", "depth", "symbol")

    def __init__(self, symbol: str, depth: int) -> None:
        self.symbol = symbol
        self.depth = depth
        self._bids = _Side(descending=True)
        self._asks = _Side(descending=False)
        self._update_id = 0
        self._seq = 0
        self._ts = 0
        self._cts = 0
        self._valid = False  # nothing to trust until the first snapshot

    # ------------------------------------------------------------------ updates

    def apply(self, update: OrderBookUpdate) -> BookResult:
        """Apply one message; returns ``RESYNC_NEEDED`` on a gap (or a delta before a snapshot).

        A message for another symbol or depth is a routing bug in the caller, not market data,
        and raises ``ValueError``.
        """
        if update.symbol != self.symbol or update.depth != self.depth:
            raise ValueError(
                f"update for {update.symbol}@{update.depth} applied to book "
                f"{self.symbol}@{self.depth}"
            )
        if update.type is BookUpdateType.SNAPSHOT or update.update_id == 1:
            self._bids.reset(update.bids)
            self._asks.reset(update.asks)
            self._valid = True
        elif not self._valid or update.update_id != self._update_id + 1:
            self._valid = False
            return BookResult.RESYNC_NEEDED
        else:
            self._bids.apply(update.bids)
            self._asks.apply(update.asks)
        self._update_id = update.update_id
        self._seq = update.seq
        self._ts = update.ts
        self._cts = update.cts
        return BookResult.OK

    def invalidate(self) -> None:
        """Distrust the book until the next snapshot (e.g. the stream dropped)."""
        self._valid = False

    # ------------------------------------------------------------------ reads

    @property
    def is_valid(self) -> bool:
        """True once a snapshot arrived and every delta since followed without a gap."""
        return self._valid

    @property
    def update_id(self) -> int:
        """``u`` of the last applied message (0 before the first snapshot)."""
        return self._update_id

    @property
    def seq(self) -> int:
        """Cross sequence of the last applied message (comparable across depths)."""
        return self._seq

    @property
    def ts(self) -> int:
        return self._ts

    @property
    def cts(self) -> int:
        """Matching-engine time of the last applied message (ms; comparable to trade ``T``)."""
        return self._cts

    def best_bid(self) -> PriceLevel | None:
        return self._bids.best()

    def best_ask(self) -> PriceLevel | None:
        return self._asks.best()

    def bids(self, limit: int | None = None) -> tuple[PriceLevel, ...]:
        """Bid levels, best (highest) first."""
        levels = self._bids.levels()
        return levels if limit is None else levels[:limit]

    def asks(self, limit: int | None = None) -> tuple[PriceLevel, ...]:
        """Ask levels, best (lowest) first."""
        levels = self._asks.levels()
        return levels if limit is None else levels[:limit]

    def mid_price(self) -> Decimal | None:
        bid, ask = self._bids.best(), self._asks.best()
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2

    def is_crossed(self) -> bool:
        """Best bid >= best ask: impossible on a healthy venue, so a sign of corrupt state."""
        bid, ask = self._bids.best(), self._asks.best()
        return bid is not None and ask is not None and bid[0] >= ask[0]

    def snapshot(self) -> OrderBookUpdate:
        """The current state as a snapshot message (what the simulator publishes, and what a
        freshly built book fed this message would equal)."""
        return OrderBookUpdate(
            symbol=self.symbol,
            depth=self.depth,
            type=BookUpdateType.SNAPSHOT,
            bids=self.bids(),
            asks=self.asks(),
            update_id=self._update_id,
            seq=self._seq,
            ts=self._ts,
            cts=self._cts,
        )

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.symbol}@{self.depth}, u={self._update_id}, valid={self._valid}, "
            f"bid={self.best_bid()}, ask={self.best_ask()})"
        )
