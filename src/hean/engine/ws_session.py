"""Bybit v5 WebSocket sessions on trio-websocket: the public market-data stream and the private
account stream. Thin trio shells around the pure codec (:mod:`hean.bybit.stream`,
:mod:`hean.bybit.book`).

One ``run()`` is one connection. It is designed to be a supervised child
(:func:`hean.engine.supervisor.supervise`): it connects, subscribes (private: authenticates
first), awaits the ``on_ready`` hook (where the application plugs RECONCILE), reports
``task_status.started()`` and then reads until something goes wrong, which it raises. It never
reconnects by itself: reconnecting is a supervised restart, which replays the same steps, so
"ready" always means "connected, subscribed and reconciled".

Inside a connection, four kinds of task share one nursery:

* the **reader** only parses a frame and hands it off synchronously (a conflator for market data,
  ``send_nowait`` on a bounded lossless channel for private pushes). It never awaits slow work:
  when trio-websocket's message queue fills, its background task stops reading and also stops
  answering pings and close frames, and Bybit then drops us.
* the **heartbeat** sends Bybit's application ``{"op":"ping"}`` every ``ping_interval_s`` and
  expects the pong within ``pong_timeout_s`` (send included) or raises :class:`StreamStale`.
* the **staleness watchdog** raises :class:`StreamStale` when nothing arrived for
  ``stale_after_s``: a half-open TCP connection (no FIN/RST) blocks reads forever otherwise.
* the public stream's **resync** task re-subscribes an order book whose ``u`` sequence broke.

Failures surface as the nursery's ``ExceptionGroup`` (leaves: :class:`StreamError` subclasses,
``AuthError``); the supervisor logs the leaves and restarts.
"""

from __future__ import annotations

import abc
import enum
import itertools
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Final, Generic, TypedDict, TypeVar, Unpack

import structlog
import trio
from attrs import frozen
from prometheus_client import CollectorRegistry, Counter
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from hean.bybit import stream as codec
from hean.bybit.book import BookResult, OrderBook
from hean.bybit.errors import NO_RET_CODE, AuthError
from hean.bybit.signing import Credentials
from hean.bybit.types import (
    BookUpdateType,
    OpAck,
    OrderBookUpdate,
    PrivateMessage,
    Ticker,
    TickerMessage,
    TradesMessage,
)
from hean.engine.clock import WallClock

__all__ = [
    "DEFAULT_PRIVATE_TOPICS",
    "Conflator",
    "ConnectWs",
    "MarketData",
    "MarketKey",
    "MarketKind",
    "PrivateBacklogOverflow",
    "PrivateStream",
    "PublicStream",
    "SessionOptions",
    "StreamCounters",
    "StreamDisconnected",
    "StreamError",
    "StreamMetrics",
    "StreamProtocolError",
    "StreamStale",
    "StreamState",
    "StreamTimeout",
    "SubscribeError",
    "default_connect_ws",
]

log = structlog.get_logger("hean.engine.ws")

K = TypeVar("K")
V = TypeVar("V")

ConnectWs = Callable[[str], AbstractAsyncContextManager[WebSocketConnection]]
"""The transport seam: ``connect_ws(url)`` -> an async context manager yielding a connection."""

DEFAULT_PRIVATE_TOPICS: Final = ("order", "execution", "position", "wallet")
_AUTH_EXPIRY_MS: Final = 10_000


def default_connect_ws(url: str) -> AbstractAsyncContextManager[WebSocketConnection]:
    """Real TCP/TLS via trio-websocket, with timeouts that fit a shutdown budget.

    ``disconnect_timeout`` 2 s (the library default of 60 s would stall shutdown on a dead
    peer), ``connect_timeout`` 10 s, and a message queue large enough that a burst of book deltas
    does not stop the library's reader (which would also stop it answering pings).
    """
    return open_websocket_url(
        url,
        connect_timeout=10.0,
        disconnect_timeout=2.0,
        message_queue_size=1024,
        max_message_size=4 * 1024 * 1024,
    )


# --------------------------------------------------------------------------- errors


class StreamError(Exception):
    """Base of every failure of a stream session (each one ends the connection)."""


class StreamStale(StreamError):
    """No pong before the deadline, or no message for ``stale_after_s``: the socket is dead."""


class StreamDisconnected(StreamError):
    """The server (or the network) closed the connection."""


class StreamTimeout(StreamError):
    """An auth/subscribe/unsubscribe request was not acknowledged in time."""


class SubscribeError(StreamError):
    """Bybit refused a subscribe or unsubscribe (e.g. an invalid topic)."""


class StreamProtocolError(StreamError):
    """A private frame could not be parsed: its content (maybe a fill) would be lost, so the
    connection is dropped and the restart's reconciliation recovers the state instead."""


class PrivateBacklogOverflow(StreamError):
    """The consumer of private pushes fell behind and the lossless channel is full.

    Dropping an order update or a fill is never acceptable, and blocking the reader would stop
    pongs; so the session fails loudly, the supervisor restarts it, and reconciliation repairs
    whatever the consumer missed.
    """


# --------------------------------------------------------------------------- conflation


class Conflator(Generic[K, V]):
    """Latest value per key for a single consumer; ``put`` never blocks, overwrites are counted.

    Market data may be conflated: a strategy needs the current book, not every intermediate one.
    The producer (a stream reader) must never wait for the consumer.
    """

    def __init__(self, on_overwrite: Callable[[], None] | None = None) -> None:
        self._latest: dict[K, V] = {}
        self._dirty: dict[K, None] = {}
        self._event = trio.Event()
        self.overwritten = 0
        self._on_overwrite = on_overwrite  # e.g. a Prometheus counter's inc

    def put(self, key: K, value: V) -> None:
        """Store ``value`` as the latest for ``key`` (synchronous, not a checkpoint)."""
        if key in self._dirty:
            self.overwritten += 1
            if self._on_overwrite is not None:
                self._on_overwrite()
        self._latest[key] = value
        self._dirty[key] = None
        self._event.set()

    def latest(self, key: K) -> V | None:
        """The last value put for ``key`` (drained or not)."""
        return self._latest.get(key)

    def pending(self) -> int:
        """Keys updated since the last drain."""
        return len(self._dirty)

    async def drain(self) -> dict[K, V]:
        """Wait until at least one key changed; return every changed key's latest value."""
        await self._event.wait()
        self._event = trio.Event()
        batch = {k: self._latest[k] for k in self._dirty}
        self._dirty.clear()
        return batch


class MarketKind(enum.StrEnum):
    BOOK = "book"
    TICKER = "ticker"
    TRADES = "trades"


@frozen
class MarketKey:
    """Conflation key: one slot per (kind, symbol)."""

    kind: MarketKind
    symbol: str


MarketData = OrderBookUpdate | Ticker | TradesMessage
"""Values: the book as a snapshot (``OrderBook.snapshot()``), the merged full ticker, or the
latest trade batch (older undrained batches are overwritten and counted)."""


# --------------------------------------------------------------------------- status


class StreamState(enum.StrEnum):
    CONNECTING = "connecting"  # connecting, authenticating, subscribing or reconciling
    READY = "ready"  # subscribed and (private) reconciled
    DOWN = "down"  # no connection


class StreamCounters:
    """Plain counters for the status line (Prometheus twins live in :class:`StreamMetrics`)."""

    __slots__ = (
        "connects",
        "gaps",
        "messages",
        "overflows",
        "parse_errors",
        "resubscribes",
        "stale",
    )

    def __init__(self) -> None:
        self.connects = 0
        self.gaps = 0
        self.stale = 0
        self.resubscribes = 0
        self.parse_errors = 0
        self.messages = 0
        self.overflows = 0

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


class StreamMetrics:
    """Prometheus counters shared by the sessions of a process (label ``stream``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["stream"], registry=self.registry)

        self.reconnects = counter("hean_ws_reconnects", "WebSocket connections after the first.")
        self.gaps = counter("hean_ws_book_gaps", "Order-book sequence gaps (resync needed).")
        self.stale = counter("hean_ws_stale", "Connections dropped by pong deadline or watchdog.")
        self.parse_errors = counter("hean_ws_parse_errors", "Frames that could not be parsed.")
        self.overflows = counter("hean_ws_private_overflows", "Private backlog overflows.")
        self.messages = counter("hean_ws_messages", "Frames received.")
        self.resubscribes = counter("hean_ws_resubscribes", "Order-book resubscriptions.")

    def children(self, stream: str) -> dict[str, Counter]:
        """The labelled counters of one stream, by :class:`StreamCounters` attribute name."""
        return {
            "connects": self.reconnects.labels(stream),  # counted from the second connect on
            "gaps": self.gaps.labels(stream),
            "stale": self.stale.labels(stream),
            "parse_errors": self.parse_errors.labels(stream),
            "overflows": self.overflows.labels(stream),
            "messages": self.messages.labels(stream),
            "resubscribes": self.resubscribes.labels(stream),
        }


# --------------------------------------------------------------------------- the session core


class _AckWaiter:
    __slots__ = ("ack", "event", "op")

    def __init__(self, op: str) -> None:
        self.op = op
        self.event = trio.Event()
        self.ack: OpAck | None = None


class SessionOptions(TypedDict, total=False):
    """Keyword options both :class:`PublicStream` and :class:`PrivateStream` accept; every one
    is optional, and the defaults live in one place (``_Session.__init__``):

    ``connect_ws`` (:func:`default_connect_ws`), ``ping_interval_s`` (20), ``pong_timeout_s``
    (10), ``stale_after_s`` (30), ``request_timeout_s`` (10, per auth/subscribe ack),
    ``on_ready`` (None; awaited after the handshake, before ``started()``), ``on_down`` (None;
    called synchronously the moment a connection is known dead — before the close handshake,
    which may wait ``disconnect_timeout`` more) and ``metrics`` (None: plain counters only).
    """

    connect_ws: ConnectWs
    ping_interval_s: float
    pong_timeout_s: float
    stale_after_s: float
    request_timeout_s: float
    on_ready: Callable[[], Awaitable[None]] | None
    on_down: Callable[[], None] | None
    metrics: StreamMetrics | None


class _Session(abc.ABC):
    """What both streams share: connection lifecycle, acks, heartbeat, watchdog, counters."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        connect_ws: ConnectWs = default_connect_ws,
        ping_interval_s: float = 20.0,
        pong_timeout_s: float = 10.0,
        stale_after_s: float = 30.0,
        request_timeout_s: float = 10.0,
        on_ready: Callable[[], Awaitable[None]] | None = None,
        on_down: Callable[[], None] | None = None,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self._on_down = on_down
        for label, value in (
            ("ping_interval_s", ping_interval_s),
            ("pong_timeout_s", pong_timeout_s),
            ("stale_after_s", stale_after_s),
            ("request_timeout_s", request_timeout_s),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be positive, got {value}")
        self.url = url
        self.name = name
        self._connect_ws = connect_ws
        self._ping_interval_s = ping_interval_s
        self._pong_timeout_s = pong_timeout_s
        self._stale_after_s = stale_after_s
        self._request_timeout_s = request_timeout_s
        self._on_ready = on_ready
        self._metric_children = metrics.children(name) if metrics is not None else {}
        self.counters = StreamCounters()
        self._state = StreamState.DOWN
        self._req_ids = itertools.count(1)
        self._waiters: dict[str, _AckWaiter] = {}
        self._pong: trio.Event | None = None
        self._last_rx = -math.inf
        self._log = log.bind(stream=name)

    # ---- status

    @property
    def state(self) -> StreamState:
        return self._state

    def last_message_age_s(self) -> float | None:
        """Seconds since the last frame (``None`` when not connected)."""
        if self._state is StreamState.DOWN:
            return None
        return trio.current_time() - self._last_rx

    def _set_state(self, state: StreamState) -> None:
        if state is not self._state:
            self._log.info("stream_state", state=state.value)
            self._state = state

    def _inc(self, attr: str) -> None:
        value = getattr(self.counters, attr) + 1
        setattr(self.counters, attr, value)
        child = self._metric_children.get(attr)
        if child is not None and (attr != "connects" or value > 1):
            child.inc()

    # ---- hooks for the concrete streams

    @abc.abstractmethod
    async def _handshake(self, ws: WebSocketConnection, nursery: trio.Nursery) -> None:
        """Authenticate (private) and subscribe; the reader is already running."""

    @abc.abstractmethod
    def _handle(self, text: str) -> None:
        """Parse one frame and hand it off synchronously (never await in the reader)."""

    def _watch_time(self) -> float:
        """The time the staleness watchdog measures from (last frame, by default)."""
        return self._last_rx

    @abc.abstractmethod
    def _reset_connection_state(self) -> None:
        """Per-connection state (books, tickers) starts from scratch on every connect."""

    # ---- lifecycle

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One connection: connect -> handshake -> ``on_ready`` -> ``started()`` -> read.

        Never returns normally: it ends with the exception that broke the connection (an
        ``ExceptionGroup`` of :class:`StreamError`/``AuthError`` leaves), or with cancellation.
        """
        self._inc("connects")
        self._set_state(StreamState.CONNECTING)
        self._reset_connection_state()
        try:
            async with self._connect_ws(self.url) as ws:
                self._last_rx = trio.current_time()
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(self._reader, ws)
                        nursery.start_soon(self._heartbeat, ws)
                        nursery.start_soon(self._watchdog)
                        await self._handshake(ws, nursery)
                        if self._on_ready is not None:
                            await self._on_ready()
                        self._set_state(StreamState.READY)
                        task_status.started()
                finally:
                    # Known dead (pong deadline, watchdog, reader error) or cancelled: say so now,
                    # before leaving the connection's context, whose close handshake can take
                    # up to its disconnect timeout on a half-open socket.
                    self._mark_down()
        finally:
            self._waiters.clear()
            self._pong = None
            self._mark_down()

    def _mark_down(self) -> None:
        """Enter DOWN once per connection and tell ``on_down`` (synchronous: no checkpoint)."""
        if self._state is StreamState.DOWN:
            return
        self._set_state(StreamState.DOWN)
        if self._on_down is not None:
            self._on_down()

    async def _reader(self, ws: WebSocketConnection) -> None:
        while True:
            try:
                raw = await ws.get_message()
            except ConnectionClosed as exc:
                raise StreamDisconnected(f"{self.name}: connection closed: {exc.reason}") from exc
            self._last_rx = trio.current_time()
            self._inc("messages")
            self._handle(raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))

    async def _heartbeat(self, ws: WebSocketConnection) -> None:
        while True:
            await trio.sleep(self._ping_interval_s)
            pong = self._pong = trio.Event()
            try:
                # The deadline covers the send too: a send blocked on a full TCP buffer is as
                # dead as a pong that never comes.
                with trio.fail_after(self._pong_timeout_s):
                    await ws.send_message(codec.ping_msg(self._next_req_id("ping")))
                    await pong.wait()
            except trio.TooSlowError:
                self._inc("stale")
                self._log.warning("stream_pong_timeout", pong_timeout_s=self._pong_timeout_s)
                raise StreamStale(
                    f"{self.name}: no pong within {self._pong_timeout_s:g} s"
                ) from None
            except ConnectionClosed as exc:
                raise StreamDisconnected(f"{self.name}: closed while pinging") from exc

    async def _watchdog(self) -> None:
        while True:
            deadline = self._watch_time() + self._stale_after_s
            if trio.current_time() >= deadline:
                self._inc("stale")
                self._log.warning("stream_stale", stale_after_s=self._stale_after_s)
                raise StreamStale(f"{self.name}: nothing received for {self._stale_after_s:g} s")
            await trio.sleep_until(deadline)

    # ---- requests and acks

    def _next_req_id(self, op: str) -> str:
        return f"{self.name}-{op}-{next(self._req_ids)}"

    async def _request(
        self, ws: WebSocketConnection, op: str, build: Callable[[str], str]
    ) -> OpAck:
        """Send ``build(req_id)`` and wait for the matching ack (``StreamTimeout`` if none)."""
        req_id = self._next_req_id(op)
        waiter = _AckWaiter(op)
        self._waiters[req_id] = waiter
        try:
            with trio.fail_after(self._request_timeout_s):
                await ws.send_message(build(req_id))
                await waiter.event.wait()
        except trio.TooSlowError:
            raise StreamTimeout(
                f"{self.name}: {op} not acknowledged within {self._request_timeout_s:g} s"
            ) from None
        except ConnectionClosed as exc:
            raise StreamDisconnected(f"{self.name}: closed during {op}") from exc
        finally:
            self._waiters.pop(req_id, None)
        assert waiter.ack is not None  # set together with the event
        return waiter.ack

    def _on_ack(self, ack: OpAck) -> None:
        if ack.is_pong:
            if self._pong is not None:
                self._pong.set()
            return
        waiter = self._waiters.get(ack.req_id)
        if waiter is None:
            # Bybit echoes req_id when sent; tolerate a server that does not by matching the op.
            waiter = next(
                (w for w in self._waiters.values() if w.op == ack.op and w.ack is None), None
            )
        if waiter is None:
            self._log.warning(
                "stream_unexpected_ack", op=ack.op, success=ack.success, ret_msg=ack.ret_msg
            )
            return
        waiter.ack = ack
        waiter.event.set()

    async def _subscribe(self, ws: WebSocketConnection, topics: Sequence[str]) -> None:
        ack = await self._request(ws, "subscribe", lambda rid: codec.subscribe_msg(topics, rid))
        if not ack.success:
            raise SubscribeError(f"{self.name}: subscribe {list(topics)} refused: {ack.ret_msg}")

    async def _unsubscribe(self, ws: WebSocketConnection, topics: Sequence[str]) -> None:
        ack = await self._request(ws, "unsubscribe", lambda rid: codec.unsubscribe_msg(topics, rid))
        if not ack.success:
            raise SubscribeError(f"{self.name}: unsubscribe {list(topics)} refused: {ack.ret_msg}")


# --------------------------------------------------------------------------- public stream


class PublicStream(_Session):
    """``/v5/public/linear``: order books, trades and tickers into a :class:`Conflator`.

    Each symbol's :class:`~hean.bybit.book.OrderBook` is rebuilt on every connection. A ``u`` gap
    marks the book invalid (nothing is published for it) and queues a resync: unsubscribe and
    subscribe that book's topic, which makes Bybit send a fresh snapshot.

    The staleness watchdog counts market-data frames only (not pongs): a feed that still answers
    pings but stopped publishing is just as useless to a strategy.
    """

    def __init__(
        self,
        url: str,
        symbols: Iterable[str],
        conflator: Conflator[MarketKey, MarketData],
        *,
        depth: int = 50,
        trades: bool = True,
        tickers: bool = True,
        name: str = "public",
        **options: Unpack[SessionOptions],
    ) -> None:
        super().__init__(url, name=name, **options)
        self.symbols = tuple(dict.fromkeys(symbols))
        if not self.symbols:
            raise ValueError("PublicStream needs at least one symbol")
        self.depth = depth
        self._conflator = conflator
        self._want_trades = trades
        self._want_tickers = tickers
        self._books: dict[str, OrderBook] = {}
        self._tickers: dict[str, Ticker] = {}
        self._resyncing: set[str] = set()
        self._resync_send: trio.MemorySendChannel[str] | None = None
        self._last_data = -math.inf

    @property
    def topics(self) -> tuple[str, ...]:
        topics: list[str] = []
        for symbol in self.symbols:
            topics.append(codec.orderbook_topic(self.depth, symbol))
            if self._want_trades:
                topics.append(codec.trades_topic(symbol))
            if self._want_tickers:
                topics.append(codec.tickers_topic(symbol))
        return tuple(topics)

    def book(self, symbol: str) -> OrderBook | None:
        """The live book of ``symbol`` on the current connection (read-only use)."""
        return self._books.get(symbol)

    def _reset_connection_state(self) -> None:
        self._books = {s: OrderBook(s, self.depth) for s in self.symbols}
        self._tickers = {}
        self._resyncing = set()
        self._last_data = trio.current_time()

    def _watch_time(self) -> float:
        return self._last_data

    async def _handshake(self, ws: WebSocketConnection, nursery: trio.Nursery) -> None:
        # The resync queue is bounded by the number of books: at most one pending per symbol.
        send, receive = trio.open_memory_channel[str](len(self.symbols))
        self._resync_send = send
        nursery.start_soon(self._resyncer, ws, receive)
        await self._subscribe(ws, self.topics)
        self._log.info("public_subscribed", topics=len(self.topics))

    async def _resyncer(
        self, ws: WebSocketConnection, receive: trio.MemoryReceiveChannel[str]
    ) -> None:
        async with receive:
            async for symbol in receive:
                topic = codec.orderbook_topic(self.depth, symbol)
                self._inc("resubscribes")
                self._log.info("book_resync", symbol=symbol)
                await self._unsubscribe(ws, [topic])
                await self._subscribe(ws, [topic])

    def _handle(self, text: str) -> None:
        try:
            msg = codec.parse_public(text)
        except codec.StreamParseError as exc:
            # Market data may be skipped: a broken book delta shows up as a gap and resyncs.
            self._inc("parse_errors")
            self._log.warning("public_parse_error", error=str(exc))
            return
        if isinstance(msg, OpAck):
            self._on_ack(msg)
            return
        self._last_data = self._last_rx
        if isinstance(msg, OrderBookUpdate):
            self._on_book(msg)
        elif isinstance(msg, TickerMessage):
            self._on_ticker(msg)
        else:
            self._on_trades(msg)

    def _on_book(self, update: OrderBookUpdate) -> None:
        book = self._books.get(update.symbol)
        if book is None or update.depth != self.depth:
            self._log.warning("public_unexpected_book", symbol=update.symbol, depth=update.depth)
            return
        if book.apply(update) is BookResult.RESYNC_NEEDED:
            if update.symbol not in self._resyncing:
                self._resyncing.add(update.symbol)
                self._inc("gaps")
                self._log.warning(
                    "book_gap", symbol=update.symbol, last_u=book.update_id, u=update.update_id
                )
                assert self._resync_send is not None  # set before subscribing
                # Never blocks: at most one pending resync per symbol, capacity = symbols.
                self._resync_send.send_nowait(update.symbol)
            return
        self._resyncing.discard(update.symbol)
        self._conflator.put(MarketKey(MarketKind.BOOK, update.symbol), book.snapshot())

    def _on_ticker(self, msg: TickerMessage) -> None:
        symbol = msg.ticker.symbol
        current = self._tickers.get(symbol)
        if msg.type is BookUpdateType.SNAPSHOT or current is None:
            if msg.type is not BookUpdateType.SNAPSHOT:
                self._log.debug("ticker_delta_before_snapshot", symbol=symbol)
            merged = msg.ticker
        else:
            merged = current.merged(msg.ticker)
        self._tickers[symbol] = merged
        self._conflator.put(MarketKey(MarketKind.TICKER, symbol), merged)

    def _on_trades(self, msg: TradesMessage) -> None:
        symbol = msg.topic.rpartition(".")[2]
        self._conflator.put(MarketKey(MarketKind.TRADES, symbol), msg)


# --------------------------------------------------------------------------- private stream


class PrivateStream(_Session):
    """``/v5/private``: authenticated order/execution/position/wallet pushes, lossless.

    Pushes go to ``events`` with ``send_nowait``; a full channel raises
    :class:`PrivateBacklogOverflow` (see there). The channel belongs to the application and
    outlives connections: the session never closes it, so restarts keep feeding the same consumer.

    ``on_ready`` runs after auth and subscribe, with the reader already running, so pushes that
    arrive during reconciliation are queued, not lost. The staleness watchdog counts every frame
    (pongs included): an account can be quiet for hours.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        events: trio.MemorySendChannel[PrivateMessage],
        *,
        clock: WallClock,
        topics: Sequence[str] = DEFAULT_PRIVATE_TOPICS,
        auth_expiry_ms: int = _AUTH_EXPIRY_MS,
        name: str = "private",
        on_queued: Callable[[int], None] | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        super().__init__(url, name=name, **options)
        if not topics:
            raise ValueError("PrivateStream needs at least one topic")
        self._creds = credentials
        self._events = events
        self._on_queued = on_queued  # buffer use after each push (the channel gauge)
        self._clock = clock
        self.topics = tuple(topics)
        self._auth_expiry_ms = auth_expiry_ms

    def _reset_connection_state(self) -> None:
        """Nothing to reset: private state lives in the application and is reconciled."""

    async def _handshake(self, ws: WebSocketConnection, nursery: trio.Nursery) -> None:
        expires_ms = self._clock() + self._auth_expiry_ms
        ack = await self._request(
            ws, "auth", lambda rid: codec.auth_msg(self._creds, expires_ms, rid)
        )
        if not ack.success:
            # Not retried blindly: the supervisor escalates AuthError (bad key, wrong env, IP).
            self._log.error("private_auth_failed", ret_msg=ack.ret_msg)
            raise AuthError(NO_RET_CODE, f"private stream auth refused: {ack.ret_msg}")
        await self._subscribe(ws, self.topics)
        self._log.info("private_subscribed", topics=list(self.topics))

    def _handle(self, text: str) -> None:
        try:
            msg = codec.parse_private(text)
        except codec.StreamParseError as exc:
            self._inc("parse_errors")
            self._log.error("private_parse_error", error=str(exc))
            raise StreamProtocolError(f"{self.name}: unparseable frame: {exc}") from exc
        if isinstance(msg, OpAck):
            self._on_ack(msg)
            return
        try:
            self._events.send_nowait(msg)
            if self._on_queued is not None:
                self._on_queued(self._events.statistics().current_buffer_used)
        except trio.WouldBlock:
            self._inc("overflows")
            stats = self._events.statistics()
            self._log.error(
                "private_backlog_overflow",
                buffer_used=stats.current_buffer_used,
                buffer_size=stats.max_buffer_size,
                topic=msg.topic,
            )
            raise PrivateBacklogOverflow(
                f"{self.name}: consumer behind, {stats.current_buffer_used} pushes queued"
            ) from None
