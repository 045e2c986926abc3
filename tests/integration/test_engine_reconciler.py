"""Reconciler against the embedded venue over the in-memory network, under the fake clock."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from hean.bybit.errors import OutcomeUnknownError
from hean.bybit.types import Execution, OrderType, PrivateMessage, Side
from hean.engine.intents import OrderIntent
from hean.engine.orders import OrderState, OutcomeUnknown, Sent
from hean.engine.reconciler import UNKNOWN_ORDER_PASSES, ReconcileIncomplete
from hean.engine.risk_gate import RejectReason
from hean.sim.faults import ClearFaults, RestFault, RestFaultKind
from tests.integration.engine_harness import DelayCreate, make_signal, open_rig, wait_for

D = Decimal


async def test_missed_fill_applied_exactly_once_across_two_reconciles(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path, missed_events_alert=0) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.aggressive_price()
        key = rig.router.submit(make_signal(price, qty="0.01")).order_link_id
        assert key is not None
        await wait_for(lambda: key in rig.state.tracker and bool(rig.state.tracker[key].order_id))
        await trio.sleep(0.5)
        # No private stream: the fill happened at the venue, the engine has not seen it.
        assert rig.state.portfolio.position("BTCUSDT").size == 0
        venue_fills = await rig.rest.executions(rig.net.now_ms() - 60_000)
        assert venue_fills
        assert sum(e.exec_qty for e in venue_fills) == D("0.01")

        first = await rig.reconciler.reconcile("periodic")
        assert first.missed_fills == len(venue_fills)
        assert first.complete
        assert first.fail_closed is None
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.01")
        assert rig.state.tracker[key].state is OrderState.FILLED
        assert first.cursor_ms == max(e.exec_time for e in venue_fills)
        assert rig.journal.get_cursor() == first.cursor_ms
        assert rig.metric("hean_missed_fills_total") == len(venue_fills)
        assert rig.metric("hean_alerts_total", {"kind": "missed_events"}) == 1

        second = await rig.reconciler.reconcile("periodic")
        assert second.missed_fills == 0
        assert second.missed_events == 0
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.01")
        assert len(rig.journal_rows("SELECT exec_id FROM executions")) == len(venue_fills)
        assert rig.metric("hean_missed_fills_total") == len(venue_fills)
        assert second.cursor_ms == first.cursor_ms

        # The journal rebuilds the same position (baselines + executions, nothing twice).
        rebuilt = rig.journal.load().rebuild_portfolio()
        assert rebuilt.position("BTCUSDT").size == D("0.01")


async def test_external_order_adopted(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        price = await rig.passive_price()
        order_id, _ = await rig.rest.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty=D("0.01"),
            price=price,
            order_link_id="manual-1",
        )
        with capture_logs() as logs:
            report = await rig.reconciler.reconcile("startup")
        assert report.adopted == ("manual-1",)
        tracked = rig.state.tracker["manual-1"]
        assert tracked.is_external
        assert tracked.order_id == order_id
        assert tracked.state is OrderState.NEW
        assert rig.journal_rows("SELECT key, state FROM orders") == [("manual-1", "New")]
        assert any(e["event"] == "external_order_adopted" for e in logs)
        assert rig.state.gate.is_open  # an adopted order is known state: trading may go on
        # It is not ours: shutdown's cancel-all leaves it alone unless asked.
        report_cancel = await rig.router.cancel_all_resting(timeout_s=5)
        assert report_cancel.requested == ()


async def test_position_mismatch_fails_closed(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        # A fill the exchange never had (a corrupted journal, a manual edit): local says long.
        ghost = Execution(
            exec_id="ghost-1",
            symbol="BTCUSDT",
            order_id="",
            order_link_id="",
            side=Side.BUY,
            exec_price=D("95000"),
            exec_qty=D("0.01"),
            exec_value=D("950"),
            exec_fee=D("0"),
            exec_time=rig.net.now_ms(),
            is_maker=False,
        )
        rig.applier.apply(PrivateMessage("m1", "execution", rig.net.now_ms(), (ghost,)))
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.01")

        with capture_logs() as logs:
            report = await rig.reconciler.reconcile("private_connect")
        assert report.fail_closed is not None
        assert "BTCUSDT" in report.fail_closed
        assert report.attempts == 3  # the disagreement had to survive fresh looks
        assert rig.state.fail_closed == report.fail_closed
        mismatch_logs = [e for e in logs if e["event"] == "position_mismatch"]
        assert mismatch_logs
        assert mismatch_logs[0]["log_level"] == "error"
        assert rig.metric("hean_position_mismatches_total", {"symbol": "BTCUSDT"}) == 1
        assert rig.metric("hean_fail_closed") == 1
        # The gate opens (state is known) but only reduce-only orders pass the risk gate.
        assert rig.state.gate.is_open
        price = await rig.passive_price()
        refused = rig.router.submit(make_signal(price))
        assert refused.reason is RejectReason.FAIL_CLOSED
        allowed = rig.router.submit(make_signal(price * 2, side=Side.SELL, reduce_only=True))
        assert allowed.accepted


async def test_cursor_boundary_ms_dedupe(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path, symbols=("BTCUSDT", "ETHUSDT"), cursor_overlap_ms=0) as rig:
        await rig.reconciler.reconcile("startup")

        async def market(symbol: str, link_id: str) -> None:
            await rig.rest.place_order(
                symbol=symbol,
                side=Side.BUY,
                order_type=OrderType.MARKET,
                qty=D("0.01"),
                order_link_id=link_id,
            )

        async with trio.open_nursery() as n:  # both reach matching in the same venue ms
            n.start_soon(market, "BTCUSDT", "ext-btc")
            n.start_soon(market, "ETHUSDT", "ext-eth")
        fills = await rig.rest.executions(rig.net.now_ms() - 60_000)
        by_symbol = {e.symbol: e for e in fills}
        assert len(fills) == 2
        assert len({e.exec_time for e in fills}) == 1

        # The ETH fill is not listed yet (execution and position listings lag).
        rig.transport.hide = lambda path, item: item.get("symbol") == "ETHUSDT"
        first = await rig.reconciler.reconcile("periodic")
        assert first.missed_fills == 1
        assert rig.state.exec_cursor_ms == by_symbol["BTCUSDT"].exec_time

        rig.transport.hide = None
        second = await rig.reconciler.reconcile("periodic")
        # The fetch starts AT the cursor: the late fill of the same ms is found, the BTC fill
        # fetched again is dropped by execId.
        assert second.missed_fills == 1
        assert second.complete
        assert second.fail_closed is None
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.01")
        assert rig.state.portfolio.position("ETHUSDT").size == D("0.01")
        assert second.cursor_ms == first.cursor_ms
        third = await rig.reconciler.reconcile("periodic")
        assert third.missed_fills == 0
        assert len(rig.journal_rows("SELECT exec_id FROM executions")) == 2


async def test_failing_reconcile_keeps_gate_closed_and_raises(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        rig.server.inject_rest_fault(
            RestFault(RestFaultKind.HTTP, http_status=503, path_prefix="/v5/order/realtime"),
            count=50,
        )
        with pytest.raises(OutcomeUnknownError):
            await rig.reconciler.reconcile("private_connect")
        assert not rig.state.gate.is_open
        assert rig.state.gate.reason == "reconcile failed (private_connect)"
        failed = {"trigger": "private_connect", "result": "failed"}
        assert rig.metric("hean_reconciles_total", failed) == 1
        rig.server.apply_fault(ClearFaults())
        await rig.reconciler.reconcile("private_connect")
        assert rig.state.gate.is_open


async def test_unknown_order_settled_after_grace(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path, run_router=False, grace_s=15.0) as rig:
        # A create that never reached the venue and whose answer was lost (or a restart found
        # it IN_FLIGHT in the journal): the engine cannot know until the grace period passed.
        price = await rig.passive_price()
        intent = OrderIntent.from_signal(
            make_signal(price),
            qty=D("0.01"),
            price=price,
            purpose="open",
            created_at=trio.current_time(),
            ttl_s=5.0,
        )
        rig.journal.record_intent(intent)
        rig.state.tracker.track_intent(intent, trio.current_time())
        rig.state.tracker.apply(intent.order_link_id, Sent(at=trio.current_time()))
        rig.state.tracker.apply(intent.order_link_id, OutcomeUnknown(at=trio.current_time()))
        started = trio.current_time()
        report = await rig.reconciler.reconcile("startup")
        assert report.lost == (intent.order_link_id,)
        assert report.complete
        assert report.attempts > 1
        assert trio.current_time() - started >= 15.0
        assert rig.state.tracker[intent.order_link_id].state is OrderState.LOST
        assert rig.state.gate.is_open


async def test_incomplete_reconcile_raises_and_keeps_gate_closed(
    tmp_path: Path, autojump_clock: Any
) -> None:
    # The settle timeout is shorter than the NotFound grace: the order cannot be settled.
    async with open_rig(tmp_path, run_router=False, grace_s=60.0, settle_timeout_s=5.0) as rig:
        price = await rig.passive_price()
        intent = OrderIntent.from_signal(
            make_signal(price),
            qty=D("0.01"),
            price=price,
            purpose="open",
            created_at=trio.current_time(),
            ttl_s=5.0,
        )
        rig.state.tracker.track_intent(intent, trio.current_time())
        rig.state.tracker.apply(intent.order_link_id, Sent(at=trio.current_time()))
        with pytest.raises(ReconcileIncomplete) as info:
            await rig.reconciler.reconcile("startup")
        assert info.value.report.unresolved == (intent.order_link_id,)
        assert not rig.state.gate.is_open
        assert rig.state.gate.reason == "reconcile incomplete (startup)"


async def test_run_periodic_reconciles_on_interval(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.nursery.start(rig.reconciler.run_periodic, 60.0)
        await trio.sleep(59.0)
        assert rig.state.counters.reconciles == 0
        await trio.sleep(2.0)
        assert rig.state.counters.reconciles == 1
        assert rig.metric("hean_reconciles_total", {"trigger": "periodic", "result": "ok"}) == 1
        assert not rig.state.gate.is_open  # periodic passes never open the gate


# --------------------------------------------------------------------------- review regressions


async def test_fill_hidden_by_a_lagging_listing_is_not_lost_behind_the_cursor(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path, settle_timeout_s=5.0) as rig:
        await rig.reconciler.reconcile("startup")
        by_order_id: list[str] = []
        rig.transport.before.append(
            lambda r: (
                by_order_id.append(r.url.params["orderId"])
                if r.url.path == "/v5/execution/list" and "orderId" in r.url.params
                else None
            )
        )
        price = await rig.aggressive_price()
        key = rig.router.submit(make_signal(price, qty="0.01")).order_link_id
        assert key is not None
        await wait_for(lambda: key in rig.state.tracker and bool(rig.state.tracker[key].order_id))
        await trio.sleep(10)  # a later fill, 10 s after ours (> the 5 s cursor overlap)
        await rig.rest.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            qty=D("0.01"),
            order_link_id="ext-later",
        )
        # Our fill is not listed yet by /v5/execution/list (listing lag), the later one is.
        rig.transport.hide = lambda path, item: (
            path == "/v5/execution/list" and item.get("orderLinkId") == key
        )
        first = await rig.reconciler.reconcile("periodic")
        assert not first.complete
        # The size difference is explained by the fill still missing: incomplete, not fail-closed.
        assert first.fail_closed is None
        assert rig.state.fail_closed is None
        order_id = rig.state.tracker[key].order_id
        assert order_id in by_order_id  # asked for by orderId, not only by time
        ours = rig.state.tracker[key].last_order
        assert ours is not None
        # The cursor stops at our order's creation: the next fetch still covers its fill.
        assert first.cursor_ms == ours.created_time
        rig.transport.hide = None  # the listing catches up
        second = await rig.reconciler.reconcile("periodic")
        assert second.complete
        assert second.missed_fills == 1
        assert rig.state.portfolio.position("BTCUSDT").size == D("0.02")
        assert second.mismatches == ()
        assert second.fail_closed is None
        assert second.cursor_ms is not None
        assert second.cursor_ms > ours.created_time


async def test_create_in_flight_is_not_declared_lost_by_reconciliation(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path, grace_s=2.0) as rig:
        await rig.reconciler.reconcile("startup")
        rig.transport.inner = DelayCreate(rig.transport.inner, 5.0)
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        assert key is not None
        await wait_for(lambda: key in rig.state.tracker)
        await trio.sleep(3.0)  # past the 2 s grace; the create is still on the wire
        report = await rig.reconciler.reconcile("periodic")
        assert report.lost == ()
        assert report.complete  # settled once the create's ack came back
        assert rig.state.tracker[key].state is OrderState.NEW
        assert rig.state.counters.orders_lost == 0


async def test_create_timing_out_after_a_not_found_does_not_crash_the_router(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """The create outlives the NotFound grace and then times out: settled, no crash."""
    async with open_rig(tmp_path, grace_s=2.0) as rig:
        await rig.reconciler.reconcile("startup")
        rig.transport.inner = DelayCreate(rig.transport.inner, 12.0)  # > the 10 s timeout
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        assert key is not None
        await wait_for(lambda: key in rig.state.tracker)
        await trio.sleep(3.0)
        await rig.reconciler.reconcile("periodic")  # meanwhile: may not declare it LOST
        await trio.sleep(30.0)  # timeout -> UNKNOWN -> resolved by query
        assert rig.state.tracker[key].state is OrderState.LOST
        assert rig.state.counters.orders_unknown == 1
        assert await rig.rest.open_orders() == []


async def test_unknown_order_query_is_repeated_for_a_bounded_number_of_passes(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """History can lag behind the execution that named an order: one miss is not final."""
    async with open_rig(tmp_path, run_router=False) as rig:
        asked: list[str] = []
        rig.transport.before.append(
            lambda r: (
                asked.append(r.url.params["orderId"])
                if r.url.path == "/v5/order/realtime" and "orderId" in r.url.params
                else None
            )
        )
        rig.reconciler.request_order_query("no-such-order", "BTCUSDT")
        for _ in range(UNKNOWN_ORDER_PASSES + 2):
            await rig.reconciler.reconcile("periodic")
        assert asked.count("no-such-order") == UNKNOWN_ORDER_PASSES
