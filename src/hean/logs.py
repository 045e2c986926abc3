"""Logging setup for the entry points: structlog for our code, stdlib logging routed through it.

One call, :func:`configure_logging`, at the entry point decides the output:

* JSON lines (orjson) when the stream is not a TTY, so journald, Loki or ``jq`` can read them;
* structlog's ``ConsoleRenderer`` on a TTY, for people;
* optionally a ``<N>`` syslog-priority prefix per line, so that with systemd's default
  ``SyslogLevelPrefix=yes`` ``journalctl -p err`` shows only errors.

Every line, from structlog or from a stdlib logger (httpx, hypercorn, trio-websocket), passes the
same :func:`redact_secrets` processor, which replaces the value of any key that looks like a
credential (``api_key``, ``secret``, ``sign``, ``X-BAPI-SIGN`` ...) with ``"***"``, nested too.

Use the sync methods only (``log.info``); structlog's async ones (``ainfo``) need asyncio and fail
under trio.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TextIO

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from hean.config import LoggingConfig

__all__ = [
    "LIBRARY_LEVEL_FLOORS",
    "REDACTED",
    "configure_logging",
    "is_sensitive_key",
    "journald_priority",
    "redact_secrets",
]

REDACTED: Final = "***"

# Keys whose *values* are never logged. Matched case-insensitively after "-" and " " become "_",
# so "X-BAPI-SIGN" is caught as "x_bapi_sign".
_SENSITIVE_KEYS: Final = frozenset(
    {
        "sign",
        "signature",
        "secret",
        "token",
        "password",
        "passwd",
        "passphrase",
        "authorization",
        "cookie",
        "set_cookie",
        "x_bapi_sign",
        "x_bapi_api_key",
        "api_key",
        "apikey",
        "api_secret",
        "private_key",
    }
)
# Any key containing one of these is sensitive too (bybit_api_secret, ws_auth_signature, ...).
_SENSITIVE_PARTS: Final = (
    "secret",
    "password",
    "passwd",
    "passphrase",
    "signature",
    "api_key",
    "apikey",
    "private_key",
)
# ...and any key ending in one of these (access_token, req_sign) without catching "tokens_left".
_SENSITIVE_SUFFIXES: Final = ("_token", "_sign")

_MAX_DEPTH: Final = 8  # deeper structures are not walked (and cannot hide a cycle from us)

#: The least severe level each noisy library may log at. trio-websocket logs every frame at DEBUG;
#: httpx/httpcore log every request at INFO/DEBUG (the engine logs requests itself).
LIBRARY_LEVEL_FLOORS: Final[Mapping[str, int]] = {
    "trio-websocket": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "hypercorn": logging.INFO,
    "hypercorn.error": logging.INFO,
    "hypercorn.access": logging.INFO,
}

# syslog priorities (sd-daemon(3)): 2 crit, 3 err, 4 warning, 5 notice, 6 info, 7 debug.
_PRIORITIES: Final[Mapping[str, int]] = {
    "critical": 2,
    "exception": 3,
    "error": 3,
    "warning": 4,
    "warn": 4,
    "info": 6,
    "debug": 7,
    "notset": 7,
}


def is_sensitive_key(key: object) -> bool:
    """Whether the value stored under ``key`` must never be logged."""
    if not isinstance(key, str):
        return False
    norm = key.strip().lower().replace("-", "_").replace(" ", "_")
    return (
        norm in _SENSITIVE_KEYS
        or any(part in norm for part in _SENSITIVE_PARTS)
        or norm.endswith(_SENSITIVE_SUFFIXES)
    )


def _redact(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_sensitive_key(k) else _redact(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        # A header list such as (("X-BAPI-SIGN", "..."), ...) is a sequence of name/value pairs.
        if len(value) == 2 and is_sensitive_key(value[0]):
            return (value[0], REDACTED)
        return [_redact(v, depth + 1) for v in value]
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace the values of credential-like keys with ``"***"``.

    Walks nested mappings and lists (a signed request's header pairs included). It cannot know
    what a free-text message contains, so never format a secret into the event text.
    """
    return {k: REDACTED if is_sensitive_key(k) else _redact(v, 1) for k, v in event_dict.items()}


def journald_priority(level: str) -> int:
    """The syslog priority for a structlog level name (info when unknown)."""
    return _PRIORITIES.get(level.lower(), 6)


_Renderer = Callable[[WrappedLogger, str, EventDict], str | bytes]


class _JournaldPrefixed:
    """Wraps a renderer and puts ``<N>`` before its output (journald's ``SyslogLevelPrefix``)."""

    def __init__(self, renderer: _Renderer) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        level = str(event_dict.get("level", method))
        line = self._renderer(logger, method, event_dict)
        if isinstance(line, bytes):
            line = line.decode()
        return f"<{journald_priority(level)}>{line}"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)  # exact, as Bybit writes it
    structlog_repr = getattr(obj, "__structlog__", None)
    if callable(structlog_repr):
        return structlog_repr()
    return repr(obj)


def _dumps(obj: Any, **_kw: Any) -> str:
    try:
        return orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        # orjson refuses e.g. integers beyond 64 bits; a log call must not raise because of that.
        return json.dumps(obj, default=_json_default, ensure_ascii=False)


def _detect_tty(stream: TextIO, is_tty: bool | None) -> bool:
    if is_tty is not None:
        return is_tty
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed or detached stream is not a terminal
        return False


class _HeanHandler(logging.StreamHandler[TextIO]):
    """Our stdlib handler; a distinct type so a second configure call replaces only ours."""


def configure_logging(
    cfg: LoggingConfig,
    *,
    stream: TextIO | None = None,
    is_tty: bool | None = None,
    cache_loggers: bool = False,
) -> None:
    """Configure structlog and stdlib logging once, at the entry point.

    ``stream`` defaults to ``sys.stdout`` as it is at call time (systemd sends it to the journal).
    ``is_tty`` overrides the terminal detection of ``stream`` for ``format = "auto"``.
    ``cache_loggers`` makes loggers faster (structlog caches them on first use) but freezes them
    to this configuration; the CLI turns it on, tests leave it off so they can reconfigure.
    """
    if stream is None:
        stream = sys.stdout
    level = logging.getLevelNamesMapping()[cfg.level]
    tty = _detect_tty(stream, is_tty)
    console = cfg.format == "console" or (cfg.format == "auto" and tty)

    renderer: _Renderer
    tail: list[Processor]
    if console:
        renderer = structlog.dev.ConsoleRenderer(
            colors=tty,  # no escape codes in a file, even when console format is forced
            # Plain tracebacks: rich/better-exceptions would print local variables (secrets).
            exception_formatter=structlog.dev.plain_traceback,
        )
        tail = []
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        # Structured tracebacks, without local variables: a frame's locals may hold a secret.
        tail = [structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))]
    if cfg.journald_prefix:
        renderer = _JournaldPrefixed(renderer)

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        timestamper,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            redact_secrets,
            *tail,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=cache_loggers,
        context_class=dict,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_secrets,
            *tail,
            renderer,
        ],
    )
    handler = _HeanHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _HeanHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name, floor in LIBRARY_LEVEL_FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, level))
