"""The engine's durable journal: SQLite (stdlib ``sqlite3``) in WAL mode.

What it guarantees
==================
* **Intent before request.** :meth:`Journal.record_intent` commits before it returns, with
  ``PRAGMA synchronous=FULL``: in WAL mode FULL fsyncs the WAL at every commit, so the intent
  survives a power cut, not just a process crash (NORMAL would only survive the latter; the last
  commits could vanish on power loss). The router sends the create only after that returns, so an
  order the exchange knows always has a journaled intent — or, if the journal itself was lost, it
  shows up as an *external* order and is adopted, never silently ignored. FULL applies to every
  write: executions and order states matter as much, and the engine's write rate (a few per
  second) makes an fsync per commit affordable.
* **Exactly-once executions.** ``exec_id`` is the primary key and rows go in with
  ``INSERT OR IGNORE``: :meth:`Journal.record_execution` returns False for a duplicate. Rows carry
  an increasing ``seq`` (the order recorded) which says which executions a position baseline
  includes. The order of *application* is not the journal's business: the portfolio applies each
  symbol's fills in exchange order whatever order they arrive in (see
  :mod:`hean.engine.portfolio`).
* **Exact rebuild.** :meth:`Journal.load` returns a :class:`JournalState` that rebuilds the
  :class:`OrderTracker` and :class:`Portfolio` a restarted engine had.
* **One engine per journal.** An exclusive ``fcntl.flock`` on ``<path>.lock`` is held while open; a
  second engine fails at once with :class:`JournalLockedError` naming the path and holder's pid.
  (SQLite's own locking protects pages, not the engine's invariants: two engines writing one
  journal would each believe the other's orders external.)

The calls are synchronous: a WAL commit with one fsync takes about a millisecond, so the trio
shells call them directly (no threads, per the architecture). Errors from SQLite are re-raised as
:class:`JournalError` subclasses whose message names the file.

How the shells use it
=====================
* router: ``record_intent(intent)`` → send; ``record_order(transition.after)`` after every
  changed transition (``Sent`` may be recorded after the request left: on restart an intent with
  no order row, and a PENDING or IN_FLIGHT order, all come back UNKNOWN and are queried);
* private stream: per execution, ``portfolio.apply_execution(e)`` then
  ``record_execution(e, portfolio.position(e.symbol))``; per order update, ``record_order``;
* reconciler: ``apply_plan(...)`` then ``record_applied_plan(applied)`` (one transaction).

Positions table semantics: each row is a *baseline* — a :class:`PositionState` together with the
newest execution ``seq`` it includes. ``load`` starts each symbol from its baseline and replays the
executions recorded after it. The precondition for writing a baseline is that the state includes
every execution already recorded for that symbol and none that is not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
from attrs import frozen

from hean.bybit.types import Execution, Order, Side
from hean.bybit.wire import execution_from_wire, execution_to_wire, order_from_wire, order_to_wire
from hean.engine.clock import system_clock_ms
from hean.engine.intents import OrderIntent, intent_from_dict, intent_to_dict
from hean.engine.orders import OrderState, OrderTracker, TrackedOrder
from hean.engine.portfolio import (
    Portfolio,
    PositionState,
    position_state_from_dict,
    position_state_to_dict,
)
from hean.engine.reconcile_plan import AppliedPlan

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "JournalState",
    "archive_journal",
    "tracked_from_dict",
    "tracked_to_dict",
]

_CURSOR_KEY: Final = "exec_cursor_ms"

# Each entry upgrades the schema from version (n - 1) to n; never edit a released entry, append.
_MIGRATIONS: Final[Mapping[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE intents (
            order_link_id TEXT PRIMARY KEY,
            payload TEXT NOT NULL,
            created_ms INTEGER NOT NULL
        )""",
        # key = orderLinkId, or "#<orderId>" for an adopted order without one.
        """CREATE TABLE orders (
            key TEXT PRIMARY KEY,
            order_link_id TEXT NOT NULL,
            order_id TEXT,
            state TEXT NOT NULL,
            final INTEGER NOT NULL,
            payload TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        )""",
        "CREATE INDEX orders_live ON orders (final)",
        """CREATE TABLE executions (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            exec_id TEXT NOT NULL UNIQUE,
            order_id TEXT NOT NULL,
            order_link_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            exec_time INTEGER NOT NULL,
            payload TEXT NOT NULL
        )""",
        "CREATE INDEX executions_time ON executions (exec_time)",
        """CREATE TABLE positions (
            symbol TEXT PRIMARY KEY,
            exec_seq INTEGER NOT NULL,
            payload TEXT NOT NULL,
            updated_ms INTEGER NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
}
SCHEMA_VERSION: Final = max(_MIGRATIONS)


class JournalError(Exception):
    """A journal problem; the message names the database file."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(f"journal {str(path)!r}: {message}")


class JournalLockedError(JournalError):
    """Another engine (or a stuck connection) holds the journal."""


class JournalCorruptError(JournalError):
    """The file is not a usable HEAN journal (not SQLite, damaged, or a newer schema)."""


# --------------------------------------------------------------------------- serialisation


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def tracked_to_dict(o: TrackedOrder) -> dict[str, Any]:
    """A JSON-ready dict of a tracked order; the exchange snapshot uses the Bybit wire shape."""
    return {
        "order_link_id": o.order_link_id,
        "symbol": o.symbol,
        "side": o.side.value,
        "qty": str(o.qty),
        "state": o.state.value,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
        "intent": None if o.intent is None else intent_to_dict(o.intent),
        "order_id": o.order_id,
        "last_order": None if o.last_order is None else order_to_wire(o.last_order, ws=True),
        "sent_at": o.sent_at,
        "cancel_requested_at": o.cancel_requested_at,
        "reject_code": o.reject_code,
        "reject_msg": o.reject_msg,
        "external_reason": o.external_reason,
    }


def tracked_from_dict(d: Mapping[str, Any]) -> TrackedOrder:
    """Inverse of :func:`tracked_to_dict`."""
    last = d["last_order"]
    intent = d["intent"]
    return TrackedOrder(
        order_link_id=d["order_link_id"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        qty=Decimal(d["qty"]),
        state=OrderState(d["state"]),
        created_at=float(d["created_at"]),
        updated_at=float(d["updated_at"]),
        intent=None if intent is None else intent_from_dict(intent),
        order_id=d["order_id"],
        last_order=None if last is None else order_from_wire(last),
        sent_at=d["sent_at"],
        cancel_requested_at=d["cancel_requested_at"],
        reject_code=d["reject_code"],
        reject_msg=d["reject_msg"],
        external_reason=d["external_reason"],
    )


# --------------------------------------------------------------------------- loaded state


@frozen
class JournalState:
    """Everything :meth:`Journal.load` read; build the engine's in-memory state from it.

    Attributes:
        intents: every journaled intent by orderLinkId.
        orders: every tracked order by key (final ones included).
        executions: every execution, in the order first recorded.
        positions: position baselines by symbol.
        baseline_seq: per symbol, the newest execution ``seq`` its baseline includes.
        execution_seqs: the ``seq`` of each execution in ``executions`` (same order).
        cursor_ms: the execution cursor (newest execTime reconciled), None if never set.
    """

    intents: Mapping[str, OrderIntent]
    orders: Mapping[str, TrackedOrder]
    executions: tuple[Execution, ...]
    execution_seqs: tuple[int, ...]
    positions: Mapping[str, PositionState]
    baseline_seq: Mapping[str, int]
    cursor_ms: int | None

    @property
    def orphan_intents(self) -> tuple[OrderIntent, ...]:
        """Intents without an order row: the engine stopped between ``record_intent`` and the
        first ``record_order``. The request may have left, so they are tracked as unsettled."""
        return tuple(i for k, i in self.intents.items() if k not in self.orders)

    def all_orders(self) -> tuple[TrackedOrder, ...]:
        """Every order, orphan intents included (as PENDING; restore makes them UNKNOWN)."""
        orphans = (TrackedOrder.new(i, at=i.created_at) for i in self.orphan_intents)
        return (*self.orders.values(), *orphans)

    @property
    def non_final_orders(self) -> tuple[TrackedOrder, ...]:
        """Orders to query by orderLinkId before trading again (orphan intents included)."""
        return tuple(o for o in self.all_orders() if not o.state.is_final)

    def rebuild_tracker(self, now: float) -> OrderTracker:
        """The order tracker, times shifted to this process's clock (see OrderTracker.restore).

        PENDING/IN_FLIGHT orders and orphan intents come back UNKNOWN: query each by orderLinkId.
        """
        return OrderTracker.restore(self.all_orders(), now)

    def rebuild_portfolio(self) -> Portfolio:
        """The portfolio: baselines plus the executions recorded after them, in order."""
        covered: list[Execution] = []
        replay: list[Execution] = []
        for seq, e in zip(self.execution_seqs, self.executions, strict=True):
            if seq <= self.baseline_seq.get(e.symbol, 0):
                covered.append(e)
            else:
                replay.append(e)
        reported: list[Order] = [
            o.last_order
            for o in self.orders.values()
            if o.last_order is not None and o.last_order.order_id
        ]
        return Portfolio.restore(self.positions.values(), covered, replay, reported)


# --------------------------------------------------------------------------- the journal


class Journal:
    """The open journal. Create with :meth:`open`; close with :meth:`close` (or ``with``)."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        lock_fd: int,
        wall_ms: Callable[[], int],
    ) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = conn
        self._lock_fd: int | None = lock_fd
        self._wall_ms = wall_ms

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        wall_ms: Callable[[], int] = system_clock_ms,
        busy_timeout_ms: int = 2000,
    ) -> Journal:
        """Open (creating it and its parent directories if needed) and migrate the journal.

        ``wall_ms`` stamps the ``created_ms``/``updated_ms`` columns (operator information only;
        no logic reads them back).
        """
        db_path = Path(path)
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(db_path, f"cannot create directory: {exc}") from exc
        lock_fd = _acquire_lock(db_path)
        opened = False
        try:
            conn = _connect(db_path, busy_timeout_ms)
            opened = True
        finally:
            if not opened:
                _release_lock(lock_fd)
        return cls(db_path, conn, lock_fd, wall_ms)

    def close(self) -> None:
        """Checkpoint-free close: the WAL is replayed on next open. Idempotent."""
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                conn.close()
        finally:
            fd, self._lock_fd = self._lock_fd, None
            if fd is not None:
                _release_lock(fd)

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    # ---- writes (each commits before returning)

    def record_intent(self, intent: OrderIntent) -> None:
        """Journal an intent durably. Call before the request leaves. Re-recording is refused."""
        with self._tx() as c:
            try:
                c.execute(
                    "INSERT INTO intents (order_link_id, payload, created_ms) VALUES (?, ?, ?)",
                    (intent.order_link_id, _dumps(intent_to_dict(intent)), self._wall_ms()),
                )
            except sqlite3.IntegrityError as exc:
                raise JournalError(
                    self.path, f"intent {intent.order_link_id!r} is already journaled"
                ) from exc

    def record_order(self, order: TrackedOrder) -> None:
        """Upsert the current state of one tracked order."""
        with self._tx() as c:
            self._write_order(c, order)

    def record_orders(self, orders: Iterable[TrackedOrder]) -> None:
        """Upsert several orders in one transaction (e.g. an applied reconcile plan)."""
        with self._tx() as c:
            for order in orders:
                self._write_order(c, order)

    def _write_order(self, c: sqlite3.Connection, o: TrackedOrder) -> None:
        c.execute(
            "INSERT INTO orders (key, order_link_id, order_id, state, final, payload, updated_ms)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " order_id = excluded.order_id, state = excluded.state, final = excluded.final,"
            " payload = excluded.payload, updated_ms = excluded.updated_ms",
            (
                o.key,
                o.order_link_id,
                o.order_id,
                o.state.value,
                int(o.state.is_final),
                _dumps(tracked_to_dict(o)),
                self._wall_ms(),
            ),
        )

    def record_execution(self, execution: Execution, position: PositionState | None = None) -> bool:
        """Journal an execution once; False if its ``exec_id`` is already there.

        With ``position`` (the symbol's state after applying it), the baseline is updated in the
        same transaction — the cheapest way to keep restarts from replaying history.
        """
        if position is not None and position.symbol != execution.symbol:
            raise ValueError(f"position {position.symbol} for an execution of {execution.symbol}")
        with self._tx() as c:
            inserted = self._insert_execution(c, execution)
            if inserted and position is not None:
                self._write_position(c, position)
        return inserted

    def _insert_execution(self, c: sqlite3.Connection, e: Execution) -> bool:
        cur = c.execute(
            "INSERT OR IGNORE INTO executions"
            " (exec_id, order_id, order_link_id, symbol, exec_time, payload)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                e.exec_id,
                e.order_id,
                e.order_link_id,
                e.symbol,
                e.exec_time,
                _dumps(execution_to_wire(e, ws=True)),
            ),
        )
        return cur.rowcount == 1

    def record_applied_plan(self, applied: AppliedPlan) -> None:
        """Journal a reconciliation (:func:`~hean.engine.reconcile_plan.apply_plan`) atomically.

        One transaction: the missed executions, then the baselines of the positions they moved,
        the changed orders and the new cursor — a crash leaves all of it or none.
        """
        with self._tx() as c:
            for e in applied.applied_executions:
                self._insert_execution(c, e)
            for p in applied.positions:
                self._write_position(c, p)
            for o in applied.changed_orders:
                self._write_order(c, o)
            if applied.new_cursor is not None:
                self._advance_cursor(c, applied.new_cursor)

    def record_position(self, position: PositionState) -> None:
        """Store a position baseline (it must include every execution recorded for its symbol)."""
        with self._tx() as c:
            self._write_position(c, position)

    def _write_position(self, c: sqlite3.Connection, p: PositionState) -> None:
        c.execute(
            "INSERT INTO positions (symbol, exec_seq, payload, updated_ms) VALUES"
            " (?, (SELECT COALESCE(MAX(seq), 0) FROM executions), ?, ?)"
            " ON CONFLICT (symbol) DO UPDATE SET exec_seq = excluded.exec_seq,"
            " payload = excluded.payload, updated_ms = excluded.updated_ms",
            (p.symbol, _dumps(position_state_to_dict(p)), self._wall_ms()),
        )

    def set_cursor(self, cursor_ms: int) -> None:
        """Store the execution cursor (it never moves backwards: a smaller value is ignored)."""
        with self._tx() as c:
            self._advance_cursor(c, cursor_ms)

    def _advance_cursor(self, c: sqlite3.Connection, cursor_ms: int) -> None:
        row = c.execute("SELECT value FROM meta WHERE key = ?", (_CURSOR_KEY,)).fetchone()
        if row is not None and int(row[0]) >= cursor_ms:
            return
        c.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (_CURSOR_KEY, str(cursor_ms)),
        )

    def get_cursor(self) -> int | None:
        row = self._read("SELECT value FROM meta WHERE key = ?", (_CURSOR_KEY,))
        return None if not row else int(row[0][0])

    # ---- reads

    def has_execution(self, exec_id: str) -> bool:
        return bool(self._read("SELECT 1 FROM executions WHERE exec_id = ?", (exec_id,)))

    def load(self) -> JournalState:
        """Everything, for a restart (one read transaction, so it is a consistent snapshot)."""
        conn = self._require()
        try:
            with _read_tx(conn):
                intents = {
                    k: intent_from_dict(orjson.loads(p))
                    for k, p in conn.execute("SELECT order_link_id, payload FROM intents")
                }
                orders = {
                    k: tracked_from_dict(orjson.loads(p))
                    for k, p in conn.execute("SELECT key, payload FROM orders ORDER BY rowid")
                }
                rows = conn.execute("SELECT seq, payload FROM executions ORDER BY seq").fetchall()
                positions: dict[str, PositionState] = {}
                baseline_seq: dict[str, int] = {}
                for symbol, seq, payload in conn.execute(
                    "SELECT symbol, exec_seq, payload FROM positions"
                ):
                    positions[symbol] = position_state_from_dict(orjson.loads(payload))
                    baseline_seq[symbol] = int(seq)
                cursor = conn.execute(
                    "SELECT value FROM meta WHERE key = ?", (_CURSOR_KEY,)
                ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise _classify(self.path, exc) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise JournalCorruptError(self.path, f"unreadable row: {exc!r}") from exc
        return JournalState(
            intents=intents,
            orders=orders,
            executions=tuple(execution_from_wire(orjson.loads(p)) for _, p in rows),
            execution_seqs=tuple(int(s) for s, _ in rows),
            positions=positions,
            baseline_seq=baseline_seq,
            cursor_ms=None if cursor is None else int(cursor[0]),
        )

    # ---- plumbing

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise JournalError(self.path, "journal is closed")
        return self._conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._require()
        try:
            conn.execute("BEGIN IMMEDIATE")
            done = False
            try:
                yield conn
                done = True
            finally:
                # Any exception (cancellation included) rolls back; nothing half-written stays.
                conn.execute("COMMIT" if done else "ROLLBACK")
        except sqlite3.DatabaseError as exc:
            raise _classify(self.path, exc) from exc

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        conn = self._require()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _classify(self.path, exc) from exc


@contextlib.contextmanager
def _read_tx(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _classify(path: Path, exc: sqlite3.DatabaseError) -> JournalError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return JournalLockedError(path, f"database is locked by another connection ({text})")
    if isinstance(exc, sqlite3.IntegrityError):
        return JournalError(path, f"constraint violated: {text}")
    if isinstance(exc, sqlite3.OperationalError):
        return JournalError(path, f"sqlite error: {text}")
    return JournalCorruptError(path, f"database is corrupt or not a HEAN journal ({text})")


_SQLITE_SIDECARS: Final = ("-wal", "-shm")


def archive_journal(path: str | Path, *, stamp: str) -> Path | None:
    """Move the journal at ``path`` (with its WAL and shared-memory files) aside, to
    ``<stem>.<stamp><suffix>`` in the same directory; None if there is none.

    For a venue whose state does not outlive the process (the embedded paper venue): a journal of
    an earlier run describes orders and positions the new venue never had, so reconciling against
    it could only fail closed. It is kept, not deleted, for inspection. The three files move
    together under the journal's lock, so an engine still using it is refused
    (:class:`JournalLockedError`) instead of having its files pulled away; a crashed run's
    committed transactions still in the ``-wal`` file move with the database they belong to.
    """
    path = Path(path)
    if not path.exists():
        return None
    fd = _acquire_lock(path)
    try:
        target = path.with_name(f"{path.stem}.{stamp}{path.suffix}")
        if target.exists():
            raise JournalError(path, f"cannot archive: {str(target)!r} already exists")
        for sidecar in _SQLITE_SIDECARS:
            extra = path.with_name(path.name + sidecar)
            if extra.exists():
                extra.rename(target.with_name(target.name + sidecar))
        path.rename(target)
        return target
    except OSError as exc:
        raise JournalError(path, f"cannot archive: {exc}") from exc
    finally:
        _release_lock(fd)


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _acquire_lock(path: Path) -> int:
    lock_path = _lock_path(path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise JournalError(path, f"cannot open lock file {str(lock_path)!r}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise JournalLockedError(
            path,
            f"another engine holds {str(lock_path)!r}{holder}; only one engine may use a journal",
        ) from None
    except OSError as exc:
        os.close(fd)
        raise JournalError(path, f"cannot lock {str(lock_path)!r}: {exc}") from exc
    # Record who holds it, for the message another engine will print.
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid else ""


def _release_lock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit is exactly where the
        # code says (the legacy implicit transactions would hide it).
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    except sqlite3.Error as exc:
        raise JournalError(path, f"cannot open: {exc}") from exc
    ok = False
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise JournalError(path, f"cannot switch to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(path, conn)
        ok = True
    except sqlite3.DatabaseError as exc:
        raise _classify(path, exc) from exc
    finally:
        if not ok:
            conn.close()
    return conn


def _migrate(path: Path, conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    done = False
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        current = 0 if row is None or row[0] is None else int(row[0])
        if current > SCHEMA_VERSION:
            raise JournalCorruptError(
                path,
                f"schema version {current} is newer than this HEAN understands ({SCHEMA_VERSION})",
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        done = True
    finally:
        conn.execute("COMMIT" if done else "ROLLBACK")
