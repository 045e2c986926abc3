"""Loss limits: ``risk.max_drawdown_pct`` and ``risk.daily_loss_limit_usdt``. Pure.

No trio, no I/O: the caller feeds account equity (the wallet's ``totalEquity``, which includes
unrealized PnL) and the wall-clock time in ms; :meth:`LossGuard.observe` answers with the breach
in force, if any. What to do about a breach (refuse new exposure, alert) is the caller's business
(:mod:`hean.engine.app` blocks the :class:`~hean.engine.risk_gate.RiskGate`), which keeps this the
seam a fuller risk governor can wrap or replace.

The two limits:

* **Drawdown** is measured from the high-water mark of the equity seen since the engine started
  (``peak``), never from an initial capital: profit raises the peak and can never count as
  drawdown, and a fall after a profit is measured from where the account actually was (the old
  engine compared equity with its starting capital, and read a large profit as a negative
  drawdown). ``drawdown_pct = (peak - equity) / peak * 100``; it is breached when it reaches
  ``max_drawdown_pct``. Undefined while the peak is not positive (an unfunded account), so not
  checked then; the daily limit still is.
* **Daily loss** is the equity at the day's first observation minus the current equity; it is
  breached when it reaches ``daily_loss_limit_usdt``. The day is the UTC calendar day of
  ``now_ms`` and resets at UTC midnight: the first observation of a new day becomes its start.

Stickiness: a drawdown breach stays in force for the life of this object — an operator must look
at the account and restart the engine to trade again (the peak then starts afresh from the equity
at startup). A daily-loss breach stays in force until the first observation of the next UTC day;
a recovery within the day does not lift it. Both are in memory only: a process restart forgets the
peak and starts the day from the equity at restart (a persisted governor would journal them).
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from attrs import frozen

if TYPE_CHECKING:
    from hean.config import RiskConfig

__all__ = ["MS_PER_DAY", "LossBreach", "LossGuard", "LossKind", "utc_day"]

MS_PER_DAY: Final = 86_400_000
_HUNDRED: Final = Decimal(100)


def utc_day(now_ms: int) -> int:
    """The UTC calendar day of ``now_ms`` (days since the Unix epoch; midnight starts a day)."""
    return now_ms // MS_PER_DAY


class LossKind(enum.StrEnum):
    """Which limit was breached."""

    DRAWDOWN = "drawdown"
    DAILY_LOSS = "daily_loss"


@frozen
class LossBreach:
    """A limit in force: ``value`` (drawdown in %, daily loss in USDT) reached ``limit``."""

    kind: LossKind
    value: Decimal
    limit: Decimal
    detail: str


class LossGuard:
    """Tracks peak equity and the UTC day's starting equity; reports loss-limit breaches.

    Attributes (read-only for callers):
        peak: highest equity observed (None before the first observation).
        day: UTC day (:func:`utc_day`) of the current daily window.
        day_start_equity: equity at the first observation of ``day``.
        drawdown_breach / daily_breach: the breach of each kind in force, if any.
    """

    __slots__ = (
        "daily_breach",
        "daily_loss_limit_usdt",
        "day",
        "day_start_equity",
        "drawdown_breach",
        "max_drawdown_pct",
        "peak",
    )

    def __init__(self, max_drawdown_pct: Decimal, daily_loss_limit_usdt: Decimal) -> None:
        if not (max_drawdown_pct.is_finite() and 0 < max_drawdown_pct <= _HUNDRED):
            raise ValueError(f"max_drawdown_pct must be in (0, 100], got {max_drawdown_pct}")
        if not (daily_loss_limit_usdt.is_finite() and daily_loss_limit_usdt > 0):
            raise ValueError(f"daily_loss_limit_usdt must be > 0, got {daily_loss_limit_usdt}")
        self.max_drawdown_pct = max_drawdown_pct
        self.daily_loss_limit_usdt = daily_loss_limit_usdt
        self.peak: Decimal | None = None
        self.day: int | None = None
        self.day_start_equity: Decimal | None = None
        self.drawdown_breach: LossBreach | None = None
        self.daily_breach: LossBreach | None = None

    @classmethod
    def from_config(cls, risk: RiskConfig) -> LossGuard:
        return cls(risk.max_drawdown_pct, risk.daily_loss_limit_usdt)

    @property
    def breach(self) -> LossBreach | None:
        """The breach in force; a drawdown breach (sticky for good) wins over a daily one."""
        return self.drawdown_breach if self.drawdown_breach is not None else self.daily_breach

    def drawdown_pct(self, equity: Decimal) -> Decimal | None:
        """Drawdown of ``equity`` from the peak in percent (None while the peak is not > 0)."""
        if self.peak is None or self.peak <= 0:
            return None
        return max(Decimal(0), (self.peak - equity) / self.peak * _HUNDRED)

    def observe(self, equity: Decimal, now_ms: int) -> LossBreach | None:
        """Record one equity reading at wall-clock ``now_ms``; returns the breach in force.

        The same :class:`LossBreach` object is returned while one stays in force (the first
        reading that crossed the limit), so a caller can tell a new breach from an old one by
        comparing with what it got last time. A clock that steps back into an earlier day does not
        reopen that day: the window only moves forward.
        """
        if not equity.is_finite():
            raise ValueError(f"equity must be finite, got {equity}")
        day = utc_day(now_ms)
        if self.day is None or day > self.day:
            self.day = day
            self.day_start_equity = equity
            self.daily_breach = None
        if self.peak is None or equity > self.peak:
            self.peak = equity

        if self.drawdown_breach is None:
            drawdown = self.drawdown_pct(equity)
            if drawdown is not None and drawdown >= self.max_drawdown_pct:
                self.drawdown_breach = LossBreach(
                    LossKind.DRAWDOWN,
                    drawdown,
                    self.max_drawdown_pct,
                    f"drawdown {drawdown:.2f}% from peak equity {self.peak} "
                    f"(equity {equity}) >= {self.max_drawdown_pct}%",
                )
        if self.daily_breach is None:
            assert self.day_start_equity is not None
            loss = self.day_start_equity - equity
            if loss >= self.daily_loss_limit_usdt:
                self.daily_breach = LossBreach(
                    LossKind.DAILY_LOSS,
                    loss,
                    self.daily_loss_limit_usdt,
                    f"daily loss {loss} USDT since the UTC day's start equity "
                    f"{self.day_start_equity} >= {self.daily_loss_limit_usdt} USDT",
                )
        return self.breach
