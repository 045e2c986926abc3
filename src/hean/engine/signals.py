"""SIGTERM/SIGINT handling for ``hean run``: the first signal stops gracefully, a second one hard.

Trio turns SIGINT into ``KeyboardInterrupt`` and leaves SIGTERM to kill the process; neither gives
a trading engine the chance to cancel its resting orders. systemd stops a unit with SIGTERM and an
operator presses Ctrl-C, so both are caught with ``trio.open_signal_receiver`` and turned into two
phases (trio has no built-in soft cancel, python-trio/trio#147):

1. the first signal sets :attr:`ShutdownControl.stop` — the engine stops intake, cancels its
   orders, reconciles, flushes the journal and exits 0;
2. a second signal cancels the root scope (:attr:`ShutdownControl.hard`) — the operator means it;
   shielded cleanup still runs to its own bound, everything else stops now, exit code 130.

``open_signal_receiver`` works only in the main thread; elsewhere (a test harness running trio in
a worker thread) the watcher logs that signals are not handled and returns, and the engine can
still be stopped through :meth:`ShutdownControl.request_stop`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Final

import structlog
import trio

__all__ = ["DEFAULT_SIGNALS", "ShutdownControl", "watch_signals"]

log = structlog.get_logger("hean.engine.signals")

DEFAULT_SIGNALS: Final = (signal.SIGTERM, signal.SIGINT)


class ShutdownControl:
    """The two shutdown phases, shared by the signal watcher, ``--duration`` and the engine.

    ``stop`` is set by the first request (whatever its source) and never cleared; ``reason`` is
    the first request's. ``hard`` is the cancel scope a second signal cancels (the root nursery's).
    """

    def __init__(self, hard: trio.CancelScope) -> None:
        self.stop = trio.Event()
        self.hard = hard
        self.reason: str | None = None
        self.hard_cancelled = False
        self.signals_received = 0

    def request_stop(self, reason: str) -> bool:
        """Ask for a graceful stop; False if one was already requested (the reason is kept)."""
        if self.stop.is_set():
            return False
        self.reason = reason
        self.stop.set()
        return True

    def hard_cancel(self, reason: str) -> None:
        """Cancel everything now (shielded cleanup still runs to its own bound)."""
        self.hard_cancelled = True
        if self.reason is None:
            self.reason = reason
        self.stop.set()
        self.hard.cancel()

    def on_signal(self, signum: int) -> None:
        """What one received signal does: the first stops gracefully, the second hard."""
        self.signals_received += 1
        name = _signal_name(signum)
        if self.request_stop(f"signal {name}"):
            log.warning("shutdown_requested", signal=name, phase="graceful")
        else:
            log.warning("shutdown_forced", signal=name, phase="hard")
            self.hard_cancel(f"second signal {name}")


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


async def watch_signals(
    control: ShutdownControl,
    signals: Sequence[int] = DEFAULT_SIGNALS,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Feed received signals to ``control`` until cancelled. ``started()`` once installed."""
    if threading.current_thread() is not threading.main_thread():
        log.warning("signals_not_handled", reason="not the main thread")
        task_status.started()
        return
    with trio.open_signal_receiver(*signals) as received:
        task_status.started()
        async for signum in received:
            control.on_signal(signum)
