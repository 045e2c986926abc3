"""The synthetic market of the embedded venue: a seeded price process and its participants.

Why this exists
---------------
A paper venue that fills a resting order whenever the price "touches" it makes every maker
strategy look good. This model follows hftbacktest's lesson instead: the venue keeps a level-3
book in which every participant's order is a real order (:mod:`hean.sim.matching`), so a user's
maker order fills only when the volume ahead of it in its price level has traded or been
cancelled, and adverse selection emerges by itself (passive fills cluster when the price moves
through the order).

The model, per symbol, every ``tick_interval_ms`` (one *step*, 100 ms by default)
------------------------------------------------------------------------------
1. **Fair price.** ``log(fair)`` follows a Gaussian random walk. The per-step standard deviation is
   ``volatility * m * sqrt(dt / year)`` where ``volatility`` is the configured annualised value and
   ``m`` the regime multiplier: a two-state Markov chain switches between a *calm* regime
   (``m = 0.8165``, left with probability 1/300 per second) and a *stressed* one (``m = 1.633``,
   left with probability 1/60 per second). The stationary mix (5/6 calm, 1/6 stressed) gives an
   average variance of exactly ``volatility**2``, so the configured volatility is the realised
   one over long runs, with bursts of double volatility. The fair price is the mark and index.
2. **Arbitrage sweeps.** Resting asks priced below the new fair price (and bids above it) are
   stale: a synthetic taker takes them all at once. This is where adverse selection comes from:
   a maker order is filled exactly when the price runs through it.
3. **Maker arrivals (Poisson).** Per side, ``touch_rate`` orders/s arrive close to the fair
   price (distance ``1 + Geometric`` ticks with mean ``touch_mean_ticks``) and ``depth_rate``
   orders/s arrive deeper (distance ``1 + Exponential`` with a scale of
   ``max(depth_min_ticks, depth_sigma_mult * per-step sigma in ticks)``), so the book's density
   decays with the distance from the fair price and widens with volatility. Sizes are
   exponential in notional (``touch_notional`` / ``depth_notional`` USDT on average).
4. **Noise takers (Poisson).** Per side, ``taker_rate`` market-like IOC orders/s with
   exponential notional (mean ``taker_notional``) hit the book up to a few scale widths away.
   They consume the queue at the touch without the price moving: the fills a maker gets for
   being early in the queue.
5. **Cancels.** Every synthetic order is cancelled with rate ``cancel_rate`` per second (mean
   lifetime 5 s), and orders left farther than ``max_distance`` from the fair price are cancelled.
   Cancels ahead of a user's order advance it in the queue — as on a real venue.

User orders never move the fair price (no market impact); they trade against the synthetic
liquidity and against each other with the same FIFO rules, and they can be swept like anyone's.

Determinism: each symbol has its own ``random.Random`` seeded from ``(seed, symbol)``; the number
price process draws from a stream of its own, so the fair-price path is identical for a given
seed whatever the users trade, and the same seed and the same sequence of calls reproduce every
event. The measured fill curve of this model is in ``MODEL.md``
(:func:`hean.sim.fillcurve.measure_fill_curve`).
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Protocol

from attrs import frozen

from hean.bybit.types import Instrument
from hean.sim.matching import OrderBook, Resting

SECONDS_PER_YEAR = 365 * 24 * 3600
CALM_MULT = math.sqrt(2 / 3)  # 0.8165: with STRESS_MULT, mean variance == volatility**2
STRESS_MULT = 2 * CALM_MULT
CALM_TO_STRESS_PER_S = 1 / 300
STRESS_TO_CALM_PER_S = 1 / 60
_BIG = 1 << 62


@frozen
class ModelParams:
    """Rates (per second, per side), sizes (USDT notional) and distances (ticks) of the model."""

    touch_rate: float = 20.0
    touch_mean_ticks: float = 1.5
    touch_notional: float = 3_000.0
    depth_rate: float = 20.0
    depth_min_ticks: float = 5.0
    depth_sigma_mult: float = 2.0
    depth_notional: float = 8_000.0
    taker_rate: float = 4.0
    taker_notional: float = 6_000.0
    cancel_rate: float = 0.2
    max_distance_scales: float = 10.0
    min_max_distance_ticks: int = 200


class MarketSink(Protocol):
    """What the model needs from the venue: place, take and cancel synthetic orders, set marks."""

    def synth_limit(
        self, symbol: str, is_buy: bool, price: int, lots: int, now_ms: int
    ) -> Resting | None: ...

    def synth_take(
        self, symbol: str, is_buy: bool, limit: int | None, lots: int, now_ms: int
    ) -> int: ...

    def synth_cancel(self, symbol: str, resting: Resting) -> None: ...

    def set_mark(self, symbol: str, ticks: int) -> None: ...


def _poisson(rng: random.Random, exp_neg_lam: float) -> int:
    """Knuth's Poisson sampler; ``exp_neg_lam = exp(-lambda)`` is precomputed (small lambdas)."""
    k = 0
    p = rng.random()
    while p > exp_neg_lam:
        k += 1
        p *= rng.random()
    return k


class SymbolModel:
    """The fair price and synthetic participants of one symbol."""

    def __init__(
        self,
        symbol: str,
        inst: Instrument,
        book: OrderBook,
        sink: MarketSink,
        *,
        start_price: Decimal,
        volatility: float,
        tick_interval_ms: int,
        seed: int,
        params: ModelParams,
    ) -> None:
        self.symbol = symbol
        self.book = book
        self.sink = sink
        self.params = params
        self.rng = random.Random(f"hean-sim-market:{seed}:{symbol}")
        # The price path has a stream of its own: it never depends on what the participants
        # (or users) did, only on the seed.
        self.price_rng = random.Random(f"hean-sim-price:{seed}:{symbol}")
        self.tick = float(inst.tick_size)
        self.step_qty = float(inst.qty_step)
        self.min_lots = max(1, math.ceil(inst.min_order_qty / inst.qty_step))
        self.log_fair = math.log(float(start_price))
        dt = tick_interval_ms / 1000.0
        self.sigma_step = volatility * math.sqrt(dt / SECONDS_PER_YEAR)
        self.stressed = False
        self.p_to_stress = 1 - math.exp(-CALM_TO_STRESS_PER_S * dt)
        self.p_to_calm = 1 - math.exp(-STRESS_TO_CALM_PER_S * dt)
        self.e_touch = math.exp(-params.touch_rate * dt)
        self.e_depth = math.exp(-params.depth_rate * dt)
        self.e_taker = math.exp(-params.taker_rate * dt)
        self.cancel_per_step = params.cancel_rate * dt
        # Geometric distance with the requested mean: P(k) = (1-q) q^k, mean q/(1-q).
        mean = max(params.touch_mean_ticks - 1.0, 1e-9)
        self.touch_q = mean / (1 + mean)
        self.synth: list[Resting] = []
        self.steps = 0

    # ------------------------------------------------------------------ derived quantities

    @property
    def fair(self) -> float:
        return math.exp(self.log_fair)

    def fair_ticks(self) -> float:
        return math.exp(self.log_fair) / self.tick

    def depth_scale(self, fair_ticks: float) -> float:
        sigma_ticks = self.sigma_step * (STRESS_MULT if self.stressed else CALM_MULT) * fair_ticks
        return max(self.params.depth_min_ticks, self.params.depth_sigma_mult * sigma_ticks)

    def _lots(self, notional: float, fair: float) -> int:
        mean = notional / (fair * self.step_qty)
        return max(self.min_lots, int(self.rng.expovariate(1.0 / mean)) + 1)

    def _geometric(self) -> int:
        # Inverse transform: floor(log(U) / log(q)).
        u = 1.0 - self.rng.random()
        return int(math.log(u) / math.log(self.touch_q)) if self.touch_q > 0 else 0

    # ------------------------------------------------------------------ the step

    def step(self, now_ms: int) -> None:
        rng = self.rng
        p = self.params
        self.steps += 1
        # 1. regime and fair price
        prng = self.price_rng
        if prng.random() < (self.p_to_calm if self.stressed else self.p_to_stress):
            self.stressed = not self.stressed
        mult = STRESS_MULT if self.stressed else CALM_MULT
        self.log_fair += prng.gauss(0.0, self.sigma_step * mult)
        fair = math.exp(self.log_fair)
        ft = fair / self.tick
        bid_ref = math.ceil(ft) - 1  # highest tick strictly below the fair price
        ask_ref = math.floor(ft) + 1  # lowest tick strictly above it
        self.sink.set_mark(self.symbol, max(1, round(ft)))
        scale = self.depth_scale(ft)
        # 2. arbitrage: take stale quotes on the wrong side of the fair price
        ask = self.book.best_ask()
        if ask is not None and ask <= bid_ref:
            self.sink.synth_take(self.symbol, True, bid_ref, _BIG, now_ms)
        bid = self.book.best_bid()
        if bid is not None and bid >= ask_ref:
            self.sink.synth_take(self.symbol, False, ask_ref, _BIG, now_ms)
        # 3. cancels (before arrivals, so fresh orders are not cancelled in their first step)
        self._cancels(ft, scale)
        # 4. maker arrivals, bid and ask interleaved so neither side is favoured
        for is_buy in (True, False):
            ref = bid_ref if is_buy else ask_ref
            sign = -1 if is_buy else 1
            for _ in range(_poisson(rng, self.e_touch)):
                price = ref + sign * self._geometric()
                self._place(is_buy, price, self._lots(p.touch_notional, fair), now_ms)
            for _ in range(_poisson(rng, self.e_depth)):
                price = ref + sign * (1 + int(rng.expovariate(1.0 / scale)))
                self._place(is_buy, price, self._lots(p.depth_notional, fair), now_ms)
        # 5. noise takers
        band = max(10, int(3 * scale))
        for is_buy in (True, False):
            for _ in range(_poisson(rng, self.e_taker)):
                lots = self._lots(p.taker_notional, fair)
                limit = ask_ref + band if is_buy else max(1, bid_ref - band)
                self.sink.synth_take(self.symbol, is_buy, limit, lots, now_ms)
        if self.steps % 50 == 0:
            self.synth = [r for r in self.synth if r.alive]

    def _place(self, is_buy: bool, price: int, lots: int, now_ms: int) -> None:
        if price < 1:
            return
        resting = self.sink.synth_limit(self.symbol, is_buy, price, lots, now_ms)
        if resting is not None:
            self.synth.append(resting)

    def _cancels(self, ft: float, scale: float) -> None:
        rng = self.rng
        n = len(self.synth)
        if n:
            lam = self.cancel_per_step * n
            count = _poisson(rng, math.exp(-lam)) if lam < 30 else round(rng.gauss(lam, lam**0.5))
            for _ in range(count):
                if not self.synth:
                    break
                i = rng.randrange(len(self.synth))
                victim = self.synth[i]
                self.synth[i] = self.synth[-1]
                self.synth.pop()
                if victim.alive:
                    self.sink.synth_cancel(self.symbol, victim)
        # Orders left far behind by the price are withdrawn (keeps the book bounded).
        far = max(self.params.min_max_distance_ticks, int(self.params.max_distance_scales * scale))
        for is_buy, bound in ((True, int(ft) - far), (False, int(ft) + far)):
            for level in self.book.levels_beyond(is_buy, bound):
                for r in list(level.live_orders()):
                    if not r.owner:
                        self.sink.synth_cancel(self.symbol, r)


class Market:
    """All symbols' models; :meth:`step` advances each by one ``tick_interval_ms``."""

    def __init__(self, models: list[SymbolModel]) -> None:
        self.models = models

    def step(self, now_ms: int) -> None:
        for model in self.models:
            model.step(now_ms)
