"""The invariants a fault storm must leave intact, and the figures it reports. Pure: no I/O.

The shell (:mod:`chaos.fault_storm`) gathers three kinds of evidence after the engine stopped:

* the venue's truth, read over REST like any client (:class:`VenueTruth`);
* the engine's journal, read with :meth:`hean.engine.journal.Journal.load` (:class:`JournalTruth`);
* every line each engine process printed (:class:`LogRecord`, from :func:`parse_log`).

:func:`check_all` turns them into :class:`Violation` values, one per broken rule, each naming its
invariant (``a``..``f``, see :data:`INVARIANTS`). The rules, and why each is stated as it is:

(a) **executions** — the set of ``execId`` the venue holds for the account equals the set the
    journal holds, and the journal holds each once. Missing = a fill the engine never booked;
    extra = a fill it invented; twice = a fill booked twice (the table's primary key makes that
    impossible unless the schema regresses, so it is checked on what ``load`` returns).
(b) **position** — per symbol, the position rebuilt from the journal
    (``JournalState.rebuild_portfolio``) has the venue's signed size (hence size and side) and,
    when not flat, its average entry within :data:`ENTRY_REL_TOL` relative (the venue rounds
    ``avgPrice`` to 8 decimals; the engine keeps exact cost).
(c) **never placed twice**, three ways:

    c1. the venue's orders (history and open) carry each ``orderLinkId`` at most once;
    c2. every venue order carries a link id the journal has an intent for (journal first: the
        intent is durable before the create leaves, so an order the venue has and the journal
        does not was sent without one);
    c3. the engine log: the router logs exactly one outcome per create it sends
        (``order_acked``, ``order_rejected``, ``order_outcome_unknown`` or
        ``order_duplicate_link_id`` = 110072). A link id with a second outcome was sent twice.
        The only tolerated second send is one that Bybit answers 110072 after the first send's
        outcome was *unknown*: an ``order_outcome_unknown`` for that link id earlier in the
        log, or the engine was SIGKILLed after journaling the intent and before logging any
        outcome for it (the create may have been on the wire). Anything else — a second ack, a
        110072 with no unknown outcome before it — is a violation. The router is designed never
        to re-send (an unknown outcome is settled by query), so even tolerated 110072s are
        counted in the figures: any at all is worth a look.
(d) **nothing resting** after the graceful stop: the venue lists no open order and the journal
    has no non-final order.
(e) **clean logs**: no ``IllegalTransition`` anywhere, no traceback (a ``Traceback`` line or a
    JSON event carrying an ``exception``), no ``position_mismatch`` event.
(f) **process**: the graceful stop (SIGTERM) exits 0, and every engine start became ready.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from attrs import field, frozen

from hean.bybit.types import ZERO, Execution, Order, Position
from hean.engine.portfolio import PositionState

__all__ = [
    "CREATE_OUTCOMES",
    "ENTRY_REL_TOL",
    "INVARIANTS",
    "JournalTruth",
    "Kill",
    "LogFigures",
    "LogRecord",
    "ProcessFacts",
    "VenueTruth",
    "Violation",
    "check_all",
    "check_executions",
    "check_link_ids",
    "check_logs",
    "check_nothing_resting",
    "check_positions",
    "check_processes",
    "log_figures",
    "parse_log",
]

ENTRY_REL_TOL: Final = Decimal("1e-6")

#: Invariant letter -> one-line name, in report order.
INVARIANTS: Final[Mapping[str, str]] = {
    "a": "every venue execId journaled exactly once, none extra",
    "b": "journal position == venue position (size, side, entry)",
    "c": "no orderLinkId placed twice",
    "d": "nothing resting after the graceful stop",
    "e": "no IllegalTransition, traceback or position_mismatch in the logs",
    "f": "graceful stop exits 0, every engine start became ready",
}

#: Router log events: one per create attempt, whatever the answer.
CREATE_OUTCOMES: Final = frozenset(
    {"order_acked", "order_rejected", "order_outcome_unknown", "order_duplicate_link_id"}
)
_UNKNOWN: Final = "order_outcome_unknown"
_DUPLICATE: Final = "order_duplicate_link_id"
_TRACEBACK: Final = "Traceback (most recent call last)"
_MAX_LISTED: Final = 5  # ids quoted in one violation's detail


@frozen
class Violation:
    """One broken rule: ``invariant`` is a key of :data:`INVARIANTS`."""

    invariant: str
    detail: str


@frozen
class LogRecord:
    """One line an engine process printed. ``run`` numbers the engine processes from 1;
    ``event`` is the parsed JSON object, None for a line that is not one (the summary, a stray
    traceback)."""

    run: int
    line_no: int
    raw: str
    event: Mapping[str, Any] | None = field(default=None, eq=False)

    @property
    def name(self) -> str | None:
        if self.event is None:
            return None
        value = self.event.get("event")
        return value if isinstance(value, str) else None

    def get_str(self, key: str) -> str | None:
        if self.event is None:
            return None
        value = self.event.get(key)
        return value if isinstance(value, str) else None


def parse_log(text: str, run: int) -> list[LogRecord]:
    """Split one process's output into records (JSON objects parsed, other lines kept raw)."""
    records: list[LogRecord] = []
    for no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        event: Mapping[str, Any] | None = None
        if stripped.startswith("{"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                event = parsed
        records.append(LogRecord(run=run, line_no=no, raw=line, event=event))
    return records


@frozen
class VenueTruth:
    """What the venue says, read over REST after the engine stopped.

    ``orders``: every order of the account the venue still lists (history and open; de-duplicated
    by ``orderId``). ``positions``: by symbol, every symbol the engine trades plus any the venue
    shows open.
    """

    executions: tuple[Execution, ...]
    positions: Mapping[str, Position]
    orders: tuple[Order, ...]
    open_orders: tuple[Order, ...]


@frozen
class JournalTruth:
    """What the journal says. ``intent_created_ms``: the wall-clock ms each intent was journaled
    (the ``intents.created_ms`` column), to tell whether it predates an engine kill."""

    executions: tuple[Execution, ...]
    positions: Mapping[str, PositionState]
    intent_created_ms: Mapping[str, int]
    non_final_orders: tuple[str, ...]


@frozen
class Kill:
    """Engine process ``run`` was SIGKILLed at wall-clock ``wall_ms``."""

    run: int
    wall_ms: int


@frozen
class ProcessFacts:
    """How the engine processes ended: the exit code of the graceful stop (None: it did not exit
    within its deadline; not looked at when the last run had already exited by itself, so no
    SIGTERM was sent), and the runs that never logged ``engine_ready``."""

    stop_exit_code: int | None
    runs_not_ready: tuple[int, ...] = ()
    died_early: tuple[tuple[int, int], ...] = ()  # (run, exit code) of runs that exited unasked
    sigterm_sent: bool = True


def _listed(ids: Iterable[str]) -> str:
    items = sorted(ids)
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")


# --------------------------------------------------------------------------- (a) executions


def check_executions(venue: VenueTruth, journal: JournalTruth) -> list[Violation]:
    out: list[Violation] = []
    counts = Counter(e.exec_id for e in journal.executions)
    twice = [k for k, n in counts.items() if n > 1]
    if twice:
        out.append(
            Violation("a", f"{len(twice)} execId journaled more than once: {_listed(twice)}")
        )
    venue_ids = {e.exec_id for e in venue.executions}
    missing = venue_ids - counts.keys()
    extra = counts.keys() - venue_ids
    if missing:
        out.append(
            Violation(
                "a", f"{len(missing)} venue execId missing from the journal: {_listed(missing)}"
            )
        )
    if extra:
        out.append(
            Violation("a", f"{len(extra)} journal execId unknown to the venue: {_listed(extra)}")
        )
    return out


# --------------------------------------------------------------------------- (b) positions


def check_positions(
    venue: VenueTruth, journal: JournalTruth, *, rel_tol: Decimal = ENTRY_REL_TOL
) -> list[Violation]:
    out: list[Violation] = []
    symbols = {s for s, p in venue.positions.items() if p.signed_size != 0}
    symbols |= {s for s, p in journal.positions.items() if p.size != 0}
    symbols |= set(venue.positions)
    for symbol in sorted(symbols):
        vp = venue.positions.get(symbol)
        v_size = ZERO if vp is None else vp.signed_size
        jp = journal.positions.get(symbol, PositionState(symbol))
        if v_size != jp.size:
            out.append(
                Violation("b", f"{symbol}: venue size {v_size:+f}, journal size {jp.size:+f}")
            )
            continue
        if v_size == 0 or vp is None:
            continue
        v_entry, j_entry = vp.entry_price, jp.avg_entry
        if v_entry <= 0 or abs(v_entry - j_entry) / v_entry > rel_tol:
            out.append(
                Violation(
                    "b",
                    f"{symbol}: venue entry {v_entry:f}, journal entry {j_entry:f} "
                    f"(relative tolerance {rel_tol:f})",
                )
            )
    return out


# --------------------------------------------------------------------------- (c) link ids


def _in_flight_at_kill(
    link_id: str,
    run: int,
    records: Sequence[LogRecord],
    journal: JournalTruth,
    kills: Sequence[Kill],
) -> bool:
    """Was ``link_id`` journaled by an engine process that was SIGKILLed before ``run`` started,
    without that process logging any create outcome for it? Then its create may have been on
    the wire when the process died: the outcome is unknown, like a lost answer."""
    created = journal.intent_created_ms.get(link_id)
    if created is None:
        return False
    for kill in kills:
        if kill.run >= run or created > kill.wall_ms:
            continue
        settled = any(
            r.run == kill.run
            and r.name in CREATE_OUTCOMES
            and r.get_str("order_link_id") == link_id
            for r in records
        )
        if not settled:
            return True
    return False


def check_link_ids(
    venue: VenueTruth,
    journal: JournalTruth,
    records: Sequence[LogRecord],
    kills: Sequence[Kill] = (),
) -> list[Violation]:
    out: list[Violation] = []
    link_ids = [o.order_link_id for o in venue.orders if o.order_link_id]
    dup = [k for k, n in Counter(link_ids).items() if n > 1]
    if dup:
        out.append(Violation("c", f"venue lists {len(dup)} orderLinkId twice: {_listed(dup)}"))
    unjournaled = set(link_ids) - journal.intent_created_ms.keys()
    if unjournaled:
        out.append(
            Violation(
                "c",
                f"{len(unjournaled)} venue order(s) with no journaled intent: "
                f"{_listed(unjournaled)}",
            )
        )
    seen: dict[str, list[str]] = {}
    for r in records:
        name = r.name
        if name not in CREATE_OUTCOMES:
            continue
        link_id = r.get_str("order_link_id")
        if link_id is None:
            continue
        before = seen.setdefault(link_id, [])
        if before or name == _DUPLICATE:
            tolerated = name == _DUPLICATE and (
                _UNKNOWN in before or _in_flight_at_kill(link_id, r.run, records, journal, kills)
            )
            if not tolerated:
                history = " -> ".join([*before, name])
                out.append(
                    Violation(
                        "c",
                        f"{link_id}: create sent again (run {r.run}, line {r.line_no}): {history}",
                    )
                )
        before.append(name)
    return out


# --------------------------------------------------------------------------- (d) resting


def check_nothing_resting(venue: VenueTruth, journal: JournalTruth) -> list[Violation]:
    out: list[Violation] = []
    if venue.open_orders:
        ids = (o.order_link_id or f"#{o.order_id}" for o in venue.open_orders)
        out.append(
            Violation("d", f"venue still lists {len(venue.open_orders)} open: {_listed(ids)}")
        )
    if journal.non_final_orders:
        out.append(
            Violation(
                "d",
                f"journal has {len(journal.non_final_orders)} non-final order(s): "
                f"{_listed(journal.non_final_orders)}",
            )
        )
    return out


# --------------------------------------------------------------------------- (e) logs


def check_logs(records: Sequence[LogRecord]) -> list[Violation]:
    out: list[Violation] = []
    for r in records:
        where = f"run {r.run}, line {r.line_no}"
        if "IllegalTransition" in r.raw:
            out.append(Violation("e", f"IllegalTransition ({where}): {r.raw[:300]}"))
        if _TRACEBACK in r.raw or (r.event is not None and "exception" in r.event):
            out.append(Violation("e", f"traceback ({where}): {r.raw[:300]}"))
        if r.name == "position_mismatch":
            out.append(Violation("e", f"position_mismatch ({where}): {r.raw[:300]}"))
    return out


# --------------------------------------------------------------------------- (f) processes


def check_processes(facts: ProcessFacts) -> list[Violation]:
    out: list[Violation] = []
    code = facts.stop_exit_code
    if facts.sigterm_sent and code is None:
        out.append(Violation("f", "the engine did not exit within its deadline after SIGTERM"))
    elif facts.sigterm_sent and code != 0:
        out.append(Violation("f", f"the engine exited {code} after SIGTERM"))
    for run in facts.runs_not_ready:
        out.append(Violation("f", f"engine run {run} never logged engine_ready"))
    for run, code in facts.died_early:
        out.append(Violation("f", f"engine run {run} exited by itself with code {code}"))
    return out


def check_all(
    venue: VenueTruth,
    journal: JournalTruth,
    records: Sequence[LogRecord],
    facts: ProcessFacts,
    kills: Sequence[Kill] = (),
) -> list[Violation]:
    """Every broken rule, in invariant order."""
    return [
        *check_executions(venue, journal),
        *check_positions(venue, journal),
        *check_link_ids(venue, journal, records, kills),
        *check_nothing_resting(venue, journal),
        *check_logs(records),
        *check_processes(facts),
    ]


# --------------------------------------------------------------------------- figures


@frozen
class LogFigures:
    """What the engine logs say happened (summed over every engine process)."""

    missed_fills_recovered: int  # missed_execution_applied: fills found by reconciliation
    reconnects: Mapping[str, int]  # per stream: connections that became ready after the first
    unknown_outcomes: int  # order_outcome_unknown: creates settled by query
    duplicate_link_ids: int  # order_duplicate_link_id: 110072 answers
    creates: int  # create attempts (one outcome each)
    trading_restarts: int  # trading_restart: the trading nursery crashed and was restarted
    crash_causes: tuple[str, ...]  # causes logged by trading_crashed
    # Creates acked after the private stream was declared dead (stream_pong_timeout or
    # stream_stale) and before it went down (stream_state down closes the trading gate): orders
    # placed while the engine knew it could not see their fills. Not an end-state invariant (the
    # reconnect's reconciliation books those fills), but the gate is meant to be shut then.
    acked_while_private_dead: int


def log_figures(records: Sequence[LogRecord]) -> LogFigures:
    names = Counter(r.name for r in records if r.name is not None)
    ready: Counter[tuple[int, str]] = Counter()
    causes: list[str] = []
    dead_private: set[int] = set()  # runs whose private stream is declared dead, not yet down
    acked_while_dead = 0
    for r in records:
        private = r.get_str("stream") == "private"
        if r.name in ("stream_pong_timeout", "stream_stale") and private:
            dead_private.add(r.run)
        elif r.name == "stream_state" and private and r.get_str("state") == "down":
            dead_private.discard(r.run)
        elif r.name == "order_acked" and r.run in dead_private:
            acked_while_dead += 1
        if r.name == "stream_state" and r.get_str("state") == "ready":
            ready[(r.run, r.get_str("stream") or "?")] += 1
        elif r.name == "trading_crashed" and r.event is not None:
            raw = r.event.get("causes")
            if isinstance(raw, list):
                causes.extend(str(c) for c in raw)
    reconnects: Counter[str] = Counter()
    for (_, stream), n in ready.items():
        reconnects[stream] += max(0, n - 1)
    return LogFigures(
        missed_fills_recovered=names["missed_execution_applied"],
        reconnects=dict(sorted(reconnects.items())),
        unknown_outcomes=names[_UNKNOWN],
        duplicate_link_ids=names[_DUPLICATE],
        creates=sum(names[n] for n in CREATE_OUTCOMES),
        trading_restarts=names["trading_restart"],
        crash_causes=tuple(causes),
        acked_while_private_dead=acked_while_dead,
    )
