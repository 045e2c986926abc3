"""Erlang-style supervision for trio tasks: ``supervise`` (one_for_one) and ``one_for_all``.

Trio ships no supervisor on purpose (restart policy is application code), so HEAN has this small
one. The contract of a *child* is trio's ``nursery.start`` protocol::

    async def child(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        ...connect, subscribe, reconcile...
        task_status.started()          # "ready": connected AND reconciled
        ...run until an error...

``supervise`` runs each attempt of the child in its own nursery, so a crash lands in the
supervisor (never in siblings), logs it with its cause, waits a jittered, capped exponential
backoff, and restarts it. Restarts are rate-limited: more than ``max_restarts`` within
``window_s`` escalates, i.e. re-raises the child's exception to the parent nursery, which cancels
the siblings (``one_for_all``) and, at the top, exits the process for systemd to restart.

Readiness is reported exactly once, after the child's *first* ``started()``: the parent's
``await nursery.start(supervise, ...)`` returns only when the child is really ready. After a
restart, readiness is again the child's own business (a stream is "ready" again only after it has
reconciled; its state is exported by the child itself).

Cancellation passes through untouched: only ``Exception`` is caught (``ExceptionGroup`` is an
``Exception``; a group that contains ``Cancelled`` is a ``BaseExceptionGroup`` and is not).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import structlog
import trio
from attrs import frozen

from hean.engine.backoff import Backoff

__all__ = [
    "RestartEvent",
    "exception_leaves",
    "one_for_all",
    "supervise",
    "wait_any",
]

log = structlog.get_logger("hean.engine.supervisor")


@frozen
class RestartEvent:
    """What a restart hook receives: which child, why, and what happens next."""

    child: str
    restarts_in_window: int
    delay_s: float
    causes: tuple[str, ...]  # repr() of every leaf exception


def exception_leaves(exc: BaseException) -> list[BaseException]:
    """The leaf exceptions of a (possibly nested) exception group, or ``[exc]``."""
    if isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = []
        for sub in exc.exceptions:
            leaves.extend(exception_leaves(sub))
        return leaves
    return [exc]


def _matches(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    return bool(kinds) and any(isinstance(leaf, kinds) for leaf in exception_leaves(exc))


async def supervise(
    child: Callable[..., Awaitable[None]],
    *,
    name: str,
    max_restarts: int,
    window_s: float,
    backoff: Backoff,
    rng: random.Random | None = None,
    escalate_on: Iterable[type[Exception]] = (),
    on_restart: Callable[[RestartEvent], None] | None = None,
    healthy_after_s: float | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``child`` and restart it after each crash (one_for_one); see the module docstring.

    Args:
        child: ``async def child(*, task_status)``; its ``started()`` means ready.
        name: the child's name in logs and restart events.
        max_restarts: restarts allowed within ``window_s``; one more escalates (re-raises).
        window_s: the sliding window (trio clock seconds) over which restarts are counted.
        backoff: delay policy; the attempt number is the count of recent restarts, so the delay
            grows while a child flaps and shrinks back once it stays up for a window.
        rng: jitter source (inject a seeded ``random.Random`` for reproducible tests).
        escalate_on: exception types that are never restarted (e.g. ``AuthError``: retrying bad
            credentials blindly only gets the key or the IP banned).
        on_restart: called synchronously with a :class:`RestartEvent` before each backoff sleep
            (wire a ``hean_child_restarts_total{child}`` counter or a status line here).
        healthy_after_s: a child that was ready at least this long before it failed starts a
            fresh restart history: a WebSocket that ran for minutes and then dropped is a new
            transient fault, not flapping, and must not escalate because the venue dropped it a
            few times over an hour. None: every restart counts within ``window_s``.
        task_status: ``started()`` once, after the child's first ``started()``.

    Returns when the child returns normally (a finished transient child is not restarted).
    """
    if max_restarts < 0:
        raise ValueError("max_restarts must be >= 0")
    if window_s <= 0:
        raise ValueError("window_s must be positive")
    rng = rng if rng is not None else random.Random()  # jitter, not crypto
    fatal = tuple(escalate_on)
    restarts: deque[float] = deque()
    ready_sent = False
    bound = log.bind(child=name)
    while True:
        ready_at: float | None = None
        try:
            async with trio.open_nursery() as nursery:
                # Until the child calls started() it runs under start(): its early crash is
                # raised here, and cancelling us cancels it too.
                await nursery.start(child)
                ready_at = trio.current_time()
                if not ready_sent:
                    ready_sent = True
                    task_status.started()
                bound.info("child_ready", restarts_in_window=len(restarts))
        except Exception as exc:
            causes = tuple(repr(leaf) for leaf in exception_leaves(exc))
            if _matches(exc, fatal):
                bound.error("child_escalated", reason="fatal_error", causes=causes)
                raise
            now = trio.current_time()
            if (
                healthy_after_s is not None
                and ready_at is not None
                and now - ready_at >= healthy_after_s
            ):
                restarts.clear()  # it was healthy: this is a new fault, not a flap
            restarts.append(now)
            while restarts and now - restarts[0] >= window_s:
                restarts.popleft()
            if len(restarts) > max_restarts:
                bound.error(
                    "child_escalated",
                    reason="too_many_restarts",
                    restarts_in_window=len(restarts),
                    window_s=window_s,
                    causes=causes,
                )
                raise
            delay = backoff.delay(len(restarts) - 1, rng)
            bound.warning(
                "child_restart",
                restarts_in_window=len(restarts),
                delay_s=round(delay, 3),
                causes=causes,
            )
            if on_restart is not None:
                on_restart(
                    RestartEvent(
                        child=name,
                        restarts_in_window=len(restarts),
                        delay_s=delay,
                        causes=causes,
                    )
                )
        else:
            bound.info("child_exited")
            return
        await trio.sleep(delay)


async def _named_child(
    name: str,
    child: Callable[..., Awaitable[None]],
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one member of a one_for_all group, logging which member brought the group down."""
    try:
        await child(task_status=task_status)
    except Exception as exc:
        log.error(
            "group_member_crashed",
            child=name,
            causes=[repr(leaf) for leaf in exception_leaves(exc)],
        )
        raise


async def one_for_all(
    children: Sequence[tuple[str, Callable[..., Awaitable[None]]]],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``children`` in one nursery: a crash in any of them cancels all and propagates.

    Children are started in order, each with ``nursery.start``, so a later child can rely on an
    earlier one being ready (e.g. the router starts after the private stream has reconciled).
    ``task_status.started()`` is sent when all of them are ready. To restart the whole group
    after a crash (Erlang's one_for_all restart), supervise it:
    ``supervise(partial(one_for_all, children), name="trading", ...)``.
    """
    async with trio.open_nursery() as nursery:
        for name, child in children:
            await nursery.start(_named_child, name, child)
        log.info("group_ready", children=[name for name, _ in children])
        task_status.started()


async def wait_any(*events: trio.Event) -> None:
    """Return as soon as one of ``events`` is set (the waiters are cancelled then)."""
    async with trio.open_nursery() as nursery:

        async def wait(event: trio.Event) -> None:
            await event.wait()
            nursery.cancel_scope.cancel()

        for event in events:
            nursery.start_soon(wait, event)
