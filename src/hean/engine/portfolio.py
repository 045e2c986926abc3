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
   120; buy 1@100, buy 1@120, sell 1@110 realizes 0 with entry 110. So :class:`Portfolio` never
   applies fills in arrival order: each symbol's state is the fold of its fills in *exchange
   order* (below), whatever order they arrived in — live, late from reconciliation, or replayed
   from the journal;
5. hence the whole :class:`PositionState` (entry, realized PnL and ``opened_at_ms`` included) is
   the same for every arrival order of the same executions, and equals applying them sorted.

Exchange order
==============
:func:`exchange_order_key` sorts one symbol's executions as the venue applied them:
``(execTime, seq, walk, maker_first, execId)``.

* ``seq`` is the symbol's cross sequence (Bybit: "smaller = older"; the simulator increments
  ``SymbolState.cross_seq`` once per matching event), so it orders fills *between* matching
  events; ``execTime`` goes first because it agrees with ``seq`` on the venue and also orders the
  executions that carry no ``seq`` (``0``: funding, settlement, hand-made test data).
* Fills of ONE matching event share ``execTime`` and ``seq``, and their order matters too: a taker
  that closes a position across several price levels realizes, and reopens, at different
  prices. Neither venue numbers them, but both match best price first, so the aggressor walks
  the book monotonically: its buys fill at rising prices, its sells at falling ones. ``walk`` is
  the price signed by the aggressor's direction (the taker is the aggressor of a taker fill, the
  other side of a maker fill), which reproduces that walk from the fills alone.
* At one price, the simulator books the resting (maker) fill before the taker fill of the same
  match — only both ours on a self-trade; ``maker_first`` reproduces that for one resting order
  of ours per level (several of our own resting orders crossed by our own taker at one price
  cannot be told apart from the fills; a self-trade is not something the engine does).
* ``execId`` (a random UUID: no order information) only makes the key total, so that the result
  is deterministic: same-side fills at one price in one event commute up to the rounding of
  :data:`COST_QUANTUM`.

Late executions and replay
--------------------------
Per symbol the portfolio keeps the applied fills sorted by that key together with the state
after each one (a checkpoint per fill). An execution that sorts after the newest is an
append: O(1). One that sorts before it (a fill the private stream missed, booked at
reconciliation after later live fills) is inserted at its place ``i`` (O(log n) search, O(n)
pointer move) and the states from ``i`` on are recomputed from the checkpoint before it: O(k)
fill applications for the k fills that sort after it — the part the late fill can change.
Memory is one execution and one state per fill, bounded by ``Portfolio(replay_window=...)``:
beyond it the oldest fills are folded into the anchor (below), O(1) amortized.

Anchors: what the fills are replayed on
---------------------------------------
Normally a symbol's anchor is the empty state and nothing is older than it. Three things make an
*opaque* anchor, a state whose own fills cannot be replayed; its ``floor`` is the key of the
newest execution it includes:

* :meth:`Portfolio.adopt` — the exchange's position replaces size and cost;
* :meth:`Portfolio.restore` from a journal baseline that is not the sorted replay of the
  executions it covers (an adopted position, or a baseline written by an older engine);
* compaction beyond the replay window.

An execution that sorts before the floor of an opaque anchor is handled as follows:

* at or before ``PositionState.adopted_through`` (the ``(execTime, seq)`` through which the last
  adopted exchange position is known to include executions): it is ALREADY in the adopted size
  and cost. Re-applying it would double it, so it is marked seen, counted for its order
  (missing-fill detection), and only its order-independent amounts — fee, volume, fill count,
  newest time, funding — are added; its price PnL is not (adoption replaced the cost basis it
  would be measured against, and keeps no exchange PnL either);
* otherwise (older than an opaque baseline's floor but not in the adopted position: only after
  a restart of an adopted symbol, or beyond the replay window): it must move the position, and
  its true predecessors are gone, so it is applied at the nearest point that is known: right
  after the anchor, before every replayable fill, which are then recomputed. Size, fees, volume
  and the mark-to-market are exact; entry and realized PnL can differ from the venue's by this
  one misplacement. :attr:`Portfolio.unordered_fills` counts these for the shell to log and
  alert on (this module does no I/O); ``compare`` reports a material entry drift.

Journal replay (:meth:`Portfolio.restore`) reproduces the live state exactly: a baseline that is
the sorted replay of its covered executions is rebuilt from them (every fill stays replayable),
any other baseline becomes an opaque anchor, and the executions journaled after it go through
:meth:`Portfolio.apply_execution` like live ones.

Fees: ``execFee`` as Bybit reports it, positive = paid, negative = maker rebate. Funding
executions carry a charge but no position change: they go to ``funding``. ``Settle`` (a position
closed by delisting) and ``Delivery`` move the position like any other fill.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

from attrs import evolve, frozen

from hean.bybit.types import ZERO, ExecType, Execution, Order, Position, Side

__all__ = [
    "COST_QUANTUM",
    "DEFAULT_ENTRY_TOLERANCE",
    "DEFAULT_REPLAY_WINDOW",
    "MismatchKind",
    "Portfolio",
    "PositionMismatch",
    "PositionState",
    "exchange_order_key",
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

DEFAULT_REPLAY_WINDOW = 10_000
"""Fills per symbol kept replayable (with a checkpoint each, ~2 kB per fill). A fill the stream
missed comes back at the next reconciliation, seconds to minutes later: far fewer fills than this
on one symbol. Older fills are folded into the symbol's anchor (see the module docstring)."""

# Funding rows carry the position size in execQty but move nothing: only their fee counts.
# Settle is a position closed by delisting (docs v5/enum.mdx): it moves the position, like Delivery.
_CHARGE_ONLY = frozenset({ExecType.FUNDING})

ExchangeOrderKey = tuple[int, int, Decimal, int, str]


def is_position_fill(e: Execution) -> bool:
    """Whether ``e`` moves the position (False for funding/settlement charges)."""
    return e.exec_type not in _CHARGE_ONLY and e.exec_qty > 0


def _sign(x: Decimal) -> int:
    return (x > 0) - (x < 0)


def exchange_order_key(e: Execution) -> ExchangeOrderKey:
    """Where ``e`` falls in its symbol's venue order: ``(execTime, seq, walk, maker_first,
    execId)`` (why each part, in the module docstring, "Exchange order")."""
    if not is_position_fill(e):
        # A charge commutes with every fill and charge: any deterministic place will do.
        return (e.exec_time, e.seq, ZERO, 0, e.exec_id)
    # Within one matching event the aggressor walks the book: buys at rising prices, sells at
    # falling ones. The aggressor of a maker fill is the other side.
    aggressor_buys = (e.side is Side.BUY) != e.is_maker
    walk = e.exec_price if aggressor_buys else -e.exec_price
    return (e.exec_time, e.seq, walk, 0 if e.is_maker else 1, e.exec_id)


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
        fill_count: number of position-changing executions booked (those covered by an adopted
            position included).
        opened_at_ms: ``execTime`` of the fill that opened the current position from flat (for
            the position watchdog's max-hold timer; None when flat).
        last_exec_time: newest ``execTime`` applied (ms).
        adopted_through: ``(execTime, seq)`` through which the exchange position last adopted
            (:meth:`Portfolio.adopt`) includes executions; an execution at or before it is
            already in ``size``/``cost`` and never moves them (None: nothing adopted).
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
    adopted_through: tuple[int, int] | None = None

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

    def apply(self, e: Execution) -> PositionState:
        """The state after execution ``e`` (a fill or a charge; no dedupe here)."""
        if is_position_fill(e):
            return self.apply_fill(e.side, e.exec_qty, e.exec_price, e.exec_fee, e.exec_time)
        return self.apply_charge(e.exec_fee, e.exec_time)

    def include_covered(self, e: Execution) -> PositionState:
        """Count ``e`` whose position change is already in this (adopted) state: only the
        order-independent amounts move — fee, volume, fill count, newest time, funding."""
        if not is_position_fill(e):
            return self.apply_charge(e.exec_fee, e.exec_time)
        with localcontext(_EXACT):
            return evolve(
                self,
                fees=self.fees + e.exec_fee,
                volume=self.volume + e.exec_qty,
                fill_count=self.fill_count + 1,
                last_exec_time=max(self.last_exec_time, e.exec_time),
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
        "adopted_through": None if p.adopted_through is None else list(p.adopted_through),
    }


def position_state_from_dict(d: Mapping[str, Any]) -> PositionState:
    """Inverse of :func:`position_state_to_dict` (exact: Decimals travel as strings)."""
    opened = d["opened_at_ms"]
    # Absent in baselines written before adoption cut-offs existed: nothing adopted.
    through = d.get("adopted_through")
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
        adopted_through=None if through is None else (int(through[0]), int(through[1])),
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


def _max_key(a: ExchangeOrderKey | None, b: ExchangeOrderKey | None) -> ExchangeOrderKey | None:
    if a is None:
        return b
    return a if b is None or a > b else b


class _SymbolBook:
    """One symbol's fills in exchange order on top of an anchor, with the state after each.

    Invariants: ``keys`` is sorted and ``keys[j] == exchange_order_key(fills[j])``;
    ``states[j]`` is the fold of ``fills[:j + 1]`` onto ``anchor``; no fill in ``fills`` is at or
    before ``anchor.adopted_through`` (those are folded into the anchor when they arrive).
    """

    __slots__ = ("anchor", "fills", "floor", "keys", "states")

    def __init__(self, anchor: PositionState, floor: ExchangeOrderKey | None = None) -> None:
        self.anchor = anchor
        self.floor = floor  # the newest execution the anchor includes (None: none)
        self.keys: list[ExchangeOrderKey] = []
        self.fills: list[Execution] = []
        self.states: list[PositionState] = []

    @property
    def state(self) -> PositionState:
        return self.states[-1] if self.states else self.anchor

    @property
    def newest(self) -> ExchangeOrderKey | None:
        """The newest key booked (fills placed below the floor sort first: see ``add``)."""
        return _max_key(self.keys[-1] if self.keys else None, self.floor)

    def copy(self) -> _SymbolBook:
        other = _SymbolBook(self.anchor, self.floor)
        other.keys = list(self.keys)
        other.fills = list(self.fills)
        other.states = list(self.states)
        return other

    def add(self, e: Execution, window: int) -> bool:
        """Book ``e`` (not seen before); False if it had to be placed out of exchange order."""
        through = self.anchor.adopted_through
        if through is not None and (e.exec_time, e.seq) <= through:
            # Already in the adopted exchange position: it must not move size/cost again.
            self.anchor = self.anchor.include_covered(e)
            self._replay_from(0)
            return True
        key = exchange_order_key(e)
        # Older than an opaque anchor: its predecessors are folded away, so it goes right after
        # the anchor (keys stay sorted: it sorts before every key above the floor).
        in_order = self.floor is None or key > self.floor or not is_position_fill(e)
        i = bisect.bisect_right(self.keys, key)
        self.keys.insert(i, key)
        self.fills.insert(i, e)
        self.states.insert(i, self.anchor)  # overwritten by the replay below
        self._replay_from(i)
        if len(self.fills) > window:
            self._compact(window // 2)
        return in_order

    def _replay_from(self, i: int) -> None:
        """Recompute ``states[i:]`` from the checkpoint before ``i``: O(len(fills) - i)."""
        state = self.states[i - 1] if i else self.anchor
        fills, states = self.fills, self.states
        for j in range(i, len(fills)):
            state = state.apply(fills[j])
            states[j] = state

    def _compact(self, keep: int) -> None:
        """Fold all but the newest ``keep`` fills into the anchor."""
        cut = len(self.fills) - keep
        self.anchor = self.states[cut - 1]
        # Never lower: keys[cut - 1] may be a fill that was itself placed below the floor.
        self.floor = _max_key(self.keys[cut - 1], self.floor)
        del self.keys[:cut]
        del self.fills[:cut]
        del self.states[:cut]


class Portfolio:
    """All positions, fed by executions; mutable, in memory, no I/O.

    Each symbol's state is its executions folded in exchange order, whatever order they arrive
    in (see the module docstring). The shell journals every execution :meth:`apply_execution`
    accepted (it returns True) with the symbol's new state as a baseline, and :meth:`restore`
    rebuilds the same state from them.

    Args:
        replay_window: fills per symbol kept replayable (see :data:`DEFAULT_REPLAY_WINDOW`).
    """

    __slots__ = ("_books", "_order_fills", "_order_reports", "_seen", "_unordered", "_window")

    def __init__(self, *, replay_window: int = DEFAULT_REPLAY_WINDOW) -> None:
        if replay_window < 2:
            raise ValueError(f"replay_window must be >= 2, got {replay_window}")
        self._window = replay_window
        self._books: dict[str, _SymbolBook] = {}
        self._seen: set[str] = set()
        self._order_fills: dict[str, Decimal] = {}  # orderId -> executed qty seen
        self._order_reports: dict[str, _OrderReport] = {}  # orderId -> highest cumExecQty reported
        self._unordered = 0

    # ---- executions

    def has_seen(self, exec_id: str) -> bool:
        return exec_id in self._seen

    def apply_execution(self, execution: Execution) -> bool:
        """Book one execution at its place in exchange order; False (and no change) if its
        ``execId`` was already applied."""
        if execution.exec_id in self._seen:
            return False
        self._count(execution)
        book = self._books.get(execution.symbol)
        if book is None:
            book = self._books[execution.symbol] = _SymbolBook(PositionState(execution.symbol))
        if not book.add(execution, self._window):
            self._unordered += 1
        return True

    @property
    def unordered_fills(self) -> int:
        """Fills applied out of exchange order because they predate an opaque anchor (see the
        module docstring): each may leave entry and realized PnL off the venue's. Log and alert
        when it grows; 0 unless an adopted symbol or a very old fill is involved."""
        return self._unordered

    def _count(self, e: Execution) -> None:
        """Mark ``e`` seen and count it for its order (missing-fill detection)."""
        self._seen.add(e.exec_id)
        if is_position_fill(e) and e.order_id:
            self._order_fills[e.order_id] = self._order_fills.get(e.order_id, ZERO) + e.exec_qty
            self._prune_report(e.order_id)

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
        book = self._books.get(symbol)
        return PositionState(symbol) if book is None else book.state

    def positions(self) -> dict[str, PositionState]:
        return {symbol: book.state for symbol, book in self._books.items()}

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

        The adopted state becomes the symbol's anchor (module docstring): the fills applied so
        far can no longer be replayed, and ``adopted_through`` records which executions the
        exchange position includes — every one applied so far, and, when the snapshot says
        (``updatedTime`` > 0), every one at or before its ``(updatedTime, seq)`` (``seq`` is the
        cross sequence of the newest fill in it). A missed execution at or before that arriving
        later is only counted, never applied to size/cost again.
        """
        prev_book = self._books.get(position.symbol)
        prev = self.position(position.symbol)
        newest = None if prev_book is None else prev_book.newest
        through = [
            t
            for t in (
                prev.adopted_through,
                None if newest is None else (newest[0], newest[1]),
                (position.updated_time, position.seq) if position.updated_time > 0 else None,
            )
            if t is not None
        ]
        size = position.signed_size
        opened: int | None = None
        if size != 0:
            opened = prev.opened_at_ms if _sign(prev.size) == _sign(size) else at_ms
        state = evolve(
            prev,
            size=size,
            cost=size * position.entry_price if size != 0 else ZERO,
            opened_at_ms=opened,
            adopted_through=max(through) if through else None,
        )
        self._books[position.symbol] = _SymbolBook(state, newest)
        return state

    # ---- whole-portfolio

    def copy(self) -> Portfolio:
        """An independent copy (for dry runs such as reconciliation planning)."""
        other = Portfolio(replay_window=self._window)
        other._books = {symbol: book.copy() for symbol, book in self._books.items()}
        other._unordered = self._unordered
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
        *,
        replay_window: int = DEFAULT_REPLAY_WINDOW,
    ) -> Portfolio:
        """Rebuild from the journal: the same state as the portfolio that wrote it.

        A baseline that equals the sorted replay of the executions it covers (every symbol never
        adopted) is rebuilt from those executions, so that a late fill older than some of them
        still finds its place. Any other baseline (adopted, or written by an engine that applied
        fills in arrival order) is taken as is, as an opaque anchor whose floor is the newest
        execution it covers.

        Args:
            baselines: journaled position snapshots (``record_position``).
            covered: executions already included in their symbol's baseline: marked seen and
                counted per order, never applied on top of the baseline.
            replay: executions after the baselines (any order: each goes to its place).
            orders: last known exchange snapshots of orders, to restore missing-fill detection.
            replay_window: as for the constructor.
        """
        p = cls(replay_window=replay_window)
        covered_by_symbol: dict[str, dict[str, Execution]] = {}
        for e in covered:
            covered_by_symbol.setdefault(e.symbol, {}).setdefault(e.exec_id, e)
        for state in baselines:
            mine = covered_by_symbol.get(state.symbol, {}).values()
            p._books[state.symbol] = p._rebuild(state, mine)
        for e in covered:
            if e.exec_id not in p._seen:
                p._count(e)
        for e in replay:
            p.apply_execution(e)
        for o in orders:
            p.observe_order(o)
        return p

    def _rebuild(self, baseline: PositionState, covered: Iterable[Execution]) -> _SymbolBook:
        """The book of one symbol restored from its baseline and the executions it covers."""
        ordered = sorted(covered, key=exchange_order_key)
        if baseline.adopted_through is None:
            trial = _SymbolBook(PositionState(baseline.symbol))
            for e in ordered:  # sorted: each is an append, O(n) in all
                trial.add(e, self._window)
            if trial.state == baseline:
                return trial
        return _SymbolBook(baseline, exchange_order_key(ordered[-1]) if ordered else None)
