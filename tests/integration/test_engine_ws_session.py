"""PublicStream / PrivateStream against a fake Bybit WebSocket server on memory streams.

The fake speaks the real wire format (it uses the codec's server-side builders), runs on
``trio.testing.memory_stream_pair`` under ``autojump_clock``, and can blackhole or kill a
connection, stop answering pings, refuse auth or topics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from functools import partial
from urllib.parse import urlsplit

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    wrap_client_stream,
    wrap_server_stream,
)

from hean.bybit import stream as codec
from hean.bybit.errors import AuthError
from hean.bybit.signing import Credentials, verify_ws_auth
from hean.bybit.types import (
    BookUpdateType,
    Execution,
    Order,
    OrderBookUpdate,
    OrderStatus,
    OrderType,
    PrivateMessage,
    PublicTrade,
    Side,
    Ticker,
    TickerMessage,
    TimeInForce,
    TradesMessage,
)
from hean.config import SimConfig
from hean.engine.backoff import Backoff
from hean.engine.clock import TrioOffsetClock
from hean.engine.rest_client import BybitRestClient
from hean.engine.supervisor import supervise
from hean.engine.ws_session import (
    Conflator,
    MarketData,
    MarketKey,
    MarketKind,
    PrivateBacklogOverflow,
    PrivateStream,
    PublicStream,
    StreamDisconnected,
    StreamMetrics,
    StreamProtocolError,
    StreamStale,
    StreamState,
    SubscribeError,
)
from hean.sim.faults import StreamKind
from hean.sim.memnet import MemNet
from hean.sim.server import SimServer

START_MS = 1_767_225_600_000
KEY, SECRET = "ws-key", "ws-secret"
PUBLIC_URL = "ws://fake/v5/public/linear"
PRIVATE_URL = "ws://fake/v5/private"
D = Decimal


class PairListener(trio.abc.Listener[trio.abc.Stream]):
    """trio-websocket's test MemoryListener, remembering both ends of every connection."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](0)
        self.client_of: dict[int, trio.abc.Stream] = {}

    async def connect(self) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        self.client_of[id(server)] = client
        await self._send.send(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        return await self._receive.receive()

    async def aclose(self) -> None:
        self._send.close()
        self._receive.close()
        await trio.lowlevel.checkpoint()


class FakeConn:
    def __init__(self, ws: WebSocketConnection, server: trio.abc.Stream, client: object) -> None:
        self.ws = ws
        self.server_stream = server
        self.client_stream = client
        self.topics: set[str] = set()
        self.last_u: dict[str, int] = {}

    async def send(self, text: str) -> None:
        await self.ws.send_message(text)

    def blackhole(self) -> None:
        """Bytes stop flowing in both directions; nobody is told (a half-open socket)."""
        self.server_stream.send_stream.send_all_hook = None  # type: ignore[attr-defined]
        self.client_stream.send_stream.send_all_hook = None  # type: ignore[attr-defined]

    async def kill(self) -> None:
        """A rude close: the TCP connection disappears (the client sees code 1006)."""
        await self.server_stream.aclose()


class FakeBybitWs:
    """Answers subscribe/unsubscribe/ping/auth like Bybit and sends a book snapshot per book
    subscription. Tests push further frames through :attr:`conns`."""

    def __init__(self, *, private: bool = False) -> None:
        self.private = private
        self.listener = PairListener()
        self.conns: list[FakeConn] = []
        self.frames: list[tuple[int, codec.ClientFrame]] = []
        self.answer_pings = True
        self.auth_ok = True
        self.refuse_topics: set[str] = set()
        self.next_snapshot_u = 100
        self.connected = trio.Event()
        self.client_exits: list[float] = []  # when the client's connection body ended

    async def serve(
        self, *, task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await trio.serve_listeners(self._handle, [self.listener], task_status=task_status)

    def connect_ws(
        self, nursery: trio.Nursery
    ) -> Callable[[str], AbstractAsyncContextManager[WebSocketConnection]]:
        @asynccontextmanager
        async def connect(url: str) -> AsyncIterator[WebSocketConnection]:
            stream = await self.listener.connect()
            ws = await wrap_client_stream(nursery, stream, "fake", urlsplit(url).path)  # type: ignore[arg-type]
            try:
                yield ws
            finally:
                self.client_exits.append(trio.current_time())
                with trio.move_on_after(1.0, shield=True):
                    await ws.aclose()

        return connect

    async def _handle(self, stream: trio.abc.Stream) -> None:
        async with trio.open_nursery() as nursery:
            request = await wrap_server_stream(nursery, stream)
            ws = await request.accept()
            conn = FakeConn(ws, stream, self.listener.client_of[id(stream)])
            self.conns.append(conn)
            self.connected.set()
            index = len(self.conns) - 1
            try:
                while True:
                    frame = codec.parse_client(await ws.get_message())
                    self.frames.append((index, frame))
                    await self._respond(conn, frame)
            except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()

    def ops(self, conn_index: int | None = None) -> list[str]:
        return [f.op for i, f in self.frames if conn_index is None or i == conn_index]

    async def _respond(self, conn: FakeConn, frame: codec.ClientFrame) -> None:
        ack = codec.private_ack if self.private else codec.public_ack
        if frame.op == "ping":
            if self.answer_pings:
                pong = (
                    codec.private_pong(frame.req_id, START_MS)
                    if self.private
                    else codec.public_pong(req_id=frame.req_id)
                )
                await conn.send(pong)
        elif frame.op == "auth":
            api_key, expires, signature = codec.auth_params(frame)
            ok = self.auth_ok and api_key == KEY and verify_ws_auth(SECRET, expires, signature)
            await conn.send(ack("auth", ok, "" if ok else "Params Error", req_id=frame.req_id))
        elif frame.op == "subscribe":
            topics = [str(a) for a in frame.args]
            if self.refuse_topics & set(topics):
                await conn.send(ack("subscribe", False, "Invalid topic", req_id=frame.req_id))
                return
            conn.topics.update(topics)
            await conn.send(ack("subscribe", True, req_id=frame.req_id))
            for topic in topics:
                if topic.startswith("orderbook."):
                    _, depth, symbol = topic.split(".")
                    await self.send_book(
                        conn, symbol, self.next_snapshot_u, snapshot=True, depth=int(depth)
                    )
        elif frame.op == "unsubscribe":
            conn.topics.difference_update(str(a) for a in frame.args)
            await conn.send(ack("unsubscribe", True, req_id=frame.req_id))

    async def send_book(
        self,
        conn: FakeConn,
        symbol: str,
        u: int,
        *,
        snapshot: bool = False,
        depth: int = 50,
        bid: tuple[str, str] = ("100", "1"),
    ) -> None:
        update = OrderBookUpdate(
            symbol=symbol,
            depth=depth,
            type=BookUpdateType.SNAPSHOT if snapshot else BookUpdateType.DELTA,
            bids=((D(bid[0]), D(bid[1])),),
            asks=() if not snapshot else ((D("101"), D("2")),),
            update_id=u,
            seq=u,
            ts=START_MS,
            cts=START_MS,
        )
        conn.last_u[symbol] = u
        await conn.send(codec.orderbook_msg(update))


@asynccontextmanager
async def fake_venue(*, private: bool = False) -> AsyncIterator[tuple[FakeBybitWs, trio.Nursery]]:
    fake = FakeBybitWs(private=private)
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        yield fake, nursery
        nursery.cancel_scope.cancel()


def public_stream(fake: FakeBybitWs, nursery: trio.Nursery, **kwargs: object) -> PublicStream:
    params: dict[str, object] = {
        "connect_ws": fake.connect_ws(nursery),
        "ping_interval_s": 5.0,
        "pong_timeout_s": 3.0,
        "stale_after_s": 100.0,
        "request_timeout_s": 2.0,
        "metrics": StreamMetrics(CollectorRegistry()),
        **kwargs,
    }
    conflator = params.pop("conflator", Conflator[MarketKey, MarketData]())
    symbols = params.pop("symbols", ("BTCUSDT", "ETHUSDT"))
    return PublicStream(PUBLIC_URL, symbols, conflator, **params)  # type: ignore[arg-type]


def state_of(stream: PublicStream | PrivateStream) -> StreamState:
    """Read the state through a call, so type checkers do not keep a narrowed literal."""
    return stream.state


def an_order(link_id: str) -> Order:
    return Order(
        order_id="o-" + link_id,
        order_link_id=link_id,
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=D("100"),
        qty=D("1"),
        time_in_force=TimeInForce.GTC,
        order_status=OrderStatus.NEW,
        created_time=START_MS,
        updated_time=START_MS,
    )


def order_push(link_id: str) -> str:
    return codec.private_msg(
        PrivateMessage(id=link_id, topic="order", creation_time=START_MS, data=(an_order(link_id),))
    )


# --------------------------------------------------------------------------- public stream


async def test_public_subscribes_and_conflates_books_tickers_trades(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conflator = Conflator[MarketKey, MarketData]()
    async with fake_venue() as (fake, nursery):
        stream = public_stream(fake, nursery, conflator=conflator, symbols=("BTCUSDT",))
        assert stream.state is StreamState.DOWN
        await nursery.start(stream.run)
        assert state_of(stream) is StreamState.READY
        (conn,) = fake.conns
        assert conn.topics == {"orderbook.50.BTCUSDT", "publicTrade.BTCUSDT", "tickers.BTCUSDT"}

        batch = await conflator.drain()
        book = batch[MarketKey(MarketKind.BOOK, "BTCUSDT")]
        assert isinstance(book, OrderBookUpdate)
        assert book.update_id == 100

        await fake.send_book(conn, "BTCUSDT", 101, bid=("100.5", "3"))
        await fake.send_book(conn, "BTCUSDT", 102, bid=("100.6", "1"))
        ticker = Ticker(symbol="BTCUSDT", last_price=D("100.5"), mark_price=D("100.4"))
        await conn.send(
            codec.ticker_msg(
                TickerMessage("tickers.BTCUSDT", BookUpdateType.SNAPSHOT, START_MS, 1, ticker)
            )
        )
        delta = Ticker(symbol="BTCUSDT", last_price=D("100.7"))
        await conn.send(
            codec.ticker_msg(
                TickerMessage("tickers.BTCUSDT", BookUpdateType.DELTA, START_MS, 2, delta)
            )
        )
        trade = PublicTrade(START_MS, "BTCUSDT", Side.SELL, D("0.5"), D("100.5"), "t-1")
        await conn.send(codec.trades_msg(TradesMessage("publicTrade.BTCUSDT", START_MS, (trade,))))
        await trio.sleep(0.1)

        batch = await conflator.drain()
        book = batch[MarketKey(MarketKind.BOOK, "BTCUSDT")]
        assert isinstance(book, OrderBookUpdate)
        assert book.update_id == 102
        assert book.bids[0] == (D("100.6"), D("1"))
        assert (D("100.5"), D("3")) in book.bids
        merged = batch[MarketKey(MarketKind.TICKER, "BTCUSDT")]
        assert merged == Ticker(symbol="BTCUSDT", last_price=D("100.7"), mark_price=D("100.4"))
        trades = batch[MarketKey(MarketKind.TRADES, "BTCUSDT")]
        assert isinstance(trades, TradesMessage)
        assert trades.trades == (trade,)
        assert conflator.overwritten == 2  # two book updates and a ticker delta, unread
        assert stream.book("BTCUSDT") is not None


async def test_book_gap_resubscribes_for_a_fresh_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conflator = Conflator[MarketKey, MarketData]()
    async with fake_venue() as (fake, nursery):
        stream = public_stream(fake, nursery, conflator=conflator)
        await nursery.start(stream.run)
        (conn,) = fake.conns
        await conflator.drain()
        await fake.send_book(conn, "BTCUSDT", 101)
        fake.next_snapshot_u = 7  # Bybit's fresh snapshot may carry a lower u
        await fake.send_book(conn, "BTCUSDT", 103)  # 102 is missing
        await fake.send_book(conn, "BTCUSDT", 104)  # still stale: must not re-trigger or publish
        await trio.sleep(1.0)

        assert stream.counters.gaps == 1
        assert stream.counters.resubscribes == 1
        ops = [(f.op, f.args) for _, f in fake.frames if f.op != "ping"]
        assert ops[-2:] == [
            ("unsubscribe", ("orderbook.50.BTCUSDT",)),
            ("subscribe", ("orderbook.50.BTCUSDT",)),
        ]
        book = stream.book("BTCUSDT")
        assert book is not None
        assert book.is_valid
        assert book.update_id == 7
        batch = await conflator.drain()
        published = batch[MarketKey(MarketKind.BOOK, "BTCUSDT")]
        assert isinstance(published, OrderBookUpdate)
        assert published.update_id == 7
        await fake.send_book(conn, "BTCUSDT", 8)
        await trio.sleep(0.1)
        assert stream.book("BTCUSDT").update_id == 8  # type: ignore[union-attr]
        assert stream.state is StreamState.READY  # a gap is repaired in place, no reconnect


async def test_ping_deadline_fires_exactly_on_a_blackholed_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake_venue() as (fake, nursery):
        stream = public_stream(fake, nursery, ping_interval_s=5.0, pong_timeout_s=3.0)
        with pytest.RaisesGroup(StreamStale, flatten_subgroups=True):
            async with trio.open_nursery() as inner:
                await inner.start(stream.run)
                started = trio.current_time()
                await trio.sleep(7.0)  # one ping (t+5) answered
                assert fake.ops().count("ping") == 1
                fake.conns[0].blackhole()
        # Next ping at started+10, its pong deadline at started+13: not a moment later.
        assert fake.client_exits == [pytest.approx(started + 13.0)]
        assert stream.counters.stale == 1
        assert stream.state is StreamState.DOWN


async def test_on_down_fires_when_the_connection_is_known_dead_not_after_the_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The private stream closes the trading gate from ``on_down``: it must fire at the pong
    deadline, not after the close handshake on the half-open socket (here 1 s more)."""
    downs: list[float] = []
    async with fake_venue() as (fake, nursery):
        stream = public_stream(
            fake,
            nursery,
            ping_interval_s=5.0,
            pong_timeout_s=3.0,
            on_down=lambda: downs.append(trio.current_time()),
        )
        with pytest.RaisesGroup(StreamStale, flatten_subgroups=True):
            async with trio.open_nursery() as inner:
                await inner.start(stream.run)
                started = trio.current_time()
                fake.conns[0].blackhole()
        ended = trio.current_time()
    assert downs == [pytest.approx(started + 8.0)]  # first ping at +5, its deadline at +8
    assert ended >= downs[0] + 1.0  # the close handshake waited its full second afterwards


async def test_watchdog_catches_a_feed_that_answers_pings_but_sends_no_data(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake_venue() as (fake, nursery):
        stream = public_stream(fake, nursery, ping_interval_s=2.0, stale_after_s=12.0)
        with pytest.RaisesGroup(StreamStale, flatten_subgroups=True):
            async with trio.open_nursery() as inner:
                await inner.start(stream.run)
                connected = trio.current_time()
        assert fake.client_exits == [pytest.approx(connected + 12.0)]
        assert fake.ops().count("ping") >= 5  # pings kept being answered all along


async def test_rude_close_raises_stream_disconnected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake_venue() as (fake, nursery):
        stream = public_stream(fake, nursery)
        with pytest.RaisesGroup(StreamDisconnected, flatten_subgroups=True):
            async with trio.open_nursery() as inner:
                await inner.start(stream.run)
                await fake.conns[0].kill()


async def test_refused_subscription_fails_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with fake_venue() as (fake, nursery):
        fake.refuse_topics = {"tickers.ETHUSDT"}
        stream = public_stream(fake, nursery)
        with pytest.RaisesGroup(SubscribeError, flatten_subgroups=True):
            await nursery.start(stream.run)
        assert stream.state is StreamState.DOWN


async def test_supervised_public_stream_reconnects_after_a_drop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conflator = Conflator[MarketKey, MarketData]()
    async with fake_venue() as (fake, nursery):
        stream = public_stream(fake, nursery, conflator=conflator, symbols=("BTCUSDT",))
        backoff = Backoff(base_s=1.0, cap_s=8.0, jitter=0.0)
        await nursery.start(
            partial(
                supervise, stream.run, name="public", max_restarts=3, window_s=60.0, backoff=backoff
            )
        )
        await fake.conns[0].kill()
        await trio.sleep(0.5)
        assert stream.state is StreamState.DOWN
        await trio.sleep(1.0)  # backoff elapsed: reconnected, resubscribed, fresh snapshot
        assert state_of(stream) is StreamState.READY
        assert len(fake.conns) == 2
        assert stream.counters.reconnects == 1
        assert "orderbook.50.BTCUSDT" in fake.conns[1].topics
        book = stream.book("BTCUSDT")
        assert book is not None
        assert book.is_valid


# --------------------------------------------------------------------------- private stream


def private_stream(
    fake: FakeBybitWs,
    nursery: trio.Nursery,
    events: trio.MemorySendChannel[PrivateMessage],
    **kwargs: object,
) -> PrivateStream:
    params: dict[str, object] = {
        "clock": TrioOffsetClock(START_MS),
        "connect_ws": fake.connect_ws(nursery),
        "ping_interval_s": 5.0,
        "pong_timeout_s": 3.0,
        "stale_after_s": 30.0,
        "request_timeout_s": 2.0,
        **kwargs,
    }
    return PrivateStream(PRIVATE_URL, Credentials(KEY, SECRET), events, **params)  # type: ignore[arg-type]


async def test_private_ready_only_after_auth_subscribe_and_reconcile(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[PrivateMessage](16)
    states: list[StreamState] = []
    async with fake_venue(private=True) as (fake, nursery):
        stream: PrivateStream

        async def reconcile() -> None:
            states.append(stream.state)
            assert fake.ops() == ["auth", "subscribe"]
            await fake.conns[0].send(order_push("during-reconcile"))  # must be queued, not lost
            await trio.sleep(4.0)  # a slow REST reconciliation; pings keep flowing meanwhile

        stream = private_stream(fake, nursery, send, on_ready=reconcile)
        await nursery.start(stream.run)
        assert trio.current_time() == pytest.approx(4.0)
        assert states == [StreamState.CONNECTING]
        assert stream.state is StreamState.READY
        ((_, sub),) = [(i, f) for i, f in fake.frames if f.op == "subscribe"]
        assert sub.args == ("order", "execution", "position", "wallet")

        await fake.conns[0].send(order_push("after-ready"))
        first = await receive.receive()
        second = await receive.receive()
        assert [m.data[0].order_link_id for m in (first, second)] == [  # type: ignore[union-attr]
            "during-reconcile",
            "after-ready",
        ]


async def test_private_auth_failure_raises_auth_error_and_subscribes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, _receive = trio.open_memory_channel[PrivateMessage](4)
    async with fake_venue(private=True) as (fake, nursery):
        fake.auth_ok = False
        stream = private_stream(fake, nursery, send)
        with pytest.RaisesGroup(AuthError, flatten_subgroups=True):
            await nursery.start(stream.run)
        assert fake.ops() == ["auth"]


async def test_private_auth_signature_uses_the_injected_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, _receive = trio.open_memory_channel[PrivateMessage](4)
    async with fake_venue(private=True) as (fake, nursery):
        await trio.sleep(30.0)
        stream = private_stream(fake, nursery, send)
        await nursery.start(stream.run)
        ((_, auth),) = [(i, f) for i, f in fake.frames if f.op == "auth"]
        assert auth.args[1] == START_MS + 30_000 + 10_000  # now + 10 s
        nursery.cancel_scope.cancel()


async def test_private_overflow_is_a_fault_not_a_silent_drop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[PrivateMessage](2)
    metrics = StreamMetrics(CollectorRegistry())
    async with fake_venue(private=True) as (fake, nursery):
        stream = private_stream(fake, nursery, send, metrics=metrics)
        with pytest.RaisesGroup(PrivateBacklogOverflow, flatten_subgroups=True):
            async with trio.open_nursery() as inner:
                await inner.start(stream.run)
                for i in range(3):  # nobody consumes: the third push does not fit
                    await fake.conns[0].send(order_push(f"p{i}"))
        assert stream.counters.overflows == 1
        assert metrics.overflows.labels("private")._value.get() == 1
        # The two that fit are still there for the consumer (and the channel is still open).
        assert [receive.receive_nowait().id for _ in range(2)] == ["p0", "p1"]


async def test_private_unparseable_frame_drops_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, _receive = trio.open_memory_channel[PrivateMessage](4)
    async with fake_venue(private=True) as (fake, nursery):
        stream = private_stream(fake, nursery, send)
        with pytest.RaisesGroup(StreamProtocolError, flatten_subgroups=True):
            async with trio.open_nursery() as inner:
                await inner.start(stream.run)
                await fake.conns[0].send(
                    '{"topic":"order","creationTime":1,"data":[{"orderId":1}]}'
                )
        assert stream.counters.parse_errors == 1


async def test_private_watchdog_counts_pongs_so_a_quiet_account_stays_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, _receive = trio.open_memory_channel[PrivateMessage](4)
    async with fake_venue(private=True) as (fake, nursery):
        stream = private_stream(fake, nursery, send, ping_interval_s=5.0, stale_after_s=8.0)
        await nursery.start(stream.run)
        await trio.sleep(120.0)
        assert stream.state is StreamState.READY
        assert stream.counters.stale == 0
        age = stream.last_message_age_s()
        assert age is not None
        assert age <= 5.0
        nursery.cancel_scope.cancel()


# --------------------------------------------------------------------------- against the simulator


def memnet_connect(
    net: MemNet, nursery: trio.Nursery
) -> Callable[[str], AbstractAsyncContextManager[WebSocketConnection]]:
    """The ConnectWs seam over the simulator's in-memory network."""

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[WebSocketConnection]:
        ws = await net.connect_ws(url, nursery=nursery)
        try:
            yield ws
        finally:
            with trio.move_on_after(2.0, shield=True):
                await ws.aclose()

    return connect


@asynccontextmanager
async def running_sim() -> AsyncIterator[tuple[SimServer, MemNet, trio.Nursery, SimConfig]]:
    cfg = SimConfig(symbols=("BTCUSDT", "ETHUSDT"), seed=11)
    server = SimServer.from_config(cfg)
    async with trio.open_nursery() as nursery:
        net = await nursery.start(MemNet.serve, server)
        yield server, net, nursery, cfg
        nursery.cancel_scope.cancel()


async def test_public_stream_against_the_simulator_survives_drops_and_blackholes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    conflator = Conflator[MarketKey, MarketData]()
    async with running_sim() as (server, net, nursery, _cfg):
        stream = PublicStream(
            "ws://sim/v5/public/linear",
            ("BTCUSDT", "ETHUSDT"),
            conflator,
            connect_ws=memnet_connect(net, nursery),
            ping_interval_s=5.0,
            pong_timeout_s=3.0,
            stale_after_s=10.0,
        )
        await nursery.start(
            partial(
                supervise,
                stream.run,
                name="public",
                max_restarts=5,
                window_s=300.0,
                backoff=Backoff(base_s=0.5, cap_s=5.0, jitter=0.0),
            )
        )
        await trio.sleep(2.0)
        batch = await conflator.drain()
        for symbol in ("BTCUSDT", "ETHUSDT"):
            book = batch[MarketKey(MarketKind.BOOK, symbol)]
            assert isinstance(book, OrderBookUpdate)
            assert book.bids[0][0] < book.asks[0][0]
            assert MarketKey(MarketKind.TICKER, symbol) in batch

        server.drop_websockets(StreamKind.PUBLIC)  # 1006: reconnect after the backoff
        await trio.sleep(3.0)
        assert state_of(stream) is StreamState.READY
        assert stream.counters.reconnects == 1

        server.blackhole(StreamKind.PUBLIC)  # half-open: only the ping deadline notices
        await trio.sleep(15.0)
        assert state_of(stream) is StreamState.READY
        assert stream.counters.reconnects == 2
        assert stream.counters.stale == 1
        assert stream.counters.gaps == 0  # the simulator's book sequence has no holes
        book_now = stream.book("BTCUSDT")
        assert book_now is not None
        assert book_now.is_valid
        nursery.cancel_scope.cancel()


async def test_private_stream_against_the_simulator_reconciles_then_streams_fills(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[PrivateMessage](256)
    async with running_sim() as (server, net, nursery, cfg):
        client = BybitRestClient(
            "http://sim",
            credentials=Credentials(cfg.api_key, cfg.api_secret),
            transport=net.http_transport(),
            clock=TrioOffsetClock(server.now_ms()),
        )
        reconciled: list[int] = []

        async def reconcile() -> None:
            await client.sync_clock()
            reconciled.append(len(await client.open_orders()))

        stream = PrivateStream(
            "ws://sim/v5/private",
            Credentials(cfg.api_key, cfg.api_secret),
            send,
            clock=client.server_clock,
            connect_ws=memnet_connect(net, nursery),
            on_ready=reconcile,
        )
        await nursery.start(stream.run)
        assert reconciled == [0]
        assert stream.state is StreamState.READY

        # A marketable IOC buy fills at once: the order and its execution arrive, lossless.
        await client.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            qty=D("0.001"),
            order_link_id="ws-fill-1",
        )
        topics: set[str] = set()
        with trio.fail_after(5.0):
            while not {"order", "execution", "position"} <= topics:
                msg = await receive.receive()
                topics.add(msg.topic)
                if msg.topic == "execution":
                    (fill,) = msg.data
                    assert isinstance(fill, Execution)
                    assert fill.order_link_id == "ws-fill-1"
        await client.aclose()
        nursery.cancel_scope.cancel()
