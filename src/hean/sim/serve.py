"""Serving the embedded venue over real TCP: ``hean sim`` and the paper-mode venue of ``hean run``.

REST (HTTP/1.1) and WebSocket listen on two ports of ``sim.host`` (loopback by default); port 0
picks an ephemeral port, and the URLs handed back carry the ports actually bound. The venue clock
starts at the wall clock so clients sign requests with their own clock, as against Bybit.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import structlog
import trio
from attrs import field, frozen

from hean.sim.server import SimServer
from hean.sim.ws_server import PRIVATE_PATH, PUBLIC_PATH

if TYPE_CHECKING:
    from hean.config import HeanConfig

__all__ = ["SimEndpoints", "serve_sim", "start_embedded", "system_wall_ms"]

log = structlog.get_logger()


def system_wall_ms() -> int:
    """The wall clock in epoch milliseconds (the one place the venue reads it)."""
    return time.time_ns() // 1_000_000


@frozen
class SimEndpoints:
    """Where a running venue listens, and the paper account's key pair (not a real secret, but
    kept out of ``repr`` so it never lands in logs by accident)."""

    rest_url: str
    ws_public_url: str
    ws_private_url: str
    api_key: str
    api_secret: str = field(repr=False)
    server: SimServer = field(eq=False, repr=False)


def _bound(listeners: Sequence[trio.SocketListener]) -> tuple[str, int]:
    host, port = listeners[0].socket.getsockname()[:2]
    return (f"[{host}]" if ":" in host else host), port


async def _serve(
    cfg: HeanConfig,
    *,
    wall_ms: Callable[[], int],
    task_status: trio.TaskStatus[SimEndpoints] = trio.TASK_STATUS_IGNORED,
) -> None:
    sim = cfg.sim
    server = SimServer.from_config(sim, start_ms=wall_ms())
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        rest_listeners = await nursery.start(
            partial(trio.serve_tcp, server.serve_http_stream, sim.rest_port, host=sim.host)
        )
        ws_listeners = await nursery.start(
            partial(trio.serve_tcp, server.serve_ws_stream, sim.ws_port, host=sim.host)
        )
        rest_host, rest_port = _bound(rest_listeners)
        ws_host, ws_port = _bound(ws_listeners)
        endpoints = SimEndpoints(
            rest_url=f"http://{rest_host}:{rest_port}",
            ws_public_url=f"ws://{ws_host}:{ws_port}{PUBLIC_PATH}",
            ws_private_url=f"ws://{ws_host}:{ws_port}{PRIVATE_PATH}",
            api_key=sim.api_key,
            api_secret=sim.api_secret,
            server=server,
        )
        log.info(
            "sim_listening",
            rest_url=endpoints.rest_url,
            ws_public_url=endpoints.ws_public_url,
            ws_private_url=endpoints.ws_private_url,
            symbols=list(sim.symbols),
            seed=sim.seed,
        )
        task_status.started(endpoints)


async def start_embedded(
    nursery: trio.Nursery, cfg: HeanConfig, *, wall_ms: Callable[[], int] = system_wall_ms
) -> SimEndpoints:
    """Start the venue in ``nursery`` (paper mode) and return once both ports are listening.

    With ``rest_port``/``ws_port`` 0 the ports are ephemeral; the returned URLs name them.
    """
    endpoints: SimEndpoints = await nursery.start(partial(_serve, cfg, wall_ms=wall_ms))
    return endpoints


async def serve_sim(cfg: HeanConfig) -> int:
    """``hean sim``: serve the venue, print where it listens and the paper key pair, and run until
    SIGINT or SIGTERM; returns the signal that stopped it.

    The signals are taken with ``trio.open_signal_receiver`` before anything starts, so Ctrl-C
    never surfaces as a ``KeyboardInterrupt`` inside some library task (trio-websocket's reader
    swallows one raised during a close handshake and the venue would keep running).
    """
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            endpoints = await start_embedded(nursery, cfg)
            print(f"REST        {endpoints.rest_url}", flush=True)
            print(f"WS public   {endpoints.ws_public_url}", flush=True)
            print(f"WS private  {endpoints.ws_private_url}", flush=True)
            print(f"api key     {endpoints.api_key}", flush=True)
            print(f"api secret  {endpoints.api_secret}", flush=True)
            if cfg.sim.admin_enabled:
                print(f"faults      POST {endpoints.rest_url}/sim/admin/fault", flush=True)
            async for signum in signals:
                log.info("sim_stopping", signal=signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                return int(signum)
    raise AssertionError("unreachable: the signal loop only ends by returning")
