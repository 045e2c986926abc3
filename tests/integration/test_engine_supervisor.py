"""Supervisor: one_for_one restarts with backoff, escalation, readiness, one_for_all, cancellation.

All under trio's fake clock (``autojump_clock``), so backoff delays are exact virtual seconds.
"""

from __future__ import annotations

import random
from functools import partial

import pytest
import trio

from hean.bybit.errors import AuthError
from hean.engine.backoff import Backoff
from hean.engine.supervisor import RestartEvent, exception_leaves, one_for_all, supervise

NO_JITTER = Backoff(base_s=0.5, cap_s=4.0, multiplier=2.0, jitter=0.0)


class Boom(Exception):
    pass


class FlakyChild:
    """Fails ``failures`` times (before or after ``started()``), then runs until cancelled."""

    def __init__(self, failures: int, *, fail_after_ready: bool = False) -> None:
        self.failures = failures
        self.fail_after_ready = fail_after_ready
        self.starts: list[float] = []
        self.ready_at: list[float] = []

    async def __call__(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        self.starts.append(trio.current_time())
        attempt = len(self.starts)
        await trio.sleep(0.1)  # "connecting"
        if attempt <= self.failures and not self.fail_after_ready:
            raise Boom(f"attempt {attempt}")
        self.ready_at.append(trio.current_time())
        task_status.started()
        if attempt <= self.failures:
            await trio.sleep(1.0)
            raise Boom(f"attempt {attempt} after ready")
        await trio.sleep_forever()


async def test_restarts_with_exponential_backoff_and_reports_each_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = FlakyChild(failures=3)
    events: list[RestartEvent] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                supervise,
                child,
                name="flaky",
                max_restarts=5,
                window_s=100.0,
                backoff=NO_JITTER,
                on_restart=events.append,
            )
        )
        # Ready only once the 4th attempt called started(): 4 x 0.1 s connecting + 0.5+1+2 s.
        assert trio.current_time() == pytest.approx(0.4 + 3.5)
        nursery.cancel_scope.cancel()
    gaps = [b - a for a, b in zip(child.starts, child.starts[1:], strict=False)]
    assert gaps == pytest.approx([0.6, 1.1, 2.1])  # 0.1 s of work + 0.5, 1, 2 s of backoff
    assert [e.restarts_in_window for e in events] == [1, 2, 3]
    assert [e.delay_s for e in events] == [0.5, 1.0, 2.0]
    assert all(e.child == "flaky" for e in events)
    assert "Boom('attempt 1')" in events[0].causes


async def test_escalates_after_max_restarts_within_the_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = FlakyChild(failures=100)
    events: list[RestartEvent] = []
    with pytest.RaisesGroup(Boom, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                partial(
                    supervise,
                    child,
                    name="doomed",
                    max_restarts=2,
                    window_s=60.0,
                    backoff=NO_JITTER,
                    on_restart=events.append,
                )
            )
    assert len(child.starts) == 3  # the first run plus two restarts; the third crash escalates
    assert len(events) == 2


async def test_restarts_spread_beyond_the_window_never_escalate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = FlakyChild(failures=6, fail_after_ready=True)  # each run lives 1.1 s
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                supervise, child, name="slow-flap", max_restarts=1, window_s=1.0, backoff=NO_JITTER
            )
        )
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert len(child.starts) == 7  # six crashes, each alone in its window, then a stable run


async def test_a_child_that_was_healthy_starts_a_fresh_restart_history(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Drops of a stream that had been up for a while are new faults, not a flap: with
    ``healthy_after_s`` they never add up to an escalation; without it they do."""
    # Each run is ready for 1.0 s, then fails; five drops inside one 60 s window.
    healthy = FlakyChild(failures=5, fail_after_ready=True)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                supervise,
                healthy,
                name="long-lived",
                max_restarts=2,
                window_s=60.0,
                backoff=NO_JITTER,
                healthy_after_s=1.0,
            )
        )
        await trio.sleep(30)
        nursery.cancel_scope.cancel()
    assert len(healthy.starts) == 6  # five drops, each restarted, then a stable run

    flapping = FlakyChild(failures=5, fail_after_ready=True)
    with pytest.RaisesGroup(Boom, flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                partial(
                    supervise,
                    flapping,
                    name="flapping",
                    max_restarts=2,
                    window_s=60.0,
                    backoff=NO_JITTER,
                    healthy_after_s=5.0,  # up 1.0 s each time: never healthy
                )
            )
    assert len(flapping.starts) == 3


async def test_jitter_comes_from_the_injected_rng(autojump_clock: trio.testing.MockClock) -> None:
    async def run(seed: int) -> list[float]:
        events: list[RestartEvent] = []
        child = FlakyChild(failures=3)
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(
                    supervise,
                    child,
                    name="j",
                    max_restarts=5,
                    window_s=100.0,
                    backoff=Backoff(base_s=1.0, cap_s=10.0, jitter=1.0),
                    rng=random.Random(seed),
                    on_restart=events.append,
                )
            )
            nursery.cancel_scope.cancel()
        return [e.delay_s for e in events]

    assert await run(7) == await run(7)
    assert await run(7) != await run(8)


async def test_readiness_only_after_the_childs_own_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A stream child reconciles (on_ready) before started(); the supervisor waits for it."""
    reconciled = trio.Event()
    attempts = 0

    async def stream_child(
        *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise Boom("connect failed")
        await trio.sleep(3.0)  # reconciliation
        reconciled.set()
        task_status.started()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                supervise,
                stream_child,
                name="private",
                max_restarts=3,
                window_s=60.0,
                backoff=NO_JITTER,
            )
        )
        assert reconciled.is_set()
        assert trio.current_time() == pytest.approx(0.5 + 3.0)
        nursery.cancel_scope.cancel()


async def test_escalate_on_fatal_errors_without_restarting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = 0

    async def bad_key(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal calls
        calls += 1
        raise AuthError(10003, "API key is invalid.")

    with pytest.RaisesGroup(AuthError, flatten_subgroups=True):
        await supervise(
            bad_key,
            name="private",
            max_restarts=10,
            window_s=60.0,
            backoff=NO_JITTER,
            escalate_on=(AuthError,),
        )
    assert calls == 1


async def test_a_child_that_returns_is_not_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    calls = 0

    async def once(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        nonlocal calls
        calls += 1
        task_status.started()

    await supervise(once, name="once", max_restarts=1, window_s=1.0, backoff=NO_JITTER)
    assert calls == 1


async def test_cancellation_passes_through_untouched(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = FlakyChild(failures=0)
    events: list[RestartEvent] = []
    with trio.move_on_after(5.0) as scope:
        await supervise(
            child,
            name="c",
            max_restarts=3,
            window_s=60.0,
            backoff=NO_JITTER,
            on_restart=events.append,
        )
    assert scope.cancelled_caught
    assert len(child.starts) == 1
    assert events == []


async def test_one_for_all_crash_cancels_siblings_and_propagates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[str] = []
    order: list[str] = []

    def member(name: str, crash_at: float | None):  # type: ignore[no-untyped-def]
        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            order.append(name)
            task_status.started()
            try:
                if crash_at is None:
                    await trio.sleep_forever()
                await trio.sleep(crash_at)
                raise Boom(name)
            except trio.Cancelled:
                cancelled.append(name)
                raise

        return run

    with pytest.RaisesGroup(Boom, flatten_subgroups=True) as info:
        await one_for_all(
            [("a", member("a", None)), ("b", member("b", 2.0)), ("c", member("c", None))]
        )
    assert order == ["a", "b", "c"]  # started in order
    assert sorted(cancelled) == ["a", "c"]
    assert trio.current_time() == pytest.approx(2.0)
    assert [repr(e) for e in exception_leaves(info.value)] == ["Boom('b')"]


async def test_one_for_all_reports_ready_after_every_member(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def slow_start(delay: float):  # type: ignore[no-untyped-def]
        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            await trio.sleep(delay)
            task_status.started()
            await trio.sleep_forever()

        return run

    async with trio.open_nursery() as nursery:
        await nursery.start(one_for_all, [("x", slow_start(1.0)), ("y", slow_start(2.0))])
        assert trio.current_time() == pytest.approx(3.0)
        nursery.cancel_scope.cancel()


async def test_supervised_one_for_all_restarts_the_whole_group(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs: list[str] = []

    async def steady(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        runs.append("steady")
        task_status.started()
        await trio.sleep_forever()

    async def crashy(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        runs.append("crashy")
        task_status.started()
        if runs.count("crashy") < 3:
            await trio.sleep(1.0)
            raise Boom("crashy")
        await trio.sleep_forever()

    group = partial(one_for_all, [("steady", steady), ("crashy", crashy)])
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                supervise, group, name="trading", max_restarts=5, window_s=60.0, backoff=NO_JITTER
            )
        )
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert runs.count("steady") == 3  # the healthy sibling was restarted with the group


@pytest.mark.parametrize("kwargs", [{"max_restarts": -1}, {"window_s": 0.0}])
async def test_invalid_limits_are_refused(kwargs: dict[str, float]) -> None:
    params: dict[str, object] = {"max_restarts": 1, "window_s": 1.0, **kwargs}
    with pytest.raises(ValueError, match="must be"):
        await supervise(FlakyChild(0), name="x", backoff=NO_JITTER, **params)  # type: ignore[arg-type]
