"""The status line and the final summary. Pure: values in, dicts and strings out.

The engine's reporter task (in :mod:`hean.engine.app`) takes a :class:`StatusSnapshot` every
``status_interval_s`` and logs it twice over: one compact structured event ``status`` (for JSON
logs, journald and anything that parses them) built by :func:`status_fields`, and, when stdout is a
terminal, one human line from :func:`format_status_line`. At exit, :func:`format_summary` prints
the run's totals.

PnL conventions follow :mod:`hean.engine.portfolio`: realized and unrealized are price PnL before
costs; ``fees`` are paid trading fees (negative = net rebate) and ``funding`` paid funding; the
net is ``realized + unrealized - fees - funding``. Unrealized PnL is marked at the mid of the
latest book (or the ticker's mark price) and left out for a symbol without any price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from attrs import frozen

from hean.bybit.types import ZERO
from hean.engine.portfolio import PositionState

__all__ = [
    "PositionView",
    "StatusSnapshot",
    "StreamView",
    "build_snapshot",
    "format_status_line",
    "format_summary",
    "status_fields",
]

_CENT = Decimal("0.01")


@frozen
class StreamView:
    """One WebSocket stream as the status line shows it."""

    name: str
    state: str  # "ready" | "connecting" | "down"
    reconnects: int = 0


@frozen
class PositionView:
    symbol: str
    size: Decimal
    avg_entry: Decimal
    mark: Decimal | None
    unrealized: Decimal | None


@frozen
class StatusSnapshot:
    """Everything one status line shows."""

    mode: str
    uptime_s: float
    equity: Decimal | None
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    funding: Decimal
    positions: tuple[PositionView, ...]
    open_orders: int
    fills: int
    maker_fills: int
    streams: tuple[StreamView, ...]
    trading: bool
    blocked_reason: str | None = None
    fail_closed: str | None = None
    restarts: int = 0
    loss_limit: str | None = None  # a breached loss limit refuses new exposure (loss_guard)

    @property
    def net_pnl(self) -> Decimal:
        return self.realized + self.unrealized - self.fees - self.funding

    @property
    def maker_ratio(self) -> float | None:
        """Share of fills that were maker fills (None before the first fill)."""
        return None if self.fills == 0 else self.maker_fills / self.fills


def build_snapshot(
    *,
    mode: str,
    uptime_s: float,
    equity: Decimal | None,
    positions: Mapping[str, PositionState],
    marks: Mapping[str, Decimal],
    open_orders: int,
    fills: int,
    maker_fills: int,
    streams: Iterable[StreamView],
    trading: bool,
    blocked_reason: str | None = None,
    fail_closed: str | None = None,
    restarts: int = 0,
    loss_limit: str | None = None,
) -> StatusSnapshot:
    """Aggregate per-symbol portfolio states into one snapshot.

    Realized PnL, fees and funding are summed over every symbol ever traded (flat ones too);
    only non-flat symbols are listed as positions.
    """
    realized = fees = funding = unrealized = ZERO
    views: list[PositionView] = []
    for symbol in sorted(positions):
        st = positions[symbol]
        realized += st.realized_pnl
        fees += st.fees
        funding += st.funding
        if st.size == 0:
            continue
        mark = marks.get(symbol)
        upnl = st.unrealized(mark) if mark is not None else None
        if upnl is not None:
            unrealized += upnl
        views.append(PositionView(symbol, st.size, st.avg_entry, mark, upnl))
    return StatusSnapshot(
        mode=mode,
        uptime_s=uptime_s,
        equity=equity,
        realized=realized,
        unrealized=unrealized,
        fees=fees,
        funding=funding,
        positions=tuple(views),
        open_orders=open_orders,
        fills=fills,
        maker_fills=maker_fills,
        streams=tuple(streams),
        trading=trading,
        blocked_reason=blocked_reason,
        fail_closed=fail_closed,
        restarts=restarts,
        loss_limit=loss_limit,
    )


def _money(x: Decimal | None) -> str:
    if x is None:
        return "-"
    return f"{x.quantize(_CENT):f}"


def _signed(x: Decimal) -> str:
    q = x.quantize(_CENT)
    return f"+{q:f}" if q > 0 else f"{q:f}"


def _plain(x: Decimal) -> str:
    """A quantity without exponent or superfluous zeros ("0.010" -> "0.01", "5E+1" -> "50")."""
    text = f"{x.normalize():f}"
    return "0" if text in ("-0", "0") else text


def status_fields(s: StatusSnapshot) -> dict[str, Any]:
    """The compact fields of the ``status`` log event (strings for money: JSON-safe, exact)."""
    ratio = s.maker_ratio
    fields: dict[str, Any] = {
        "mode": s.mode,
        "uptime_s": round(s.uptime_s, 1),
        "equity": None if s.equity is None else _money(s.equity),
        "pnl_net": _money(s.net_pnl),
        "pnl_realized": _money(s.realized),
        "pnl_unrealized": _money(s.unrealized),
        "fees": _money(s.fees),
        "funding": _money(s.funding),
        "positions": {p.symbol: _plain(p.size) for p in s.positions},
        "open_orders": s.open_orders,
        "fills": s.fills,
        "maker_ratio": None if ratio is None else round(ratio, 3),
        "streams": {v.name: v.state for v in s.streams},
        "trading": s.trading,
    }
    if s.blocked_reason is not None:
        fields["blocked"] = s.blocked_reason
    if s.fail_closed is not None:
        fields["fail_closed"] = s.fail_closed
    if s.loss_limit is not None:
        fields["loss_limit"] = s.loss_limit
    if s.restarts:
        fields["restarts"] = s.restarts
    return fields


def _positions_text(s: StatusSnapshot) -> str:
    if not s.positions:
        return "flat"
    parts = []
    for p in s.positions:
        size = _plain(p.size)
        if not size.startswith("-"):
            size = "+" + size
        parts.append(f"{p.symbol} {size}@{_plain(p.avg_entry.quantize(_CENT))}")
    return ", ".join(parts)


def _streams_text(s: StatusSnapshot) -> str:
    return " ".join(f"{v.name}:{v.state}" for v in s.streams) or "-"


def format_status_line(s: StatusSnapshot) -> str:
    """One human line, e.g.::

    [paper 00:01:05] equity 10003.21 | pnl +3.40 (real +2.10 unreal +1.50 fees 0.20) |
    pos BTCUSDT +0.002@95012.3 | orders 2 | fills 7 (maker 100%) | public:ready private:ready
    """
    ratio = s.maker_ratio
    maker = "-" if ratio is None else f"{ratio:.0%}"
    state = "trading" if s.trading else f"BLOCKED({s.blocked_reason or 'unknown'})"
    if s.loss_limit is not None:
        state = f"LOSS-LIMIT({s.loss_limit})"
    if s.fail_closed is not None:
        state = f"FAIL-CLOSED({s.fail_closed})"
    return (
        f"[{s.mode} {_clock(s.uptime_s)}] {state} | equity {_money(s.equity)} | "
        f"pnl {_signed(s.net_pnl)} (real {_signed(s.realized)} unreal {_signed(s.unrealized)} "
        f"fees {_money(s.fees)}) | pos {_positions_text(s)} | orders {s.open_orders} | "
        f"fills {s.fills} (maker {maker}) | {_streams_text(s)}"
    )


def _clock(seconds: float) -> str:
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{sec:02d}"


def format_summary(s: StatusSnapshot, *, exit_code: int, reason: str) -> str:
    """The multi-line summary printed when ``hean run`` ends."""
    ratio = s.maker_ratio
    lines = [
        "HEAN run summary",
        f"  mode            {s.mode}",
        f"  ran for         {_clock(s.uptime_s)}",
        f"  stopped         {reason} (exit code {exit_code})",
        f"  equity          {_money(s.equity)}",
        f"  net pnl         {_signed(s.net_pnl)}",
        f"    realized      {_signed(s.realized)}",
        f"    unrealized    {_signed(s.unrealized)}",
        f"    fees          {_money(s.fees)}",
        f"    funding       {_money(s.funding)}",
        f"  fills           {s.fills} (maker {'-' if ratio is None else f'{ratio:.0%}'})",
        f"  open orders     {s.open_orders}",
        f"  positions       {_positions_text(s)}",
        f"  restarts        {s.restarts}",
    ]
    if s.loss_limit is not None:
        lines.append(f"  LOSS-LIMIT      {s.loss_limit}")
    if s.fail_closed is not None:
        lines.append(f"  FAIL-CLOSED     {s.fail_closed}")
    return "\n".join(lines)
