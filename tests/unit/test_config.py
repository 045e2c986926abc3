"""hean.config: shipped files load, every rule gives one exact line, unknown keys never pass."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.config import (
    LIVE_URLS,
    TESTNET_URLS,
    ConfigError,
    HeanConfig,
    SimConfig,
    VenueConfig,
    VenueUrls,
    default_config,
    load_config,
    load_config_or_default,
    structure_config,
    validate_config,
    validate_sim,
    venue_urls,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"


def error_of(toml_text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        structure_config(tomllib.loads(toml_text))
    return info.value


# --------------------------------------------------------------------------------------------------
# shipped files and defaults
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode"),
    [("paper.toml", "paper"), ("testnet.toml", "testnet"), ("live.toml.example", "live")],
)
def test_shipped_configs_load(name: str, mode: str) -> None:
    cfg = load_config(CONFIGS / name)
    assert cfg.venue.mode == mode
    assert cfg.engine.symbols == ("BTCUSDT",)
    assert isinstance(cfg.risk.max_drawdown_pct, Decimal)


def test_paper_toml_uses_ephemeral_ports_for_the_embedded_venue() -> None:
    cfg = load_config(CONFIGS / "paper.toml")
    assert (cfg.sim.rest_port, cfg.sim.ws_port) == (0, 0)
    assert venue_urls(cfg.venue) is None


def test_live_example_is_conservative() -> None:
    cfg = load_config(CONFIGS / "live.toml.example")
    assert cfg.risk.max_order_notional_usdt <= Decimal("100")
    assert cfg.logging.journald_prefix is True
    assert cfg.logging.format == "json"


def test_default_config_matches_schema_defaults() -> None:
    cfg = default_config()
    assert cfg == HeanConfig()
    assert cfg.venue.mode == "paper"
    assert cfg.sim.symbols == ("BTCUSDT", "ETHUSDT")
    assert cfg.sim.maker_fee_rate == Decimal("0.0002")
    assert cfg.engine.intent_queue_size == 64
    assert cfg.ops.port is None


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert load_config(path) == default_config()


def test_values_are_frozen() -> None:
    cfg = default_config()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.risk.max_drawdown_pct = Decimal(50)  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# structuring: Decimal, tuples, optional values
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "expected"),
    [('"0.0002"', "0.0002"), ("0.0002", "0.0002"), ("0", "0"), ("-0.00025", "-0.00025")],
)
def test_decimal_from_string_or_number_is_exact(literal: str, expected: str) -> None:
    cfg = structure_config(tomllib.loads(f"[sim]\nmaker_fee_rate = {literal}"))
    assert cfg.sim.maker_fee_rate == Decimal(expected)
    assert str(cfg.sim.maker_fee_rate) == expected


def test_integer_accepted_for_float_and_decimal() -> None:
    cfg = structure_config(
        tomllib.loads("[engine]\nintent_ttl_s = 3\n[risk]\ndaily_loss_limit_usdt = 250")
    )
    assert cfg.engine.intent_ttl_s == 3.0
    assert isinstance(cfg.engine.intent_ttl_s, float)
    assert cfg.risk.daily_loss_limit_usdt == Decimal(250)


def test_lists_become_tuples() -> None:
    cfg = structure_config(tomllib.loads('[sim]\nsymbols = ["SOLUSDT", "BTCUSDT"]'))
    assert cfg.sim.symbols == ("SOLUSDT", "BTCUSDT")


def test_optional_port_and_urls() -> None:
    cfg = structure_config(
        tomllib.loads(
            '[ops]\nport = 9100\n[venue]\nrest_url = "http://127.0.0.1:8600"\n'
            'ws_public_url = "ws://127.0.0.1:8601/v5/public/linear"\n'
            'ws_private_url = "ws://127.0.0.1:8601/v5/private"'
        )
    )
    assert cfg.ops.port == 9100
    assert venue_urls(cfg.venue) == VenueUrls(
        "http://127.0.0.1:8600",
        "ws://127.0.0.1:8601/v5/public/linear",
        "ws://127.0.0.1:8601/v5/private",
    )


def test_venue_urls_default_per_mode() -> None:
    assert venue_urls(VenueConfig(mode="testnet")) == TESTNET_URLS
    assert venue_urls(VenueConfig(mode="live")) == LIVE_URLS
    custom = venue_urls(VenueConfig(mode="live", rest_url="https://api.bytick.com"))
    assert custom == attrs.evolve(LIVE_URLS, rest="https://api.bytick.com")


# --------------------------------------------------------------------------------------------------
# every rule: exact one-line messages
# --------------------------------------------------------------------------------------------------

RULE_CASES: list[tuple[str, str]] = [
    # ranges
    ("[risk]\nmax_drawdown_pct = 150", "risk.max_drawdown_pct: must be in (0, 100], got 150"),
    ("[risk]\nmax_drawdown_pct = 0", "risk.max_drawdown_pct: must be in (0, 100], got 0"),
    ('[risk]\nmax_drawdown_pct = "-1"', "risk.max_drawdown_pct: must be in (0, 100], got -1"),
    ("[sim]\nrest_port = 70000", "sim.rest_port: must be a TCP port in [0, 65535], got 70000"),
    ("[sim]\nws_port = -1", "sim.ws_port: must be a TCP port in [0, 65535], got -1"),
    ("[ops]\nport = 65536", "ops.port: must be a TCP port in [0, 65535], got 65536"),
    ("[engine]\nintent_ttl_s = 0", "engine.intent_ttl_s: must be > 0, got 0.0"),
    ("[engine]\nrequest_timeout_s = -2.5", "engine.request_timeout_s: must be > 0, got -2.5"),
    ("[engine]\nintent_queue_size = 0", "engine.intent_queue_size: must be >= 1, got 0"),
    ("[engine]\nmax_restarts = -1", "engine.max_restarts: must be >= 0, got -1"),
    (
        "[sim]\nmaker_fee_rate = 0.5",
        "sim.maker_fee_rate: must be in (-0.01, 0.01), got 0.5",
    ),
    (
        '[sim]\ntaker_fee_rate = "-0.01"',
        "sim.taker_fee_rate: must be in (-0.01, 0.01), got -0.01",
    ),
    ("[sim]\nvolatility = 11", "sim.volatility: must be in [0, 10], got 11.0"),
    ("[sim]\ntick_interval_ms = 0", "sim.tick_interval_ms: must be >= 1, got 0"),
    ("[sim]\nfeed_latency_ms = -5", "sim.feed_latency_ms: must be >= 0, got -5"),
    ('[sim]\nhost = " "', 'sim.host: must not be empty, got " "'),
    ('[sim]\napi_key = ""', 'sim.api_key: must not be empty, got ""'),
    ("[sim]\ninitial_balance_usdt = 0", "sim.initial_balance_usdt: must be > 0, got 0"),
    ("[venue]\nrecv_window_ms = 0", "venue.recv_window_ms: must be in [1, 60000], got 0"),
    ("[strategy]\nquote_offset_ticks = -1", "strategy.quote_offset_ticks: must be >= 0, got -1"),
    ('[engine]\njournal_path = ""', 'engine.journal_path: must not be empty, got ""'),
    # symbols
    ("[engine]\nsymbols = []", "engine.symbols: must list at least one symbol, got []"),
    (
        '[engine]\nsymbols = ["BTCUSDT", "ethusdt"]',
        'engine.symbols[1]: expected an upper-case symbol like "BTCUSDT", got "ethusdt"',
    ),
    (
        '[sim]\nsymbols = [""]',
        'sim.symbols[0]: expected an upper-case symbol like "BTCUSDT", got ""',
    ),
    (
        '[sim]\nsymbols = ["BTC-USDT"]',
        'sim.symbols[0]: expected an upper-case symbol like "BTCUSDT", got "BTC-USDT"',
    ),
    (
        '[sim]\nsymbols = ["BTCUSDT", "BTCUSDT"]',
        'sim.symbols[1]: duplicate symbol, got "BTCUSDT"',
    ),
    (
        '[engine]\nsymbols = "BTCUSDT"',
        'engine.symbols: expected a list of symbols like ["BTCUSDT"], got "BTCUSDT"',
    ),
    # types
    (
        '[engine]\nintent_queue_size = "abc"',
        'engine.intent_queue_size: expected an integer, got "abc"',
    ),
    ("[engine]\nintent_queue_size = 5.0", "engine.intent_queue_size: expected an integer, got 5.0"),
    ("[sim]\nseed = true", "sim.seed: expected an integer, got true"),
    ('[engine]\nintent_ttl_s = "5"', 'engine.intent_ttl_s: expected a number, got "5"'),
    ("[sim]\nvolatility = nan", "sim.volatility: expected a finite number, got nan"),
    (
        "[engine]\nping_interval_s = inf",
        "engine.ping_interval_s: expected a finite number, got inf",
    ),
    (
        '[risk]\ndaily_loss_limit_usdt = "lots"',
        'risk.daily_loss_limit_usdt: expected a decimal number (a string or a number), got "lots"',
    ),
    (
        "[risk]\ndaily_loss_limit_usdt = false",
        "risk.daily_loss_limit_usdt: expected a decimal number (a string or a number), got false",
    ),
    (
        '[risk]\ndaily_loss_limit_usdt = "Infinity"',
        'risk.daily_loss_limit_usdt: expected a finite decimal number, got "Infinity"',
    ),
    ("[sim]\nhost = 127", "sim.host: expected a string, got 127"),
    ('[sim]\nadmin_enabled = "yes"', 'sim.admin_enabled: expected true or false, got "yes"'),
    ("[ops]\nport = [1]", "ops.port: expected an integer, got [1]"),
    ("[venue]\nrest_url = 1", "venue.rest_url: expected a string, got 1"),
    (
        '[venue]\nmode = "prod"',
        'venue.mode: must be one of "paper", "testnet", "live", got "prod"',
    ),
    (
        '[logging]\nlevel = "debug"',
        'logging.level: must be one of "DEBUG", "INFO", "WARNING", "ERROR", got "debug"',
    ),
    (
        '[logging]\nformat = "text"',
        'logging.format: must be one of "auto", "json", "console", got "text"',
    ),
    ('[strategy]\nname = "grid"', 'strategy.name: must be one of "demo_maker", got "grid"'),
    ("engine = 5", "engine: expected a table, got 5"),
    (
        "[sim]\nmaker_fee_rate = {a = 1}",
        "sim.maker_fee_rate: expected a decimal number (a string or a number), got a table",
    ),
    (
        "[risk]\nmax_drawdown_pct = 1979-05-27",
        "risk.max_drawdown_pct: expected a decimal number (a string or a number), got 1979-05-27",
    ),
    # mode-specific
    (
        '[venue]\nmode = "live"\n[sim]\nseed = 1',
        'sim: the [sim] section is only used in paper mode; remove it (venue.mode = "live")',
    ),
    (
        '[venue]\nmode = "testnet"\n[sim]',
        'sim: the [sim] section is only used in paper mode; remove it (venue.mode = "testnet")',
    ),
    (
        '[venue]\nmode = "live"\nrest_url = "http://api.bybit.com"',
        "venue.rest_url: must be a URL starting with https:// in live mode, "
        'got "http://api.bybit.com"',
    ),
    (
        '[venue]\nmode = "testnet"\nws_private_url = "ws://x/v5/private"',
        "venue.ws_private_url: must be a URL starting with wss:// in testnet mode, "
        'got "ws://x/v5/private"',
    ),
    (
        '[venue]\nrest_url = "ftp://127.0.0.1"',
        "venue.rest_url: must be a URL starting with http:// or https:// in paper mode, "
        'got "ftp://127.0.0.1"',
    ),
    (
        '[venue]\nrest_url = "http://127.0.0.1:8600"',
        "venue.ws_public_url: must be set together with the other venue URLs in paper mode "
        "(set all three to use an external simulator, or none for the embedded one)",
    ),
    (
        '[engine]\nsymbols = ["BTCUSDT", "XRPUSDT"]',
        "engine.symbols[1]: must be listed by the paper venue "
        '(sim.symbols = ["BTCUSDT", "ETHUSDT"]), got "XRPUSDT"',
    ),
    # across sections
    (
        "[engine]\nreconnect_base_s = 60",
        "engine.reconnect_base_s: must be <= engine.reconnect_cap_s (30.0), got 60.0",
    ),
    (
        "[risk]\nmax_order_notional_usdt = 20000",
        "risk.max_order_notional_usdt: must be <= risk.max_position_notional_usdt (10000), "
        "got 20000",
    ),
    (
        '[strategy]\norder_notional_usdt = "2500"',
        "strategy.order_notional_usdt: must be <= risk.max_order_notional_usdt (2000), got 2500",
    ),
    (
        "[strategy]\nmax_position_notional_usdt = 1e6",
        "strategy.max_position_notional_usdt: must be <= risk.max_position_notional_usdt "
        "(10000), got 1000000.0",
    ),
    (
        "[sim]\nrest_port = 9000\nws_port = 9000",
        "sim.ws_port: must differ from sim.rest_port (9000), got 9000",
    ),
]


@pytest.mark.parametrize(("toml_text", "message"), RULE_CASES)
def test_rule_message_is_exact(toml_text: str, message: str) -> None:
    err = error_of(toml_text)
    assert err.message == message
    assert str(err) == message
    assert "\n" not in message


def test_error_carries_the_dotted_key() -> None:
    assert error_of("[risk]\nmax_drawdown_pct = 150").key == "risk.max_drawdown_pct"
    assert error_of('[engine]\nsymbols = ["x"]').key == "engine.symbols[0]"


def test_ephemeral_ports_may_coincide() -> None:
    cfg = structure_config(tomllib.loads("[sim]\nrest_port = 0\nws_port = 0"))
    assert cfg.sim.rest_port == cfg.sim.ws_port == 0


def test_external_simulator_skips_the_symbol_check() -> None:
    cfg = structure_config(
        tomllib.loads(
            '[venue]\nrest_url = "http://h:1"\nws_public_url = "ws://h:2/p"\n'
            'ws_private_url = "ws://h:2/q"\n[engine]\nsymbols = ["XRPUSDT"]'
        )
    )
    assert cfg.engine.symbols == ("XRPUSDT",)


def test_live_mode_does_not_check_symbols_against_the_sim() -> None:
    cfg = structure_config(tomllib.loads('[venue]\nmode = "live"\n[engine]\nsymbols = ["XRPUSDT"]'))
    assert cfg.venue.mode == "live"


# --------------------------------------------------------------------------------------------------
# unknown keys at every level
# --------------------------------------------------------------------------------------------------


def test_unknown_top_level_key() -> None:
    assert error_of("colour = 1").message == (
        "colour: unknown key (known keys: venue, sim, engine, risk, strategy, logging, ops)"
    )


def test_unknown_key_suggests_the_close_one() -> None:
    assert error_of("[riks]\nmax_drawdown_pct = 5").message == (
        'riks: unknown key (did you mean "risk"?)'
    )
    assert error_of("[risk]\nmax_drawdown = 5").message == (
        'risk.max_drawdown: unknown key (did you mean "max_drawdown_pct"?)'
    )


@pytest.mark.parametrize(
    "section", ["venue", "sim", "engine", "risk", "strategy", "logging", "ops"]
)
def test_unknown_key_in_each_section(section: str) -> None:
    err = error_of(f"[{section}]\nzzz_unknown = 1")
    assert err.message.startswith(f"{section}.zzz_unknown: unknown key (")
    assert err.key == f"{section}.zzz_unknown"


def test_unknown_key_reported_before_type_errors_at_the_same_level() -> None:
    err = error_of('[engine]\nintent_queue_size = "x"\nintent_ttl = 5')
    assert err.message == 'engine.intent_ttl: unknown key (did you mean "intent_ttl_s"?)'


def test_unknown_key_in_a_dotted_subtable() -> None:
    err = error_of("[risk.extra]\nx = 1")
    assert err.message.startswith("risk.extra: unknown key")


# --------------------------------------------------------------------------------------------------
# files: syntax and I/O errors
# --------------------------------------------------------------------------------------------------


def test_bad_toml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[risk\nmax_drawdown_pct = 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == (
        "invalid TOML: Expected ']' at the end of a table declaration (at line 1, column 6)"
    )


def test_duplicate_key_is_a_toml_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.toml"
    path.write_text("[risk]\nmax_drawdown_pct = 5\nmax_drawdown_pct = 6\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith("invalid TOML: ")
    assert "\n" not in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.message == "cannot read config file: No such file or directory"


def test_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert info.value.message == "cannot read config file: Is a directory"


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[sim]\nhost = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message == "invalid TOML: the file is not valid UTF-8"


def test_load_config_reads_values_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[risk]\nmax_drawdown_pct = "2.5"\n[engine]\nsymbols = ["ETHUSDT"]\n')
    cfg = load_config(str(path))
    assert cfg.risk.max_drawdown_pct == Decimal("2.5")
    assert cfg.engine.symbols == ("ETHUSDT",)


# --------------------------------------------------------------------------------------------------
# default resolution for `hean run`
# --------------------------------------------------------------------------------------------------


def test_run_default_is_builtin_without_configs_dir(tmp_path: Path) -> None:
    cfg, source = load_config_or_default(None, cwd=tmp_path)
    assert cfg == default_config()
    assert source == "built-in defaults"


def test_run_default_is_paper_toml_when_present(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "paper.toml").write_text("[sim]\nseed = 99\n")
    cfg, source = load_config_or_default(None, cwd=tmp_path)
    assert cfg.sim.seed == 99
    assert source == "configs/paper.toml"


def test_explicit_path_wins(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("[sim]\nseed = 3\n")
    cfg, source = load_config_or_default(path, cwd=REPO)
    assert cfg.sim.seed == 3
    assert source == str(path)


def test_explicit_bad_path_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config_or_default(tmp_path / "missing.toml")


# --------------------------------------------------------------------------------------------------
# configs built in code (CLI overrides) are re-validated
# --------------------------------------------------------------------------------------------------


def test_validate_config_catches_evolved_values() -> None:
    bad = attrs.evolve(
        default_config(), risk=attrs.evolve(HeanConfig().risk, max_drawdown_pct=Decimal(0))
    )
    with pytest.raises(ConfigError) as info:
        validate_config(bad)
    assert info.value.message == "risk.max_drawdown_pct: must be in (0, 100], got 0"


def test_validate_sim_checks_only_the_sim_section() -> None:
    sim = attrs.evolve(SimConfig(), symbols=("SOLUSDT",), maker_fee_rate=Decimal("-0.0001"))
    assert validate_sim(sim) is sim
    with pytest.raises(ConfigError) as info:
        validate_sim(attrs.evolve(sim, symbols=("SOLUSDT", "sol")))
    assert info.value.message == (
        'sim.symbols[1]: expected an upper-case symbol like "BTCUSDT", got "sol"'
    )
    with pytest.raises(ConfigError) as info:
        validate_sim(attrs.evolve(sim, volatility=float("inf")))
    assert info.value.message == "sim.volatility: must be in [0, 10], got inf"


def test_long_values_are_shortened_in_messages() -> None:
    err = error_of(f'[engine]\nintent_queue_size = "{"x" * 500}"')
    assert len(err.message) < 120
    assert err.message.endswith('..."')


# --------------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(value=st.text() | st.floats() | st.booleans() | st.lists(st.integers(), max_size=3))
def test_any_bad_value_gives_one_line_naming_the_key(value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        structure_config({"engine": {"intent_queue_size": value}})
    message = info.value.message
    assert message.startswith("engine.intent_queue_size: expected an integer, got ")
    assert "\n" not in message
    assert "\r" not in message


@settings(max_examples=150, deadline=None)
@given(value=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_ports_accept_exactly_the_tcp_range(value: int) -> None:
    raw = {"sim": {"rest_port": value, "ws_port": 0}}
    if 0 <= value <= 65535:
        assert structure_config(raw).sim.rest_port == value
    else:
        with pytest.raises(ConfigError) as info:
            structure_config(raw)
        assert info.value.message == (
            f"sim.rest_port: must be a TCP port in [0, 65535], got {value}"
        )


@settings(max_examples=150, deadline=None)
@given(rate=st.decimals(min_value=Decimal("-0.02"), max_value=Decimal("0.02"), places=6))
def test_fee_rate_bounds_are_open(rate: Decimal) -> None:
    raw = {"sim": {"maker_fee_rate": str(rate)}}
    if Decimal("-0.01") < rate < Decimal("0.01"):
        assert structure_config(raw).sim.maker_fee_rate == rate
    else:
        with pytest.raises(ConfigError):
            structure_config(raw)
