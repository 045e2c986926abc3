"""Fault plan state and the admin command language."""

from __future__ import annotations

import pytest

from hean.sim.faults import (
    Blackhole,
    ClearFaults,
    DropWebSockets,
    FaultPlan,
    InjectRest,
    PausePrivate,
    RestFault,
    RestFaultKind,
    SetFeedDelay,
    SetRestDelay,
    StreamKind,
    parse_fault_command,
)


def test_parse_commands() -> None:
    assert parse_fault_command({"action": "drop_ws"}) == DropWebSockets(StreamKind.ALL)
    assert parse_fault_command({"action": "blackhole", "stream": "private"}) == Blackhole(
        StreamKind.PRIVATE
    )
    cmd = parse_fault_command({"action": "rest_error", "ret_code": 10006, "count": 3})
    assert cmd == InjectRest(
        RestFault(RestFaultKind.ERROR, 10006, "Too many visits!", 200, False, "/v5/"), 3
    )
    cmd = parse_fault_command(
        {"action": "rest_http", "status": 502, "process": True, "path_prefix": "/v5/order/"}
    )
    assert cmd == InjectRest(RestFault(RestFaultKind.HTTP, 0, "", 502, True, "/v5/order/"), 1)
    cmd = parse_fault_command({"action": "drop_response", "path_prefix": "/v5/order/create"})
    assert isinstance(cmd, InjectRest)
    assert cmd.fault.kind is RestFaultKind.DROP
    assert cmd.fault.process
    assert parse_fault_command({"action": "delay", "ms": 250}) == SetRestDelay(250)
    assert parse_fault_command({"action": "feed_delay", "ms": 5}) == SetFeedDelay(5)
    assert parse_fault_command({"action": "pause_private"}) == PausePrivate(True)
    assert parse_fault_command({"action": "resume_private"}) == PausePrivate(False)
    assert parse_fault_command({"action": "clear"}) == ClearFaults()


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"action": "nuke"},
        {"action": "drop_ws", "stream": "both"},
        {"action": "rest_error", "count": 0},
        {"action": "rest_error", "ret_code": "10006"},
        {"action": "rest_http", "status": 200},
        {"action": "delay", "ms": -1},
        {"action": "rest_error", "process": "yes"},
        {"action": "delay", "ms": True},
    ],
)
def test_parse_rejects(obj: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_fault_command(obj)


def test_plan_consumes_matching_faults_in_order() -> None:
    plan = FaultPlan()
    a = RestFault(RestFaultKind.ERROR, 10016, "x", path_prefix="/v5/order/")
    b = RestFault(RestFaultKind.HTTP, http_status=503)
    plan.apply(InjectRest(a, 2))
    plan.apply(InjectRest(b, 1))
    assert plan.pending_rest == 3
    assert plan.take_rest_fault("/v5/market/time") == b  # a does not match market paths
    assert plan.take_rest_fault("/v5/market/time") is None
    assert plan.take_rest_fault("/v5/order/create") == a
    assert plan.take_rest_fault("/v5/order/cancel") == a
    assert plan.take_rest_fault("/v5/order/cancel") is None


def test_plan_states_and_clear() -> None:
    plan = FaultPlan()
    plan.apply(SetRestDelay(100))
    plan.apply(SetFeedDelay(7))
    plan.apply(PausePrivate(True))
    plan.apply(InjectRest(RestFault(RestFaultKind.DROP), 4))
    plan.apply(DropWebSockets())  # an action, not state
    assert plan.describe() == {
        "pending_rest_faults": 4,
        "rest_delay_ms": 100,
        "feed_delay_ms": 7,
        "private_paused": True,
    }
    plan.apply(ClearFaults())
    assert plan.describe() == {
        "pending_rest_faults": 0,
        "rest_delay_ms": 0,
        "feed_delay_ms": 0,
        "private_paused": False,
    }
    with pytest.raises(ValueError, match="count"):
        plan.inject_rest(RestFault(RestFaultKind.DROP), 0)
