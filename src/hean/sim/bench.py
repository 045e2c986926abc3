"""Throughput benchmark of the embedded venue over loopback TCP (``hean bench`` calls this).

Two phases against one venue started on ephemeral ports, in this process:

1. **public messages/s** — ``ws_clients`` WebSocket clients each subscribe to every public topic
   (orderbook 1/50/200, tickers, publicTrade) of every symbol; we count the messages they receive.
   The market ticks every ``tick_interval_ms`` so there is something to publish.
2. **REST requests/s** — ``rest_concurrency`` keep-alive HTTP/1.1 clients loop on
   ``GET /v5/market/orderbook`` (a market endpoint, so the UID rate limits do not cap the figure);
   we count completed 200 responses.

Latencies are set to 0 so the figures measure the venue's work, not the latency model. Client and
server share the process (and its one core), so the figures are a floor for the venue alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import httpx
import trio
from attrs import frozen
from trio_websocket import open_websocket_url

from hean.config import default_config
from hean.sim.serve import SimEndpoints, start_embedded

__all__ = ["BenchResult", "bench_venue"]

_WARMUP_S = 0.5


@frozen
class BenchResult:
    public_messages: int
    public_seconds: float
    rest_requests: int
    rest_seconds: float

    @property
    def public_msgs_per_s(self) -> float:
        return self.public_messages / self.public_seconds if self.public_seconds else 0.0

    @property
    def rest_req_per_s(self) -> float:
        return self.rest_requests / self.rest_seconds if self.rest_seconds else 0.0

    def summary(self) -> str:
        return (
            f"public WS: {self.public_msgs_per_s:,.0f} msgs/s "
            f"({self.public_messages} in {self.public_seconds:.1f} s); "
            f"REST: {self.rest_req_per_s:,.0f} req/s "
            f"({self.rest_requests} in {self.rest_seconds:.1f} s)"
        )


def _topics(symbols: Sequence[str]) -> list[str]:
    out: list[str] = []
    for s in symbols:
        out += [f"orderbook.{d}.{s}" for d in (1, 50, 200)]
        out += [f"tickers.{s}", f"publicTrade.{s}"]
    return out


async def _count_public(
    ep: SimEndpoints, topics: list[str], duration_s: float, counter: list[int]
) -> None:
    async with open_websocket_url(ep.ws_public_url, message_queue_size=1024) as ws:
        args = ",".join(f'"{t}"' for t in topics)
        await ws.send_message(f'{{"op":"subscribe","args":[{args}]}}')
        start = trio.current_time() + _WARMUP_S
        with trio.move_on_at(start):
            while True:
                await ws.get_message()
        with trio.move_on_after(duration_s):
            while True:
                await ws.get_message()
                counter[0] += 1


async def _count_rest(ep: SimEndpoints, duration_s: float, counter: list[int]) -> None:
    async with httpx.AsyncClient(base_url=ep.rest_url) as http:
        url = "/v5/market/orderbook?category=linear&symbol=BTCUSDT&limit=50"
        with trio.move_on_after(duration_s):
            while True:
                r = await http.get(url)
                if r.status_code == 200:
                    counter[0] += 1


async def bench_venue(
    *,
    duration_s: float = 5.0,
    symbols: Sequence[str] = ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    ws_clients: int = 8,
    rest_concurrency: int = 8,
    tick_interval_ms: int = 20,
) -> BenchResult:
    """Measure public messages/s and REST requests/s of a fresh venue over loopback TCP."""
    base = default_config()
    sim = attrs.evolve(
        base.sim,
        symbols=tuple(symbols),
        rest_port=0,
        ws_port=0,
        tick_interval_ms=tick_interval_ms,
        feed_latency_ms=0,
        order_latency_ms=0,
        response_latency_ms=0,
    )
    cfg = attrs.evolve(base, sim=sim)
    public = [0]
    rest = [0]
    async with trio.open_nursery() as nursery:
        ep = await start_embedded(nursery, cfg)
        topics = _topics(symbols)
        async with trio.open_nursery() as clients:
            for _ in range(ws_clients):
                clients.start_soon(_count_public, ep, topics, duration_s, public)
        async with trio.open_nursery() as clients:
            for _ in range(rest_concurrency):
                clients.start_soon(_count_rest, ep, duration_s, rest)
        nursery.cancel_scope.cancel()
    return BenchResult(public[0], duration_s, rest[0], duration_s)


if __name__ == "__main__":  # pragma: no cover - manual run: python -m hean.sim.bench
    print(trio.run(bench_venue).summary())
