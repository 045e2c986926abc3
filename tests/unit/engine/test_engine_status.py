"""The status line and summary: aggregation and formatting (pure)."""

from __future__ import annotations

import json
from decimal import Decimal

from hean.engine.portfolio import PositionState
from hean.engine.status import (
    StreamView,
    build_snapshot,
    format_status_line,
    format_summary,
    status_fields,
)

D = Decimal


def snapshot(**overrides: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "mode": "paper",
        "uptime_s": 65.4,
        "equity": D("10003.215"),
        "positions": {
            # long 0.002 @ 95000 (cost 190), 1.5 realized, 0.2 fees
            "BTCUSDT": PositionState(
                "BTCUSDT", size=D("0.002"), cost=D("190"), realized_pnl=D("1.5"), fees=D("0.2")
            ),
            # flat now: its realized PnL and fees still count
            "ETHUSDT": PositionState("ETHUSDT", realized_pnl=D("-0.5"), fees=D("0.1")),
        },
        "marks": {"BTCUSDT": D("95500")},
        "open_orders": 2,
        "fills": 8,
        "maker_fills": 6,
        "streams": [StreamView("public", "ready"), StreamView("private", "connecting", 1)],
        "trading": True,
    }
    args.update(overrides)
    return build_snapshot(**args)  # type: ignore[arg-type]


def test_snapshot_aggregates_pnl_over_all_symbols_and_lists_open_positions() -> None:
    s = snapshot()
    assert s.realized == D("1.0")
    assert s.fees == D("0.3")
    assert s.unrealized == D("1.000")  # 0.002 * 95500 - 190
    assert s.net_pnl == D("1.7")
    assert [p.symbol for p in s.positions] == ["BTCUSDT"]
    assert s.maker_ratio == 0.75


def test_unrealized_is_left_out_for_a_symbol_without_a_price() -> None:
    s = snapshot(marks={})
    assert s.unrealized == 0
    assert s.positions[0].unrealized is None


def test_status_fields_are_json_safe_and_exact() -> None:
    fields = status_fields(snapshot())
    text = json.dumps(fields)  # no Decimal, no custom objects
    assert json.loads(text)["pnl_net"] == "1.70"
    assert fields["positions"] == {"BTCUSDT": "0.002"}
    assert fields["streams"] == {"public": "ready", "private": "connecting"}
    assert fields["maker_ratio"] == 0.75
    assert "blocked" not in fields


def test_status_line_shows_the_moving_parts() -> None:
    line = format_status_line(snapshot())
    assert line.startswith("[paper 00:01:05] trading | equity 10003.22")
    assert "pnl +1.70 (real +1.00 unreal +1.00 fees 0.30)" in line
    assert "pos BTCUSDT +0.002@95000" in line
    assert "orders 2" in line
    assert "fills 8 (maker 75%)" in line
    assert "public:ready private:connecting" in line
    assert "\n" not in line


def test_status_line_says_why_trading_is_blocked() -> None:
    assert "BLOCKED(private stream down)" in format_status_line(
        snapshot(trading=False, blocked_reason="private stream down")
    )
    line = format_status_line(snapshot(trading=False, fail_closed="position mismatch"))
    assert "FAIL-CLOSED(position mismatch)" in line


def test_no_fills_yet_and_no_wallet() -> None:
    s = snapshot(fills=0, maker_fills=0, equity=None, positions={})
    assert s.maker_ratio is None
    assert status_fields(s)["maker_ratio"] is None
    line = format_status_line(s)
    assert "equity -" in line
    assert "pos flat" in line
    assert "(maker -)" in line


def test_summary() -> None:
    text = format_summary(snapshot(restarts=1), exit_code=0, reason="signal SIGTERM")
    lines = text.splitlines()
    assert lines[0] == "HEAN run summary"
    assert "  stopped         signal SIGTERM (exit code 0)" in lines
    assert "  fills           8 (maker 75%)" in lines
    assert "  restarts        1" in lines
    failed = format_summary(snapshot(fail_closed="mismatch"), exit_code=1, reason="stopped")
    assert "  FAIL-CLOSED     mismatch" in failed.splitlines()


def test_a_breached_loss_limit_shows_in_fields_line_and_summary() -> None:
    detail = "daily loss 0.62 USDT since the UTC day's start equity 10000 >= 0.5 USDT"
    s = snapshot(trading=False, loss_limit=detail)
    assert status_fields(s)["loss_limit"] == detail
    assert f"LOSS-LIMIT({detail})" in format_status_line(s)
    assert f"  LOSS-LIMIT      {detail}" in format_summary(s, exit_code=0, reason="x").splitlines()
    assert "loss_limit" not in status_fields(snapshot())
