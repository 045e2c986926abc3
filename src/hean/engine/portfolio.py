"""Positions and PnL from executions. Pure: no trio, no I/O.

Executions are the source of truth for fills. Each is applied at most once (deduplicated by the
venue-wide ``execId``), whichever way it arrives (private stream, REST reconciliation, journal
replay). Order updates and position snapshots never move a position; they are *compared*:

* an order whose reported ``cumExecQty`` exceeds the quantity of its executions seen so far has
  missing fills (:meth:`Portfolio.missing_fill_qty`): normal for a moment when the order update
  outruns the execution message, a fault if it persists — reconciliation fetches them;
* a position snapshot that disagrees with the local size (:meth:`Portfolio.compare`) is a
  :class:`PositionMismatch`: transient while fills are in flight, fail-closed after a full
  reconciliation applied every fill.

Accounting (one-way mode, linear contracts; PnL in the settle coin)
====================================================================
A position is a signed size ``S`` and a signed cost basis ``C`` (``avg_entry = C / S``). A fill of
signed quantity ``d`` (``+qty`` Buy, ``-qty`` Sell) at price ``x``:

* adds to the position (``S == 0`` or same sign): ``S += d``, ``C += d * x``;
* reduces it: the closed part ``c`` (same sign as ``S``, ``|c| = min(|d|, |S|)``) carries the cost
  ``R = C * |c| / |S|`` rounded to :data:`COST_QUANTUM` (exactly ``C`` on a full close), realized
  PnL gains ``c * x - R``, and ``C -= R``, ``S -= c``;
* flips through zero: the close above, then the rest opens a new position at ``x``.

Properties (tested with Hypothesis in ``tests/unit/engine/test_engine_portfolio.py``):

1. applying an execution twice changes nothing (``execId`` dedupe);
2. ``size`` is the signed sum of fill quantities; ``fees``, ``funding``, ``volume``,
   ``fill_count`` and ``last_exec_time`` are sums/maxima — all independent of arrival order;
3. for every price ``p``: ``realized_pnl + unrealized(p) == p * size - sum(d * x)``, the
   mark-to-market of the fill sequence, *exactly* (Decimal) — whatever ``R`` rounds to, the cost
   removed from ``C`` is the cost credited against realized PnL;
4. hence ``realized_pnl + unrealized(p)`` is order-independent too. ``avg_entry`` and
   ``realized_pnl`` on their own are NOT: buy 1@100, sell 1@110, buy 1@120 realizes 10 with entry
   120; buy 1@100, buy 1@120, sell 1@110 realizes 0 with entry 110. Replays must use the original
   order — the journal keeps it.

Fees: ``execFee`` as Bybit reports it, positive = paid, negative = maker rebate. Funding (and
``Settle``) executions carry a charge but no position change: they go to ``funding``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

from attrs import evolve, frozen

from hean.bybit.types import ZERO, ExecType, Execution, Order, Position, Side

__all__ = [
    "COST_QUANTUM",
    "DEFAULT_ENTRY_TOLERANCE",
    "MismatchKind",
    "Portfolio",
    "PositionMismatch",
    "PositionState",
    "is_position_fill",
    "position_state_from_dict",
    "position_state_to_dict",
]

DEFAULT_ENTRY_TOLERANCE = Decimal("0.0001")
"""Relative difference of average entry prices reported as a mismatch (1 bp): Bybit rounds its
``avgPrice``, so exact equality would flag every multi-fill position."""

COST_QUANTUM = Decimal("1e-12")
"""The cost removed by a partial close is rounded to this (settle-coin units), so that every stored
amount is a short exact decimal and the sums below never round."""

# Additions and products of exchange numbers (a few decimals each) are exact at this precision;
# only the proportional cost ``R`` is rounded, explicitly, to COST_QUANTUM.
_EXACT = Context(prec=60, rounding=ROUND_HALF_EVEN)

_CHARGE_ONLY = frozenset({ExecType.FUNDING, ExecType.SETTLE})


def is_position_fill(e: Execution) -> bool:
    """Whether ``e`` moves the position (False for funding/settlement charges)."""
    return e.exec_type not in _CHARGE_ONLY and e.exec_qty > 0


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


@frozen
class PositionState:
    """One symbol's local position and PnL (see the module docstring for the arithmetic).

    Attributes:
        size: signed size (+ long, - short).
        cost: signed cost basis, ``size * avg_entry`` (0 when flat).
        realized_pnl: price PnL of closed quantity, before fees.
        fees: trading fees paid (negative = net rebate).
        funding: funding/settlement charges paid (negative = received).
        volume: total traded quantity (absolute).
        fill_count: number of position-changing executions applied.
        opened_at_ms: ``execTime`` of the fill that opened the current position from flat (for
            the position watchdog's max-hold timer; None when flat).
        last_exec_time: newest ``execTime`` applied (ms).
    """

    symbol: str
    size: Decimal = ZERO
    cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    volume: Decimal = ZERO
    fill_count: int = 0
    opened_at_ms: int | None = None
    last_exec_time: int = 0

    @property
    def side(self) -> Side | None:
        if self.size > 0:
            return Side.BUY
        if self.size < 0:
            return Side.SELL
        return None

    @property
    def avg_entry(self) -> Decimal:
        """Average entry price (0 when flat)."""
        return ZERO if self.size == 0 else self.cost / self.size

    def unrealized(self, price: Decimal) -> Decimal:
        """Open PnL if the position were closed at ``price``."""
        return self.size * price - self.cost

    def mark_to_market(self, price: Decimal) -> Decimal:
        """Realized plus unrealized price PnL at ``price`` (before fees)."""
        return self.realized_pnl + self.unrealized(price)

    def net_pnl(self, price: Decimal) -> Decimal:
        """Everything: price PnL at ``price`` minus fees and funding."""
        return self.mark_to_market(price) - self.fees - self.funding

    def apply_fill(
        self, side: Side, qty: Decimal, price: Decimal, fee: Decimal, exec_time: int
    ) -> PositionState:
        """The state after one fill (no dedupe here: that is :class:`Portfolio`'s job)."""
        if qty <= 0:
            raise ValueError(f"fill quantity must be > 0, got {qty}")
        with localcontext(_EXACT):
            d = qty * side.sign
            size, cost, realized = self.size, self.cost, self.realized_pnl
            opened = self.opened_at_ms
            if size == 0 or _sign(size) == _sign(d):
                if size == 0:
                    opened = exec_time
                size, cost = size + d, cost + d * price
            else:
                closing = min(qty, abs(size))
                if closing == abs(size):
                    removed = cost
                else:
                    removed = (cost * closing / abs(size)).quantize(COST_QUANTUM)
                closed = closing * _sign(size)
                realized += closed * price - removed
                cost -= removed
                size -= closed
                rest = qty - closing
                if rest > 0:  # flip through zero: the remainder opens at the fill price
                    size, cost, opened = rest * side.sign, rest * side.sign * price, exec_time
                elif size == 0:
                    cost, opened = ZERO, None
            return evolve(
                self,
                size=size,
                cost=cost,
                realized_pnl=realized,
                fees=self.fees + fee,
                volume=self.volume + qty,
                fill_count=self.fill_count + 1,
                opened_at_ms=opened,
                last_exec_time=max(self.last_exec_time, exec_time),
            )

    def apply_charge(self, fee: Decimal, exec_time: int) -> PositionState:
        """A funding/settlement charge: money moves, the position does not."""
        with localcontext(_EXACT):
            return evolve(
                self,
                funding=self.funding + fee,
                last_exec_time=max(self.last_exec_time, exec_time),
            )


def position_state_to_dict(p: PositionState) -> dict[str, Any]:
    """A JSON-ready dict (Decimals as strings) for the journal."""
    return {
        "symbol": p.symbol,
        "size": str(p.size),
        "cost": str(p.cost),
        "realized_pnl": str(p.realized_pnl),
        "fees": str(p.fees),
        "funding": str(p.funding),
        "volume": str(p.volume),
        "fill_count": p.fill_count,
        "opened_at_ms": p.opened_at_ms,
        "last_exec_time": p.last_exec_time,
    }


def position_state_from_dict(d: Mapping[str, Any]) -> PositionState:
    """Inverse of :func:`position_state_to_dict` (exact: Decimals travel as strings)."""
    opened = d["opened_at_ms"]
    return PositionState(
        symbol=d["symbol"],
        size=Decimal(d["size"]),
        cost=Decimal(d["cost"]),
        realized_pnl=Decimal(d["realized_pnl"]),
        fees=Decimal(d["fees"]),
        funding=Decimal(d["funding"]),
        volume=Decimal(d["volume"]),
        fill_count=int(d["fill_count"]),
        opened_at_ms=None if opened is None else int(opened),
        last_exec_time=int(d["last_exec_time"]),
    )


class MismatchKind(enum.StrEnum):
    SIZE = "size"  # the exchange holds a different position: fail closed after reconciliation
    ENTRY = "entry"  # same size, different average entry: accounting drift, log and alert


@frozen
class PositionMismatch:
    """The local position disagrees with the exchange's snapshot."""

    symbol: str
    kind: MismatchKind
    local_size: Decimal
    exchange_size: Decimal
    local_entry: Decimal
    exchange_entry: Decimal

    @property
    def size_diff(self) -> Decimal:
        """What the exchange holds beyond the local position (signed)."""
        return self.exchange_size - self.local_size


@frozen
class _OrderReport:
    symbol: str
    cum_exec_qty: Decimal
    final: bool


class Portfolio:
    """All positions, fed by executions; mutable, in memory, no I/O.

    The shell journals every execution :meth:`apply_execution` accepted (it returns True), in the
    order applied, and :meth:`restore` replays them in that order.
    """

    __slots__ = ("_order_fills", "_order_reports", "_positions", "_seen")

    def __init__(self) -> None:
        self._positions: dict[str, PositionState] = {}
        self._seen: set[str] = set()
        self._order_fills: dict[str, Decimal] = {}  # orderId -> executed qty seen
        self._order_reports: dict[str, _OrderReport] = {}  # orderId -> highest cumExecQty reported

    # ---- executions

    def has_seen(self, exec_id: str) -> bool:
        return exec_id in self._seen

    def apply_execution(self, execution: Execution) -> bool:
        """Book one execution; False (and no change) if its ``execId`` was already applied."""
        if execution.exec_id in self._seen:
            return False
        self._book(execution, move_position=True)
        return True

    def _book(self, e: Execution, *, move_position: bool) -> None:
        self._seen.add(e.exec_id)
        charge_only = not is_position_fill(e)
        if not charge_only and e.order_id:
            self._order_fills[e.order_id] = self._order_fills.get(e.order_id, ZERO) + e.exec_qty
            self._prune_report(e.order_id)
        if not move_position:
            return
        state = self.position(e.symbol)
        if charge_only:
            state = state.apply_charge(e.exec_fee, e.exec_time)
        else:
            state = state.apply_fill(e.side, e.exec_qty, e.exec_price, e.exec_fee, e.exec_time)
        self._positions[e.symbol] = state

    # ---- order updates (compared, never applied to positions)

    def observe_order(self, order: Order) -> None:
        """Remember how much the exchange says ``order`` has filled, to detect missing fills."""
        prev = self._order_reports.get(order.order_id)
        cum = order.cum_exec_qty if prev is None else max(prev.cum_exec_qty, order.cum_exec_qty)
        final = order.order_status.is_final or (prev is not None and prev.final)
        self._order_reports[order.order_id] = _OrderReport(order.symbol, cum, final)
        self._prune_report(order.order_id)

    def _prune_report(self, order_id: str) -> None:
        # A final order whose fills are all booked can never have missing fills again.
        report = self._order_reports.get(order_id)
        if (
            report is not None
            and report.final
            and self._order_fills.get(order_id, ZERO) >= report.cum_exec_qty
        ):
            del self._order_reports[order_id]

    def filled_qty(self, order_id: str) -> Decimal:
        """Quantity of ``order_id``'s executions applied so far."""
        return self._order_fills.get(order_id, ZERO)

    def missing_fill_qty(self, order_id: str) -> Decimal:
        """Reported ``cumExecQty`` minus executions seen (>= 0) for one order."""
        report = self._order_reports.get(order_id)
        if report is None:
            return ZERO
        return max(ZERO, report.cum_exec_qty - self.filled_qty(order_id))

    def missing_fills(self, symbol: str | None = None) -> dict[str, Decimal]:
        """``{orderId: missing qty}`` for every order (of ``symbol``) with missing fills."""
        out: dict[str, Decimal] = {}
        for order_id, report in self._order_reports.items():
            if symbol is not None and report.symbol != symbol:
                continue
            missing = self.missing_fill_qty(order_id)
            if missing > 0:
                out[order_id] = missing
        return out

    # ---- positions

    def position(self, symbol: str) -> PositionState:
        return self._positions.get(symbol) or PositionState(symbol)

    def positions(self) -> dict[str, PositionState]:
        return dict(self._positions)

    def compare(
        self, position: Position, *, entry_tolerance: Decimal = DEFAULT_ENTRY_TOLERANCE
    ) -> PositionMismatch | None:
        """Compare an exchange snapshot with the local position; never changes anything."""
        local = self.position(position.symbol)
        exchange_size = position.signed_size
        exchange_entry = position.entry_price if exchange_size != 0 else ZERO

        def mismatch(kind: MismatchKind) -> PositionMismatch:
            return PositionMismatch(
                symbol=position.symbol,
                kind=kind,
                local_size=local.size,
                exchange_size=exchange_size,
                local_entry=local.avg_entry,
                exchange_entry=exchange_entry,
            )

        if local.size != exchange_size:
            return mismatch(MismatchKind.SIZE)
        if exchange_size != 0 and exchange_entry > 0:
            drift = abs(local.avg_entry - exchange_entry) / exchange_entry
            if drift > entry_tolerance:
                return mismatch(MismatchKind.ENTRY)
        return None

    def adopt(self, position: Position, at_ms: int) -> PositionState:
        """Take the exchange's size and entry for ``position.symbol`` (an explicit decision).

        Used when the engine starts with a position the journal does not explain (first start,
        or an operator's manual trade) and policy says to manage it rather than fail closed.
        PnL history is kept; the cost basis becomes ``size * entry``. ``opened_at_ms`` stays if
        the local position already pointed the same way, else it becomes ``at_ms`` (the adoption
        time, epoch ms): the position's own ``createdTime`` is not when it was opened. The caller
        journals the returned state with ``Journal.record_position``.
        """
        prev = self.position(position.symbol)
        size = position.signed_size
        opened: int | None = None
        if size != 0:
            opened = prev.opened_at_ms if _sign(prev.size) == _sign(size) else at_ms
        state = evolve(
            prev,
            size=size,
            cost=size * position.entry_price if size != 0 else ZERO,
            opened_at_ms=opened,
        )
        self._positions[position.symbol] = state
        return state

    # ---- whole-portfolio

    def copy(self) -> Portfolio:
        """An independent copy (for dry runs such as reconciliation planning)."""
        other = Portfolio()
        other._positions = dict(self._positions)
        other._seen = set(self._seen)
        other._order_fills = dict(self._order_fills)
        other._order_reports = dict(self._order_reports)
        return other

    @property
    def exec_count(self) -> int:
        return len(self._seen)

    @classmethod
    def restore(
        cls,
        baselines: Iterable[PositionState] = (),
        covered: Iterable[Execution] = (),
        replay: Iterable[Execution] = (),
        orders: Iterable[Order] = (),
    ) -> Portfolio:
        """Rebuild from the journal.

        Args:
            baselines: journaled position snapshots (``record_position``).
            covered: executions already included in their symbol's baseline: marked seen and
                counted per order, but not re-applied to the position.
            replay: executions after the baselines, in the order they were first applied.
            orders: last known exchange snapshots of orders, to restore missing-fill detection.
        """
        p = cls()
        for state in baselines:
            p._positions[state.symbol] = state
        for e in covered:
            if e.exec_id not in p._seen:
                p._book(e, move_position=False)
        for e in replay:
            p.apply_execution(e)
        for o in orders:
            p.observe_order(o)
        return p
