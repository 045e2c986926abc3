"""Fault injection for the embedded venue: the plan (pure state) and the admin command language.

Faults live at the transport, not in the matching engine (ARCHITECTURE §5): the venue stays a
faithful Bybit and the shell misbehaves on command, the way a network or an overloaded gateway
would. This module only holds *what* is planned; :mod:`hean.sim.server` acts on it.

REST faults apply to the next ``count`` requests whose path starts with ``path_prefix``:

* ``error`` — answer with an envelope carrying ``ret_code`` (10006, 10016, 10000, ...);
* ``http`` — answer with a bare HTTP status (502/503/504/429...);
* ``drop`` — process the request on the venue, then close the connection without replying: the
  order exists, the client never hears (the nastiest case for an order router).

``error``/``http`` faults normally refuse the request unprocessed; ``process=True`` runs it on the
venue first, so a 10016/5xx really is an unknown outcome. Stream faults (drop every WebSocket,
blackhole one side, pause private pushes) are immediate actions on the server; the plan records the
ones that are states (delays, the private pause).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

from attrs import frozen

__all__ = [
    "DEFAULT_ERROR_MSGS",
    "Blackhole",
    "ClearFaults",
    "DropWebSockets",
    "FaultCommand",
    "FaultPlan",
    "InjectRest",
    "PausePrivate",
    "RestFault",
    "RestFaultKind",
    "SetFeedDelay",
    "SetRestDelay",
    "StreamKind",
    "parse_fault_command",
]

#: Texts sent with an injected error code when the command names none. 10006 is Bybit's exact
#: text; 10000/10016 follow docs ``v5/error.mdx`` wording.
DEFAULT_ERROR_MSGS: Final[Mapping[int, str]] = {
    10000: "Server Timeout",
    10006: "Too many visits!",
    10016: "Server error",
}

_MAX_COUNT: Final = 1_000_000
_MAX_DELAY_MS: Final = 3_600_000


class StreamKind(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    ALL = "all"

    def covers(self, kind: StreamKind) -> bool:
        return self is StreamKind.ALL or self is kind


class RestFaultKind(enum.StrEnum):
    ERROR = "error"
    HTTP = "http"
    DROP = "drop"


@frozen
class RestFault:
    """One planned misbehaviour of the REST front end (see the module docstring)."""

    kind: RestFaultKind
    ret_code: int = 0
    ret_msg: str = ""
    http_status: int = 200
    process: bool = False
    path_prefix: str = "/v5/"

    def matches(self, path: str) -> bool:
        return path.startswith(self.path_prefix)


# --------------------------------------------------------------------------- commands


@frozen
class DropWebSockets:
    """Abort every WebSocket (of ``stream``) without a close frame: clients see 1006."""

    stream: StreamKind = StreamKind.ALL


@frozen
class Blackhole:
    """Existing connections of ``stream`` stop moving bytes both ways, without closing."""

    stream: StreamKind = StreamKind.ALL


@frozen
class InjectRest:
    fault: RestFault
    count: int = 1


@frozen
class SetRestDelay:
    """Extra delay before every REST response (0 clears it)."""

    ms: int


@frozen
class SetFeedDelay:
    """Extra delay on every WebSocket push (0 clears it)."""

    ms: int


@frozen
class PausePrivate:
    """While paused, private pushes are lost (never replayed, like Bybit after a disconnect)."""

    paused: bool = True


@frozen
class ClearFaults:
    """Forget every planned REST fault, delay and pause (blackholes already applied stay)."""


FaultCommand = (
    DropWebSockets
    | Blackhole
    | InjectRest
    | SetRestDelay
    | SetFeedDelay
    | PausePrivate
    | ClearFaults
)


def _int(obj: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{key} must be an integer in [{lo}, {hi}]")
    return value


def _str(obj: Mapping[str, Any], key: str, default: str) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _stream(obj: Mapping[str, Any]) -> StreamKind:
    try:
        return StreamKind(_str(obj, "stream", "all"))
    except ValueError:
        raise ValueError("stream must be one of public, private, all") from None


def parse_fault_command(obj: object) -> FaultCommand:
    """Parse one admin command (the JSON object POSTed to ``/sim/admin/fault``).

    ``{"action": ...}`` with ``drop_ws`` [stream], ``blackhole`` [stream], ``rest_error``
    ret_code [ret_msg, count, process, path_prefix], ``rest_http`` status [count, process,
    path_prefix], ``drop_response`` [count, path_prefix], ``delay`` ms, ``feed_delay`` ms,
    ``pause_private``, ``resume_private``, ``clear``. Raises ``ValueError`` with a message fit for
    the admin's answer.
    """
    if not isinstance(obj, Mapping):
        raise ValueError("a fault command is a JSON object")
    action = _str(obj, "action", "")
    count = _int(obj, "count", 1, 1, _MAX_COUNT)
    prefix = _str(obj, "path_prefix", "/v5/")
    process = obj.get("process", False)
    if not isinstance(process, bool):
        raise ValueError("process must be a boolean")
    match action:
        case "drop_ws":
            return DropWebSockets(_stream(obj))
        case "blackhole":
            return Blackhole(_stream(obj))
        case "rest_error":
            code = _int(obj, "ret_code", 10016, 1, 10**9)
            msg = _str(obj, "ret_msg", DEFAULT_ERROR_MSGS.get(code, "Server error"))
            fault = RestFault(RestFaultKind.ERROR, code, msg, 200, process, prefix)
            return InjectRest(fault, count)
        case "rest_http":
            status = _int(obj, "status", 503, 400, 599)
            return InjectRest(RestFault(RestFaultKind.HTTP, 0, "", status, process, prefix), count)
        case "drop_response":
            return InjectRest(RestFault(RestFaultKind.DROP, 0, "", 0, True, prefix), count)
        case "delay":
            return SetRestDelay(_int(obj, "ms", 0, 0, _MAX_DELAY_MS))
        case "feed_delay":
            return SetFeedDelay(_int(obj, "ms", 0, 0, _MAX_DELAY_MS))
        case "pause_private":
            return PausePrivate(True)
        case "resume_private":
            return PausePrivate(False)
        case "clear":
            return ClearFaults()
        case _:
            raise ValueError(f"unknown action {action!r}")


# --------------------------------------------------------------------------- the plan


class FaultPlan:
    """The faults currently planned. Pure state: the server consults it on every request/push."""

    def __init__(self) -> None:
        self._rest: deque[RestFault] = deque()
        self.rest_delay_ms = 0
        self.feed_delay_ms = 0
        self.private_paused = False

    def inject_rest(self, fault: RestFault, count: int = 1) -> None:
        """Plan ``fault`` for the next ``count`` matching requests (after those already planned)."""
        if count < 1:
            raise ValueError("count must be >= 1")
        self._rest.extend([fault] * count)

    def take_rest_fault(self, path: str) -> RestFault | None:
        """Consume and return the first planned fault that matches ``path``, if any."""
        for i, fault in enumerate(self._rest):
            if fault.matches(path):
                del self._rest[i]
                return fault
        return None

    @property
    def pending_rest(self) -> int:
        return len(self._rest)

    def apply(self, command: FaultCommand) -> None:
        """Record the state part of ``command`` (actions on connections are the server's job)."""
        match command:
            case InjectRest(fault=fault, count=count):
                self.inject_rest(fault, count)
            case SetRestDelay(ms=ms):
                self.rest_delay_ms = ms
            case SetFeedDelay(ms=ms):
                self.feed_delay_ms = ms
            case PausePrivate(paused=paused):
                self.private_paused = paused
            case ClearFaults():
                self._rest.clear()
                self.rest_delay_ms = 0
                self.feed_delay_ms = 0
                self.private_paused = False
            case DropWebSockets() | Blackhole():
                pass

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary, for the admin endpoint's answer and logs."""
        return {
            "pending_rest_faults": len(self._rest),
            "rest_delay_ms": self.rest_delay_ms,
            "feed_delay_ms": self.feed_delay_ms,
            "private_paused": self.private_paused,
        }
