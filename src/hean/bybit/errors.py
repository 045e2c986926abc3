"""Bybit errors, typed by what the caller must do next. Pure: no I/O.

Bybit reports failures as a ``retCode`` (HTTP 200 with a non-zero code for business errors) or
as an HTTP status (401/403/404/429/5xx, often with a non-JSON body). The engine does not care
about the exact code as much as about the *consequence*, so the classes below are cut along that
line:

============================  ================================================================
class                         what the caller must do
============================  ================================================================
``RejectedError``             the request was refused and had no effect; do not retry as is
``InsufficientBalanceError``  rejected for funds/margin (risk should know)
``ReduceOnlyError``           rejected by the reduce-only rule (position already smaller/flat)
``NotModifiedError``          an amend that changed nothing; safe to treat as success
``OrderNotFoundError``        the order is unknown or already final; query to learn its fate
``DuplicateOrderLinkIdError`` a create with a used ``orderLinkId``: the first one landed; query
``RateLimitedError``          not executed; wait until ``reset_at_ms`` (or ``wait_ms()``) and retry
``AuthError``                 not executed; credentials/permissions broken: stop trading, alert
``ClockSkewError``            not executed; resync the clock (server time) and retry
``OutcomeUnknownError``       may or may not have happened: reconcile (query) before retrying
``OrderBusyError``            the order is changing under us; re-query, then decide again
============================  ================================================================

``error_for`` maps a code (and the HTTP status) to the right class. A known ``retCode`` decides
first because it is the more specific signal; an unknown code falls back to the HTTP status, and
an unknown code on HTTP 200 is a ``RejectedError`` (Bybit answered, and said no).

Messages are sanitised on construction: Bybit's 10004 text echoes the signed ``origin_string``,
which contains our API key, so that part is redacted and never reaches a log line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "CODE_CLASSES",
    "IP_BAN_BACKOFF_MS",
    "NO_RET_CODE",
    "RATE_WINDOW_MS",
    "AuthError",
    "BybitError",
    "ClockSkewError",
    "DuplicateOrderLinkIdError",
    "InsufficientBalanceError",
    "NotModifiedError",
    "OrderBusyError",
    "OrderNotFoundError",
    "OutcomeUnknownError",
    "RateLimitedError",
    "ReduceOnlyError",
    "RejectedError",
    "error_for",
]

#: ``ret_code`` of an error that carries no Bybit ``retCode`` at all: a transport failure, a
#: timeout, or an HTTP error whose body is not a Bybit envelope. Bybit never uses this value.
NO_RET_CODE: Final = -100_000

#: Bybit's HTTP 403 "access too frequent" is an IP ban; the docs say to back off at least 10 min.
IP_BAN_BACKOFF_MS: Final = 600_000

#: UID limits are per endpoint per rolling second; with no reset header, wait one window.
RATE_WINDOW_MS: Final = 1_000

_MAX_MSG_CHARS: Final = 500
# Everything from ``origin_string[`` on is dropped: the signed text may itself contain brackets,
# so there is no reliable closing delimiter, and nothing useful follows it in Bybit's message.
_ORIGIN_STRING = re.compile(r"origin_string\[.*", re.DOTALL)


def _sanitise(ret_msg: str) -> str:
    """Redact the signed origin string (it holds the API key) and bound the length."""
    cleaned = _ORIGIN_STRING.sub("origin_string[<redacted>]", ret_msg, count=1)
    if len(cleaned) > _MAX_MSG_CHARS:
        cleaned = cleaned[:_MAX_MSG_CHARS] + "..."
    return cleaned


class BybitError(Exception):
    """Base of every failure reported by (or on the way to) Bybit.

    ``ret_code`` is Bybit's ``retCode`` (or :data:`NO_RET_CODE`), ``ret_msg`` its sanitised
    ``retMsg`` and ``http_status`` the HTTP status of the response (200 for WebSocket answers).
    """

    ret_code: int
    ret_msg: str
    http_status: int

    def __init__(self, ret_code: int, ret_msg: str, *, http_status: int = 200) -> None:
        self.ret_code = ret_code
        self.ret_msg = _sanitise(ret_msg)
        self.http_status = http_status
        super().__init__(ret_code, self.ret_msg)

    def __str__(self) -> str:
        code = "no retCode" if self.ret_code == NO_RET_CODE else f"retCode {self.ret_code}"
        if self.http_status == 200:
            http = ""
        elif self.http_status == 0:
            http = ", no HTTP response"
        else:
            http = f", HTTP {self.http_status}"
        return f"{code}{http}: {self.ret_msg}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(ret_code={self.ret_code}, ret_msg={self.ret_msg!r}, "
            f"http_status={self.http_status})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructor arguments defeat the default Exception pickling; keep errors
        # copyable (trio and test tooling sometimes copy or pickle exceptions).
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[BybitError], state: dict[str, object]) -> BybitError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, state.get("ret_code"), state.get("ret_msg"))
    return err


class RejectedError(BybitError):
    """Bybit refused the request; nothing happened. Final: retrying the same request is futile."""


class InsufficientBalanceError(RejectedError):
    """Refused for wallet balance, available balance or margin (110004/6/7/12/44/45)."""


class ReduceOnlyError(RejectedError):
    """Refused by the reduce-only rule: the position is smaller than the order, or flat."""


class NotModifiedError(RejectedError):
    """An amend that would not change the order (110025/110043/34040): treat as a no-op success."""


class OrderNotFoundError(BybitError):
    """The order does not exist or is already final (filled/cancelled).

    For a cancel this usually means a race with a fill: the order's fate must be learnt by a query
    (or the private stream), not assumed.
    """


class DuplicateOrderLinkIdError(BybitError):
    """110072: this ``orderLinkId`` was used already, i.e. an earlier attempt landed. Query it."""


class RateLimitedError(BybitError):
    """Throttled; the request was not executed. Retry after the limit resets."""

    reset_at_ms: int | None

    def __init__(
        self,
        ret_code: int,
        ret_msg: str,
        *,
        http_status: int = 200,
        reset_at_ms: int | None = None,
    ) -> None:
        super().__init__(ret_code, ret_msg, http_status=http_status)
        self.reset_at_ms = reset_at_ms

    @property
    def ip_banned(self) -> bool:
        """HTTP 403 is Bybit's IP-level ban, which lasts at least 10 minutes."""
        return self.http_status == 403

    def wait_ms(self, now_ms: int) -> int:
        """How long to wait from ``now_ms`` (exchange-clock ms) before retrying, never negative."""
        if self.ip_banned:
            reset = self.reset_at_ms if self.reset_at_ms is not None else 0
            return max(IP_BAN_BACKOFF_MS, reset - now_ms)
        if self.reset_at_ms is not None:
            return max(0, self.reset_at_ms - now_ms)
        return RATE_WINDOW_MS

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, reset_at_ms={self.reset_at_ms})"


class AuthError(BybitError):
    """Authentication or permission failure; not executed. Stop trading and alert a human."""


class ClockSkewError(AuthError):
    """10002: our timestamp is outside Bybit's recv window. Resync with server time, then retry."""


class OutcomeUnknownError(BybitError):
    """The request may or may not have taken effect (timeout, 10000/10016, HTTP 5xx/429).

    An order request that ends here must never be blindly resent: query by ``orderLinkId``
    first (a resend with the same ``orderLinkId`` is safe: 110072 then means it landed).
    """

    @classmethod
    def transport(cls, reason: str) -> OutcomeUnknownError:
        """For failures with no Bybit answer at all: connect/read errors, timeouts."""
        return cls(NO_RET_CODE, reason, http_status=0)


class OrderBusyError(OutcomeUnknownError):
    """The order is mid-change on Bybit (110079 "order is processing", 40004 "modified while
    replacing"): our request was not applied, but the order's state is in flux.

    It is an ``OutcomeUnknownError`` because the safe response is the same: re-query the order
    and only then decide whether the request is still needed.
    """


_AUTH_CODES: Final = (10003, 10004, 10005, 10007, 10010, 10027)
_CLOCK_CODES: Final = (10002, -1)
_RATE_CODES: Final = (10006, 10403, 20003)
_UNKNOWN_CODES: Final = (10000, 10016, 10019, 10429, 429)
_BUSY_CODES: Final = (110079, 40004)
_NOT_FOUND_CODES: Final = (110001, 110008, 110010)
_BALANCE_CODES: Final = (110004, 110006, 110007, 110012, 110044, 110045)
_REDUCE_ONLY_CODES: Final = (110017, 110023, 110042)
_NOT_MODIFIED_CODES: Final = (110025, 110043, 34040)
_REJECTED_CODES: Final = (
    10001,  # request parameter error (many texts: qty/price/positionIdx/...)
    10017,  # route not found: a wrong path, the request reached no handler
    10404,  # WS trade: unknown op or category
    20001,  # WS trade: repeated auth on an authenticated connection
    20006,  # WS trade: duplicate reqId
    110003,  # price out of the allowed range
    110009,  # too many stop orders
    110020,  # more than 500 active orders
    110021,  # open-interest limit
    110022,  # qty restricted
    110029,  # hedge mode unsupported
    110030,  # duplicate orderId (struck out in the docs; kept final)
    110057,  # TP/SL params on a conditional/limit order
    110064,  # amended qty <= filled qty
    110090,  # position limit
    110092,  # trigger price vs market (direction 1)
    110093,  # trigger price vs market (direction 2)
    110094,  # notional below minNotionalValue
    110120,  # price-limit band
    110121,  # price-limit band
    30208,  # price-limit band
    30209,  # price-limit band
    170134,  # spot: price decimals
    170137,  # spot: qty decimals
)


def _table() -> dict[int, type[BybitError]]:
    table: dict[int, type[BybitError]] = dict.fromkeys(_REJECTED_CODES, RejectedError)
    table.update(dict.fromkeys(_AUTH_CODES, AuthError))
    table.update(dict.fromkeys(_CLOCK_CODES, ClockSkewError))
    table.update(dict.fromkeys(_RATE_CODES, RateLimitedError))
    table.update(dict.fromkeys(_UNKNOWN_CODES, OutcomeUnknownError))
    table.update(dict.fromkeys(_BUSY_CODES, OrderBusyError))
    table.update(dict.fromkeys(_NOT_FOUND_CODES, OrderNotFoundError))
    table.update(dict.fromkeys(_BALANCE_CODES, InsufficientBalanceError))
    table.update(dict.fromkeys(_REDUCE_ONLY_CODES, ReduceOnlyError))
    table.update(dict.fromkeys(_NOT_MODIFIED_CODES, NotModifiedError))
    table[110072] = DuplicateOrderLinkIdError
    return table


#: Every ``retCode`` with a known consequence (docs ``v5/error.mdx`` and the protocol digest).
#: Codes not listed here are classified by HTTP status (see :func:`error_for`).
CODE_CLASSES: Final[Mapping[int, type[BybitError]]] = _table()


def _class_for_http(http_status: int, ret_code: int) -> type[BybitError]:
    """Classification when the code itself is unknown, from the HTTP status alone."""
    if 200 <= http_status < 300:
        # Bybit answered with a code we do not know: it said no. Without any code at all (a 2xx
        # whose body was not an envelope) we cannot tell what happened.
        return OutcomeUnknownError if ret_code == NO_RET_CODE else RejectedError
    if http_status == 401:
        return AuthError  # bad key or missing auth headers
    if http_status == 403:
        return RateLimitedError  # "access too frequent": IP ban, back off >= 10 min
    if http_status == 429 or http_status >= 500:
        return OutcomeUnknownError  # overloaded/gateway: the request may have been processed
    if 400 <= http_status < 500:
        return RejectedError  # 404 bad path, 400 malformed: refused before any handler ran
    return OutcomeUnknownError  # 0 (no response), 1xx/3xx: nothing we can trust


def error_for(
    ret_code: int,
    ret_msg: str,
    *,
    http_status: int = 200,
    reset_at_ms: int | None = None,
) -> BybitError:
    """The typed error for a Bybit answer. ``reset_at_ms`` (``X-Bapi-Limit-Reset-Timestamp``)
    is attached to rate-limit errors and ignored otherwise.

    A known ``retCode`` decides (it is Bybit's own, specific verdict); an unknown code or
    :data:`NO_RET_CODE` is classified by the HTTP status. ``retCode`` 0 with HTTP 2xx is a
    success, so asking for its error is a programming mistake (``ValueError``).
    """
    if ret_code == 0 and 200 <= http_status < 300:
        raise ValueError("retCode 0 with a 2xx status is a success, not an error")
    cls = CODE_CLASSES.get(ret_code)
    if cls is None:
        cls = _class_for_http(http_status, NO_RET_CODE if ret_code == 0 else ret_code)
    if not ret_msg:
        ret_msg = f"HTTP {http_status}" if http_status != 200 else "(empty retMsg)"
    if issubclass(cls, RateLimitedError):
        return cls(ret_code, ret_msg, http_status=http_status, reset_at_ms=reset_at_ms)
    return cls(ret_code, ret_msg, http_status=http_status)
