"""Two-phase shutdown: the first signal stops gracefully, the second cancels hard."""

from __future__ import annotations

import os
import signal

import trio

from hean.engine.signals import ShutdownControl, watch_signals


async def test_first_request_is_graceful_and_keeps_its_reason() -> None:
    hard = trio.CancelScope()
    control = ShutdownControl(hard)
    assert control.request_stop("duration elapsed")
    assert not control.request_stop("later")
    assert control.stop.is_set()
    assert control.reason == "duration elapsed"
    assert not hard.cancel_called


async def test_second_signal_cancels_hard() -> None:
    hard = trio.CancelScope()
    control = ShutdownControl(hard)
    control.on_signal(signal.SIGTERM)
    assert control.stop.is_set()
    assert not hard.cancel_called
    control.on_signal(signal.SIGINT)
    assert hard.cancel_called
    assert control.hard_cancelled
    assert control.reason == "signal SIGTERM"
    assert control.signals_received == 2


async def test_watcher_turns_real_signals_into_the_two_phases() -> None:
    with trio.CancelScope() as hard:
        control = ShutdownControl(hard)
        async with trio.open_nursery() as nursery:
            await nursery.start(watch_signals, control)
            os.kill(os.getpid(), signal.SIGTERM)
            with trio.fail_after(5):
                await control.stop.wait()
            assert control.reason == "signal SIGTERM"
            os.kill(os.getpid(), signal.SIGINT)
            await trio.sleep_forever()  # the second signal cancels us
    assert hard.cancelled_caught
    assert control.hard_cancelled
