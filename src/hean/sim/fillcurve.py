"""Measure the venue's fill curve: how likely a resting maker order is to fill, by its distance
from the touch (in ticks) and by how long it rests.

Method: run the synthetic market and, once per ``interval_ms``, place one minimum-size PostOnly
probe per side at each distance ``d`` from the touch (a buy at best bid - d ticks, a sell at
best ask + d ticks). A probe is one lot, so any trade that reaches it fills it completely. Its
fill time is taken from the venue's private ``order`` stream; probes still open after the
longest horizon are cancelled. The result is the fraction of probes filled within each horizon.

Probes are real orders: they queue behind each other and behind the synthetic participants,
exactly like a user's order would. Run it with ``python -m hean.sim.fillcurve`` to print the
Markdown table published in ``src/hean/sim/MODEL.md``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from decimal import Decimal

from attrs import frozen

from hean.bybit.errors import BybitError
from hean.bybit.types import Order, OrderStatus
from hean.sim.venue import Venue, VenueSettings

PROBE_KEY = "hean-fillcurve-probe"


@frozen
class FillCurve:
    """``probability[i][j]``: share of probes at ``distances[i]`` ticks filled within
    ``horizons_ms[j]``; ``probes[i]`` is the number of probes behind row ``i``."""

    symbol: str
    distances: tuple[int, ...]
    horizons_ms: tuple[int, ...]
    probes: tuple[int, ...]
    probability: tuple[tuple[float, ...], ...]
    median_fill_ms: tuple[int | None, ...]

    def to_markdown(self) -> str:
        head = ["distance (ticks)", "probes"] + [
            f"P(fill ≤ {h / 1000:g} s)" for h in self.horizons_ms
        ]
        head.append("median time to fill")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for i, d in enumerate(self.distances):
            cells = [str(d), str(self.probes[i])]
            cells += [f"{p:.2f}" for p in self.probability[i]]
            median = self.median_fill_ms[i]
            cells.append("—" if median is None else f"{median / 1000:.1f} s")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def measure_fill_curve(
    settings: VenueSettings,
    *,
    symbol: str | None = None,
    distances: Sequence[int] = (0, 1, 2, 5, 10, 20, 50, 100, 200),
    horizons_ms: Sequence[int] = (1_000, 5_000, 30_000),
    rounds: int = 300,
    interval_ms: int = 1_000,
) -> FillCurve:
    """Place ``rounds`` batches of probes and measure their fill probabilities (see module doc)."""
    if not distances or not horizons_ms or rounds <= 0 or interval_ms <= 0:
        raise ValueError("need distances, horizons, rounds > 0 and interval_ms > 0")
    symbol = symbol or settings.symbols[0]
    horizons = tuple(sorted(horizons_ms))
    venue = Venue(settings)
    venue.open_account(PROBE_KEY, "probe", balance=Decimal(10) ** 12)
    inst = venue.instruments()[symbol]
    qty = str(inst.min_order_qty)
    placed: dict[str, tuple[int, int]] = {}  # order id -> (distance index, placed at)
    fill_ms: dict[str, int] = {}
    open_probes: dict[str, int] = {}  # order id -> placed at
    now = settings.start_ms
    step = settings.tick_interval_ms
    total_ms = rounds * interval_ms + horizons[-1]
    next_round = now
    placed_rounds = 0

    def collect() -> None:
        for key, msg in venue.drain_events().private:
            if key != PROBE_KEY or msg.topic != "order":
                continue
            for o in msg.data:
                if not isinstance(o, Order) or o.order_status is not OrderStatus.FILLED:
                    continue
                placed_at = open_probes.pop(o.order_id, None)
                if placed_at is not None:
                    fill_ms[o.order_id] = o.updated_time - placed_at

    end = settings.start_ms + total_ms
    while now <= end:
        if placed_rounds < rounds and now >= next_round:
            bids, asks = venue.book_levels(symbol, 1)
            if bids and asks:
                for i, d in enumerate(distances):
                    for side, ref, sign in (("Buy", bids[0][0], -1), ("Sell", asks[0][0], 1)):
                        price = ref + sign * d * inst.tick_size
                        if price <= 0:
                            continue
                        try:
                            res = venue.handle(
                                "/v5/order/create",
                                {
                                    "category": "linear",
                                    "symbol": symbol,
                                    "side": side,
                                    "orderType": "Limit",
                                    "qty": qty,
                                    "price": str(price),
                                    "timeInForce": "PostOnly",
                                },
                                api_key=PROBE_KEY,
                                now_ms=now,
                            )
                        except BybitError:
                            continue  # e.g. below the minimum notional at a far distance
                        placed[res["orderId"]] = (i, now)
                        open_probes[res["orderId"]] = now
            collect()
            placed_rounds += 1
            next_round += interval_ms
        # retire probes past the longest horizon (cancelled, counted as not filled)
        for oid, t in list(open_probes.items()):
            if now - t > horizons[-1]:
                # A probe filled in this very instant makes the cancel fail with 110001;
                # collect() below records its fill.
                with contextlib.suppress(BybitError):
                    venue.handle(
                        "/v5/order/cancel",
                        {"category": "linear", "symbol": symbol, "orderId": oid},
                        api_key=PROBE_KEY,
                        now_ms=now,
                    )
                open_probes.pop(oid, None)
        now += step
        venue.advance(now)
        collect()

    counts = [0] * len(distances)
    filled = [[0] * len(horizons) for _ in distances]
    times: list[list[int]] = [[] for _ in distances]
    for oid, (i, _t) in placed.items():
        counts[i] += 1
        ms = fill_ms.get(oid)
        if ms is None:
            continue
        times[i].append(ms)
        for j, h in enumerate(horizons):
            if ms <= h:
                filled[i][j] += 1
    medians: list[int | None] = []
    for i, ts in enumerate(times):
        ts.sort()
        # The median of all probes (unfilled ones count as "longer than the longest horizon").
        half = counts[i] // 2
        medians.append(ts[half] if counts[i] and half < len(ts) else None)
    return FillCurve(
        symbol=symbol,
        distances=tuple(distances),
        horizons_ms=horizons,
        probes=tuple(counts),
        probability=tuple(
            tuple(f / counts[i] if counts[i] else 0.0 for f in filled[i])
            for i in range(len(distances))
        ),
        median_fill_ms=tuple(medians),
    )


def main() -> None:
    """Print the fill curves of the default configuration (BTCUSDT and ETHUSDT, seed 7)."""
    settings = VenueSettings(
        seed=7,
        symbols=("BTCUSDT", "ETHUSDT"),
        initial_balance_usdt=Decimal(10_000),
        maker_fee_rate=Decimal("0.0002"),
        taker_fee_rate=Decimal("0.00055"),
        volatility=0.6,
        tick_interval_ms=100,
    )
    for symbol in settings.symbols:
        curve = measure_fill_curve(settings, symbol=symbol, rounds=600)
        print(f"### {symbol}\n\n{curve.to_markdown()}\n")


if __name__ == "__main__":
    main()
