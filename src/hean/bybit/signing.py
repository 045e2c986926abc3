"""Bybit v5 request signing (HMAC-SHA256 API keys). Pure: no clock, no I/O.

Bybit authenticates a REST request by an HMAC over ``timestamp + apiKey + recvWindow + payload``,
where the payload is the raw query string of a GET or the raw JSON body of a POST (docs
``v5/guide.mdx``). The server recomputes the HMAC over the bytes it *received*, so whatever we sign
must be byte-for-byte what goes on the wire; :mod:`hean.bybit.rest` therefore fixes the query/body
bytes once and signs exactly those. The private WebSocket authenticates with an HMAC over
``"GET/realtime" + expires`` (docs ``websocket/wss-authentication.mdx``).

The ``verify_*`` helpers are for the simulator, which must check signatures the way Bybit does:
over the raw bytes received, never over a re-serialisation.

RSA (self-generated) keys are out of scope: HEAN only uses system-generated HMAC keys.
"""

from __future__ import annotations

import hashlib
import hmac

from attrs import field, frozen

__all__ = [
    "WS_AUTH_PREFIX",
    "Credentials",
    "rest_sign_payload",
    "rest_signature",
    "sign_hmac",
    "verify_rest_signature",
    "verify_ws_auth",
    "ws_auth_signature",
]

#: The fixed text Bybit prepends to ``expires`` for private-WebSocket authentication.
WS_AUTH_PREFIX = "GET/realtime"


@frozen
class Credentials:
    """An API key pair. The secret never appears in ``repr``/``str`` (and so never in logs)."""

    api_key: str
    api_secret: str = field(repr=False)

    def __repr__(self) -> str:
        # Written out rather than left to attrs so that no future attrs option (or a subclass
        # adding fields) can ever put the secret back into the representation.
        return f"Credentials(api_key={self.api_key!r})"

    __str__ = __repr__


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_hmac(secret: str, message: str) -> str:
    """HMAC-SHA256 of ``message`` (UTF-8) keyed with ``secret``, as lowercase hex (Bybit's form)."""
    return _hmac_hex(secret, message.encode("utf-8"))


def rest_sign_payload(timestamp_ms: int, api_key: str, recv_window_ms: int, payload: str) -> str:
    """The exact text Bybit signs for a REST call: ``timestamp + apiKey + recvWindow + payload``.

    ``payload`` is the raw query string (GET, without the leading ``?``; ``""`` when there is none)
    or the raw JSON body text (POST). Nothing is re-encoded or sorted here: the caller passes the
    bytes it sends.
    """
    return f"{timestamp_ms}{api_key}{recv_window_ms}{payload}"


def rest_signature(
    secret: str, timestamp_ms: int, api_key: str, recv_window_ms: int, payload: str
) -> str:
    """The ``X-BAPI-SIGN`` value for one REST call."""
    return sign_hmac(secret, rest_sign_payload(timestamp_ms, api_key, recv_window_ms, payload))


def ws_auth_signature(secret: str, expires_ms: int) -> str:
    """The signature in the private-WebSocket ``auth`` op: HMAC of ``"GET/realtime" + expires``."""
    return sign_hmac(secret, f"{WS_AUTH_PREFIX}{expires_ms}")


def verify_rest_signature(
    secret: str,
    *,
    timestamp: str,
    api_key: str,
    recv_window: str,
    payload: bytes,
    signature: str,
) -> bool:
    """Server side: does ``signature`` match the request as it was received?

    Header values are taken as the strings received (``"5000"``, not ``5000``) and the payload as
    the raw bytes received, so a client that signed something other than what it sent fails here
    just as it would against Bybit. The comparison is constant-time. Bybit emits lowercase hex;
    we accept either case because hex case carries no information.
    """
    prefix = f"{timestamp}{api_key}{recv_window}".encode()
    expected = _hmac_hex(secret, prefix + payload)
    return _same_hex(expected, signature)


def verify_ws_auth(secret: str, expires_ms: int, signature: str) -> bool:
    """Server side: is ``signature`` the private-WebSocket auth signature for ``expires_ms``?"""
    return _same_hex(ws_auth_signature(secret, expires_ms), signature)


def _same_hex(expected: str, received: str) -> bool:
    # Compare as bytes: ``compare_digest`` rejects non-ASCII ``str`` with a TypeError, and a
    # client-supplied signature may contain anything.
    return hmac.compare_digest(expected.encode(), received.lower().encode("utf-8", "replace"))
