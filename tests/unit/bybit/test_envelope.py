"""Response envelopes: success variants, business errors, HTTP failures, garbage, headers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.envelope import (
    Envelope,
    RateLimitInfo,
    envelope_bytes,
    parse_rest_response,
    rate_limit_info,
)
from hean.bybit.errors import (
    NO_RET_CODE,
    AuthError,
    BybitError,
    ClockSkewError,
    DuplicateOrderLinkIdError,
    OrderNotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
)

JSON = {"Content-Type": "application/json"}


def _body(**overrides: Any) -> bytes:
    doc: dict[str, Any] = {
        "retCode": 0,
        "retMsg": "OK",
        "result": {},
        "retExtInfo": {},
        "time": 1671017382656,
    }
    doc.update(overrides)
    return orjson.dumps(doc)


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize("msg", ["OK", "success", "SUCCESS", ""])
def test_success_ret_msg_variants(msg: str) -> None:
    env = parse_rest_response(200, JSON, _body(retMsg=msg, result={"orderId": "1"}))
    assert env == Envelope(
        ret_code=0,
        ret_msg=msg,
        result={"orderId": "1"},
        ret_ext_info={},
        time=1671017382656,
    )


def test_documented_server_time_response() -> None:
    body = (
        b'{"retCode":0,"retMsg":"OK","result":{"timeSecond":"1688639403",'
        b'"timeNano":"1688639403423213947"},"retExtInfo":{},"time":1688639403423}'
    )
    env = parse_rest_response(200, {}, body)
    assert env.result["timeNano"] == "1688639403423213947"
    assert env.time == 1688639403423
    assert env.rate_limit == RateLimitInfo()


def test_null_result_and_ext_info_become_empty_mappings() -> None:
    env = parse_rest_response(200, {}, _body(result=None, retExtInfo=None))
    assert dict(env.result) == {}
    assert dict(env.ret_ext_info) == {}


def test_missing_time_falls_back_to_timenow_header() -> None:
    body = b'{"retCode":0,"retMsg":"OK","result":{}}'
    assert parse_rest_response(200, {"Timenow": "1711001595209"}, body).time == 1711001595209
    assert parse_rest_response(200, {}, body).time == 0


def test_non_object_result_is_outcome_unknown() -> None:
    with pytest.raises(OutcomeUnknownError, match="result is list"):
        parse_rest_response(200, {}, _body(result=[1, 2]))


def test_rate_limit_headers_are_read_case_insensitively() -> None:
    for headers in (
        {
            "X-Bapi-Limit": "10",
            "X-Bapi-Limit-Status": "9",
            "X-Bapi-Limit-Reset-Timestamp": "1711001595208",
        },
        {
            "x-bapi-limit": "10",
            "x-bapi-limit-status": "9",
            "x-bapi-limit-reset-timestamp": "1711001595208",
        },
        {
            "X-BAPI-LIMIT": "10",
            "X-BAPI-LIMIT-STATUS": "9",
            "X-BAPI-LIMIT-RESET-TIMESTAMP": " 1711001595208 ",
        },
    ):
        expected = RateLimitInfo(limit=10, remaining=9, reset_at_ms=1711001595208)
        assert rate_limit_info(headers) == expected
        assert parse_rest_response(200, headers, _body()).rate_limit == expected


def test_unparseable_rate_limit_headers_are_none() -> None:
    info = rate_limit_info({"X-Bapi-Limit": "ten", "X-Bapi-Limit-Status": ""})
    assert info == RateLimitInfo(limit=None, remaining=None, reset_at_ms=None)


# --------------------------------------------------------------------------- business errors


@pytest.mark.parametrize(
    ("code", "msg", "cls"),
    [
        (10001, "params error: OrderId or orderLinkId is required", RejectedError),
        (10002, "invalid request, please check your server timestamp", ClockSkewError),
        (10003, "API key is invalid.", AuthError),
        (110001, "order not exists or too late to cancel", OrderNotFoundError),
        (110072, "OrderLinkedID is duplicate", DuplicateOrderLinkIdError),
        (10016, "Server error.", OutcomeUnknownError),
        (123456, "a code nobody documented", RejectedError),
    ],
)
def test_business_errors_raise_typed_errors(code: int, msg: str, cls: type[BybitError]) -> None:
    with pytest.raises(cls) as info:
        parse_rest_response(200, JSON, _body(retCode=code, retMsg=msg))
    assert type(info.value) is cls
    assert info.value.ret_code == code
    assert info.value.ret_msg == msg
    assert info.value.http_status == 200


def test_too_many_visits_carries_the_reset_header() -> None:
    headers = {
        "X-Bapi-Limit": "10",
        "X-Bapi-Limit-Status": "0",
        "X-Bapi-Limit-Reset-Timestamp": "1711001596000",
    }
    with pytest.raises(RateLimitedError) as info:
        parse_rest_response(200, headers, _body(retCode=10006, retMsg="Too many visits!"))
    assert info.value.reset_at_ms == 1711001596000
    assert info.value.wait_ms(1711001595400) == 600


# --------------------------------------------------------------------------- HTTP failures


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, b"", AuthError),
        (401, b"<html>401 Unauthorized</html>", AuthError),
        (403, b"<html><body>access too frequent</body></html>", RateLimitedError),
        (404, b"<html>404 Not Found</html>", RejectedError),
        (429, b"Too Many Requests", OutcomeUnknownError),
        (500, b"", OutcomeUnknownError),
        (502, b"<html>Bad Gateway</html>", OutcomeUnknownError),
        (503, b"Service Unavailable", OutcomeUnknownError),
        (504, b'{"message":"timeout"}', OutcomeUnknownError),
        (400, b"bad request", RejectedError),
    ],
)
def test_http_failures(status: int, body: bytes, cls: type[BybitError]) -> None:
    with pytest.raises(cls) as info:
        parse_rest_response(status, {"content-type": "text/html"}, body)
    assert type(info.value) is cls
    assert info.value.http_status == status
    assert info.value.ret_code == NO_RET_CODE
    assert f"HTTP {status}" in info.value.ret_msg


def test_http_403_is_an_ip_ban() -> None:
    with pytest.raises(RateLimitedError) as info:
        parse_rest_response(403, {}, b"access too frequent")
    assert info.value.ip_banned
    assert info.value.wait_ms(0) >= 600_000


def test_error_status_with_an_envelope_uses_its_code() -> None:
    with pytest.raises(AuthError) as info:
        parse_rest_response(401, JSON, _body(retCode=10003, retMsg="API key is invalid."))
    assert info.value.ret_code == 10003
    assert info.value.http_status == 401
    with pytest.raises(OutcomeUnknownError):
        parse_rest_response(429, JSON, _body(retCode=429, retMsg="system overloaded"))


def test_error_status_with_retcode_zero_trusts_the_status() -> None:
    with pytest.raises(OutcomeUnknownError) as info:
        parse_rest_response(502, JSON, _body())
    assert info.value.http_status == 502


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"<html>oops</html>",
        b"[]",
        b'"OK"',
        b"{}",
        b'{"retCode":"0","retMsg":"OK"}',
        b'{"retCode":true}',
        b'{"retCode":0,"retMsg":"OK","result":{}',  # truncated
        b"\xff\xfe",
    ],
)
def test_garbage_on_success_status_is_outcome_unknown(body: bytes) -> None:
    with pytest.raises(OutcomeUnknownError) as info:
        parse_rest_response(200, JSON, body)
    assert type(info.value) is OutcomeUnknownError
    assert info.value.ret_code == NO_RET_CODE


def test_garbage_message_is_short_and_printable() -> None:
    with pytest.raises(OutcomeUnknownError) as info:
        parse_rest_response(502, {}, b"<html>\n\n  Bad\tGateway  " + b"x" * 1000)
    assert "<html> Bad Gateway" in info.value.ret_msg
    assert len(info.value.ret_msg) < 200


# --------------------------------------------------------------------------- building


def test_envelope_bytes_exact() -> None:
    body = envelope_bytes({"orderId": "1", "orderLinkId": "L"}, time_ms=1671017382656)
    assert body == (
        b'{"retCode":0,"retMsg":"OK","result":{"orderId":"1","orderLinkId":"L"},'
        b'"retExtInfo":{},"time":1671017382656}'
    )


def test_envelope_bytes_business_error() -> None:
    body = envelope_bytes(None, ret_code=110072, ret_msg="OrderLinkedID is duplicate", time_ms=5)
    assert body == (
        b'{"retCode":110072,"retMsg":"OrderLinkedID is duplicate","result":{},'
        b'"retExtInfo":{},"time":5}'
    )
    with pytest.raises(DuplicateOrderLinkIdError):
        parse_rest_response(200, JSON, body)


def test_envelope_bytes_renders_decimals_plainly() -> None:
    body = envelope_bytes(
        {"list": [{"qty": Decimal("1E+1"), "price": Decimal("0.00000001")}]},
        time_ms=1,
        ret_ext_info={"list": [{"code": 0, "msg": "OK"}]},
    )
    doc = orjson.loads(body)
    assert doc["result"]["list"][0] == {"qty": "10", "price": "0.00000001"}
    assert doc["retExtInfo"] == {"list": [{"code": 0, "msg": "OK"}]}


def test_envelope_bytes_rejects_unencodable_values() -> None:
    with pytest.raises(TypeError):
        envelope_bytes({"x": object()}, time_ms=1)


_json_leaf = st.one_of(st.text(max_size=20), st.integers(-(2**53), 2**53), st.booleans(), st.none())
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150)
@given(
    result=st.dictionaries(st.text(max_size=10), _json, max_size=6),
    msg=st.sampled_from(["OK", "success", "SUCCESS", ""]),
    time_ms=st.integers(0, 2**45),
)
def test_parse_inverts_envelope_bytes(result: dict[str, Any], msg: str, time_ms: int) -> None:
    env = parse_rest_response(200, JSON, envelope_bytes(result, ret_msg=msg, time_ms=time_ms))
    assert env.result == result
    assert env.ret_msg == msg
    assert env.time == time_ms
    assert env.ret_code == 0


@settings(max_examples=100)
@given(code=st.integers(1, 10**7), msg=st.text(max_size=40))
def test_any_nonzero_code_on_200_raises_a_bybit_error(code: int, msg: str) -> None:
    with pytest.raises(BybitError) as info:
        parse_rest_response(200, JSON, envelope_bytes(None, ret_code=code, ret_msg=msg, time_ms=1))
    assert info.value.ret_code == code
