"""hean.logs: JSON shape, console on a TTY, redaction (nested), journald prefix, stdlib routing."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.config import LoggingConfig
from hean.logs import (
    REDACTED,
    configure_logging,
    is_sensitive_key,
    journald_priority,
    redact_secrets,
)

SECRET = "do-not-print-me-7f3a"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in ("httpx", "trio-websocket")}
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "_HeanHandler":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def setup(**kwargs: Any) -> io.StringIO:
    out = io.StringIO()
    is_tty = kwargs.pop("is_tty", False)
    configure_logging(LoggingConfig(**kwargs), stream=out, is_tty=is_tty)
    return out


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def records(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(out)]


# --------------------------------------------------------------------------------------------------
# JSON shape
# --------------------------------------------------------------------------------------------------


def test_json_line_shape() -> None:
    out = setup()
    structlog.get_logger().info("order_placed", symbol="BTCUSDT", qty=Decimal("0.001"), n=3)
    (record,) = records(out)
    assert record["event"] == "order_placed"
    assert record["level"] == "info"
    assert record["symbol"] == "BTCUSDT"
    assert record["qty"] == "0.001"  # Decimal as its exact string
    assert record["n"] == 3
    stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == UTC.utcoffset(None)


def test_one_line_per_event_even_with_newlines_in_values() -> None:
    out = setup()
    structlog.get_logger().warning("multi", text="a\nb\nc")
    assert len(lines(out)) == 1
    assert records(out)[0]["text"] == "a\nb\nc"


def test_level_filtering() -> None:
    out = setup(level="WARNING")
    log = structlog.get_logger()
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [r["event"] for r in records(out)] == ["w", "e"]


def test_contextvars_are_merged() -> None:
    out = setup()
    structlog.contextvars.bind_contextvars(component="router")
    structlog.get_logger().info("tick")
    assert records(out)[0]["component"] == "router"


def test_exception_is_structured_without_locals() -> None:
    out = setup()
    api_secret = SECRET  # a local a traceback with locals would print
    try:
        raise ValueError("bad")
    except ValueError:
        structlog.get_logger().exception("failed")
    (record,) = records(out)
    assert record["level"] == "error"
    assert record["exception"][0]["exc_type"] == "ValueError"
    assert "locals" not in record["exception"][0]["frames"][0]
    assert api_secret not in out.getvalue()


def test_unserialisable_values_fall_back_to_repr() -> None:
    out = setup()

    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    structlog.get_logger().info("x", thing=Thing(), big=2**70)
    record = records(out)[0]
    assert record["thing"] == "<thing>"
    assert record["big"] == 2**70


# --------------------------------------------------------------------------------------------------
# console / auto detection
# --------------------------------------------------------------------------------------------------


def test_auto_on_a_tty_is_the_console_renderer() -> None:
    out = setup(is_tty=True)
    structlog.get_logger().info("hello_console", k="v")
    text = out.getvalue()
    assert "hello_console" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_auto_on_a_pipe_is_json() -> None:
    out = setup(is_tty=None)  # StringIO.isatty() is False
    structlog.get_logger().info("hello")
    assert records(out)[0]["event"] == "hello"


def test_forced_json_on_a_tty() -> None:
    out = setup(is_tty=True, format="json")
    structlog.get_logger().info("hello")
    assert records(out)[0]["event"] == "hello"


def test_forced_console_without_a_tty_has_no_colour_codes() -> None:
    out = setup(is_tty=False, format="console", journald_prefix=False)
    structlog.get_logger().info("plain", api_key=SECRET)
    text = out.getvalue()
    assert "plain" in text
    assert "\x1b[" not in text
    assert SECRET not in text


# --------------------------------------------------------------------------------------------------
# redaction
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "API_KEY",
        "api_secret",
        "secret",
        "bybit_api_secret",
        "sign",
        "signature",
        "ws_auth_signature",
        "password",
        "db_password",
        "token",
        "access_token",
        "X-BAPI-SIGN",
        "X-BAPI-API-KEY",
        "x-bapi-sign",
        "Authorization",
        "private_key",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)
    out = setup()
    structlog.get_logger().info("e", **{key: SECRET})
    assert records(out)[0][key] == REDACTED
    assert SECRET not in out.getvalue()


@pytest.mark.parametrize(
    "key", ["symbol", "signal_id", "design", "tokens_left", "order_link_id", "keyword", "event"]
)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert not is_sensitive_key(key)


def test_nested_mappings_and_lists_are_redacted() -> None:
    out = setup()
    structlog.get_logger().info(
        "request",
        request={
            "path": "/v5/order/create",
            "headers": {"X-BAPI-SIGN": SECRET, "X-BAPI-TIMESTAMP": "1"},
            "attempts": [{"signature": SECRET, "n": 1}, {"n": 2}],
        },
        header_pairs=(("X-BAPI-API-KEY", SECRET), ("Content-Type", "application/json")),
    )
    record = records(out)[0]
    assert record["request"]["headers"] == {"X-BAPI-SIGN": REDACTED, "X-BAPI-TIMESTAMP": "1"}
    assert record["request"]["attempts"] == [{"signature": REDACTED, "n": 1}, {"n": 2}]
    assert record["request"]["path"] == "/v5/order/create"
    assert record["header_pairs"] == [
        ["X-BAPI-API-KEY", REDACTED],
        ["Content-Type", "application/json"],
    ]
    assert SECRET not in out.getvalue()


def test_redact_processor_directly() -> None:
    event = {"event": "x", "outer": {"inner": {"token": SECRET}}, "secret": SECRET, "n": 1}
    result = redact_secrets(None, "info", event)
    assert result == {
        "event": "x",
        "outer": {"inner": {"token": REDACTED}},
        "secret": REDACTED,
        "n": 1,
    }
    assert event["secret"] == SECRET  # the caller's dict is not mutated


def test_redaction_applies_to_bound_context() -> None:
    out = setup()
    structlog.get_logger().bind(api_key=SECRET).info("bound")
    structlog.contextvars.bind_contextvars(password=SECRET)
    structlog.get_logger().info("ctx")
    assert SECRET not in out.getvalue()
    assert [r["event"] for r in records(out)] == ["bound", "ctx"]


secret_keys = st.sampled_from(["api_key", "secret", "sign", "X-BAPI-SIGN", "password", "token"])
json_leaf = st.integers() | st.text(max_size=5)


@settings(max_examples=100, deadline=None)
@given(
    tree=st.recursive(
        st.dictionaries(secret_keys, st.just(SECRET), min_size=1, max_size=2),
        lambda children: (
            st.dictionaries(
                st.text(alphabet="abcxyz", min_size=1, max_size=4), children | json_leaf, max_size=3
            )
            | st.lists(children, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_secrets_never_survive_any_nesting(tree: Any) -> None:
    rendered = json.dumps(redact_secrets(None, "info", {"event": "e", "payload": tree}))
    assert SECRET not in rendered


# --------------------------------------------------------------------------------------------------
# journald priority prefix
# --------------------------------------------------------------------------------------------------


def test_journald_prefix_per_level() -> None:
    out = setup(level="DEBUG", journald_prefix=True)
    log = structlog.get_logger()
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    prefixes = [line[:3] for line in lines(out)]
    assert prefixes == ["<7>", "<6>", "<4>", "<3>", "<2>"]
    assert json.loads(lines(out)[1][3:])["event"] == "i"


def test_journald_prefix_on_stdlib_records() -> None:
    out = setup(journald_prefix=True)
    logging.getLogger("hean.test").error("stdlib failed")
    assert lines(out)[0].startswith('<3>{"')


def test_no_prefix_by_default() -> None:
    out = setup()
    structlog.get_logger().error("e")
    assert lines(out)[0].startswith("{")


def test_journald_priority_mapping() -> None:
    assert journald_priority("ERROR") == 3
    assert journald_priority("warning") == 4
    assert journald_priority("info") == 6
    assert journald_priority("debug") == 7
    assert journald_priority("unknown") == 6


# --------------------------------------------------------------------------------------------------
# stdlib routing
# --------------------------------------------------------------------------------------------------


def test_stdlib_logging_goes_through_structlog() -> None:
    out = setup()
    logging.getLogger("hean.somewhere").warning("disk at %d%%", 91)
    (record,) = records(out)
    assert record["event"] == "disk at 91%"
    assert record["level"] == "warning"
    assert record["logger"] == "hean.somewhere"
    assert "timestamp" in record


def test_stdlib_respects_the_configured_level() -> None:
    out = setup(level="WARNING")
    logging.getLogger("hean.x").info("hidden")
    logging.getLogger("hean.x").warning("shown")
    assert [r["event"] for r in records(out)] == ["shown"]


def test_noisy_libraries_are_held_back_even_at_debug() -> None:
    out = setup(level="DEBUG")
    logging.getLogger("httpx").info("HTTP Request: GET /v5/market/time")
    logging.getLogger("httpcore.connection").debug("connect_tcp.started")
    logging.getLogger("trio-websocket").debug("received 120 bytes")
    logging.getLogger("httpx").warning("httpx warned")
    logging.getLogger("trio-websocket").warning("unknown event")
    logging.getLogger("hypercorn.error").info("Running on http://127.0.0.1:8600")
    logging.getLogger("hean.mine").debug("ours at debug")
    events = [r["event"] for r in records(out)]
    assert events == [
        "httpx warned",
        "unknown event",
        "Running on http://127.0.0.1:8600",
        "ours at debug",
    ]


def test_stdlib_exceptions_are_structured() -> None:
    out = setup()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("hean.x").exception("stdlib crash")
    (record,) = records(out)
    assert record["event"] == "stdlib crash"
    assert record["exception"][0]["exc_type"] == "RuntimeError"


def test_reconfiguring_replaces_our_handler_only() -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    try:
        setup()
        out = setup()
        logging.getLogger("hean.x").warning("once")
        assert len(records(out)) == 1
        assert other in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(other)
