"""An in-memory network to the embedded venue, for tests under trio's fake clock.

Loopback TCP goes through the kernel, and ``autojump_clock`` jumps while bytes are in flight
(trio-notes §4), so fake-clock tests cannot use sockets. :class:`MemNet` gives the same venue
(one :class:`~hean.sim.server.SimServer`) through in-memory seams instead:

* :meth:`MemNet.connect_ws` — a trio-websocket client connection over
  ``trio.testing.memory_stream_pair``, served by the very same server code as TCP clients
  (handshake, frames, faults and all), via a :class:`MemoryListener` as in trio-websocket's
  ``tests/test_connection.py``;
* :meth:`MemNet.http_transport` — an ``httpx`` transport that calls the server's REST handler.

Usage::

    async with trio.open_nursery() as nursery:
        net = await nursery.start(MemNet.serve, server)
        ws = await net.connect_ws("ws://sim/v5/public/linear")
        async with httpx.AsyncClient(transport=net.http_transport(), base_url="http://sim") as c:
            ...
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlsplit

import trio
import trio.testing
from trio_websocket import WebSocketConnection, wrap_client_stream

from hean.sim.http_app import SimTransport
from hean.sim.server import SimServer

__all__ = ["MemNet", "MemoryListener"]

_MAX_MESSAGE = 1 << 20


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose clients connect through memory streams (``connect`` makes the pair)."""

    def __init__(self) -> None:
        self.closed = False
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](0)

    async def connect(self) -> trio.abc.Stream:
        """Open a connection; returns the client end once the server end is queued for accept."""
        if self.closed:
            raise trio.ClosedResourceError("listener closed")
        client, server = trio.testing.memory_stream_pair()
        await self._send.send(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        if self.closed:
            raise trio.ClosedResourceError("listener closed")
        return await self._receive.receive()

    async def aclose(self) -> None:
        self.closed = True
        self._send.close()
        self._receive.close()
        await trio.lowlevel.checkpoint()


class MemNet:
    """The venue on an in-memory network. Start it with ``await nursery.start(MemNet.serve, s)``."""

    def __init__(self, server: SimServer, nursery: trio.Nursery) -> None:
        self.server = server
        self.listener = MemoryListener()
        self._nursery = nursery

    @classmethod
    async def serve(
        cls,
        server: SimServer,
        *,
        task_status: trio.TaskStatus[MemNet] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the server (market, feeds, WebSocket accept loop) until cancelled."""
        async with trio.open_nursery() as nursery:
            net = cls(server, nursery)
            await nursery.start(server.run)
            await nursery.start(
                partial(
                    trio.serve_listeners,
                    server.serve_ws_stream,
                    [net.listener],
                    handler_nursery=nursery,
                )
            )
            task_status.started(net)

    def now_ms(self) -> int:
        """The venue clock: what a client should sign its requests with."""
        return self.server.now_ms()

    async def connect_ws(
        self, url: str, *, nursery: trio.Nursery | None = None
    ) -> WebSocketConnection:
        """Open a WebSocket to ``url`` (only its path and query matter) over memory streams.

        The connection's background reader runs in ``nursery`` (default: the network's own), the
        same contract as ``trio_websocket.connect_websocket_url``.
        """
        parts = urlsplit(url)
        resource = parts.path + (f"?{parts.query}" if parts.query else "")
        stream = await self.listener.connect()
        # trio-websocket annotates the stream as a socket stream but only uses the Stream API.
        return await wrap_client_stream(
            nursery or self._nursery,
            stream,  # type: ignore[arg-type]
            parts.hostname or "sim",
            resource,
            max_message_size=_MAX_MESSAGE,
        )

    def http_transport(self) -> SimTransport:
        """An httpx transport to the venue's REST handler (no sockets)."""
        return SimTransport(self.server.rest.handle)
