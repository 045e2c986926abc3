"""Public market-data feed of the embedded venue: topics, order books, tickers, trades.

Pure: no clock, no I/O. The server hands in successive L2 views of the venue's book (and tickers,
trades) with the venue time; this module turns them into the messages Bybit's
``/v5/public/linear`` stream sends (digest §6):

* ``orderbook.{depth}.{symbol}`` — one counter ``u`` per (symbol, depth), shared by every
  subscriber: a new subscriber gets a ``snapshot`` of the last *published* state with the current
  ``u``, after which every push is ``u + 1`` and holds only the changed levels (size ``"0"``
  deletes). Publishing is paced at the depth's cadence (1: 10 ms, 50: 20 ms, 200: 100 ms,
  1000: 200 ms). Depth 1 is snapshot-only and is re-pushed every 3 s with the *same* ``u`` when
  nothing changed. ``seq`` is the venue's cross sequence, comparable across depths.
* ``tickers.{symbol}`` — a ``snapshot`` on subscribe, then ``delta`` messages holding only the
  fields that changed, every 100 ms at most.
* ``publicTrade.{symbol}`` — ``snapshot`` messages of at most 1024 trades, in time order.

Deltas are computed against the last published view rather than against the venue's live book,
so a subscriber that starts from the snapshot and applies every delta holds exactly the venue's
top ``depth`` levels as of the last push, whatever happened in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final

import attrs
from attrs import frozen

from hean.bybit.types import (
    BookUpdateType,
    OrderBookUpdate,
    PriceLevel,
    PublicTrade,
    Ticker,
    TickerMessage,
    TradesMessage,
)

__all__ = [
    "DEPTH1_REPUSH_MS",
    "DEPTH_INTERVAL_MS",
    "MAX_TRADES_PER_MESSAGE",
    "TICKER_INTERVAL_MS",
    "BookFeed",
    "PublicTopic",
    "TickerFeed",
    "TopicKind",
    "parse_public_topic",
    "trade_messages",
]

#: Push cadence of each orderbook depth on the linear stream (docs websocket/public/orderbook.mdx).
DEPTH_INTERVAL_MS: Final[Mapping[int, int]] = {1: 10, 50: 20, 200: 100, 1000: 200}
#: Depth 1 is re-pushed with the same ``u`` when unchanged for this long.
DEPTH1_REPUSH_MS: Final = 3000
#: Tickers push at most every 100 ms.
TICKER_INTERVAL_MS: Final = 100
#: Bybit caps one publicTrade message at 1024 trades.
MAX_TRADES_PER_MESSAGE: Final = 1024

_ZERO = Decimal(0)


class TopicKind:
    ORDERBOOK: Final = "orderbook"
    TRADES: Final = "publicTrade"
    TICKERS: Final = "tickers"


@frozen
class PublicTopic:
    """A parsed public topic; ``depth`` is 0 for non-orderbook topics."""

    kind: str
    symbol: str
    depth: int = 0

    @property
    def name(self) -> str:
        if self.kind == TopicKind.ORDERBOOK:
            return f"orderbook.{self.depth}.{self.symbol}"
        return f"{self.kind}.{self.symbol}"


def parse_public_topic(topic: object, symbols: Iterable[str]) -> PublicTopic | None:
    """Parse a topic the venue serves, or None (Bybit answers those ``error:handler not found``)."""
    if not isinstance(topic, str):
        return None
    parts = topic.split(".")
    known = set(symbols)
    if len(parts) == 3 and parts[0] == TopicKind.ORDERBOOK:
        _, depth_text, symbol = parts
        if not depth_text.isdigit() or int(depth_text) not in DEPTH_INTERVAL_MS:
            return None
        if symbol not in known:
            return None
        return PublicTopic(TopicKind.ORDERBOOK, symbol, int(depth_text))
    if len(parts) == 2 and parts[0] in (TopicKind.TRADES, TopicKind.TICKERS):
        if parts[1] not in known:
            return None
        return PublicTopic(parts[0], parts[1])
    return None


# --------------------------------------------------------------------------- order book


def _level_diff(
    old: Mapping[Decimal, Decimal], new: Mapping[Decimal, Decimal], *, descending: bool
) -> tuple[PriceLevel, ...]:
    changes: list[PriceLevel] = [(p, s) for p, s in new.items() if old.get(p) != s]
    changes.extend((p, _ZERO) for p in old if p not in new)
    changes.sort(key=lambda lvl: lvl[0], reverse=descending)
    return tuple(changes)


def _levels(view: Sequence[PriceLevel], depth: int) -> dict[Decimal, Decimal]:
    return {p: s for p, s in view[:depth] if s > 0}


def _sorted(levels: Mapping[Decimal, Decimal], *, descending: bool) -> tuple[PriceLevel, ...]:
    return tuple(sorted(levels.items(), key=lambda lvl: lvl[0], reverse=descending))


class BookFeed:
    """The published state of one ``orderbook.{depth}.{symbol}`` topic."""

    def __init__(self, symbol: str, depth: int) -> None:
        if depth not in DEPTH_INTERVAL_MS:
            raise ValueError(f"unsupported orderbook depth {depth}")
        self.symbol = symbol
        self.depth = depth
        self.interval_ms = DEPTH_INTERVAL_MS[depth]
        self.update_id = 0  # ``u`` of the last push; 0 = nothing published yet
        self.last_push_ms: int | None = None
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._seq = 0
        self._cts = 0

    @property
    def topic(self) -> str:
        return f"orderbook.{self.depth}.{self.symbol}"

    @property
    def started(self) -> bool:
        return self.update_id > 0

    def due_at(self, *, dirty: bool) -> int | None:
        """The earliest venue time at which :meth:`publish` may push, or None if nothing is due.

        ``dirty`` says whether the venue's book changed since the last publish.
        """
        if self.last_push_ms is None:
            return 0
        if dirty:
            return self.last_push_ms + self.interval_ms
        if self.depth == 1:
            return self.last_push_ms + DEPTH1_REPUSH_MS
        return None

    def snapshot(self, ts: int) -> OrderBookUpdate | None:
        """A snapshot of the last published state for a new subscriber (None before the first)."""
        if not self.started:
            return None
        return self._message(
            BookUpdateType.SNAPSHOT,
            _sorted(self._bids, descending=True),
            _sorted(self._asks, descending=False),
            ts=ts,
        )

    def publish(
        self,
        bids: Sequence[PriceLevel],
        asks: Sequence[PriceLevel],
        *,
        seq: int,
        now_ms: int,
        cts: int,
    ) -> OrderBookUpdate | None:
        """Publish the venue's current L2 view (bids descending, asks ascending), if due.

        Returns the message every subscriber gets, or None when there is nothing to push: too
        early for the depth's cadence, or no change (for depth 1: no change within 3 s).
        """
        if self.last_push_ms is not None and now_ms < self.last_push_ms + self.interval_ms:
            return None
        new_bids = _levels(bids, self.depth)
        new_asks = _levels(asks, self.depth)
        changed = new_bids != self._bids or new_asks != self._asks
        if not self.started or changed:
            bid_diff = _level_diff(self._bids, new_bids, descending=True)
            ask_diff = _level_diff(self._asks, new_asks, descending=False)
            first = not self.started
            self._bids, self._asks = new_bids, new_asks
            self.update_id += 1
            self._seq, self._cts = seq, cts
            self.last_push_ms = now_ms
            if first or self.depth == 1:
                return self.snapshot(now_ms)
            return self._message(BookUpdateType.DELTA, bid_diff, ask_diff, ts=now_ms)
        assert self.last_push_ms is not None  # started implies a push happened
        if self.depth == 1 and now_ms >= self.last_push_ms + DEPTH1_REPUSH_MS:
            self.last_push_ms = now_ms
            return self.snapshot(now_ms)
        return None

    def _message(
        self,
        type_: BookUpdateType,
        bids: tuple[PriceLevel, ...],
        asks: tuple[PriceLevel, ...],
        *,
        ts: int,
    ) -> OrderBookUpdate:
        return OrderBookUpdate(
            symbol=self.symbol,
            depth=self.depth,
            type=type_,
            bids=bids,
            asks=asks,
            update_id=self.update_id,
            seq=self._seq,
            ts=ts,
            cts=self._cts,
        )


# --------------------------------------------------------------------------- tickers

_TICKER_FIELDS: Final = tuple(f.name for f in attrs.fields(Ticker) if f.name != "symbol")


class TickerFeed:
    """The published state of one ``tickers.{symbol}`` topic."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.topic = f"tickers.{symbol}"
        self.last_push_ms: int | None = None
        self._last: Ticker | None = None
        self._cs = 0

    def due_at(self) -> int:
        return 0 if self.last_push_ms is None else self.last_push_ms + TICKER_INTERVAL_MS

    def snapshot(self, ts: int) -> TickerMessage | None:
        if self._last is None:
            return None
        return TickerMessage(self.topic, BookUpdateType.SNAPSHOT, ts, self._cs, self._last)

    def publish(self, ticker: Ticker, *, cs: int, now_ms: int) -> TickerMessage | None:
        """Publish the venue's current ticker: the first as a snapshot, later ones as deltas of
        the changed fields; None when too early or nothing changed."""
        if self.last_push_ms is not None and now_ms < self.last_push_ms + TICKER_INTERVAL_MS:
            return None
        previous = self._last
        if previous is None:
            self._last, self._cs, self.last_push_ms = ticker, cs, now_ms
            return self.snapshot(now_ms)
        changes = {}
        for name in _TICKER_FIELDS:
            value = getattr(ticker, name)
            if value is not None and value != getattr(previous, name):
                changes[name] = value
        if not changes:
            return None
        self._last = previous.merged(Ticker(self.symbol, **changes))
        self._cs, self.last_push_ms = cs, now_ms
        delta = Ticker(self.symbol, **changes)
        return TickerMessage(self.topic, BookUpdateType.DELTA, now_ms, cs, delta)


# --------------------------------------------------------------------------- trades


def trade_messages(trades: Iterable[PublicTrade], now_ms: int) -> list[TradesMessage]:
    """Group trades by symbol (keeping their order) into ``publicTrade`` messages of ≤ 1024."""
    by_symbol: dict[str, list[PublicTrade]] = {}
    for trade in trades:
        by_symbol.setdefault(trade.symbol, []).append(trade)
    messages: list[TradesMessage] = []
    for symbol, items in by_symbol.items():
        for start in range(0, len(items), MAX_TRADES_PER_MESSAGE):
            chunk = tuple(items[start : start + MAX_TRADES_PER_MESSAGE])
            messages.append(TradesMessage(f"publicTrade.{symbol}", now_ms, chunk))
    return messages
