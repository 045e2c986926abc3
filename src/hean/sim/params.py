"""Request-parameter parsing for the venue's REST handlers, with Bybit's error codes and texts.

GET parameters arrive as strings (the parsed query); POST bodies as JSON values, where clients
send numbers as strings (pybit, our engine) but sometimes as JSON numbers, and booleans as JSON
booleans. Everything malformed is ``10001`` ("Request parameter error") with a Bybit-like text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

from hean.bybit.errors import BybitError, error_for

_E = TypeVar("_E", bound=StrEnum)
_LINK_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,36}")
_INT_RE = re.compile(r"-?[0-9]+")
MAX_LINK_ID = 36


def param_error(text: str) -> BybitError:
    return error_for(10001, text)


def opt_str(params: Mapping[str, Any], name: str) -> str | None:
    """A string parameter; absent or empty means "not given" (as Bybit treats ``""``)."""
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise param_error(f"params error: {name} invalid")
    return str(value)


def req_str(params: Mapping[str, Any], name: str) -> str:
    value = opt_str(params, name)
    if value is None:
        raise param_error(f"Missing some parameters that must filled in, {name}")
    return value


def opt_decimal(params: Mapping[str, Any], name: str) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise param_error(f"params error: {name} err")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise param_error(f"params error: {name} err") from None
    if not d.is_finite():
        raise param_error(f"params error: {name} err")
    return d


def opt_int(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise param_error(f"params error: {name} invalid")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return int(value)
    raise param_error(f"params error: {name} invalid")


def opt_bool(params: Mapping[str, Any], name: str) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise param_error(f"params error: {name} invalid")


def enum_param(params: Mapping[str, Any], name: str, kind: type[_E], default: _E | None) -> _E:
    value = opt_str(params, name)
    if value is None:
        if default is None:
            raise param_error(f"Missing some parameters that must filled in, {name}")
        return default
    try:
        return kind(value)
    except ValueError:
        raise param_error(f"params error: {name} invalid") from None


def require_linear(params: Mapping[str, Any]) -> None:
    """Every v5 trading/market endpoint here is ``category=linear`` only."""
    category = params.get("category")
    if category is None or category == "":
        raise param_error("params error: category is required")
    if category != "linear":
        raise param_error("Illegal category")


def limit_param(params: Mapping[str, Any], *, default: int, maximum: int) -> int:
    limit = opt_int(params, "limit")
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise param_error(f"params error: limit must be in [1, {maximum}]")
    return limit


def cursor_param(params: Mapping[str, Any]) -> int | None:
    """Our cursors are the internal sequence number of the last item of the previous page."""
    cursor = opt_str(params, "cursor")
    if cursor is None:
        return None
    if not cursor.isdigit():
        raise param_error("params error: cursor invalid")
    return int(cursor)


def valid_link_id(link_id: str) -> bool:
    return _LINK_ID_RE.fullmatch(link_id) is not None
