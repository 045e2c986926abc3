"""Default instruments of the embedded venue and the price each symbol's market starts from.

The rules of the well-known USDT perpetuals mirror Bybit's ``/v5/market/instruments-info`` (tick
size, quantity step, minimum quantity and notional), because a client that rounds correctly
against the simulator must round correctly against Bybit too. Bybit changes the maximum order
quantities twice a month; the values here are representative, not authoritative.

An unknown symbol still gets an instrument (``XYZUSDT`` trades at 100 with a 0.01 tick) so a
configuration can name any symbol and get a working market.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import frozen

from hean.bybit.types import Instrument

# Launch time shown for every default instrument (2020-03-25, BTCUSDT's listing on Bybit).
_LAUNCH_MS = 1_585_526_400_000


@frozen
class _Spec:
    tick: str
    max_price: str
    step: str
    min_qty: str
    max_qty: str
    max_mkt_qty: str
    start_price: str
    max_leverage: str = "100.00"


_SPECS: dict[str, _Spec] = {
    "BTCUSDT": _Spec("0.10", "1999999.80", "0.001", "0.001", "1190.000", "119.000", "95000.0"),
    "ETHUSDT": _Spec("0.01", "199999.98", "0.01", "0.01", "7240.00", "724.00", "3300.00"),
    "SOLUSDT": _Spec("0.010", "19999.980", "0.1", "0.1", "79770.0", "7977.0", "200.000"),
    "XRPUSDT": _Spec("0.0001", "199.9998", "1", "1", "6930000", "693000", "2.2000", "75.00"),
    "DOGEUSDT": _Spec("0.00001", "19.99998", "1", "1", "27260000", "2726000", "0.32000", "75.00"),
    "BNBUSDT": _Spec("0.10", "199999.80", "0.01", "0.01", "4680.00", "468.00", "650.0", "75.00"),
}

# Rules for any symbol that is not in the table above.
_GENERIC = _Spec("0.01", "199999.98", "0.01", "0.01", "100000.00", "10000.00", "100.00", "50.00")

MIN_NOTIONAL = Decimal(5)


def _spec(symbol: str) -> _Spec:
    return _SPECS.get(symbol, _GENERIC)


def default_instrument(symbol: str) -> Instrument:
    """The trading rules the venue uses for ``symbol`` unless the caller provides its own."""
    spec = _spec(symbol)
    base = symbol.removesuffix("USDT") or symbol
    return Instrument(
        symbol=symbol,
        status="Trading",
        base_coin=base,
        quote_coin="USDT",
        settle_coin="USDT",
        tick_size=Decimal(spec.tick),
        min_price=Decimal(spec.tick),
        max_price=Decimal(spec.max_price),
        qty_step=Decimal(spec.step),
        min_order_qty=Decimal(spec.min_qty),
        max_order_qty=Decimal(spec.max_qty),
        max_mkt_order_qty=Decimal(spec.max_mkt_qty),
        min_notional_value=MIN_NOTIONAL,
        min_leverage=Decimal(1),
        max_leverage=Decimal(spec.max_leverage),
        leverage_step=Decimal("0.01"),
        launch_time_ms=_LAUNCH_MS,
    )


def start_price(symbol: str) -> Decimal:
    """The mid price a symbol's synthetic market starts from (roughly its early-2026 level)."""
    return Decimal(_spec(symbol).start_price)


def known_symbols() -> tuple[str, ...]:
    """Symbols with hand-written rules, in a stable order."""
    return tuple(_SPECS)
