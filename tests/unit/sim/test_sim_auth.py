"""REST and private-WS authentication as the venue checks it (raw bytes, Bybit's codes)."""

from __future__ import annotations

import json

from hean.bybit.signing import rest_signature, ws_auth_signature
from hean.sim.auth import AuthFailure, AuthOk, check_rest_auth, check_ws_auth

KEY, SECRET = "key1", "sec1"
NOW = 1_767_225_600_000


def secrets(k: str) -> str | None:
    return SECRET if k == KEY else None


def hdrs(ts: int, payload: str, *, key: str = KEY, secret: str = SECRET, recv: str = "5000"):
    return {
        "x-bapi-api-key": key,
        "x-bapi-timestamp": str(ts),
        "x-bapi-recv-window": recv,
        "x-bapi-sign": rest_signature(secret, ts, key, int(recv), payload),
    }


def check(h, *, q: str = "", body: bytes = b"", method: str = "GET", now: int = NOW):
    return check_rest_auth(
        h, raw_query=q, raw_body=body, method=method, now_ms=now, secret_for=secrets
    )


def test_get_signed_over_raw_query_ok() -> None:
    q = "symbol=BTCUSDT&category=linear"  # unsorted: signed as sent
    assert check(hdrs(NOW, q), q=q) == AuthOk(KEY)


def test_post_signed_over_raw_body_never_reserialised() -> None:
    body = b'{"category": "linear",  "symbol":"BTCUSDT"}'
    assert check(hdrs(NOW, body.decode()), body=body, method="POST") == AuthOk(KEY)
    canonical = json.dumps(json.loads(body), separators=(",", ":")).encode()
    res = check(hdrs(NOW, canonical.decode()), body=body, method="POST")
    assert isinstance(res, AuthFailure)
    assert res.ret_code == 10004
    assert res.ret_msg.startswith("error sign! origin_string[")
    assert res.ret_msg == f"error sign! origin_string[{NOW}{KEY}5000{body.decode()}]"


def test_timestamp_window_edges() -> None:
    q = "category=linear"
    assert check(hdrs(NOW - 5000, q), q=q) == AuthOk(KEY)
    assert check(hdrs(NOW + 999, q), q=q) == AuthOk(KEY)
    for ts in (NOW - 5001, NOW + 1000):
        res = check(hdrs(ts, q), q=q)
        assert isinstance(res, AuthFailure)
        assert (res.http_status, res.ret_code) == (200, 10002)
        assert res.ret_msg == (
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{ts}],server_timestamp[{NOW}],recv_window[5000]"
        )
    # a larger recv window widens the past side only
    assert check(hdrs(NOW - 9000, q, recv="10000"), q=q) == AuthOk(KEY)


def test_unknown_and_missing_key() -> None:
    res = check(hdrs(NOW, "", key="nope"))
    assert res == AuthFailure(401, 10003, "API key is invalid.")
    res = check({})
    assert isinstance(res, AuthFailure)
    assert res.ret_code == 10003
    assert res.http_status == 401


def test_bad_or_missing_signature_and_timestamp() -> None:
    h = hdrs(NOW, "a=1")
    assert check(h, q="a=2").ret_code == 10004  # type: ignore[union-attr]
    h2 = dict(h)
    del h2["x-bapi-sign"]
    assert check(h2, q="a=1").ret_code == 10004  # type: ignore[union-attr]
    h3 = dict(h)
    h3["x-bapi-timestamp"] = "soon"
    assert check(h3, q="a=1").ret_code == 10002  # type: ignore[union-attr]
    h4 = hdrs(NOW, "a=1", secret="wrong")
    assert check(h4, q="a=1").ret_code == 10004  # type: ignore[union-attr]


def test_ws_auth() -> None:
    exp = NOW + 10_000
    sig = ws_auth_signature(SECRET, exp)
    ok = check_ws_auth([KEY, exp, sig], now_ms=NOW, secret_for=secrets)
    assert ok.success
    assert ok.api_key == KEY
    assert check_ws_auth([KEY, str(exp), sig], now_ms=NOW, secret_for=secrets).success
    expired = check_ws_auth(
        [KEY, NOW, ws_auth_signature(SECRET, NOW)], now_ms=NOW, secret_for=secrets
    )
    assert (expired.success, expired.ret_msg) == (False, "Params Error")
    assert not check_ws_auth(["nope", exp, sig], now_ms=NOW, secret_for=secrets).success
    bad = check_ws_auth([KEY, exp, "00" * 32], now_ms=NOW, secret_for=secrets)
    assert not bad.success
    assert bad.api_key is None
    for args in (None, [KEY, exp], [KEY, True, sig], [KEY, "x", sig], "abc", [1, exp, sig]):
        assert check_ws_auth(args, now_ms=NOW, secret_for=secrets).ret_msg == "Params Error"
