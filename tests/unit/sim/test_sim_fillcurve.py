"""The fill-curve measurement tool."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hean.sim import VenueSettings
from hean.sim.fillcurve import measure_fill_curve


def settings() -> VenueSettings:
    return VenueSettings(
        seed=4,
        symbols=("ETHUSDT",),
        initial_balance_usdt=Decimal(1000),
        maker_fee_rate=Decimal("0.0002"),
        taker_fee_rate=Decimal("0.00055"),
        volatility=0.6,
        tick_interval_ms=100,
    )


def test_fill_probability_falls_with_distance_and_rises_with_time() -> None:
    curve = measure_fill_curve(
        settings(), distances=(0, 100), horizons_ms=(1_000, 10_000), rounds=40
    )
    assert curve.symbol == "ETHUSDT"
    assert curve.probes == (80, 80)
    near, far = curve.probability
    assert near[0] > far[0]
    assert near[1] > far[1]
    assert near[0] <= near[1]
    assert far[0] <= far[1]
    table = curve.to_markdown()
    assert table.splitlines()[0].startswith("| distance (ticks) | probes |")
    assert len(table.splitlines()) == 4


def test_fill_curve_is_reproducible() -> None:
    a = measure_fill_curve(settings(), distances=(1,), horizons_ms=(2_000,), rounds=10)
    b = measure_fill_curve(settings(), distances=(1,), horizons_ms=(2_000,), rounds=10)
    assert a == b


def test_fill_curve_rejects_empty_inputs() -> None:
    with pytest.raises(ValueError, match="rounds"):
        measure_fill_curve(settings(), rounds=0)
