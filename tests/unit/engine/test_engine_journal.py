"""The SQLite journal (hean.engine.journal)."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.types import (
    ExecType,
    Execution,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
)
from hean.engine.intents import OrderIntent
from hean.engine.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    archive_journal,
    tracked_from_dict,
    tracked_to_dict,
)
from hean.engine.orders import (
    Acked,
    ExchangeUpdate,
    OrderState,
    OrderTracker,
    OutcomeUnknown,
    Sent,
    TrackedOrder,
)
from hean.engine.portfolio import Portfolio
from hean.engine.reconcile_plan import ExchangeTruth, apply_plan, plan_reconcile

SYM = "BTCUSDT"
D = Decimal
T0 = 1_700_000_000_000


def intent(link: str) -> OrderIntent:
    return OrderIntent(
        strategy="mm",
        signal_id=link,
        purpose="open",
        order_link_id=link,
        symbol=SYM,
        side=Side.BUY,
        qty=D("0.010"),
        price=D("65000.1"),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.POST_ONLY,
        reduce_only=False,
        created_at=1.5,
        expires_at=6.5,
    )


def exch_order(link: str, oid: str, status: OrderStatus, cum: str = "0", t: int = T0) -> Order:
    return Order(
        order_id=oid,
        order_link_id=link,
        symbol=SYM,
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=D("65000.1"),
        qty=D("0.01"),
        time_in_force=TimeInForce.POST_ONLY,
        order_status=status,
        created_time=T0,
        updated_time=t,
        cum_exec_qty=D(cum),
        cum_exec_value=D(cum) * D("65000.1"),
        cum_exec_fee=D("-0.01"),
        avg_price=D("65000.1"),
        closed_pnl=D("1.5"),
    )


def execution(
    exec_id: str,
    qty: str = "0.001",
    *,
    side: Side = Side.BUY,
    t: int = T0,
    price: str = "65000.1",
    oid: str = "o1",
) -> Execution:
    return Execution(
        exec_id=exec_id,
        symbol=SYM,
        order_id=oid,
        order_link_id="a",
        side=side,
        exec_price=D(price),
        exec_qty=D(qty),
        exec_value=D(qty) * D(price),
        exec_fee=D("-0.0013"),
        exec_time=t,
        is_maker=True,
        exec_pnl=D("0.5"),
        seq=7,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "nested" / "journal.sqlite3"


@pytest.fixture
def journal(path: Path) -> Iterator[Journal]:
    j = Journal.open(path, wall_ms=lambda: 42)
    yield j
    j.close()


def test_open_creates_dirs_wal_and_schema(journal: Journal, path: Path) -> None:
    assert path.exists()
    assert path.with_name("journal.sqlite3.lock").exists()
    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == (
            SCHEMA_VERSION
        )
    finally:
        other.close()
    assert journal.get_cursor() is None
    assert journal.load().orders == {}


def test_intent_is_durable_and_visible_to_another_connection_at_once(
    journal: Journal, path: Path
) -> None:
    journal.record_intent(intent("a"))
    # A second connection (as after a crash right here) sees the committed row.
    other = sqlite3.connect(path)
    try:
        rows = other.execute("SELECT order_link_id, created_ms FROM intents").fetchall()
    finally:
        other.close()
    assert rows == [("a", 42)]
    with pytest.raises(JournalError, match="already journaled"):
        journal.record_intent(intent("a"))


def test_synchronous_full_is_set(journal: Journal) -> None:
    conn = journal._require()  # white-box: the pragma is per connection
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_duplicate_execution_is_ignored(journal: Journal) -> None:
    e = execution("x1")
    assert journal.record_execution(e)
    assert not journal.record_execution(e)
    assert not journal.record_execution(evolve(e, exec_qty=D(5)))  # same execId: ignored
    assert journal.has_execution("x1")
    assert not journal.has_execution("x2")
    assert journal.load().executions == (e,)


def test_cursor_never_moves_back(journal: Journal) -> None:
    journal.set_cursor(T0)
    journal.set_cursor(T0 - 1)
    assert journal.get_cursor() == T0
    journal.set_cursor(T0 + 5)
    assert journal.get_cursor() == T0 + 5


def _build_engine_state(journal: Journal) -> tuple[OrderTracker, Portfolio]:
    """Drive a tracker and portfolio the way the shells do, journaling each step."""
    tracker, portfolio = OrderTracker(), Portfolio()
    for link in ("a", "b", "c", "d"):
        journal.record_intent(intent(link))
        journal.record_order(tracker.track_intent(intent(link), at=1.0))
    for link, oid in (("a", "oa"), ("b", "ob"), ("c", "oc")):
        journal.record_order(tracker.apply(link, Sent(2.0)).after)
        journal.record_order(tracker.apply(link, Acked(oid, 3.0)).after)
    journal.record_order(tracker.apply("d", Sent(2.0)).after)
    journal.record_order(tracker.apply("d", OutcomeUnknown(4.0)).after)
    t = tracker.apply("a", ExchangeUpdate(exch_order("a", "oa", OrderStatus.FILLED, "0.01"), 5.0))
    journal.record_order(t.after)
    t = tracker.apply(
        "b", ExchangeUpdate(exch_order("b", "ob", OrderStatus.PARTIALLY_FILLED, "0.004"), 5.0)
    )
    journal.record_order(t.after)
    portfolio.observe_order(exch_order("b", "ob", OrderStatus.PARTIALLY_FILLED, "0.004"))
    ext = tracker.adopt(exch_order("", "x9", OrderStatus.NEW), 6.0, "manual order")
    journal.record_order(ext)
    fills = [
        execution("f1", "0.006", t=T0 + 1, oid="oa"),
        execution("f2", "0.004", t=T0 + 2, oid="oa", price="65010"),
        execution("f3", "0.003", side=Side.SELL, t=T0 + 3, oid="ob", price="65100.3"),
        execution("f4", "0.010", side=Side.SELL, t=T0 + 4, oid="ox", price="64990"),
    ]
    for i, e in enumerate(fills):
        assert portfolio.apply_execution(e)
        # Alternate: with and without the position in the same transaction.
        assert journal.record_execution(e, portfolio.position(SYM) if i % 2 else None)
    journal.set_cursor(T0 + 4)
    return tracker, portfolio


def test_round_trip_rebuilds_tracker_and_portfolio_exactly(path: Path) -> None:
    with Journal.open(path) as j:
        tracker, portfolio = _build_engine_state(j)
        before = j.load()
    assert j.closed
    with Journal.open(path) as j2:
        state = j2.load()
    assert state == before
    assert set(state.intents) == {"a", "b", "c", "d"}
    assert state.orders == {o.key: o for o in tracker}
    assert {o.key for o in state.non_final_orders} == {"b", "c", "d", "#x9"}
    assert state.cursor_ms == T0 + 4
    assert len(state.executions) == 4

    rebuilt = state.rebuild_portfolio()
    assert rebuilt.positions() == portfolio.positions()
    assert rebuilt.missing_fills() == portfolio.missing_fills() == {"ob": D("0.001")}
    assert all(rebuilt.has_seen(e.exec_id) for e in state.executions)

    restored = state.rebuild_tracker(now=500.0)
    assert restored["a"].state is OrderState.FILLED
    assert restored["d"].state is OrderState.UNKNOWN
    assert restored["#x9"].is_external
    for key in ("a", "b", "c", "#x9"):  # same orders, times shifted to the new clock
        assert evolve(restored[key], created_at=0.0, updated_at=0.0, sent_at=None) == evolve(
            tracker[key], created_at=0.0, updated_at=0.0, sent_at=None
        )


def test_position_baseline_is_used_and_later_fills_replayed(path: Path) -> None:
    portfolio = Portfolio()
    fills = [
        execution(f"p{i}", "0.002", side=Side.BUY if i % 3 else Side.SELL, price=str(65000 + 7 * i))
        for i in range(7)
    ]
    with Journal.open(path) as j:
        for e in fills[:3]:
            portfolio.apply_execution(e)
            j.record_execution(e)
        j.record_position(portfolio.position(SYM))
        for e in fills[3:]:
            portfolio.apply_execution(e)
            j.record_execution(e)
    with Journal.open(path) as j:
        state = j.load()
    assert state.baseline_seq == {SYM: 3}
    assert state.rebuild_portfolio().positions() == portfolio.positions()


def test_adopted_position_survives_restart(path: Path) -> None:
    portfolio = Portfolio()
    with Journal.open(path) as j:
        j.record_execution(execution("q1"))
        portfolio.apply_execution(execution("q1"))
        adopted = portfolio.adopt(
            Position(symbol=SYM, side=Side.SELL, size=D(1), entry_price=D(60000)), at_ms=T0
        )
        j.record_position(adopted)
        # Later than q1 (the adopted snapshot's newest known fill): it moves the position. A fill
        # of q1's own matching event (same execTime and seq) would already be in the snapshot.
        e = execution("q2", "0.5", t=T0 + 1)
        portfolio.apply_execution(e)
        j.record_execution(e)
        # Missed, older than the adoption: already in the exchange's position, only counted.
        old = execution("q0", "0.3", t=T0 - 5)
        portfolio.apply_execution(old)
        j.record_execution(old, portfolio.position(SYM))
    with Journal.open(path) as j:
        rebuilt = j.load().rebuild_portfolio()
    assert rebuilt.positions() == portfolio.positions()
    assert rebuilt.position(SYM).size == D("-0.5")
    assert rebuilt.position(SYM).fill_count == 3
    assert rebuilt.filled_qty("o1") == D("0.801")


def test_restart_before_reconciliation_still_orders_a_missed_fill(path: Path) -> None:
    """Stream gap, later fills arrive live and are journaled with baselines, the engine stops,
    and the restarted engine's reconciliation books the missed fill: exchange order holds."""
    fills = [
        execution(
            f"g{i}",
            "0.002",
            side=Side.SELL if i == 2 else Side.BUY,
            price=str(65000 + 9 * i),
            t=T0 + i,
        )
        for i in range(5)
    ]
    missed = fills[2]
    with Journal.open(path) as j:
        live = Portfolio()
        for e in fills:
            if e is not missed:
                live.apply_execution(e)
                j.record_execution(e, live.position(SYM))
    with Journal.open(path) as j:
        restored = j.load().rebuild_portfolio()
        assert restored.positions() == live.positions()
        assert restored.apply_execution(missed)
        j.record_execution(missed, restored.position(SYM))
    in_order = Portfolio()
    for e in fills:
        in_order.apply_execution(e)
    assert restored.positions() == in_order.positions()
    assert restored.unordered_fills == 0
    with Journal.open(path) as j:
        assert j.load().rebuild_portfolio().positions() == in_order.positions()


def test_tracked_order_dict_round_trip() -> None:
    o = TrackedOrder.new(intent("z"), at=3.25)
    o = evolve(
        o,
        state=OrderState.REJECTED,
        reject_code=110007,
        reject_msg="ab not enough",
        sent_at=4.0,
        cancel_requested_at=None,
        last_order=exch_order("z", "oz", OrderStatus.REJECTED),
    )
    assert tracked_from_dict(tracked_to_dict(o)) == o


def test_second_engine_is_refused_while_the_first_holds_the_lock(
    journal: Journal, path: Path
) -> None:
    with pytest.raises(JournalLockedError) as info:
        Journal.open(path)
    message = str(info.value)
    assert str(path) in message
    assert "another engine" in message
    assert "pid" in message
    journal.close()
    Journal.open(path).close()  # released on close


def test_sqlite_write_lock_held_elsewhere_is_a_clear_error(path: Path) -> None:
    j = Journal.open(path, busy_timeout_ms=0)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(JournalLockedError, match="locked") as info:
            j.record_intent(intent("a"))
        assert str(path) in str(info.value)
        other.execute("ROLLBACK")
        j.record_intent(intent("a"))  # nothing half-written stayed behind
        assert set(j.load().intents) == {"a"}
    finally:
        other.close()
        j.close()


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalCorruptError) as info:
        Journal.open(bad)
    assert str(bad) in str(info.value)
    Path(str(bad) + ".lock").unlink()  # the lock was released: a retry can lock again
    with pytest.raises(JournalCorruptError):
        Journal.open(bad)


def test_newer_schema_is_refused(path: Path) -> None:
    Journal.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(JournalCorruptError, match="newer"):
        Journal.open(path)


def test_reopen_does_not_migrate_twice(path: Path) -> None:
    with Journal.open(path) as j:
        j.record_intent(intent("a"))
    with Journal.open(path) as j:
        assert set(j.load().intents) == {"a"}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_closed_journal_refuses_calls(journal: Journal) -> None:
    journal.close()
    journal.close()  # idempotent
    with pytest.raises(JournalError, match="closed"):
        journal.record_intent(intent("a"))


def test_position_for_another_symbol_is_refused(journal: Journal) -> None:
    p = Portfolio()
    e = evolve(execution("s1"), symbol="ETHUSDT")
    p.apply_execution(e)
    with pytest.raises(ValueError, match="ETHUSDT"):
        journal.record_execution(execution("s2"), p.position("ETHUSDT"))


@settings(max_examples=15, deadline=None)  # each example opens a database and fsyncs
@given(
    fills=st.lists(
        st.tuples(st.sampled_from(Side), st.integers(1, 50), st.integers(60_000, 70_000)),
        max_size=12,
    ),
    baseline_every=st.integers(0, 4),
    data=st.data(),
)
def test_any_fill_sequence_rebuilds_exactly(
    fills: list[tuple[Side, int, int]], baseline_every: int, data: st.DataObject
) -> None:
    executions = [
        execution(f"h{i}", str(D(qty) / 1000), side=side, price=str(price), t=T0 + i)
        for i, (side, qty, price) in enumerate(fills)
    ]
    in_order = Portfolio()
    for e in executions:
        in_order.apply_execution(e)
    portfolio = Portfolio()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.sqlite3"
        with Journal.open(path) as j:
            # Any arrival order (late fills from reconciliation): the same state, and the same
            # after a restart.
            for i, e in enumerate(data.draw(st.permutations(executions))):
                assert portfolio.apply_execution(e)
                with_pos = baseline_every and i % baseline_every == 0
                j.record_execution(e, portfolio.position(SYM) if with_pos else None)
                j.record_execution(e)  # a duplicate delivery changes nothing
        with Journal.open(path) as j:
            rebuilt = j.load().rebuild_portfolio()
    assert rebuilt.positions() == portfolio.positions() == in_order.positions()
    assert rebuilt.exec_count == len(fills)


def test_intent_without_order_row_comes_back_unknown(path: Path) -> None:
    """Crash after record_intent, before any record_order: the request may have left."""
    with Journal.open(path) as j:
        j.record_intent(intent("lonely"))
        j.record_intent(intent("tracked"))
        j.record_order(TrackedOrder.new(intent("tracked"), at=1.5))
    with Journal.open(path) as j:
        state = j.load()
    assert [i.order_link_id for i in state.orphan_intents] == ["lonely"]
    assert {o.key for o in state.non_final_orders} == {"lonely", "tracked"}
    tracker = state.rebuild_tracker(now=10.0)
    assert tracker["lonely"].state is OrderState.UNKNOWN
    assert tracker["lonely"].intent == intent("lonely")
    assert tracker["tracked"].state is OrderState.UNKNOWN


def test_applied_reconciliation_is_journaled_atomically_and_survives_restart(path: Path) -> None:
    tracker, portfolio = OrderTracker(), Portfolio()
    with Journal.open(path) as j:
        j.record_intent(intent("a"))
        j.record_order(tracker.track_intent(intent("a"), at=1.0))
        j.record_order(tracker.apply("a", Sent(2.0)).after)
        j.record_order(tracker.apply("a", OutcomeUnknown(3.0)).after)
        seen = execution("r0", t=T0 - 10, oid="old")
        portfolio.apply_execution(seen)
        j.record_execution(seen, portfolio.position(SYM))
        fills = (
            execution("r1", "0.004", t=T0, oid="oa"),
            execution("r2", "0.006", t=T0 + 3, oid="oa"),
        )
        funding = evolve(execution("r3", t=T0 + 5, oid=""), exec_type=ExecType.FUNDING)
        truth = ExchangeTruth(
            open_orders=(exch_order("", "x1", OrderStatus.NEW),),
            queried={"a": exch_order("a", "oa", OrderStatus.FILLED, "0.01", t=T0 + 3)},
            executions=(seen, *fills, funding),
            positions=(
                Position(symbol=SYM, side=Side.BUY, size=D("0.011"), entry_price=D("65000.1")),
            ),
        )
        plan = plan_reconcile(tracker, portfolio, T0 - 10, truth, now=4.0)
        assert plan.ready
        applied = apply_plan(plan, tracker, portfolio, now=4.0)
        j.record_applied_plan(applied)
        j.record_applied_plan(applied)  # idempotent: executions dedupe, orders upsert
    with Journal.open(path) as j:
        state = j.load()
    assert state.cursor_ms == T0 + 5
    assert [e.exec_id for e in state.executions] == ["r0", "r1", "r2", "r3"]
    assert state.rebuild_portfolio().positions() == portfolio.positions()
    restored = state.rebuild_tracker(now=0.0)
    assert restored["a"].state is OrderState.FILLED
    assert restored["#x1"].is_external
    # The restarted engine plans nothing new against the same truth.
    again = plan_reconcile(restored, state.rebuild_portfolio(), state.cursor_ms, truth, now=1.0)
    assert again.is_noop
    assert again.ready


def test_archive_journal_moves_the_database_with_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "paper.sqlite3"
    assert archive_journal(path, stamp="20260101T000000Z") is None  # nothing to archive
    j = Journal.open(path)
    j.set_cursor(1_234)
    # Simulate a crash: committed data may still sit in the -wal file; copy the three files
    # while the connection is open, as a killed process would leave them.
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for name in ("paper.sqlite3", "paper.sqlite3-wal", "paper.sqlite3-shm"):
        if (tmp_path / name).exists():
            (crashed / name).write_bytes((tmp_path / name).read_bytes())
    j.close()
    target = archive_journal(crashed / "paper.sqlite3", stamp="20260101T000000Z")
    assert target == crashed / "paper.20260101T000000Z.sqlite3"
    assert not (crashed / "paper.sqlite3").exists()
    assert not (crashed / "paper.sqlite3-wal").exists()
    reopened = Journal.open(target)
    try:
        assert reopened.get_cursor() == 1_234  # nothing committed was lost in the move
    finally:
        reopened.close()
    # A fresh journal can now start at the original path.
    Journal.open(crashed / "paper.sqlite3").close()


def test_archive_journal_refuses_a_journal_in_use(tmp_path: Path) -> None:
    path = tmp_path / "paper.sqlite3"
    j = Journal.open(path)
    try:
        with pytest.raises(JournalLockedError):
            archive_journal(path, stamp="x")
        assert path.exists()
    finally:
        j.close()
    assert archive_journal(path, stamp="x") == tmp_path / "paper.x.sqlite3"
    Journal.open(path).close()  # the next run's journal
    with pytest.raises(JournalError, match="already exists"):
        archive_journal(path, stamp="x")  # never overwrites an earlier archive
    assert path.exists()
