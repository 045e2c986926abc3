"""Settings of the embedded venue (built by the shell from :class:`hean.config.SimConfig`)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from attrs import field, frozen

if TYPE_CHECKING:
    from hean.config import SimConfig

#: 2026-01-01T00:00:00Z, the default venue epoch: a fixed start keeps runs reproducible.
DEFAULT_START_MS = 1_767_225_600_000


def _positive_int(_inst: object, attribute: object, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{getattr(attribute, 'name', attribute)} must be positive, got {value}")


@frozen
class VenueSettings:
    """Everything that shapes the venue's behaviour; the same settings + seed reproduce a run."""

    seed: int
    symbols: tuple[str, ...]
    initial_balance_usdt: Decimal
    maker_fee_rate: Decimal
    taker_fee_rate: Decimal
    volatility: float
    tick_interval_ms: int = field(validator=_positive_int)
    leverage: Decimal = Decimal(10)
    start_ms: int = DEFAULT_START_MS

    def __attrs_post_init__(self) -> None:
        if not self.symbols:
            raise ValueError("the venue needs at least one symbol")
        if self.volatility < 0:
            raise ValueError(f"volatility must not be negative, got {self.volatility}")
        if self.leverage <= 0:
            raise ValueError(f"leverage must be positive, got {self.leverage}")

    @classmethod
    def from_config(cls, sim: SimConfig) -> VenueSettings:
        return cls(
            seed=sim.seed,
            symbols=tuple(sim.symbols),
            initial_balance_usdt=sim.initial_balance_usdt,
            maker_fee_rate=sim.maker_fee_rate,
            taker_fee_rate=sim.taker_fee_rate,
            volatility=sim.volatility,
            tick_interval_ms=sim.tick_interval_ms,
        )
