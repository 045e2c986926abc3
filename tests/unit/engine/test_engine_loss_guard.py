"""LossGuard: drawdown from the high-water mark and the UTC-day loss limit (pure, no trio)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.config import RiskConfig
from hean.engine.loss_guard import MS_PER_DAY, LossBreach, LossGuard, LossKind, utc_day

D = Decimal
DAY0 = 20_000 * MS_PER_DAY  # a UTC midnight (2024-10-04)
NOON = DAY0 + MS_PER_DAY // 2


def guard(dd: str = "10", daily: str = "500") -> LossGuard:
    return LossGuard(D(dd), D(daily))


def test_utc_day_changes_exactly_at_midnight() -> None:
    assert utc_day(DAY0 - 1) == utc_day(DAY0) - 1
    assert utc_day(DAY0) == utc_day(DAY0 + MS_PER_DAY - 1) == 20_000
    assert utc_day(0) == 0


def test_limits_are_validated() -> None:
    for dd in ("0", "-1", "100.01", "NaN"):
        with pytest.raises(ValueError, match="max_drawdown_pct"):
            LossGuard(D(dd), D("1"))
    for daily in ("0", "-5", "Infinity"):
        with pytest.raises(ValueError, match="daily_loss_limit_usdt"):
            LossGuard(D("10"), D(daily))
    assert LossGuard(D("100"), D("0.01")).max_drawdown_pct == D("100")


def test_from_config() -> None:
    g = LossGuard.from_config(RiskConfig(max_drawdown_pct=D("5"), daily_loss_limit_usdt=D("50")))
    assert (g.max_drawdown_pct, g.daily_loss_limit_usdt) == (D("5"), D("50"))


def test_non_finite_equity_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        guard().observe(D("NaN"), NOON)


def test_drawdown_is_measured_from_the_peak_not_from_the_start() -> None:
    """The audit's scenario: 300 -> 1000 (profit) -> 900. From the peak that is a 10 %
    drawdown; the first reading (300) is irrelevant, and the profit never counted as one."""
    g = guard(dd="10", daily="100000")
    assert g.observe(D("300"), NOON) is None
    assert g.observe(D("1000"), NOON + 1) is None  # profit: no drawdown at all
    assert g.drawdown_pct(D("1000")) == 0
    assert g.observe(D("901"), NOON + 2) is None  # 9.9 % below the peak
    breach = g.observe(D("900"), NOON + 3)
    assert breach == LossBreach(
        LossKind.DRAWDOWN,
        D("10"),
        D("10"),
        "drawdown 10.00% from peak equity 1000 (equity 900) >= 10%",
    )
    assert g.peak == D("1000")


def test_a_drawdown_breach_is_sticky_across_recovery_and_days() -> None:
    g = guard(dd="5", daily="100000")
    g.observe(D("1000"), NOON)
    first = g.observe(D("940"), NOON + 1)
    assert first is not None
    assert first.kind is LossKind.DRAWDOWN
    assert first.value == D("6")
    assert g.observe(D("2000"), NOON + 2) is first  # recovered, even a new peak: still breached
    assert g.observe(D("2000"), NOON + 3 * MS_PER_DAY) is first  # and on later days
    assert g.breach is first


def test_daily_loss_from_the_days_first_observation() -> None:
    g = guard(dd="100", daily="50")
    assert g.observe(D("1000"), DAY0 + 5) is None
    assert g.day_start_equity == D("1000")
    assert g.observe(D("1200"), NOON) is None  # the start does not follow the day's high
    assert g.observe(D("950.01"), NOON + 1) is None  # lost 49.99 since the start
    breach = g.observe(D("950"), NOON + 2)
    assert breach is not None
    assert breach.kind is LossKind.DAILY_LOSS
    assert (breach.value, breach.limit) == (D("50"), D("50"))
    assert "daily loss 50 USDT" in breach.detail


def test_daily_breach_holds_for_the_day_and_resets_at_utc_midnight() -> None:
    g = guard(dd="100", daily="10")
    g.observe(D("1000"), NOON)
    breach = g.observe(D("985"), NOON + 1)
    assert breach is not None
    assert g.observe(D("1000"), NOON + 2) is breach  # recovered within the day: still in force
    assert g.observe(D("1000"), DAY0 + MS_PER_DAY - 1) is breach  # 23:59:59.999
    # The first reading of the next UTC day starts it afresh.
    assert g.observe(D("990"), DAY0 + MS_PER_DAY) is None
    assert g.day == utc_day(DAY0) + 1
    assert g.day_start_equity == D("990")
    again = g.observe(D("980"), DAY0 + MS_PER_DAY + 1)
    assert again is not None
    assert again is not breach
    assert again.value == D("10")


def test_a_clock_stepping_back_does_not_reopen_an_earlier_day() -> None:
    g = guard(dd="100", daily="10")
    g.observe(D("1000"), DAY0 + MS_PER_DAY + 5)
    breach = g.observe(D("980"), DAY0 + MS_PER_DAY + 6)
    assert breach is not None
    assert g.observe(D("980"), DAY0 + 5) is breach  # yesterday's timestamp: no reset
    assert g.day == utc_day(DAY0) + 1


def test_drawdown_wins_over_daily_and_stays_after_the_day_resets() -> None:
    g = guard(dd="10", daily="50")
    g.observe(D("1000"), NOON)
    daily = g.observe(D("940"), NOON + 1)
    assert daily is not None
    assert daily.kind is LossKind.DAILY_LOSS
    dd = g.observe(D("880"), NOON + 2)
    assert dd is not None
    assert dd.kind is LossKind.DRAWDOWN
    assert g.daily_breach is daily  # both in force; the drawdown is reported
    assert g.observe(D("880"), DAY0 + MS_PER_DAY) is dd
    assert g.daily_breach is None


def test_drawdown_is_not_checked_without_a_positive_peak() -> None:
    g = guard(dd="1", daily="5")
    assert g.observe(D("0"), NOON) is None
    assert g.drawdown_pct(D("0")) is None
    breach = g.observe(D("-5"), NOON + 1)  # the daily limit still applies
    assert breach is not None
    assert breach.kind is LossKind.DAILY_LOSS


_equity = st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2)


@settings(max_examples=150, deadline=None)
@given(
    start=_equity,
    steps=st.lists(st.decimals(min_value=0, max_value=D("10000"), places=2), max_size=30),
    gaps=st.lists(st.integers(min_value=0, max_value=2 * MS_PER_DAY), min_size=30, max_size=30),
    dd=st.decimals(min_value=D("0.01"), max_value=D("100"), places=2),
    daily=st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2),
)
def test_monotonically_rising_equity_never_breaches(
    start: D, steps: list[D], gaps: list[int], dd: D, daily: D
) -> None:
    g = LossGuard(dd, daily)
    now, equity = NOON, start
    assert g.observe(equity, now) is None
    for step, gap in zip(steps, gaps, strict=False):
        equity += step
        now += gap
        assert g.observe(equity, now) is None
        assert g.peak == equity
        assert g.drawdown_pct(equity) == 0


@settings(max_examples=150, deadline=None)
@given(
    readings=st.lists(_equity, min_size=1, max_size=40),
    dd=st.decimals(min_value=D("0.01"), max_value=D("100"), places=2),
)
def test_drawdown_is_computed_from_the_running_peak(readings: list[D], dd: D) -> None:
    """Within one day (daily limit out of reach): breached exactly when some reading fell
    ``dd`` % below the highest reading before (or at) it, and the peak is the running max."""
    g = LossGuard(dd, D("1E+12"))
    peak = D(0)
    expect_breach = False
    for i, equity in enumerate(readings):
        peak = max(peak, equity)
        expect_breach = expect_breach or (peak - equity) / peak * 100 >= dd
        breach = g.observe(equity, NOON + i)
        assert g.peak == peak
        assert (breach is not None) == expect_breach
        if breach is not None:
            assert breach.kind is LossKind.DRAWDOWN
            assert breach.limit == dd
            assert breach.value >= dd
