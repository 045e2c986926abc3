"""Test harness for the venue shell: a SimServer on the in-memory network plus raw clients.

The clients here are deliberately raw — httpx with hand-built signed requests and trio-websocket
with hand-written JSON frames — so the tests check the venue's wire behaviour, not an engine
client's interpretation of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
import orjson
import trio
from attrs import frozen

from hean.bybit.signing import rest_signature, ws_auth_signature
from hean.config import SimConfig
from hean.sim.memnet import MemNet
from hean.sim.server import SimServer

KEY = "hean-paper-key"
SECRET = "hean-paper-secret"
PUBLIC_URL = "ws://sim/v5/public/linear"
PRIVATE_URL = "ws://sim/v5/private"


def sim_config(**overrides: Any) -> SimConfig:
    base: dict[str, Any] = {"symbols": ("BTCUSDT", "ETHUSDT"), "seed": 7}
    base.update(overrides)
    return SimConfig(**base)


@frozen
class Sim:
    server: SimServer
    net: MemNet
    http: httpx.AsyncClient
    nursery: trio.Nursery

    def now(self) -> int:
        return self.server.now_ms()

    async def get(
        self,
        path: str,
        query: str = "",
        *,
        key: str = KEY,
        secret: str = SECRET,
        ts: int | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        headers = {}
        if signed:
            stamp = self.now() if ts is None else ts
            headers = {
                "X-BAPI-API-KEY": key,
                "X-BAPI-TIMESTAMP": str(stamp),
                "X-BAPI-RECV-WINDOW": "5000",
                "X-BAPI-SIGN": rest_signature(secret, stamp, key, 5000, query),
            }
        url = f"{path}?{query}" if query else path
        return await self.http.get(url, headers=headers)

    async def post(
        self,
        path: str,
        body: Mapping[str, Any] | bytes,
        *,
        key: str = KEY,
        secret: str = SECRET,
        ts: int | None = None,
        sign_body: bytes | None = None,
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else orjson.dumps(body)
        stamp = self.now() if ts is None else ts
        signed = (raw if sign_body is None else sign_body).decode()
        headers = {
            "X-BAPI-API-KEY": key,
            "X-BAPI-TIMESTAMP": str(stamp),
            "X-BAPI-RECV-WINDOW": "5000",
            "X-BAPI-SIGN": rest_signature(secret, stamp, key, 5000, signed),
            "Content-Type": "application/json",
        }
        return await self.http.post(path, content=raw, headers=headers)

    async def ws(self, url: str = PUBLIC_URL) -> Any:
        return await self.net.connect_ws(url, nursery=self.nursery)

    async def private_ws(self, topics: tuple[str, ...] = ("order", "execution")) -> Any:
        ws = await self.ws(PRIVATE_URL)
        expires = self.now() + 10_000
        await send(ws, {"op": "auth", "args": [KEY, expires, ws_auth_signature(SECRET, expires)]})
        ack = await recv(ws)
        assert ack["success"] is True, ack
        if topics:
            await send(ws, {"op": "subscribe", "args": list(topics)})
            ack = await recv(ws)
            assert ack["success"] is True, ack
        return ws


@asynccontextmanager
async def running_sim(**overrides: Any) -> AsyncIterator[Sim]:
    """A venue on the in-memory network, with an httpx client on it; cancelled on exit."""
    cfg = sim_config(**overrides)
    server = SimServer.from_config(cfg)
    async with trio.open_nursery() as nursery:
        net = await nursery.start(MemNet.serve, server)
        transport = net.http_transport()
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
            yield Sim(server, net, http, nursery)
        nursery.cancel_scope.cancel()


async def send(ws: Any, obj: Mapping[str, Any]) -> None:
    await ws.send_message(orjson.dumps(obj).decode())


async def recv(ws: Any, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
    with trio.fail_after(timeout):
        msg = await ws.get_message()
    obj = orjson.loads(msg)
    assert isinstance(obj, dict)
    return obj


async def recv_until(ws: Any, pred: Any, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
    """Receive until a message matches ``pred`` (others are discarded)."""
    with trio.fail_after(timeout):
        while True:
            obj = await recv(ws, timeout)
            if pred(obj):
                return obj


def limit_order(
    symbol: str, side: str, qty: str, price: Decimal | str, link: str
) -> dict[str, Any]:
    return {
        "category": "linear",
        "symbol": symbol,
        "side": side,
        "orderType": "Limit",
        "qty": qty,
        "price": str(price),
        "timeInForce": "GTC",
        "orderLinkId": link,
    }
