"""The chaos fault storm (``python -m chaos.fault_storm``) end to end: a short storm with an
engine SIGKILL, run exactly as a user runs it, must hold every invariant.

Real processes on 127.0.0.1 and the real clock (sockets and a fake clock do not mix), so the
storm is short: 20 s of faults, about 25 s in all. The seed fixes the fault sequence; seed 7's
20-second sequence draws every fault kind but one and kills the engine once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from chaos.invariants import (
    JournalTruth,
    Kill,
    LogRecord,
    ProcessFacts,
    VenueTruth,
    check_executions,
    check_link_ids,
    check_logs,
    check_nothing_resting,
    check_positions,
    check_processes,
    log_figures,
    parse_log,
)
from hean.bybit.types import Execution, Order, OrderStatus, OrderType, Position, Side, TimeInForce
from hean.engine.portfolio import PositionState

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
_TIMEOUT_S = 150.0  # bounds a hang only: the storm itself takes ~25 s


def test_short_fault_storm_with_engine_kill_holds_every_invariant(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "chaos.fault_storm", "--duration", "20", "--seed", "7"]
    argv += ["--kill-engine", "--workdir", str(tmp_path / "storm")]
    result = subprocess.run(
        argv,
        cwd=REPO_ROOT,  # `python -m chaos.fault_storm` is run from the repository root
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, (out[-4000:], result.stderr[-4000:])
    assert "result               PASS (exit 0)" in out

    faults = re.search(r"^\s+faults injected\s+(\d+)", out, re.M)
    assert faults is not None, out
    assert int(faults.group(1)) > 0
    fills = re.search(r"^\s+fills\s+(\d+) at the venue, (\d+) in the journal", out, re.M)
    assert fills is not None, out
    assert int(fills.group(1)) > 0
    assert fills.group(1) == fills.group(2)
    assert "SIGKILL              run 1, restarted on the same journal" in out
    assert out.count("[ ok ]") == 6  # invariants a..f


# ----------------------------------------------------------------------------------------------
# The invariants themselves (pure, fast): each one can fail, so a PASS above means something.
# ----------------------------------------------------------------------------------------------

_T0 = 1_795_000_000_000


def _exec(exec_id: str, link: str = "L1", side: Side = Side.BUY, qty: str = "0.002") -> Execution:
    price = Decimal("95000")
    return Execution(
        exec_id=exec_id,
        symbol="BTCUSDT",
        order_id=f"o-{link}",
        order_link_id=link,
        side=side,
        exec_price=price,
        exec_qty=Decimal(qty),
        exec_value=price * Decimal(qty),
        exec_fee=Decimal("0.01"),
        exec_time=_T0,
        is_maker=True,
    )


def _order(link: str, order_id: str, status: OrderStatus = OrderStatus.FILLED) -> Order:
    return Order(
        order_id=order_id,
        order_link_id=link,
        symbol="BTCUSDT",
        side=Side.BUY,
        order_type=OrderType.LIMIT,
        price=Decimal("95000"),
        qty=Decimal("0.002"),
        time_in_force=TimeInForce.POST_ONLY,
        order_status=status,
        created_time=_T0,
        updated_time=_T0,
    )


def _venue(
    executions: tuple[Execution, ...] = (),
    size: str = "0.002",
    entry: str = "95000",
    orders: tuple[Order, ...] = (),
    open_orders: tuple[Order, ...] = (),
) -> VenueTruth:
    position = Position(
        symbol="BTCUSDT",
        side=Side.BUY if Decimal(size) > 0 else None,
        size=Decimal(size),
        entry_price=Decimal(entry),
    )
    return VenueTruth(executions, {"BTCUSDT": position}, orders, open_orders)


def _journal(
    executions: tuple[Execution, ...] = (),
    size: str = "0.002",
    cost: str = "190",
    intents: dict[str, int] | None = None,
    non_final: tuple[str, ...] = (),
) -> JournalTruth:
    state = PositionState("BTCUSDT", size=Decimal(size), cost=Decimal(cost))
    return JournalTruth(
        executions, {"BTCUSDT": state}, intents if intents is not None else {"L1": _T0}, non_final
    )


def _log(*lines: str, run: int = 1) -> list[LogRecord]:
    return parse_log("\n".join(lines), run)


def _ev(event: str, **fields: str) -> str:
    return json.dumps({"event": event, **fields})


def test_a_missing_extra_and_duplicate_executions_are_violations() -> None:
    e1, e2 = _exec("e1"), _exec("e2")
    assert check_executions(_venue((e1,)), _journal((e1,))) == []
    assert [v.invariant for v in check_executions(_venue((e1, e2)), _journal((e1,)))] == ["a"]
    assert [v.invariant for v in check_executions(_venue((e1,)), _journal((e1, e2)))] == ["a"]
    assert [v.invariant for v in check_executions(_venue((e1,)), _journal((e1, e1)))] == ["a"]


def test_b_size_side_and_entry_must_match_the_venue() -> None:
    assert check_positions(_venue(), _journal()) == []
    assert [v.invariant for v in check_positions(_venue(size="0.004"), _journal())] == ["b"]
    # 95000 vs 95000.1: 1.05e-6 relative, just outside the tolerance
    assert [v.invariant for v in check_positions(_venue(entry="95000.1"), _journal())] == ["b"]
    assert check_positions(_venue(entry="95000.09"), _journal()) == []
    assert check_positions(_venue(size="0"), _journal(size="0", cost="0")) == []


def test_c_a_second_create_is_a_violation_unless_110072_follows_an_unknown_outcome() -> None:
    venue, journal = _venue(orders=(_order("L1", "o1"),)), _journal()
    acked_twice = _log(
        _ev("order_acked", order_link_id="L1"), _ev("order_acked", order_link_id="L1")
    )
    assert [v.invariant for v in check_link_ids(venue, journal, acked_twice)] == ["c"]
    out_of_the_blue = _log(_ev("order_duplicate_link_id", order_link_id="L1"))
    assert [v.invariant for v in check_link_ids(venue, journal, out_of_the_blue)] == ["c"]
    after_unknown = _log(
        _ev("order_outcome_unknown", order_link_id="L1"),
        _ev("order_duplicate_link_id", order_link_id="L1"),
    )
    assert check_link_ids(venue, journal, after_unknown) == []
    # journaled before a SIGKILL of run 1 with no outcome logged there: unknown, tolerated
    after_kill = _log(_ev("order_duplicate_link_id", order_link_id="L1"), run=2)
    assert check_link_ids(venue, journal, after_kill, [Kill(1, _T0 + 1)]) == []
    assert check_link_ids(venue, journal, after_kill, [Kill(1, _T0 - 1)]) != []


def test_c_venue_duplicates_and_unjournaled_orders_are_violations() -> None:
    twice = _venue(orders=(_order("L1", "o1"), _order("L1", "o2")))
    assert [v.invariant for v in check_link_ids(twice, _journal(), [])] == ["c"]
    stranger = _venue(orders=(_order("L9", "o9"),))
    assert [v.invariant for v in check_link_ids(stranger, _journal(), [])] == ["c"]


def test_d_e_f_resting_orders_dirty_logs_and_a_failed_stop_are_violations() -> None:
    resting = _venue(open_orders=(_order("L1", "o1", OrderStatus.NEW),))
    assert [v.invariant for v in check_nothing_resting(resting, _journal())] == ["d"]
    assert [v.invariant for v in check_nothing_resting(_venue(), _journal(non_final=("L1",)))] == [
        "d"
    ]
    dirty = _log(
        "Traceback (most recent call last):",
        _ev("order_state", error="IllegalTransition(...)"),
        _ev("position_mismatch", symbol="BTCUSDT"),
        json.dumps({"event": "engine_failed", "exception": [{"exc_type": "EngineFailed"}]}),
    )
    assert [v.invariant for v in check_logs(dirty)] == ["e"] * 4
    assert check_logs(_log(_ev("order_acked", order_link_id="L1"))) == []
    assert check_processes(ProcessFacts(stop_exit_code=0)) == []
    assert len(check_processes(ProcessFacts(1, runs_not_ready=(2,), died_early=((1, 1),)))) == 3
    assert len(check_processes(ProcessFacts(stop_exit_code=None))) == 1


def test_figures_count_reconnects_recoveries_and_acks_on_a_dead_private_stream() -> None:
    records = [
        *_log(
            _ev("stream_state", stream="private", state="ready"),
            _ev("stream_state", stream="public", state="ready"),
            _ev("stream_pong_timeout", stream="private"),
            _ev("order_acked", order_link_id="L1"),
            _ev("stream_state", stream="private", state="down"),
            _ev("order_acked", order_link_id="L2"),
            _ev("stream_state", stream="private", state="ready"),
            _ev("missed_execution_applied", exec_id="e1"),
        ),
        *_log(_ev("stream_state", stream="private", state="ready"), run=2),
    ]
    figures = log_figures(records)
    assert figures.reconnects == {"private": 1, "public": 0}
    assert figures.missed_fills_recovered == 1
    assert figures.creates == 2
    assert figures.acked_while_private_dead == 1
