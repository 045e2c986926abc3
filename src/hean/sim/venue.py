"""The embedded Bybit v5 venue: one pure object behind the simulator's REST and WebSocket shells.

Pure: no trio, no I/O, no clock. The shell passes the venue time (``now_ms``) into every call:

* :meth:`Venue.handle` serves one REST request and returns the envelope's ``result`` (or raises a
  :mod:`hean.bybit.errors` class carrying Bybit's ``retCode``/``retMsg``; an unknown path raises
  :class:`RouteNotFound`).
* :meth:`Venue.advance` runs the synthetic market (:mod:`hean.sim.market`) up to ``now_ms`` in
  steps of ``tick_interval_ms`` aligned to ``start_ms``.
* :meth:`Venue.drain_events` hands over everything that happened since the last drain: public
  trades, the symbols whose book changed, and private messages per account, in order.

Same settings (seed) and the same sequence of calls with the same ``now_ms`` give identical
results and events.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from attrs import frozen

from hean.bybit.errors import error_for
from hean.bybit.types import Instrument, PriceLevel, PrivateMessage, PublicTrade, Ticker
from hean.sim import rest
from hean.sim.exchange import Exchange
from hean.sim.instruments_catalog import default_instrument, start_price
from hean.sim.market import Market, ModelParams, SymbolModel
from hean.sim.settings import DEFAULT_START_MS, VenueSettings

__all__ = ["DEFAULT_START_MS", "RouteNotFound", "Venue", "VenueEvents", "VenueSettings"]

#: Market steps run before ``start_ms`` so the book is populated when the venue opens (30 s).
WARMUP_STEPS = 300
#: Closed orders and old executions are pruned once per venue minute.
PRUNE_INTERVAL_MS = 60_000


class RouteNotFound(Exception):
    """The path is not an endpoint of this venue (the shell answers HTTP 404)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"route not found: {path}")
        self.path = path


@frozen
class VenueEvents:
    """Everything that happened since the previous :meth:`Venue.drain_events`, in order."""

    trades: tuple[PublicTrade, ...]
    books_changed: frozenset[str]
    private: tuple[tuple[str, PrivateMessage], ...]


class Venue:
    """See the module docstring."""

    def __init__(
        self,
        settings: VenueSettings,
        *,
        instruments: Mapping[str, Instrument] | None = None,
        model: ModelParams | None = None,
    ) -> None:
        self.settings = settings
        insts = {
            s: (instruments[s] if instruments and s in instruments else default_instrument(s))
            for s in settings.symbols
        }
        starts = {s: start_price(s) for s in settings.symbols}
        self._ex = Exchange(settings, insts, starts)
        params = model or ModelParams()
        self._market = Market(
            [
                SymbolModel(
                    s,
                    insts[s],
                    self._ex.symbols[s].book,
                    self._ex,
                    start_price=starts[s],
                    volatility=settings.volatility,
                    tick_interval_ms=settings.tick_interval_ms,
                    seed=settings.seed,
                    params=params,
                )
                for s in settings.symbols
            ]
        )
        step = settings.tick_interval_ms
        for i in range(WARMUP_STEPS, 0, -1):
            self._market.step(settings.start_ms - i * step)
        self._next_step_ms = settings.start_ms
        self._next_prune_ms = settings.start_ms + PRUNE_INTERVAL_MS
        self._book_versions = {s: st.book.version for s, st in self._ex.symbols.items()}
        self._ex.trades.clear()  # the warm-up happened before the venue opened

    # ------------------------------------------------------------------ accounts

    def open_account(
        self, api_key: str, api_secret: str, *, balance: Decimal | None = None
    ) -> None:
        """Create a UNIFIED account (``balance`` USDT, default from the settings)."""
        self._ex.open_account(
            api_key,
            api_secret,
            self.settings.initial_balance_usdt if balance is None else balance,
        )

    def account_secret(self, api_key: str) -> str | None:
        account = self._ex.accounts.get(api_key)
        return account.api_secret if account is not None else None

    # ------------------------------------------------------------------ REST

    def handle(
        self, path: str, params: Mapping[str, Any], *, api_key: str | None, now_ms: int
    ) -> dict[str, Any]:
        public = rest.PUBLIC.get(path)
        if public is not None:
            return public(self._ex, params, now_ms)
        private = rest.PRIVATE.get(path)
        if private is None:
            raise RouteNotFound(path)
        if api_key is None or api_key not in self._ex.accounts:
            raise error_for(10003, "API key is invalid.")
        return private(self._ex, api_key, params, now_ms)

    # ------------------------------------------------------------------ market

    def advance(self, now_ms: int) -> None:
        """Run every market step due at or before ``now_ms``."""
        step = self.settings.tick_interval_ms
        while self._next_step_ms <= now_ms:
            self._market.step(self._next_step_ms)
            self._next_step_ms += step
        if now_ms >= self._next_prune_ms:
            for registry in self._ex.registries.values():
                registry.prune(now_ms)
            self._next_prune_ms = now_ms + PRUNE_INTERVAL_MS

    def drain_events(self) -> VenueEvents:
        changed = frozenset(
            s for s, st in self._ex.symbols.items() if st.book.version != self._book_versions[s]
        )
        for s in changed:
            self._book_versions[s] = self._ex.symbols[s].book.version
        events = VenueEvents(
            trades=tuple(self._ex.trades),
            books_changed=changed,
            private=tuple(self._ex.private),
        )
        self._ex.trades.clear()
        self._ex.private.clear()
        return events

    # ------------------------------------------------------------------ views

    def book_levels(
        self, symbol: str, depth: int
    ) -> tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]]:
        """The L2 book: bids descending, asks ascending, at most ``depth`` levels each."""
        st = self._ex.symbols[symbol]
        bids = tuple((st.price_of(p), st.qty_of(q)) for p, q in st.book.levels(True, depth))
        asks = tuple((st.price_of(p), st.qty_of(q)) for p, q in st.book.levels(False, depth))
        return bids, asks

    def ticker(self, symbol: str, now_ms: int) -> Ticker:
        return self._ex.symbols[symbol].ticker(now_ms, self._ex.open_interest(symbol))

    def cross_seq(self, symbol: str) -> int:
        return self._ex.symbols[symbol].cross_seq

    def instruments(self) -> Mapping[str, Instrument]:
        return {s: st.inst for s, st in self._ex.symbols.items()}

    @property
    def exchange(self) -> Exchange:
        """The trading core (tests and the fill-curve tool inspect books and accounts here)."""
        return self._ex
