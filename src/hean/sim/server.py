"""The embedded venue as a running service: one :class:`~hean.sim.venue.Venue`, its clock, its
market ticker, the REST and WebSocket front ends and the fault switches.

Everything here is a trio shell around pure cores: the venue (matching, accounts, market model),
:mod:`hean.sim.feed` (public topics), :mod:`hean.sim.auth`, :mod:`hean.sim.ratelimit` and
:mod:`hean.sim.faults`. Both transports — real TCP (:mod:`hean.sim.serve`) and the in-memory
network (:mod:`hean.sim.memnet`) — hand their streams to :meth:`SimServer.serve_http_stream` and
:meth:`SimServer.serve_ws_stream`, so they share one venue state.

**Clock.** Venue time is ``start_ms + (trio.current_time() - t0)`` in whole milliseconds, where
``t0`` is the trio time at construction. Under ``MockClock`` the venue therefore runs on fake time
and a test that sleeps 10 s of fake time sees 10 s of market; over TCP ``start_ms`` is the wall
clock at start-up so clients can sign requests with their own clock.

**Market ticker.** Every ``tick_interval_ms`` the venue advances (other participants, price
process) and the events it produced are fanned out: public trades at once, order-book and ticker
topics at their own cadence (a separate feed task wakes when something is due), private events to
the authenticated connections of their account. REST calls fan out their private events right after
the venue handled them, before the HTTP answer is sent, as on Bybit where the private stream
usually beats the REST response.

**Latency model** (milliseconds, constant): ``order_latency_ms`` before a trade request reaches
matching, ``response_latency_ms`` before any REST answer leaves, ``feed_latency_ms`` on every push.

**Determinism.** The venue is pure and seeded; the shell calls it at fake-clock instants that depend
only on the inputs, so the same seed and the same client actions give the same messages. (Two
things that happen at the *same* fake instant — a client's request and a market tick — are ordered
by trio's scheduler; clients that care use distinct instants.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import structlog
import trio
from attrs import field, frozen

from hean.bybit.stream import orderbook_msg, ticker_msg, trades_msg
from hean.sim.faults import (
    Blackhole,
    DropWebSockets,
    FaultCommand,
    FaultPlan,
    PausePrivate,
    RestFault,
    SetFeedDelay,
    SetRestDelay,
    StreamKind,
)
from hean.sim.feed import BookFeed, PublicTopic, TickerFeed, TopicKind, trade_messages
from hean.sim.http_app import RestApp, serve_http_connection
from hean.sim.ratelimit import RateLimiter
from hean.sim.venue import Venue, VenueSettings
from hean.sim.ws_server import OUTBOUND_QUEUE_SIZE, WsConn, WsHub

if TYPE_CHECKING:
    from hean.config import SimConfig

__all__ = ["SimServer", "SimServerSettings"]

log = structlog.get_logger()

# A trio deadline computed from a venue millisecond must land *on* that millisecond, not a hair
# before it because of float rounding (which would make a due feed look not yet due and spin).
_MS_EPSILON = 1e-6


@frozen
class SimServerSettings:
    """The shell's knobs (the venue's own live in :class:`~hean.sim.venue.VenueSettings`)."""

    api_key: str = "hean-paper-key"
    api_secret: str = field(default="hean-paper-secret", repr=False)
    feed_latency_ms: int = 5
    order_latency_ms: int = 5
    response_latency_ms: int = 5
    admin_enabled: bool = True
    outbound_queue_size: int = OUTBOUND_QUEUE_SIZE

    @classmethod
    def from_config(cls, sim: SimConfig) -> SimServerSettings:
        return cls(
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            feed_latency_ms=sim.feed_latency_ms,
            order_latency_ms=sim.order_latency_ms,
            response_latency_ms=sim.response_latency_ms,
            admin_enabled=sim.admin_enabled,
        )


class SimServer:
    """One running venue. Construct it inside trio (it reads ``trio.current_time()``)."""

    def __init__(
        self,
        venue: Venue,
        venue_settings: VenueSettings,
        settings: SimServerSettings | None = None,
    ) -> None:
        self.venue = venue
        self.venue_settings = venue_settings
        self.settings = settings or SimServerSettings()
        self.start_ms = venue_settings.start_ms
        self.tick_interval_ms = venue_settings.tick_interval_ms
        self._t0 = trio.current_time()
        self.faults = FaultPlan()
        self.rest = RestApp(
            venue,
            clock=self.now_ms,
            faults=self.faults,
            limiter=RateLimiter(),
            after_venue=self.pump,
            on_admin=self.apply_fault if self.settings.admin_enabled else None,
            order_latency_ms=self.settings.order_latency_ms,
            response_latency_ms=self.settings.response_latency_ms,
        )
        self.hub = WsHub(
            clock=self.now_ms,
            secret_for=venue.account_secret,
            symbols=venue.instruments().keys(),
            on_public_subscribe=self._on_public_subscribe,
            queue_size=self.settings.outbound_queue_size,
            reply_due=self._feed_due,
        )
        self._books: dict[tuple[str, int], BookFeed] = {}
        self._dirty_books: set[tuple[str, int]] = set()
        self._tickers: dict[str, TickerFeed] = {}
        self._dirty_tickers: set[str] = set()
        self._feed_wake = trio.Event()
        self.private_dropped = 0  # private events lost to a pause (never replayed)

    @classmethod
    def from_config(
        cls,
        sim: SimConfig,
        *,
        start_ms: int | None = None,
        balance: Decimal | None = None,
    ) -> SimServer:
        """A server with a fresh venue and the paper account from ``sim`` opened on it."""
        venue_settings = VenueSettings.from_config(sim)
        if start_ms is not None:
            venue_settings = attrs.evolve(venue_settings, start_ms=start_ms)
        venue = Venue(venue_settings)
        venue.open_account(sim.api_key, sim.api_secret, balance=balance)
        return cls(venue, venue_settings, SimServerSettings.from_config(sim))

    # ------------------------------------------------------------------ clock

    def now_ms(self) -> int:
        """Venue time in epoch milliseconds, driven by trio's clock (fake or real)."""
        return self.start_ms + math.floor((trio.current_time() - self._t0) * 1000 + _MS_EPSILON)

    def trio_time_at(self, venue_ms: int) -> float:
        """The trio time at which the venue clock reads ``venue_ms``."""
        return self._t0 + (venue_ms - self.start_ms) / 1000

    def _feed_due(self) -> float:
        return (
            trio.current_time() + (self.settings.feed_latency_ms + self.faults.feed_delay_ms) / 1000
        )

    # ------------------------------------------------------------------ transports

    async def serve_http_stream(self, stream: trio.abc.Stream) -> None:
        """Serve REST (HTTP/1.1) on one accepted stream."""
        await serve_http_connection(stream, self.rest.handle)

    async def serve_ws_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one WebSocket client on one accepted stream."""
        await self.hub.serve_stream(stream)

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the market ticker and the feed publisher until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._market_loop)
            nursery.start_soon(self._feed_loop)
            task_status.started()

    async def _market_loop(self) -> None:
        tick = self.tick_interval_ms
        step = 1
        while True:
            await trio.sleep_until(self.trio_time_at(self.start_ms + step * tick))
            now = self.now_ms()
            self.venue.advance(now)
            self.pump(now)
            # Over TCP a slow host may miss ticks: skip them rather than spin to catch up.
            step = max(step + 1, (now - self.start_ms) // tick + 1)

    async def _feed_loop(self) -> None:
        while True:
            now = self.now_ms()
            next_due = self._publish_feeds(now)
            self._feed_wake = trio.Event()
            deadline = math.inf if next_due is None else self.trio_time_at(next_due)
            with trio.move_on_at(deadline):
                await self._feed_wake.wait()

    def pump(self, now_ms: int) -> None:
        """Fan out everything the venue produced since the last drain."""
        events = self.venue.drain_events()
        due = self._feed_due()
        if events.trades:
            for message in trade_messages(events.trades, now_ms):
                if self.hub.has_subscribers(message.topic):
                    self.hub.broadcast(message.topic, trades_msg(message), due)
        for key in self._books:
            if key[0] in events.books_changed:
                self._dirty_books.add(key)
        self._dirty_tickers.update(self._tickers)
        if events.private:
            if self.faults.private_paused:
                self.private_dropped += len(events.private)
                log.info("sim_private_events_lost", count=len(events.private), reason="paused")
            else:
                for api_key, private in events.private:
                    self.hub.push_private(api_key, private, due)
        self._feed_wake.set()

    def _publish_feeds(self, now: int) -> int | None:
        """Publish every book/ticker topic that is due; return the next due time (venue ms)."""
        next_due: int | None = None
        due_time = self._feed_due()
        for key, feed in self._books.items():
            due = feed.due_at(dirty=key in self._dirty_books)
            if due is not None and due <= now:
                bids, asks = self.venue.book_levels(feed.symbol, feed.depth)
                seq = self.venue.cross_seq(feed.symbol)
                update = feed.publish(bids, asks, seq=seq, now_ms=now, cts=now)
                self._dirty_books.discard(key)
                if update is not None and self.hub.has_subscribers(feed.topic):
                    self.hub.broadcast(feed.topic, orderbook_msg(update), due_time)
                due = feed.due_at(dirty=False)
            if due is not None:
                next_due = due if next_due is None else min(next_due, due)
        for symbol, tfeed in self._tickers.items():
            if symbol not in self._dirty_tickers:
                continue
            due = tfeed.due_at()
            if due <= now:
                ticker = self.venue.ticker(symbol, now)
                msg = tfeed.publish(ticker, cs=self.venue.cross_seq(symbol), now_ms=now)
                self._dirty_tickers.discard(symbol)
                if msg is not None and self.hub.has_subscribers(tfeed.topic):
                    self.hub.broadcast(tfeed.topic, ticker_msg(msg), due_time)
            else:
                next_due = due if next_due is None else min(next_due, due)
        return next_due

    def _on_public_subscribe(self, conn: WsConn, topic: str) -> None:
        """Send a new subscriber the topic's snapshot (book and ticker topics)."""
        kind, _, rest = topic.partition(".")
        now = self.now_ms()
        due = self._feed_due()
        if kind == TopicKind.ORDERBOOK:
            depth_text, _, symbol = rest.partition(".")
            parsed = PublicTopic(TopicKind.ORDERBOOK, symbol, int(depth_text))
            key = (parsed.symbol, parsed.depth)
            feed = self._books.get(key)
            if feed is None:
                feed = self._books[key] = BookFeed(parsed.symbol, parsed.depth)
            if not feed.started:
                bids, asks = self.venue.book_levels(feed.symbol, feed.depth)
                seq = self.venue.cross_seq(feed.symbol)
                first = feed.publish(bids, asks, seq=seq, now_ms=now, cts=now)
                # The first publish is a snapshot; the topic's only subscriber so far is ``conn``.
                if first is not None:
                    self.hub.broadcast(feed.topic, orderbook_msg(first), due)
            else:
                snapshot = feed.snapshot(now)
                if snapshot is not None:
                    conn.push(orderbook_msg(snapshot), due)
        elif kind == TopicKind.TICKERS:
            tfeed = self._tickers.get(rest)
            if tfeed is None:
                tfeed = self._tickers[rest] = TickerFeed(rest)
            snap = tfeed.snapshot(now)
            if snap is None:
                ticker = self.venue.ticker(rest, now)
                snap = tfeed.publish(ticker, cs=self.venue.cross_seq(rest), now_ms=now)
                if snap is not None:
                    self.hub.broadcast(tfeed.topic, ticker_msg(snap), due)
            else:
                conn.push(ticker_msg(snap), due)
        self._feed_wake.set()

    # ------------------------------------------------------------------ faults

    def drop_websockets(self, stream: StreamKind = StreamKind.ALL) -> int:
        """Abort every connection of ``stream`` without a close frame (clients see 1006)."""
        conns = self.hub.select(stream)
        for conn in conns:
            conn.abort()
        log.info("sim_fault_drop_ws", stream=stream.value, connections=len(conns))
        return len(conns)

    def blackhole(self, stream: StreamKind = StreamKind.ALL) -> int:
        """Silence the current connections of ``stream``: bytes stop both ways, nothing closes.

        New connections are healthy, so a client that notices (heartbeat deadline) and reconnects
        recovers, just as after a half-open TCP connection.
        """
        conns = self.hub.select(stream)
        for conn in conns:
            conn.stream.blackholed = True
        log.info("sim_fault_blackhole", stream=stream.value, connections=len(conns))
        return len(conns)

    def inject_rest_fault(self, fault: RestFault, count: int = 1) -> None:
        """Plan ``fault`` for the next ``count`` REST requests whose path matches."""
        self.faults.inject_rest(fault, count)
        log.info("sim_fault_rest", kind=fault.kind.value, count=count, prefix=fault.path_prefix)

    def set_rest_delay(self, ms: int) -> None:
        self.faults.apply(SetRestDelay(ms))

    def set_feed_delay(self, ms: int) -> None:
        self.faults.apply(SetFeedDelay(ms))

    def pause_private(self, paused: bool = True) -> None:
        """Pause (or resume) private pushes; events produced meanwhile are lost, not queued."""
        self.faults.apply(PausePrivate(paused))
        log.info("sim_fault_private_pause", paused=paused)

    def apply_fault(self, command: FaultCommand) -> Mapping[str, Any]:
        """Carry out one fault command (Python callers and the admin endpoint alike)."""
        affected = 0
        match command:
            case DropWebSockets(stream=stream):
                affected = self.drop_websockets(stream)
            case Blackhole(stream=stream):
                affected = self.blackhole(stream)
            case _:
                self.faults.apply(command)
                log.info("sim_fault", command=type(command).__name__)
        return {"connections_affected": affected, **self.faults.describe()}
