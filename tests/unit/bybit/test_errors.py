"""Error mapping: every code in the protocol digest (§5) lands in the class that says what to do."""

from __future__ import annotations

import copy
import pickle

import pytest

from hean.bybit.errors import (
    CODE_CLASSES,
    IP_BAN_BACKOFF_MS,
    NO_RET_CODE,
    RATE_WINDOW_MS,
    AuthError,
    BybitError,
    ClockSkewError,
    DuplicateOrderLinkIdError,
    InsufficientBalanceError,
    NotModifiedError,
    OrderBusyError,
    OrderNotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ReduceOnlyError,
    RejectedError,
    error_for,
)

# Every code listed in /work/shared/bybit-v5.md §5, with the class it must map to.
DIGEST_CODES: list[tuple[int, type[BybitError]]] = [
    # Auth
    (10002, ClockSkewError),
    (-1, ClockSkewError),
    (10003, AuthError),
    (10004, AuthError),
    (10005, AuthError),
    (10007, AuthError),
    (10010, AuthError),
    (10027, AuthError),
    (10017, RejectedError),
    # Throttling / availability
    (10006, RateLimitedError),
    (429, OutcomeUnknownError),
    (10000, OutcomeUnknownError),
    (10016, OutcomeUnknownError),
    (110079, OrderBusyError),
    (40004, OrderBusyError),
    # Parameters
    (10001, RejectedError),
    # Order lifecycle
    (110001, OrderNotFoundError),
    (110008, OrderNotFoundError),
    (110010, OrderNotFoundError),
    (110064, RejectedError),
    (110072, DuplicateOrderLinkIdError),
    (110030, RejectedError),
    # Funds / margin
    (110004, InsufficientBalanceError),
    (110045, InsufficientBalanceError),
    (110006, InsufficientBalanceError),
    (110007, InsufficientBalanceError),
    (110012, InsufficientBalanceError),
    (110044, InsufficientBalanceError),
    # Validation / limits
    (110003, RejectedError),
    (110009, RejectedError),
    (110017, ReduceOnlyError),
    (110020, RejectedError),
    (110021, RejectedError),
    (110090, RejectedError),
    (110022, RejectedError),
    (110023, ReduceOnlyError),
    (110042, ReduceOnlyError),
    (110029, RejectedError),
    (110057, RejectedError),
    (110092, RejectedError),
    (110093, RejectedError),
    (110094, RejectedError),
    (110120, RejectedError),
    (110121, RejectedError),
    (30208, RejectedError),
    (30209, RejectedError),
    (110025, NotModifiedError),
    (110043, NotModifiedError),
    (34040, NotModifiedError),
    # Precision (spot only)
    (170134, RejectedError),
    (170137, RejectedError),
    # WS trade
    (10403, RateLimitedError),
    (10404, RejectedError),
    (10429, OutcomeUnknownError),
    (10019, OutcomeUnknownError),
    (20003, RateLimitedError),
    (20006, RejectedError),
    (20001, RejectedError),
]


@pytest.mark.parametrize(("code", "cls"), DIGEST_CODES)
def test_every_digest_code_maps_to_its_class(code: int, cls: type[BybitError]) -> None:
    err = error_for(code, "some message")
    assert type(err) is cls
    assert err.ret_code == code
    assert err.ret_msg == "some message"
    assert err.http_status == 200
    assert CODE_CLASSES[code] is cls


def test_the_table_holds_nothing_beyond_the_digest() -> None:
    # Keeps CODE_CLASSES and the reviewed list in step: a new code needs a reviewed class.
    assert dict(CODE_CLASSES) == dict(DIGEST_CODES)


def test_hierarchy_encodes_the_caller_action() -> None:
    assert issubclass(ClockSkewError, AuthError)
    assert issubclass(InsufficientBalanceError, RejectedError)
    assert issubclass(ReduceOnlyError, RejectedError)
    assert issubclass(NotModifiedError, RejectedError)
    # Busy orders must be handled like unknown outcomes by code that only knows the base API.
    assert issubclass(OrderBusyError, OutcomeUnknownError)
    for cls in (OrderNotFoundError, DuplicateOrderLinkIdError, RateLimitedError, AuthError):
        assert not issubclass(cls, RejectedError)
        assert not issubclass(cls, OutcomeUnknownError)
    for mapped in {cls for _, cls in DIGEST_CODES}:
        assert issubclass(mapped, BybitError)
        assert issubclass(mapped, Exception)


# --------------------------------------------------------------------------- HTTP fallbacks


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (200, RejectedError),
        (400, RejectedError),
        (401, AuthError),
        (403, RateLimitedError),
        (404, RejectedError),
        (429, OutcomeUnknownError),
        (500, OutcomeUnknownError),
        (502, OutcomeUnknownError),
        (503, OutcomeUnknownError),
        (504, OutcomeUnknownError),
        (302, OutcomeUnknownError),
        (0, OutcomeUnknownError),
    ],
)
def test_unknown_code_is_classified_by_http_status(status: int, cls: type[BybitError]) -> None:
    err = error_for(987654, "never seen", http_status=status)
    assert type(err) is cls
    assert err.http_status == status


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (200, OutcomeUnknownError),  # a 2xx without an envelope: did it run? unknown
        (401, AuthError),
        (403, RateLimitedError),
        (404, RejectedError),
        (429, OutcomeUnknownError),
        (500, OutcomeUnknownError),
    ],
)
def test_missing_code_is_classified_by_http_status(status: int, cls: type[BybitError]) -> None:
    assert type(error_for(NO_RET_CODE, "html page", http_status=status)) is cls


def test_known_code_beats_http_status() -> None:
    assert type(error_for(10006, "Too many visits!", http_status=429)) is RateLimitedError
    assert type(error_for(10003, "API key is invalid.", http_status=401)) is AuthError
    assert type(error_for(110001, "Order does not exist", http_status=500)) is OrderNotFoundError


def test_retcode_zero_is_not_an_error_on_success_status() -> None:
    with pytest.raises(ValueError, match="success"):
        error_for(0, "OK")
    # ...but retCode 0 on an error status is classified by the status.
    assert type(error_for(0, "OK", http_status=502)) is OutcomeUnknownError


def test_empty_message_is_replaced() -> None:
    assert error_for(10001, "").ret_msg == "(empty retMsg)"
    assert error_for(NO_RET_CODE, "", http_status=503).ret_msg == "HTTP 503"


# --------------------------------------------------------------------------- rate limits


def test_rate_limited_carries_reset_time() -> None:
    err = error_for(10006, "Too many visits!", reset_at_ms=1_700_000_000_500)
    assert isinstance(err, RateLimitedError)
    assert err.reset_at_ms == 1_700_000_000_500
    assert err.wait_ms(1_700_000_000_000) == 500
    assert err.wait_ms(1_700_000_001_000) == 0
    assert not err.ip_banned


def test_rate_limited_without_reset_waits_one_window() -> None:
    err = error_for(10006, "Too many visits!")
    assert isinstance(err, RateLimitedError)
    assert err.reset_at_ms is None
    assert err.wait_ms(123) == RATE_WINDOW_MS


def test_http_403_is_an_ip_ban_of_at_least_ten_minutes() -> None:
    err = error_for(NO_RET_CODE, "access too frequent", http_status=403, reset_at_ms=10)
    assert isinstance(err, RateLimitedError)
    assert err.ip_banned
    assert err.wait_ms(0) == IP_BAN_BACKOFF_MS
    late = error_for(NO_RET_CODE, "x", http_status=403, reset_at_ms=IP_BAN_BACKOFF_MS * 3)
    assert isinstance(late, RateLimitedError)
    assert late.wait_ms(0) == IP_BAN_BACKOFF_MS * 3


def test_reset_time_is_ignored_for_other_classes() -> None:
    err = error_for(110001, "Order does not exist", reset_at_ms=5)
    assert not hasattr(err, "reset_at_ms")


# --------------------------------------------------------------------------- text, copying


def test_str_and_repr() -> None:
    err = error_for(110072, "OrderLinkedID is duplicate")
    assert str(err) == "retCode 110072: OrderLinkedID is duplicate"
    assert repr(err) == (
        "DuplicateOrderLinkIdError(ret_code=110072, "
        "ret_msg='OrderLinkedID is duplicate', http_status=200)"
    )
    err = error_for(NO_RET_CODE, "bad gateway", http_status=502)
    assert str(err) == "no retCode, HTTP 502: bad gateway"
    rl = error_for(10006, "Too many visits!", reset_at_ms=7)
    assert repr(rl).endswith("http_status=200, reset_at_ms=7)")


def test_sign_error_does_not_echo_the_signed_origin_string() -> None:
    # Bybit's 10004 text echoes timestamp + API key + recvWindow + payload.
    msg = (
        'error sign! origin_string[1700000000000MY-API-KEY5000{"category":"linear","list":["a]b"]}]'
    )
    err = error_for(10004, msg)
    for text in (str(err), repr(err), err.ret_msg, str(err.args)):
        assert "MY-API-KEY" not in text
    assert err.ret_msg == "error sign! origin_string[<redacted>]"


def test_long_messages_are_bounded() -> None:
    err = error_for(10001, "x" * 10_000)
    assert len(err.ret_msg) <= 503


@pytest.mark.parametrize(
    "err",
    [
        error_for(10006, "Too many visits!", reset_at_ms=99, http_status=200),
        error_for(110001, "Order does not exist"),
        error_for(NO_RET_CODE, "gateway", http_status=503),
        OutcomeUnknownError.transport("read timeout"),
    ],
)
def test_errors_survive_pickle_and_copy(err: BybitError) -> None:
    for clone in (pickle.loads(pickle.dumps(err)), copy.copy(err), copy.deepcopy(err)):
        assert type(clone) is type(err)
        assert repr(clone) == repr(err)
        assert str(clone) == str(err)


def test_transport_failure_constructor() -> None:
    err = OutcomeUnknownError.transport("ReadTimeout after 5 s")
    assert type(err) is OutcomeUnknownError
    assert err.ret_code == NO_RET_CODE
    assert err.http_status == 0
    assert str(err) == "no retCode, no HTTP response: ReadTimeout after 5 s"


def test_errors_can_be_raised_and_caught_by_action() -> None:
    with pytest.raises(RejectedError):
        raise error_for(110007, "ab not enough for new order")
    with pytest.raises(OutcomeUnknownError):
        raise error_for(110079, "order is processing")
