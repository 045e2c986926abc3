"""``hean run``: the root of the process's nursery tree (ARCHITECTURE §2).

::

    root nursery
    ├─ signal watcher     SIGTERM/SIGINT: first -> graceful stop, second -> hard cancel
    ├─ venue              paper mode: the embedded simulator on ephemeral loopback ports
    └─ engine             hean.engine.app.Engine (its own trading nursery inside)

The engine runs until a signal, ``--duration`` or its own failure; then it stops gracefully and a
summary is printed. Exit codes (the CLI passes them through):

* 0 — graceful stop, no resting order left, state reconciled and trusted;
* 1 — the engine crashed past its restart budget, or stopped fail-closed (a position it could
  not explain) or with orders it could not confirm cancelled;
* 130 — interrupted hard (a second signal).

The embedded venue is opened *outside* the engine, so it is still serving while the engine
cancels its orders at shutdown, and it goes last.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

import structlog
import trio

from hean.config import HeanConfig, VenueUrls, venue_urls
from hean.credentials import credentials_for
from hean.engine.app import Engine
from hean.engine.clock import WallClock, system_clock_ms
from hean.engine.journal import archive_journal
from hean.engine.signals import ShutdownControl, watch_signals
from hean.engine.status import StatusSnapshot, format_status_line, format_summary, status_fields
from hean.engine.supervisor import wait_any
from hean.engine.ws_session import default_connect_ws
from hean.exitcodes import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK
from hean.sim.serve import start_embedded

__all__ = ["run_engine"]

log = structlog.get_logger("hean.engine.main")


async def run_engine(
    cfg: HeanConfig,
    *,
    duration: float | None,
    wall_ms: WallClock = system_clock_ms,
    env: Mapping[str, str] = os.environ,
) -> int:
    """Run the engine (and, in paper mode, the embedded venue) and return the exit code."""
    failure: BaseException | None = None
    engine: Engine | None = None
    with trio.CancelScope() as hard:
        control = ShutdownControl(hard)
        async with trio.open_nursery() as root:
            await root.start(watch_signals, control)
            urls = venue_urls(cfg.venue)
            if urls is None:
                # The embedded venue starts empty on every run; the last run's journal describes
                # a venue that no longer exists, so it is set aside and a fresh one begins.
                archived = archive_journal(cfg.engine.journal_path, stamp=_stamp(wall_ms()))
                if archived is not None:
                    log.info(
                        "journal_archived",
                        path=cfg.engine.journal_path,
                        archived_to=str(archived),
                        reason="the embedded paper venue starts empty on every run",
                    )
                endpoints = await start_embedded(root, cfg, wall_ms=wall_ms)
                urls = VenueUrls(
                    endpoints.rest_url, endpoints.ws_public_url, endpoints.ws_private_url
                )
                log.info(
                    "sim_started",
                    rest_url=urls.rest,
                    ws_public_url=urls.ws_public,
                    ws_private_url=urls.ws_private,
                )
            engine = Engine(
                cfg,
                credentials_for(cfg, env),
                urls=urls,
                transport=None,
                connect_ws=default_connect_ws,
                wall_ms=wall_ms,
                on_status=_print_status if sys.stdout.isatty() else None,
            )

            async def run_it() -> None:
                nonlocal failure
                assert engine is not None
                try:
                    await engine.run()
                except Exception as exc:
                    failure = exc
                    log.error("engine_failed", error=repr(exc), exc_info=exc)

            root.start_soon(run_it)
            with trio.move_on_after(duration if duration is not None else float("inf")):
                await wait_any(control.stop, engine.finished)
            if not engine.finished.is_set():
                reason = control.reason or "duration elapsed"
                control.request_stop(reason)
                await engine.shutdown(reason)
            root.cancel_scope.cancel()

    rc = _exit_code(engine, failure, hard_cancelled=control.hard_cancelled)
    if engine is not None:
        reason = control.reason or ("engine failed" if failure is not None else "stopped")
        snapshot = engine.status()
        log.info("summary", exit_code=rc, reason=reason, **status_fields(snapshot))
        print(format_summary(snapshot, exit_code=rc, reason=reason), file=sys.stdout, flush=True)
    return rc


def _stamp(ms: int) -> str:
    """A file-name-safe UTC timestamp, e.g. ``20261121T205753Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def _print_status(snapshot: StatusSnapshot) -> None:
    """The human status line, for an operator watching a terminal (logs carry the fields)."""
    print(format_status_line(snapshot), file=sys.stdout, flush=True)


def _exit_code(
    engine: Engine | None, failure: BaseException | None, *, hard_cancelled: bool
) -> int:
    if hard_cancelled:
        return EXIT_INTERRUPTED
    if engine is None or failure is not None:
        return EXIT_FAILURE
    report = engine.shutdown_report
    if report is None or not report.clean:
        return EXIT_FAILURE
    return EXIT_OK
