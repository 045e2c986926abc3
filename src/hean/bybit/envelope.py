"""Bybit v5 REST response envelope: parse (engine side) and build (simulator side). Pure.

Every v5 REST answer is ``{"retCode", "retMsg", "result", "retExtInfo", "time"}`` (docs
``v5/guide.mdx``). Success is ``retCode`` 0 whatever ``retMsg`` says (``OK``, ``success``,
``SUCCESS`` and ``""`` all occur). A business error is HTTP 200 with a non-zero ``retCode``.
Transport-level trouble shows as an HTTP status (401/403/404/429/5xx), frequently with an HTML or
empty body. :func:`parse_rest_response` turns all of that into either an :class:`Envelope` or one
of the typed errors of :mod:`hean.bybit.errors`; anything it cannot make sense of on a 2xx or 5xx is
an ``OutcomeUnknownError``, because then we cannot know whether the request took effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final

import orjson
from attrs import field, frozen

from hean.bybit.errors import NO_RET_CODE, BybitError, OutcomeUnknownError, error_for
from hean.bybit.wire import decimal_str

__all__ = [
    "LIMIT_HEADER",
    "LIMIT_RESET_HEADER",
    "LIMIT_STATUS_HEADER",
    "Envelope",
    "RateLimitInfo",
    "envelope_bytes",
    "parse_rest_response",
    "rate_limit_info",
]

LIMIT_HEADER: Final = "X-Bapi-Limit"
LIMIT_STATUS_HEADER: Final = "X-Bapi-Limit-Status"
LIMIT_RESET_HEADER: Final = "X-Bapi-Limit-Reset-Timestamp"
_TIMENOW_HEADER: Final = "timenow"

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


@frozen
class RateLimitInfo:
    """Bybit's per-endpoint rate-limit headers (docs ``v5/rate-limit/rate-limit.mdx``).

    ``limit`` is the endpoint's limit per second, ``remaining`` what is left in the current
    window, ``reset_at_ms`` when the window resets (ms; roughly "now" while not exceeded).
    ``None`` where the header is absent or unparseable (market endpoints send none).
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at_ms: int | None = None


@frozen
class Envelope:
    """A successful (``retCode`` 0) response. ``time`` is Bybit's clock in ms when it answered."""

    ret_code: int
    ret_msg: str
    result: Mapping[str, Any]
    ret_ext_info: Mapping[str, Any]
    time: int
    rate_limit: RateLimitInfo = field(factory=RateLimitInfo)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that also works for plain dicts (HTTP/2 lowercases names)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = _header(headers, name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


def rate_limit_info(headers: Mapping[str, str]) -> RateLimitInfo:
    """Read ``X-Bapi-Limit``, ``-Status`` and ``-Reset-Timestamp`` (any header-name case)."""
    return RateLimitInfo(
        limit=_int_header(headers, LIMIT_HEADER),
        remaining=_int_header(headers, LIMIT_STATUS_HEADER),
        reset_at_ms=_int_header(headers, LIMIT_RESET_HEADER),
    )


def _http_error(status: int, message: str, limits: RateLimitInfo) -> BybitError:
    return error_for(NO_RET_CODE, message, http_status=status, reset_at_ms=limits.reset_at_ms)


def _body_excerpt(body: bytes) -> str:
    # Gateways answer with HTML pages; keep a short, printable hint for the log.
    text = body[:120].decode("utf-8", "replace")
    return " ".join(text.split()) or "<empty body>"


def parse_rest_response(status: int, headers: Mapping[str, str], body: bytes) -> Envelope:
    """The :class:`Envelope` of a successful response, or raise the matching ``BybitError``.

    * 2xx and ``retCode`` 0 (any ``retMsg``): success.
    * Non-zero ``retCode`` (any status): ``error_for(retCode, ...)``; a known code decides, an
      unknown one is classified by the HTTP status.
    * Non-2xx without a usable envelope: classified by status (401 auth, 403 IP rate limit,
      404/4xx rejected, 429/5xx outcome unknown).
    * 2xx whose body is not a Bybit envelope: ``OutcomeUnknownError`` (the request may have run).
    """
    limits = rate_limit_info(headers)
    ok_status = 200 <= status < 300
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    ret_code = doc.get("retCode") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or not isinstance(ret_code, int) or isinstance(ret_code, bool):
        reason = f"no Bybit envelope in HTTP {status} response: {_body_excerpt(body)}"
        raise _http_error(status, reason, limits)
    ret_msg = doc.get("retMsg")
    ret_msg = ret_msg if isinstance(ret_msg, str) else ""
    if ret_code != 0:
        raise error_for(ret_code, ret_msg, http_status=status, reset_at_ms=limits.reset_at_ms)
    if not ok_status:
        # retCode 0 on an error status: trust the status, the body may be a cached/proxy page.
        raise _http_error(status, ret_msg or f"retCode 0 on HTTP {status}", limits)
    result = doc.get("result")
    if result is None:
        result = _EMPTY
    elif not isinstance(result, dict):
        raise OutcomeUnknownError(
            NO_RET_CODE,
            f"malformed envelope: result is {type(result).__name__}, not an object",
            http_status=status,
        )
    ext = doc.get("retExtInfo")
    ret_ext_info: Mapping[str, Any] = ext if isinstance(ext, dict) else _EMPTY
    time_ms = doc.get("time")
    if not isinstance(time_ms, int) or isinstance(time_ms, bool):
        time_ms = _int_header(headers, _TIMENOW_HEADER) or 0
    return Envelope(
        ret_code=0,
        ret_msg=ret_msg,
        result=result,
        ret_ext_info=ret_ext_info,
        time=time_ms,
        rate_limit=limits,
    )


def _json_default(obj: object) -> object:
    """orjson fallback: plain-string Decimals (Bybit's wire form) and any read-only mapping."""
    if isinstance(obj, Decimal):
        return decimal_str(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in a Bybit envelope")


def envelope_bytes(
    result: Mapping[str, Any] | None,
    *,
    ret_code: int = 0,
    ret_msg: str = "OK",
    time_ms: int,
    ret_ext_info: Mapping[str, Any] | None = None,
) -> bytes:
    """Bybit's exact envelope, for the simulator: keys in Bybit's order, compact JSON.

    ``result=None`` gives ``{}`` (what Bybit sends with business errors). Decimals are written as
    plain strings, the way Bybit sends every price and quantity.
    """
    doc = {
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": {} if result is None else result,
        "retExtInfo": {} if ret_ext_info is None else ret_ext_info,
        "time": time_ms,
    }
    return orjson.dumps(doc, default=_json_default)
