"""The venue's WebSocket front end: ``/v5/public/linear`` and ``/v5/private`` over trio-websocket.

:class:`WsHub` owns the live connections and their subscriptions; :meth:`WsHub.serve_stream`
serves one accepted byte stream (TCP from ``trio.serve_tcp`` or an in-memory stream from
:mod:`hean.sim.memnet`, the same code either way).

Per connection there are two tasks: the reader answers client ops as soon as it reads them (pongs
at once, acks after the feed latency, see :class:`WsHub`) and the writer drains a **bounded**
outbound queue, sleeping until each message's due time (feed latency).
The market side only ever calls :meth:`WsConn.push`, which never blocks: when a client is too slow
to drain its queue the connection is aborted and a ``sim_ws_client_too_slow`` line is logged —
Bybit cuts slow consumers too, and blocking the venue on one slow socket would stall every client.

Faults act on the byte stream under trio-websocket (:class:`FaultStream`), so they look to the
client exactly like the network failing: an abort closes the transport without a close frame
(the client sees 1006); a blackhole swallows bytes both ways and closes nothing (only a heartbeat
deadline can notice). Private pushes missed while paused, blackholed or disconnected are never
replayed, as on Bybit (digest §7): the client must reconcile over REST.

Private ops follow the digest: ``auth`` with ``[apiKey, expires, signature]``; ``subscribe``
before a successful auth is refused; all-in-one (``order``) and categorised (``order.linear``)
topics cannot be mixed in one request; the pong is ``op:"pong"`` with the server time in ``args``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Final

import structlog
import trio
from attrs import evolve
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    wrap_server_stream,
)

from hean.bybit.stream import (
    ClientFrame,
    StreamParseError,
    parse_client,
    private_ack,
    private_msg,
    private_pong,
    public_ack,
    public_pong,
)
from hean.bybit.types import PrivateMessage
from hean.sim.auth import WS_ALREADY_AUTHED, SecretLookup, check_ws_auth
from hean.sim.faults import StreamKind
from hean.sim.feed import parse_public_topic

__all__ = [
    "OUTBOUND_QUEUE_SIZE",
    "PRIVATE_PATH",
    "PRIVATE_TOPICS",
    "PUBLIC_PATH",
    "FaultStream",
    "WsConn",
    "WsHub",
]

log = structlog.get_logger()

PUBLIC_PATH: Final = "/v5/public/linear"
PRIVATE_PATH: Final = "/v5/private"
#: Messages a connection may have waiting before it counts as too slow and is cut.
OUTBOUND_QUEUE_SIZE: Final = 4096
_HANDSHAKE_TIMEOUT_S: Final = 10.0
_MAX_MESSAGE: Final = 1 << 20

#: Private topics served (all-in-one and categorised); ``execution.fast`` is not modelled.
PRIVATE_TOPICS: Final = frozenset(
    {
        "order",
        "execution",
        "position",
        "wallet",
        "order.linear",
        "execution.linear",
        "position.linear",
    }
)
_NOT_AUTHED: Final = "Request not authorized"


def _handler_not_found(topic: object) -> str:
    return f"error:handler not found,topic:{topic}"


class FaultStream(trio.abc.Stream):
    """A stream wrapper that can go silent on command (the transport-level blackhole).

    Blackholed, it accepts and discards everything the server sends and discards everything the
    client sends, but still reports the client's EOF so a client that gives up is cleaned away.
    """

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.blackholed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.blackholed:
            await trio.lowlevel.checkpoint()
            return
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        while True:
            data = await self.inner.receive_some(max_bytes)
            if not self.blackholed or not data:
                return data

    async def aclose(self) -> None:
        await self.inner.aclose()


class WsConn:
    """One client connection: its subscriptions, auth state and bounded outbound queue."""

    def __init__(
        self,
        conn_id: str,
        kind: StreamKind,
        ws: WebSocketConnection,
        stream: FaultStream,
        scope: trio.CancelScope,
        queue_size: int,
    ) -> None:
        self.conn_id = conn_id
        self.kind = kind
        self.ws = ws
        self.stream = stream
        self.topics: set[str] = set()
        self.api_key: str | None = None
        self.aborted = False
        self._scope = scope
        self._send, self._receive = trio.open_memory_channel[tuple[float, str]](queue_size)
        self._last_due = -math.inf

    def push(self, text: str, due: float) -> bool:
        """Queue ``text`` for delivery at trio time ``due``; False (and abort) if too slow."""
        if self.aborted:
            return False
        # Keep the queue in order even if a later message has an earlier due time (a delay
        # fault lifted): a WebSocket never reorders.
        due = max(due, self._last_due)
        self._last_due = due
        try:
            self._send.send_nowait((due, text))
        except trio.WouldBlock:
            log.warning(
                "sim_ws_client_too_slow",
                conn_id=self.conn_id,
                stream=self.kind.value,
                queued=self._send.statistics().current_buffer_used,
            )
            self.abort()
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The writer has ended (the peer went away); the connection is being torn down.
            self.aborted = True
            return False
        return True

    def abort(self) -> None:
        """Drop the connection without a close frame (the client sees 1006)."""
        self.aborted = True
        self._scope.cancel()

    async def writer(self) -> None:
        async with self._receive:
            async for due, text in self._receive:
                if due > trio.current_time():
                    await trio.sleep_until(due)
                try:
                    await self.ws.send_message(text)
                except ConnectionClosed:
                    return  # the peer is gone; the reader sees it too and ends the connection


class WsHub:
    """Every live WebSocket connection of the venue, by stream and topic.

    ``clock`` gives the venue time in ms (pong ``args``, auth expiry); ``secret_for`` looks up an
    API key's secret; ``on_public_subscribe`` is called after a public topic was added to a
    connection so the server can send the topic's snapshot (after the ack, in queue order).
    ``reply_due`` gives the trio time at which an op ack (auth/subscribe/unsubscribe) made now is
    delivered: the server passes its feed latency, because on a real network no answer arrives in
    the same instant the request left. A zero-latency ack breaks real clients: pybit's
    ``subscribe()`` records its ``req_id`` only after sending, and an ack that beats that line
    raises KeyError in pybit's reader thread and kills the connection. Default: at once. (Pongs
    stay immediate, as before: no client we know of races on them.)
    """

    def __init__(
        self,
        *,
        clock: Callable[[], int],
        secret_for: SecretLookup,
        symbols: Iterable[str],
        on_public_subscribe: Callable[[WsConn, str], None],
        queue_size: int = OUTBOUND_QUEUE_SIZE,
        reply_due: Callable[[], float] = trio.current_time,
    ) -> None:
        self._clock = clock
        self._reply_due = reply_due
        self._secret_for = secret_for
        self.symbols = tuple(symbols)
        self._on_public_subscribe = on_public_subscribe
        self._queue_size = queue_size
        self._ids = itertools.count(1)
        self.connections: dict[str, WsConn] = {}
        self.topic_subscribers: dict[str, dict[str, WsConn]] = {}  # public topic -> conns
        self.private_by_key: dict[str, dict[str, WsConn]] = {}  # api key -> authed conns

    # ------------------------------------------------------------------ fan-out

    def subscribers(self, topic: str) -> Iterator[WsConn]:
        return iter(list(self.topic_subscribers.get(topic, {}).values()))

    def has_subscribers(self, topic: str) -> bool:
        return bool(self.topic_subscribers.get(topic))

    def broadcast(self, topic: str, text: str, due: float) -> int:
        """Queue one rendered message for every subscriber of a public topic."""
        sent = 0
        for conn in self.subscribers(topic):
            sent += conn.push(text, due)
        return sent

    def push_private(self, api_key: str, msg: PrivateMessage, due: float) -> int:
        """Deliver a private event to each authed connection of ``api_key`` subscribed to it.

        The message goes out under the topic name the client subscribed (``order`` or
        ``order.linear``); connections not subscribed get nothing, and nothing is kept for later.
        """
        sent = 0
        for conn in list(self.private_by_key.get(api_key, {}).values()):
            for topic in (msg.topic, f"{msg.topic}.linear"):
                if topic in conn.topics:
                    text = private_msg(msg if topic == msg.topic else evolve(msg, topic=topic))
                    sent += conn.push(text, due)
        return sent

    def select(self, stream: StreamKind) -> list[WsConn]:
        return [c for c in self.connections.values() if stream.covers(c.kind)]

    # ------------------------------------------------------------------ serving

    async def serve_stream(self, raw: trio.abc.Stream) -> None:
        """Serve one WebSocket client on an accepted byte stream until it goes away or is cut."""
        stream = FaultStream(raw)
        conn: WsConn | None = None
        try:
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    request: WebSocketRequest | None = None
                    with trio.move_on_after(_HANDSHAKE_TIMEOUT_S):
                        request = await wrap_server_stream(
                            nursery, stream, max_message_size=_MAX_MESSAGE
                        )
                    if request is None:  # no HTTP upgrade within the timeout
                        nursery.cancel_scope.cancel()
                        return
                    path = request.path.partition("?")[0]
                    if path == PUBLIC_PATH:
                        kind = StreamKind.PUBLIC
                    elif path == PRIVATE_PATH:
                        kind = StreamKind.PRIVATE
                    else:
                        await request.reject(404)
                        nursery.cancel_scope.cancel()
                        return
                    ws = await request.accept()
                    conn = WsConn(
                        f"sim-{next(self._ids)}", kind, ws, stream, scope, self._queue_size
                    )
                    self.connections[conn.conn_id] = conn
                    log.debug("sim_ws_connected", conn_id=conn.conn_id, stream=kind.value)
                    nursery.start_soon(conn.writer)
                    await self._read_loop(conn)
                    nursery.cancel_scope.cancel()
        finally:
            if conn is not None:
                self._forget(conn)
            await trio.aclose_forcefully(raw)

    def _forget(self, conn: WsConn) -> None:
        conn.aborted = True
        self.connections.pop(conn.conn_id, None)
        for topic in conn.topics:
            subs = self.topic_subscribers.get(topic)
            if subs is not None:
                subs.pop(conn.conn_id, None)
        if conn.api_key is not None:
            authed = self.private_by_key.get(conn.api_key, {})
            authed.pop(conn.conn_id, None)
        log.debug("sim_ws_closed", conn_id=conn.conn_id, stream=conn.kind.value)

    async def _read_loop(self, conn: WsConn) -> None:
        while True:
            try:
                message = await conn.ws.get_message()
            except ConnectionClosed:
                return
            try:
                frame = parse_client(message)
            except StreamParseError:
                self._reply(conn, "", False, "error:invalid op", "")
                continue
            if conn.kind is StreamKind.PUBLIC:
                self._on_public(conn, frame)
            else:
                self._on_private(conn, frame)

    def _reply(self, conn: WsConn, op: str, ok: bool, msg: str, req_id: str) -> None:
        build = public_ack if conn.kind is StreamKind.PUBLIC else private_ack
        conn.push(build(op, ok, msg, conn.conn_id, req_id), self._reply_due())

    # ------------------------------------------------------------------ public ops

    def _on_public(self, conn: WsConn, frame: ClientFrame) -> None:
        now = trio.current_time()
        if frame.op == "ping":
            conn.push(public_pong(conn.conn_id, frame.req_id), now)
        elif frame.op == "subscribe":
            topics = [parse_public_topic(t, self.symbols) for t in frame.args]
            bad = next((a for a, t in zip(frame.args, topics, strict=True) if t is None), None)
            if bad is not None or not frame.args:
                self._reply(conn, "subscribe", False, _handler_not_found(bad), frame.req_id)
                return
            names = [t.name for t in topics if t is not None]
            dup = next((n for n in names if n in conn.topics), None)
            if dup is not None or len(set(names)) != len(names):
                dup = dup or names[0]
                msg = f"error:already subscribed,topic:{dup}"
                self._reply(conn, "subscribe", False, msg, frame.req_id)
                return
            self._reply(conn, "subscribe", True, "", frame.req_id)
            for name in names:
                conn.topics.add(name)
                self.topic_subscribers.setdefault(name, {})[conn.conn_id] = conn
                self._on_public_subscribe(conn, name)
        elif frame.op == "unsubscribe":
            for topic in frame.args:
                if isinstance(topic, str) and topic in conn.topics:
                    conn.topics.discard(topic)
                    self.topic_subscribers.get(topic, {}).pop(conn.conn_id, None)
            self._reply(conn, "unsubscribe", True, "", frame.req_id)
        else:
            self._reply(conn, frame.op, False, "error:invalid op", frame.req_id)

    # ------------------------------------------------------------------ private ops

    def _on_private(self, conn: WsConn, frame: ClientFrame) -> None:
        if frame.op == "ping":
            conn.push(private_pong(frame.req_id, self._clock(), conn.conn_id), trio.current_time())
        elif frame.op == "auth":
            if conn.api_key is not None:
                self._reply(conn, "auth", False, WS_ALREADY_AUTHED, frame.req_id)
                return
            verdict = check_ws_auth(
                list(frame.args), now_ms=self._clock(), secret_for=self._secret_for
            )
            if verdict.success and verdict.api_key is not None:
                conn.api_key = verdict.api_key
                self.private_by_key.setdefault(verdict.api_key, {})[conn.conn_id] = conn
            self._reply(conn, "auth", verdict.success, verdict.ret_msg, frame.req_id)
        elif frame.op == "subscribe":
            if conn.api_key is None:
                self._reply(conn, "subscribe", False, _NOT_AUTHED, frame.req_id)
                return
            bad = next((t for t in frame.args if t not in PRIVATE_TOPICS), None)
            if bad is not None or not frame.args:
                self._reply(conn, "subscribe", False, _handler_not_found(bad), frame.req_id)
                return
            kinds = {str(t).endswith(".linear") for t in frame.args}
            if len(kinds) > 1:
                msg = "error:all-in-one and categorised topics cannot be mixed"
                self._reply(conn, "subscribe", False, msg, frame.req_id)
                return
            conn.topics.update(str(t) for t in frame.args)
            self._reply(conn, "subscribe", True, "", frame.req_id)
        elif frame.op == "unsubscribe":
            conn.topics.difference_update(str(t) for t in frame.args)
            self._reply(conn, "unsubscribe", True, "", frame.req_id)
        else:
            self._reply(conn, frame.op, False, "error:invalid op", frame.req_id)
