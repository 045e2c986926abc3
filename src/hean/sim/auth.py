"""Authentication checks of the embedded venue: REST headers and the private-WebSocket ``auth`` op.

Pure: no clock, no I/O. The caller passes the venue's ``now_ms`` and a lookup from API key to
secret. Bybit verifies the HMAC over the bytes it *received* (docs ``v5/guide.mdx``), so the REST
check takes the raw query string and the raw body bytes and never re-serialises anything: a client
that signs ``{"a": 1}`` but sends ``{"a":1}`` fails here exactly as it would against Bybit.

Bybit's answers (digest §2, §7):

* timestamp outside ``server_time - recv_window <= ts < server_time + 1000`` → ``10002``
  ``invalid request, please check your server timestamp or recv_window param.
  req_timestamp[..],server_timestamp[..],recv_window[..]``;
* unknown API key → ``10003`` ``API key is invalid.``;
* wrong signature → ``10004`` ``error sign! origin_string[<what the server signed>]``;
* missing auth headers → HTTP 401 (docs ``v5/error.mdx``). The body Bybit sends with that 401 is
  not documented; we send the ``10003`` envelope so a client that parses bodies on any status still
  gets a precise code.

The order of the checks (key present, key known, timestamp window, signature) is our choice: Bybit
does not document it, and a request that fails several checks is rejected whichever code wins.
Unknown keys are answered with HTTP 401 as well, which matches client reports of Bybit answering
a wrong-environment key with 401 (pybit issue #130) while the body still carries ``10003``.

The private WebSocket: ``{"op":"auth","args":[apiKey, expires, signature]}``. An ``expires`` that
is not in the future is answered ``Params Error`` (pybit issue #300); other failures are answered
with the texts below, which Bybit does not document (digest §11).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

from attrs import frozen

from hean.bybit.signing import verify_rest_signature, verify_ws_auth

__all__ = [
    "DEFAULT_RECV_WINDOW_MS",
    "AuthFailure",
    "AuthOk",
    "SecretLookup",
    "WsAuthResult",
    "check_rest_auth",
    "check_ws_auth",
]

SecretLookup = Callable[[str], str | None]
"""API key → secret, or None for an unknown key (``Venue.account_secret``)."""

#: Bybit's default when ``X-BAPI-RECV-WINDOW`` is absent.
DEFAULT_RECV_WINDOW_MS: Final = 5000
#: How far into the future a timestamp may lie (``ts < server_time + 1000``).
_FUTURE_TOLERANCE_MS: Final = 1000

_H_KEY: Final = "x-bapi-api-key"
_H_TS: Final = "x-bapi-timestamp"
_H_SIGN: Final = "x-bapi-sign"
_H_RECV: Final = "x-bapi-recv-window"

INVALID_KEY_MSG: Final = "API key is invalid."
WS_PARAMS_ERROR: Final = "Params Error"
WS_INVALID_KEY: Final = "Invalid apikey"
WS_BAD_SIGNATURE: Final = "Invalid sign"
WS_ALREADY_AUTHED: Final = "Repeat auth"


@frozen
class AuthOk:
    """The request is authentic; ``api_key`` identifies the account (Bybit's UID)."""

    api_key: str


@frozen
class AuthFailure:
    """The request is refused before it reaches the venue."""

    http_status: int
    ret_code: int
    ret_msg: str


def _timestamp_msg(req_ts: str, now_ms: int, recv_window: str) -> str:
    return (
        "invalid request, please check your server timestamp or recv_window param. "
        f"req_timestamp[{req_ts}],server_timestamp[{now_ms}],recv_window[{recv_window}]"
    )


def check_rest_auth(
    headers: Mapping[str, str],
    *,
    raw_query: str,
    raw_body: bytes,
    method: str,
    now_ms: int,
    secret_for: SecretLookup,
) -> AuthOk | AuthFailure:
    """Check one private REST request the way Bybit does.

    ``headers`` must have lower-case names (HTTP header names are case-insensitive; the shell
    normalises them). The signed payload is ``raw_query`` for GET and ``raw_body`` for anything
    else, both exactly as received.
    """
    api_key = headers.get(_H_KEY, "")
    if not api_key:
        return AuthFailure(401, 10003, INVALID_KEY_MSG)
    secret = secret_for(api_key)
    if secret is None:
        return AuthFailure(401, 10003, INVALID_KEY_MSG)

    raw_ts = headers.get(_H_TS, "")
    raw_recv = headers.get(_H_RECV, "")
    recv_text = raw_recv or str(DEFAULT_RECV_WINDOW_MS)
    try:
        ts = int(raw_ts)
        recv_window = int(recv_text)
    except ValueError:
        return AuthFailure(200, 10002, _timestamp_msg(raw_ts, now_ms, recv_text))
    if recv_window <= 0 or not (now_ms - recv_window <= ts < now_ms + _FUTURE_TOLERANCE_MS):
        return AuthFailure(200, 10002, _timestamp_msg(raw_ts, now_ms, recv_text))

    payload = raw_query.encode("utf-8") if method.upper() == "GET" else raw_body
    signature = headers.get(_H_SIGN, "")
    # The recv window enters the signed text as received: a client that sends no header signs
    # without it, which is what Bybit's own examples do when they omit it.
    if signature and verify_rest_signature(
        secret,
        timestamp=raw_ts,
        api_key=api_key,
        recv_window=raw_recv,
        payload=payload,
        signature=signature,
    ):
        return AuthOk(api_key)
    origin = f"{raw_ts}{api_key}{raw_recv}{payload.decode('utf-8', 'replace')}"
    return AuthFailure(200, 10004, f"error sign! origin_string[{origin}]")


@frozen
class WsAuthResult:
    """The answer to one private ``auth`` op: ``api_key`` is set only on success."""

    success: bool
    ret_msg: str = ""
    api_key: str | None = None


def check_ws_auth(args: object, *, now_ms: int, secret_for: SecretLookup) -> WsAuthResult:
    """Check ``args`` of a private-WebSocket ``auth`` op: ``[apiKey, expires, signature]``.

    ``expires`` may arrive as a number or a numeric string (clients send both); it must lie in
    the future of the venue clock.
    """
    if not isinstance(args, Sequence) or isinstance(args, str | bytes) or len(args) != 3:
        return WsAuthResult(False, WS_PARAMS_ERROR)
    api_key, raw_expires, signature = args
    if not isinstance(api_key, str) or not isinstance(signature, str):
        return WsAuthResult(False, WS_PARAMS_ERROR)
    if isinstance(raw_expires, bool):
        return WsAuthResult(False, WS_PARAMS_ERROR)
    if isinstance(raw_expires, int):
        expires = raw_expires
    elif isinstance(raw_expires, str) and raw_expires.isdigit():
        expires = int(raw_expires)
    else:
        return WsAuthResult(False, WS_PARAMS_ERROR)
    if expires <= now_ms:
        return WsAuthResult(False, WS_PARAMS_ERROR)
    secret = secret_for(api_key)
    if secret is None:
        return WsAuthResult(False, WS_INVALID_KEY)
    if not verify_ws_auth(secret, expires, signature):
        return WsAuthResult(False, WS_BAD_SIGNATURE)
    return WsAuthResult(True, "", api_key)
