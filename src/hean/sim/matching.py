"""A per-symbol level-3 order book with exact price-time (FIFO) priority.

Prices and quantities are integers here: prices in ticks, quantities in lots (multiples of the
instrument's ``qtyStep``). Integers keep matching exact and fast; the venue converts to and from
``Decimal`` at its edges. Every resting order — the user's and the synthetic participants' — lives
in the same book, so queue position is real: an order joins the back of its level and trades only
after everything ahead of it at that price has traded or been cancelled.

Cancelled orders are removed lazily from their level's queue (they are marked dead and the level's
total is updated at once), which keeps cancels O(1) while the L2 view stays exact.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator


class Resting:
    """One order in the book. Mutable on purpose: matching updates ``leaves`` in place.

    ``owner`` is the account's API key for a user order and ``""`` for a synthetic participant;
    ``handle`` is unique within the venue and lets the owner find its own record of the order.
    """

    __slots__ = ("alive", "handle", "is_buy", "leaves", "owner", "price")

    def __init__(self, handle: int, owner: str, is_buy: bool, price: int, leaves: int) -> None:
        if leaves <= 0:
            raise ValueError(f"resting order needs a positive quantity, got {leaves}")
        self.handle = handle
        self.owner = owner
        self.is_buy = is_buy
        self.price = price
        self.leaves = leaves
        self.alive = False  # True while it sits in a book

    def __repr__(self) -> str:
        side = "B" if self.is_buy else "S"
        return f"Resting({self.handle} {self.owner or '-'} {side} {self.leaves}@{self.price})"


class Fill:
    """One match between the incoming order and one resting (maker) order."""

    __slots__ = ("maker", "price", "qty")

    def __init__(self, maker: Resting, price: int, qty: int) -> None:
        self.maker = maker
        self.price = price
        self.qty = qty


class Level:
    """All orders resting at one price, oldest first; ``total`` counts live quantity only."""

    __slots__ = ("price", "queue", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.queue: deque[Resting] = deque()
        self.total = 0

    def live_orders(self) -> Iterator[Resting]:
        return (r for r in self.queue if r.alive)


class OrderBook:
    """Bids and asks of one symbol. The book is never crossed: ``add`` refuses a crossing order,
    so callers match first (``match``) and rest only the remainder."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids: dict[int, Level] = {}
        self._asks: dict[int, Level] = {}
        # Ascending price lists; the best bid is the last bid price, the best ask the first ask.
        self._bid_prices: list[int] = []
        self._ask_prices: list[int] = []
        self.version = 0  # bumped on every change of the L2 view

    # ------------------------------------------------------------------ queries

    def best_bid(self) -> int | None:
        return self._bid_prices[-1] if self._bid_prices else None

    def best_ask(self) -> int | None:
        return self._ask_prices[0] if self._ask_prices else None

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def crosses(self, is_buy: bool, price: int) -> bool:
        """Would a limit order at ``price`` trade on arrival?"""
        if is_buy:
            ask = self.best_ask()
            return ask is not None and price >= ask
        bid = self.best_bid()
        return bid is not None and price <= bid

    def level_total(self, is_buy: bool, price: int) -> int:
        level = (self._bids if is_buy else self._asks).get(price)
        return level.total if level is not None else 0

    def queue_ahead(self, order: Resting) -> int:
        """Live quantity ahead of ``order`` in its level (its queue position in lots)."""
        level = (self._bids if order.is_buy else self._asks).get(order.price)
        if level is None or not order.alive:
            return 0
        ahead = 0
        for r in level.queue:
            if r is order:
                return ahead
            if r.alive:
                ahead += r.leaves
        return ahead

    def levels(self, is_buy: bool, depth: int) -> list[tuple[int, int]]:
        """The L2 view: ``(price, total)``, bids descending, asks ascending."""
        if is_buy:
            prices = self._bid_prices[-depth:][::-1] if depth > 0 else []
            return [(p, self._bids[p].total) for p in prices]
        prices = self._ask_prices[:depth] if depth > 0 else []
        return [(p, self._asks[p].total) for p in prices]

    def available(self, is_buy: bool, limit: int | None, want: int) -> int:
        """Opposite-side quantity an incoming order could take at ``limit`` (capped at ``want``)."""
        got = 0
        for price, level in self._opposite(is_buy):
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            got += level.total
            if got >= want:
                return want
        return got

    def levels_beyond(self, is_buy: bool, bound: int) -> list[Level]:
        """Levels farther from the touch than ``bound``: bids below it or asks above it."""
        if is_buy:
            cut = bisect.bisect_left(self._bid_prices, bound)
            return [self._bids[p] for p in self._bid_prices[:cut]]
        cut = bisect.bisect_right(self._ask_prices, bound)
        return [self._asks[p] for p in self._ask_prices[cut:]]

    def orders(self) -> Iterator[Resting]:
        """Every live order (for checks and tests), bids then asks."""
        for book in (self._bids, self._asks):
            for level in book.values():
                yield from level.live_orders()

    # ------------------------------------------------------------------ changes

    def add(self, order: Resting) -> None:
        """Rest ``order`` at the back of its level. It must not cross the book."""
        if order.alive:
            raise ValueError(f"{order!r} is already resting")
        if self.crosses(order.is_buy, order.price):
            raise ValueError(f"{order!r} would cross the book")
        book, prices = (
            (self._bids, self._bid_prices) if order.is_buy else (self._asks, self._ask_prices)
        )
        level = book.get(order.price)
        if level is None:
            level = Level(order.price)
            book[order.price] = level
            bisect.insort(prices, order.price)
        level.queue.append(order)
        level.total += order.leaves
        order.alive = True
        self.version += 1

    def cancel(self, order: Resting) -> None:
        """Remove a live order; its ``leaves`` is left as it was (the caller reports it)."""
        if not order.alive:
            return
        book = self._bids if order.is_buy else self._asks
        level = book[order.price]
        order.alive = False
        level.total -= order.leaves
        if level.total == 0:
            self._drop_level(order.is_buy, level)
        self.version += 1

    def reduce(self, order: Resting, new_leaves: int) -> None:
        """Shrink a live order in place; a smaller order keeps its queue position."""
        if not order.alive:
            raise ValueError(f"{order!r} is not resting")
        if not 0 < new_leaves <= order.leaves:
            raise ValueError(f"cannot reduce {order!r} to {new_leaves}")
        level = (self._bids if order.is_buy else self._asks)[order.price]
        level.total -= order.leaves - new_leaves
        order.leaves = new_leaves
        self.version += 1

    def match(self, is_buy: bool, limit: int | None, qty: int) -> list[Fill]:
        """Take up to ``qty`` lots from the opposite side at prices no worse than ``limit``
        (``None`` = any price), best price first and FIFO within a price."""
        fills: list[Fill] = []
        book = self._asks if is_buy else self._bids
        prices = self._ask_prices if is_buy else self._bid_prices
        while qty > 0 and prices:
            price = prices[0] if is_buy else prices[-1]
            if limit is not None and (price > limit if is_buy else price < limit):
                break
            level = book[price]
            queue = level.queue
            while qty > 0 and queue:
                maker = queue[0]
                if not maker.alive:
                    queue.popleft()
                    continue
                take = maker.leaves if maker.leaves < qty else qty
                fills.append(Fill(maker, price, take))
                maker.leaves -= take
                level.total -= take
                qty -= take
                if maker.leaves == 0:
                    maker.alive = False
                    queue.popleft()
            if level.total == 0:
                self._drop_level(not is_buy, level)
        if fills:
            self.version += 1
        return fills

    # ------------------------------------------------------------------ internals

    def _opposite(self, is_buy: bool) -> Iterator[tuple[int, Level]]:
        if is_buy:
            return ((p, self._asks[p]) for p in self._ask_prices)
        return ((p, self._bids[p]) for p in reversed(self._bid_prices))

    def _drop_level(self, is_buy: bool, level: Level) -> None:
        book, prices = (self._bids, self._bid_prices) if is_buy else (self._asks, self._ask_prices)
        del book[level.price]
        idx = bisect.bisect_left(prices, level.price)
        del prices[idx]
        # Dead orders still queued here are unreachable now; mark nothing, they are already dead.
        level.queue.clear()
