"""Same seed and same client actions under the fake clock give the same bytes on the wire."""

from __future__ import annotations

from decimal import Decimal

import trio
import trio.testing

from tests.integration.sim_harness import limit_order, running_sim, send


async def _session(seed: int) -> list[str]:
    out: list[str] = []
    async with running_sim(seed=seed) as sim:
        ws = await sim.ws()
        await send(ws, {"op": "subscribe", "args": ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]})
        priv = await sim.private_ws(("order", "execution", "position"))
        await trio.sleep(0.0503)  # off the market's 100 ms grid: no same-instant ties
        bids, _ = sim.server.venue.book_levels("BTCUSDT", 1)
        body = limit_order("BTCUSDT", "Buy", "0.010", bids[0][0] + Decimal("0.1"), "det-1")
        out.append((await sim.post("/v5/order/create", body)).text)
        with trio.move_on_after(3.0):
            while True:
                out.append(await ws.get_message())
        with trio.move_on_after(0.5):
            while True:
                out.append(await priv.get_message())
    return out


def _run(seed: int) -> list[str]:
    return trio.run(_session, seed, clock=trio.testing.MockClock(autojump_threshold=0))


def test_same_seed_same_messages() -> None:
    first = _run(11)
    second = _run(11)
    assert len(first) > 30
    assert first == second
    assert _run(12) != first
