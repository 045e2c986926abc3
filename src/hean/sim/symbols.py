"""One tradable symbol of the venue: its rules, level-3 book, last trade and 24 h statistics.

Prices and sizes are integers (ticks, lots) inside the book; this class converts at the edges.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from hean.bybit.types import Instrument, Ticker
from hean.sim.matching import OrderBook

ZERO = Decimal(0)
HOUR_MS = 3_600_000
FUNDING_INTERVAL_MS = 8 * HOUR_MS


class SymbolState:
    """One tradable symbol: its rules, book, last trade and rolling 24 h statistics."""

    def __init__(self, inst: Instrument, start: Decimal) -> None:
        self.inst = inst
        self.symbol = inst.symbol
        self.tick = inst.tick_size
        self.step = inst.qty_step
        self.book = OrderBook(inst.symbol)
        self.cross_seq = 0
        self.last_price = start
        self.mark = start  # set by the market model every step (its fair price)
        self.tick_direction = "ZeroPlusTick"
        # Hourly buckets [hour, open, high, low, volume, turnover] for the 24 h ticker fields.
        self.buckets: deque[list[Decimal]] = deque()

    def to_ticks(self, price: Decimal) -> int:
        return int(price / self.tick)

    def to_lots(self, qty: Decimal) -> int:
        return int(qty / self.step)

    def price_of(self, ticks: int) -> Decimal:
        return ticks * self.tick

    def qty_of(self, lots: int) -> Decimal:
        return lots * self.step

    def record_trade(self, price: Decimal, qty: Decimal, now_ms: int) -> None:
        if price > self.last_price:
            self.tick_direction = "PlusTick"
        elif price < self.last_price:
            self.tick_direction = "MinusTick"
        elif self.tick_direction in ("PlusTick", "MinusTick"):
            self.tick_direction = "Zero" + self.tick_direction
        self.last_price = price
        hour = Decimal(now_ms // HOUR_MS)
        if not self.buckets or self.buckets[-1][0] != hour:
            self.buckets.append([hour, price, price, price, ZERO, ZERO])
            while len(self.buckets) > 25:
                self.buckets.popleft()
        b = self.buckets[-1]
        if price > b[2]:
            b[2] = price
        if price < b[3]:
            b[3] = price
        b[4] += qty
        b[5] += qty * price

    def ticker(self, now_ms: int, open_interest: Decimal) -> Ticker:
        oldest = Decimal(now_ms // HOUR_MS - 23)
        window = [b for b in self.buckets if b[0] >= oldest]
        # The open of the oldest hour still inside the window (hourly resolution is enough).
        prev = window[0][1] if window else self.last_price
        high = max((b[2] for b in window), default=self.last_price)
        low = min((b[3] for b in window), default=self.last_price)
        pcnt = ((self.last_price - prev) / prev).quantize(Decimal("0.000001")) if prev else ZERO
        bid, ask = self.book.best_bid(), self.book.best_ask()
        next_funding = (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS
        return Ticker(
            symbol=self.symbol,
            last_price=self.last_price,
            mark_price=self.mark,
            index_price=self.mark,
            bid1_price=self.price_of(bid) if bid is not None else ZERO,
            bid1_size=self.qty_of(self.book.level_total(True, bid)) if bid is not None else ZERO,
            ask1_price=self.price_of(ask) if ask is not None else ZERO,
            ask1_size=self.qty_of(self.book.level_total(False, ask)) if ask is not None else ZERO,
            prev_price_24h=prev,
            price_24h_pcnt=pcnt,
            high_price_24h=high,
            low_price_24h=low,
            volume_24h=sum((b[4] for b in window), ZERO),
            turnover_24h=sum((b[5] for b in window), ZERO),
            open_interest=open_interest,
            funding_rate=Decimal("0.0001"),
            next_funding_time=next_funding,
            tick_direction=self.tick_direction,
        )
