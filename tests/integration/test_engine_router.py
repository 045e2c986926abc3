"""ExecutionRouter against the embedded venue over the in-memory network, under the fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from prometheus_client import CollectorRegistry

from hean.bybit.types import OrderStatus, OrderType, Side
from hean.engine.metrics import EngineMetrics
from hean.engine.orders import OrderState
from hean.engine.risk_gate import RejectReason, RiskGate, RiskLimits
from hean.engine.router import ExecutionRouter
from hean.engine.strategy import live_quotes
from hean.sim.faults import RestFault, RestFaultKind
from tests.integration.engine_harness import (
    CREATE,
    D,
    DelayCreate,
    make_signal,
    open_rig,
    wait_for,
)

CANCEL = "/v5/order/cancel"

# --------------------------------------------------------------------------- tests


async def test_places_an_order_after_the_gate_opens(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        result = rig.router.submit(make_signal(price))
        assert result.accepted
        assert result.order_link_id is not None
        key = result.order_link_id
        await wait_for(lambda: rig.resting(key))

        venue = await rig.rest.open_orders()
        assert [o.order_link_id for o in venue] == [key]
        tracked = rig.state.tracker[key]
        assert tracked.order_id == venue[0].order_id
        assert rig.metric("hean_orders_submitted_total", {"symbol": "BTCUSDT", "side": "Buy"}) == 1
        assert rig.metric("hean_order_outcomes_total", {"outcome": "acked"}) == 1
        rows = rig.journal_rows("SELECT key, state, order_id FROM orders")
        assert rows == [(key, "New", venue[0].order_id)]


async def test_gate_closed_places_nothing_until_reconcile(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path, ttl_s=5.0) as rig:
        assert not rig.state.gate.is_open  # closed from startup until the first reconcile
        assert rig.metric("hean_trading_gate_open") == 0
        price = await rig.passive_price()
        first = rig.router.submit(make_signal(price))
        assert first.accepted
        await trio.sleep(3.0)
        assert CREATE not in rig.transport.paths  # waiting for the gate, nothing sent
        await trio.sleep(3.0)  # TTL passed while the gate was closed: dropped, counted
        assert rig.metric("hean_intents_expired_total", {"reason": "gate_closed"}) == 1
        assert first.order_link_id not in rig.state.tracker
        assert rig.journal_rows("SELECT * FROM intents") == []

        second = rig.router.submit(make_signal(price - 10))
        await trio.sleep(1.0)
        assert CREATE not in rig.transport.paths
        await rig.reconciler.reconcile("startup")  # opens the gate: the waiting intent goes
        assert rig.state.gate.reason is None
        assert rig.metric("hean_trading_gate_open") == 1
        key = second.order_link_id
        assert key is not None
        await wait_for(lambda: rig.resting(key))
        assert rig.transport.paths.count(CREATE) == 1
        assert [o.order_link_id for o in await rig.rest.open_orders()] == [key]


async def test_exposure_block_set_while_an_intent_queues_refuses_it_at_send(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """A loss limit that trips while an opening intent waits must stop it; a close still goes."""
    async with open_rig(tmp_path, ttl_s=10.0) as rig:
        sent: list[str] = []
        rig.transport.before.append(
            lambda r: (
                sent.append(orjson.loads(r.content)["orderLinkId"])
                if r.url.path == CREATE
                else None
            )
        )
        price = await rig.passive_price()
        opening = rig.router.submit(make_signal(price))
        closing = rig.router.submit(make_signal(price - 10, side=Side.SELL, reduce_only=True))
        assert opening.accepted
        assert closing.accepted
        await trio.sleep(1.0)
        assert CREATE not in rig.transport.paths  # both wait for the gate
        rig.router.risk.block_exposure("daily loss 1 >= 0.5")
        await rig.reconciler.reconcile("startup")  # the gate opens
        await trio.sleep(2.0)
        assert opening.order_link_id not in rig.state.tracker
        assert rig.metric("hean_intents_rejected_total", {"reason": "loss_limit"}) == 1
        assert sent == [closing.order_link_id]


async def test_channel_full_rejects_and_counts(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path, queue_size=2, run_router=False) as rig:
        price = await rig.passive_price()
        results = [rig.router.submit(make_signal(price - i)) for i in range(3)]
        assert [r.accepted for r in results] == [True, True, False]
        assert results[2].reason is RejectReason.CHANNEL_FULL
        assert rig.metric("hean_intents_rejected_total", {"reason": "channel_full"}) == 1
        assert rig.metric("hean_channel_buffer_used", {"channel": "intents"}) == 2
        assert rig.metric("hean_channel_saturation_total", {"channel": "intents"}) == 1
        # The refused signal's fingerprint was released: the same order may be tried again later.
        assert not rig.router.submit(make_signal(price - 2)).accepted  # still full
        assert rig.metric("hean_intents_rejected_total", {"reason": "channel_full"}) == 2


async def test_stale_intent_expires_unsent(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path, ttl_s=2.0, run_router=False) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        stale = rig.router.submit(make_signal(price))
        await trio.sleep(2.5)  # queued past its TTL (the router is not running yet)
        fresh = rig.router.submit(make_signal(price - 5))
        await rig.nursery.start(rig.router.run)
        key = fresh.order_link_id
        assert key is not None
        await wait_for(lambda: rig.resting(key))
        assert rig.metric("hean_intents_expired_total", {"reason": "ttl"}) == 1
        assert stale.order_link_id not in rig.state.tracker
        assert [o.order_link_id for o in await rig.rest.open_orders()] == [key]
        assert rig.transport.paths.count(CREATE) == 1


async def test_duplicate_within_window_refused(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        assert rig.router.submit(make_signal(price)).accepted
        await trio.sleep(1.0)
        dup = rig.router.submit(make_signal(price))  # another signal id, the same order
        assert not dup.accepted
        assert dup.reason is RejectReason.DUPLICATE
        same_id = rig.router.submit(make_signal(price - 1, signal_id="sig-fixed"))
        assert same_id.accepted
        again = rig.router.submit(make_signal(price - 2, signal_id="sig-fixed"))
        assert not again.accepted
        assert again.reason is RejectReason.DUPLICATE_LINK_ID
        await trio.sleep(4.5)  # the window (5 s) has passed since the first
        assert rig.router.submit(make_signal(price)).accepted
        assert rig.metric("hean_intents_rejected_total", {"reason": "duplicate"}) == 1


async def test_journal_row_exists_before_the_venue_sees_the_request(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        seen: list[tuple[list[Any], list[Any]]] = []

        def before(request: httpx.Request) -> None:
            if request.url.path == CREATE:
                link_id = orjson.loads(request.content)["orderLinkId"]
                intents = rig.journal_rows(
                    f"SELECT order_link_id FROM intents WHERE order_link_id = '{link_id}'"
                )
                orders = rig.journal_rows(f"SELECT state FROM orders WHERE key = '{link_id}'")
                seen.append((intents, orders))

        rig.transport.before.append(before)
        price = await rig.passive_price()
        result = rig.router.submit(make_signal(price))
        key = result.order_link_id
        await wait_for(lambda: rig.resting(key))
        assert seen == [([(key,)], [("InFlight",)])]


async def test_lost_response_settled_by_query_exactly_one_order(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        # The venue processes the create, then the connection dies without an answer.
        rig.server.inject_rest_fault(RestFault(RestFaultKind.DROP, path_prefix=CREATE))
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        assert key is not None
        await wait_for(lambda: rig.resting(key))

        venue = await rig.rest.open_orders()
        assert [o.order_link_id for o in venue] == [key]  # exactly one order at the venue
        assert rig.transport.paths.count(CREATE) == 1  # never re-sent
        tracked = rig.state.tracker[key]
        assert tracked.order_id == venue[0].order_id
        assert rig.metric("hean_order_outcomes_total", {"outcome": "unknown"}) == 1
        assert rig.metric("hean_unknown_orders_resolved_total", {"result": "found"}) == 1
        assert rig.journal_rows("SELECT key, state FROM orders") == [(key, "New")]
        assert rig.journal_rows("SELECT order_link_id FROM intents") == [(key,)]


async def test_10016_and_10006_storms(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        # The create is executed, but answered 10016 (outcome unknown) ...
        rig.server.inject_rest_fault(
            RestFault(RestFaultKind.ERROR, 10016, "Server error", process=True, path_prefix=CREATE)
        )
        # ... and the queries that settle it first meet a rate-limit storm.
        rig.server.inject_rest_fault(
            RestFault(RestFaultKind.ERROR, 10006, "Too many visits!", path_prefix="/v5/order/"),
            count=6,
        )
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        assert key is not None
        await wait_for(lambda: rig.resting(key))
        assert [o.order_link_id for o in await rig.rest.open_orders()] == [key]
        assert rig.transport.paths.count(CREATE) == 1
        assert rig.metric("hean_order_outcomes_total", {"outcome": "unknown"}) == 1


async def test_110072_means_it_landed(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        signal = make_signal(price)
        decision = rig.risk.check(
            signal,
            position=rig.state.portfolio.position("BTCUSDT"),
            open_orders=[],
            mark_price=rig.state.mark_price("BTCUSDT"),
            instrument=rig.state.instruments["BTCUSDT"],
            fail_closed=False,
            now=trio.current_time(),
        )
        assert decision.intent is not None
        link_id = decision.intent.order_link_id
        # An earlier attempt (say, before a crash that lost the journal write) already landed.
        order_id, _ = await rig.rest.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            qty=decision.intent.qty,
            price=decision.intent.price,
            order_link_id=link_id,
        )
        assert rig.router.submit(signal).order_link_id == link_id
        await wait_for(lambda: rig.resting(link_id))
        assert rig.metric("hean_order_outcomes_total", {"outcome": "duplicate_link_id"}) == 1
        assert rig.state.tracker[link_id].order_id == order_id
        assert [o.order_id for o in await rig.rest.open_orders()] == [order_id]


async def test_rejected_create_is_final(tmp_path: Path, autojump_clock: Any) -> None:
    big = RiskLimits(D("10000000"), D("10000000"), 10)
    async with open_rig(tmp_path, limits=big) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price, qty="5")).order_link_id  # ~465k: no margin
        assert key is not None
        await wait_for(lambda: rig.final(key))
        tracked = rig.state.tracker[key]
        assert tracked.state is OrderState.REJECTED
        assert tracked.reject_code == 110007
        assert rig.metric("hean_order_outcomes_total", {"outcome": "rejected"}) == 1
        assert rig.journal_rows("SELECT state, final FROM orders") == [("Rejected", 1)]
        assert await rig.rest.open_orders() == []


async def test_fail_closed_refuses_new_exposure(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        rig.state.set_fail_closed("test")
        price = await rig.passive_price()
        result = rig.router.submit(make_signal(price))
        assert not result.accepted
        assert result.reason is RejectReason.FAIL_CLOSED


async def test_cancel_all_resting_confirms_by_query(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        keys = [rig.router.submit(make_signal(price - i)).order_link_id for i in range(3)]
        await wait_for(lambda: all(rig.resting(k) for k in keys))
        report = await rig.router.cancel_all_resting(timeout_s=10.0)
        assert report.complete
        assert sorted(report.confirmed) == sorted(k for k in keys if k is not None)
        assert await rig.rest.open_orders() == []
        for key in keys:
            assert key is not None
            order = rig.state.tracker[key]
            assert order.state is OrderState.CANCELLED
            assert order.last_order is not None
            assert order.last_order.order_status is OrderStatus.CANCELLED
        assert rig.metric("hean_cancel_requests_total", {"result": "ok"}) == 3


async def test_cancel_all_reports_unconfirmed_at_deadline(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        await wait_for(lambda: rig.resting(key))
        # Every cancel and query now fails: nothing can be confirmed before the deadline.
        rig.server.inject_rest_fault(
            RestFault(RestFaultKind.HTTP, http_status=503, path_prefix="/v5/order/"), count=10_000
        )
        report = await rig.router.cancel_all_resting(timeout_s=5.0)
        assert report.unconfirmed == (key,)
        assert not report.complete
        assert trio.current_time() < 1000  # bounded by timeout_s, not by the fault storm


async def test_queue_size_must_be_positive(tmp_path: Path, autojump_clock: Any) -> None:
    async with open_rig(tmp_path, run_router=False) as rig:
        with pytest.raises(ValueError, match="queue_size"):
            ExecutionRouter(rig.state, rig.rest, rig.journal, RiskGate(), queue_size=0)


# --------------------------------------------------------------------------- review regressions


async def test_create_decided_after_the_rate_limit_wait_not_before(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """A create held by the rate limiter (an IP ban here) must not leave once the gate closed."""
    async with open_rig(tmp_path, ttl_s=5.0) as rig:
        await rig.reconciler.reconcile("startup")
        sent: list[float] = []
        rig.transport.before.append(
            lambda r: sent.append(trio.current_time()) if r.url.path == CREATE else None
        )
        price = await rig.passive_price()
        rig.rest.rate_limiter.block_all(wait_s=30.0, now_s=trio.current_time())
        key = rig.router.submit(make_signal(price)).order_link_id
        await trio.sleep(1.0)
        assert key not in rig.state.tracker  # nothing journaled while it waits for a slot
        rig.state.gate.block("private stream down")
        await trio.sleep(40.0)
        assert sent == []
        assert key not in rig.state.tracker
        assert rig.metric("hean_intents_expired_total", {"reason": "gate_closed"}) == 1
        assert await rig.rest.open_orders() == []


async def test_create_held_by_the_rate_limiter_past_its_ttl_expires_unsent(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path, ttl_s=5.0) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        rig.rest.rate_limiter.block(CREATE, wait_s=30.0, now_s=trio.current_time())
        key = rig.router.submit(make_signal(price)).order_link_id
        await trio.sleep(40.0)
        assert rig.transport.paths.count(CREATE) == 0
        assert key not in rig.state.tracker
        assert rig.metric("hean_intents_expired_total", {"reason": "rate_limited"}) == 1


async def test_sent_is_stamped_when_the_create_leaves_after_a_short_rate_limit_wait(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """Within the TTL the create still goes, and the NotFound grace counts from when it left."""
    async with open_rig(tmp_path, ttl_s=5.0) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        t0 = trio.current_time()
        rig.rest.rate_limiter.block(CREATE, wait_s=2.0, now_s=t0)
        key = rig.router.submit(make_signal(price)).order_link_id
        await wait_for(lambda: rig.resting(key))
        assert key is not None
        sent_at = rig.state.tracker[key].sent_at
        assert sent_at is not None
        assert sent_at - t0 >= 2.0
        assert rig.transport.paths.count(CREATE) == 1


async def test_cancel_before_the_create_lands_is_sent_again_once_it_does(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        rig.transport.inner = DelayCreate(rig.transport.inner, 2.0)
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        assert key is not None
        await wait_for(lambda: key in rig.state.tracker)
        assert rig.state.tracker[key].state is OrderState.IN_FLIGHT
        # The strategy requotes while the create is on the wire: the venue does not know it yet.
        await rig.router.cancel_order(key)
        assert rig.metric("hean_cancel_requests_total", {"result": "not_found"}) == 1
        await trio.sleep(5.0)
        # Acked after the cancel was requested: the cancel went again and the order is gone.
        assert await rig.rest.open_orders() == []
        assert rig.metric("hean_cancel_retries_total", {"source": "acked_after_cancel"}) == 1
        await wait_for(lambda: rig.final(key))
        assert rig.state.tracker[key].state is OrderState.CANCELLED
        assert live_quotes(rig.state.tracker.non_final(), strategy="test", symbol="BTCUSDT") == []


async def test_cancel_all_resting_cancels_an_order_that_lands_after_110001(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        rig.transport.inner = DelayCreate(rig.transport.inner, 2.0)
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        await wait_for(lambda: key in rig.state.tracker)
        # Crash cleanup starts while the create is in flight (its first cancel meets 110001).
        report = await rig.router.cancel_all_resting(timeout_s=10.0)
        assert report.complete
        assert report.confirmed == (key,)
        assert await rig.rest.open_orders() == []
        assert key is not None
        assert rig.state.tracker[key].state is OrderState.CANCELLED


async def test_cancel_all_resting_resends_a_cancel_that_failed(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        await wait_for(lambda: rig.resting(key))
        # Crash cleanup uses a fresh router (not running): only cancel_all_resting can retry.
        cleanup = ExecutionRouter(rig.state, rig.rest, rig.journal, RiskGate(), metrics=rig.metrics)
        rig.server.inject_rest_fault(
            RestFault(RestFaultKind.HTTP, http_status=503, path_prefix=CANCEL), count=4
        )
        report = await cleanup.cancel_all_resting(timeout_s=10.0)
        cleanup.close()
        assert report.complete
        assert report.confirmed == (key,)
        assert report.errors == {}
        assert rig.metric("hean_cancel_retries_total", {"source": "cancel_all"}) == 1
        assert await rig.rest.open_orders() == []


async def test_failed_cancel_is_retried_until_the_order_is_gone(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        price = await rig.passive_price()
        key = rig.router.submit(make_signal(price)).order_link_id
        assert key is not None
        await wait_for(lambda: rig.resting(key))
        rig.server.inject_rest_fault(
            RestFault(RestFaultKind.HTTP, http_status=503, path_prefix=CANCEL), count=4
        )
        await rig.router.cancel_order(key)  # 4 attempts, all 503: logged, returns
        assert rig.metric("hean_cancel_requests_total", {"result": "error"}) == 1
        assert [o.order_link_id for o in await rig.rest.open_orders()] == [key]
        await trio.sleep(30.0)
        assert await rig.rest.open_orders() == []
        assert rig.metric("hean_cancel_retries_total", {"source": "still_resting"}) >= 1
        assert rig.final(key)
        assert live_quotes(rig.state.tracker.non_final(), strategy="test", symbol="BTCUSDT") == []


async def test_stop_dispatch_lets_the_create_on_the_wire_finish_and_drops_the_rest(
    tmp_path: Path, autojump_clock: Any
) -> None:
    async with open_rig(tmp_path) as rig:
        await rig.reconciler.reconcile("startup")
        rig.transport.inner = DelayCreate(rig.transport.inner, 2.0)
        price = await rig.passive_price()
        first = rig.router.submit(make_signal(price)).order_link_id
        second = rig.router.submit(make_signal(price - 1)).order_link_id
        await wait_for(lambda: first in rig.state.tracker)
        assert first is not None
        await rig.router.stop_dispatch()
        # Returned only once the create in flight was answered: its order is known.
        assert rig.state.tracker[first].state is OrderState.NEW
        assert first not in rig.state.creates_in_flight
        refused = rig.router.submit(make_signal(price - 2))
        assert refused.reason is RejectReason.ROUTER_CLOSED
        await trio.sleep(10.0)
        assert second not in rig.state.tracker
        assert rig.transport.paths.count(CREATE) == 1
        assert rig.metric("hean_intents_expired_total", {"reason": "shutdown"}) == 1


async def test_closed_router_no_longer_drives_the_gate_gauge(
    tmp_path: Path, autojump_clock: Any
) -> None:
    """One router per trading attempt: a closed one must not stay attached to the shared gate."""
    async with open_rig(tmp_path, run_router=False) as rig:
        metrics = EngineMetrics(CollectorRegistry())
        router = ExecutionRouter(rig.state, rig.rest, rig.journal, RiskGate(), metrics=metrics)

        def gauge() -> float | None:
            return metrics.registry.get_sample_value("hean_trading_gate_open")

        rig.state.gate.open()
        assert gauge() == 1
        router.close()
        router.close()  # idempotent
        rig.state.gate.block("private stream down")
        assert gauge() == 1  # detached: no longer follows the gate
