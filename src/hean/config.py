"""HEAN configuration: TOML on disk, frozen attrs values in memory.

A config file is parsed with :mod:`tomllib`, structured by cattrs into the frozen classes below
and then checked against the rules attached to each field. Every problem, whether a syntax error, an
unknown key, a wrong type or a value out of range, becomes one :class:`ConfigError` whose message is
a single line naming the dotted key, the offending value and the rule::

    risk.max_drawdown_pct: must be in (0, 100], got 150
    engine.intent_queue_size: expected an integer, got "abc"

Why so strict: a trading engine that silently ignores a misspelt ``max_drawdown_pct`` runs with
the default limit, which is the kind of surprise that costs money. Unknown keys are therefore
rejected at every level, and a section that the chosen mode would ignore (``[sim]`` in live mode) is
an error too.

Configs built in code (tests, CLI overrides applied with :func:`attrs.evolve`) are checked with
:func:`validate_config` (or :func:`validate_sim` for the simulator section alone).
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin
from urllib.parse import urlsplit

import attrs
from attrs import field, frozen
from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "LIVE_URLS",
    "TESTNET_URLS",
    "ConfigError",
    "EngineConfig",
    "HeanConfig",
    "LoggingConfig",
    "Mode",
    "OpsConfig",
    "RiskConfig",
    "SimConfig",
    "StrategyConfig",
    "VenueConfig",
    "VenueUrls",
    "default_config",
    "load_config",
    "load_config_or_default",
    "structure_config",
    "validate_config",
    "validate_sim",
    "venue_urls",
]

Mode = Literal["paper", "testnet", "live"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["auto", "json", "console"]

#: What ``hean run`` loads when no ``--config`` is given (relative to the working directory).
DEFAULT_CONFIG_PATH: Final = Path("configs/paper.toml")

_MAX_SHOWN: Final = 60  # longest value quoted in a message, so it stays one readable line


class ConfigError(Exception):
    """A configuration problem, described in one line.

    ``message`` never contains a newline; ``key`` is the dotted key at fault when there is one (the
    CLI uses it to name the flag that set the value).
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        self.message = message.replace("\r", " ").replace("\n", " ")
        self.key = key
        super().__init__(self.message)


# --------------------------------------------------------------------------------------------------
# Rules: small predicates attached to fields through attrs metadata, so each rule sits next to the
# field it guards. A rule returns None when the value is fine, else the rule text ("must be > 0").
# --------------------------------------------------------------------------------------------------

_Rule = Callable[[Any], "str | None"]
_RULES: Final = "hean.rules"


def _rules(*rules: _Rule) -> dict[str, tuple[_Rule, ...]]:
    """attrs field metadata carrying the rules a field's values must satisfy."""
    return {_RULES: rules}


def _finite(value: Any) -> bool:
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, int | float) and math.isfinite(value)


def _positive(value: Any) -> str | None:
    return None if _finite(value) and value > 0 else "must be > 0"


def _at_least(lo: int) -> _Rule:
    def rule(value: Any) -> str | None:
        return None if _finite(value) and value >= lo else f"must be >= {lo}"

    return rule


def _between(lo: Any, hi: Any, *, lo_open: bool, hi_open: bool) -> _Rule:
    text = f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"

    def rule(value: Any) -> str | None:
        if not _finite(value):
            return text
        above = value > lo if lo_open else value >= lo
        below = value < hi if hi_open else value <= hi
        return None if above and below else text

    return rule


def _port(value: Any) -> str | None:
    if value is None:  # only reachable for optional ports: None means "off"
        return None
    return None if 0 <= value <= 65535 else "must be a TCP port in [0, 65535]"


def _non_empty(value: Any) -> str | None:
    return None if value.strip() else "must not be empty"


def _symbols(value: Any) -> str | None:
    return None if value else "must list at least one symbol"


_FEE_RATE = _between(Decimal("-0.01"), Decimal("0.01"), lo_open=True, hi_open=True)


# --------------------------------------------------------------------------------------------------
# The schema (names are shared with the engine and simulator; see notes/CONFIG_SCHEMA.md)
# --------------------------------------------------------------------------------------------------


@frozen
class VenueConfig:
    """Which exchange the engine trades on."""

    mode: Mode = "paper"
    rest_url: str | None = None  # None = the mode's default (paper: the embedded simulator's)
    ws_public_url: str | None = None
    ws_private_url: str | None = None
    # Bybit rejects requests older than recv_window; a wide window widens the replay window too.
    recv_window_ms: int = field(
        default=5000, metadata=_rules(_between(1, 60000, lo_open=False, hi_open=False))
    )


@frozen
class SimConfig:
    """The embedded Bybit-v5-compatible venue (``hean sim`` and paper mode)."""

    seed: int = 7
    symbols: tuple[str, ...] = field(default=("BTCUSDT", "ETHUSDT"), metadata=_rules(_symbols))
    # Loopback only unless explicitly changed: the venue accepts any order signed with a known key.
    host: str = field(default="127.0.0.1", metadata=_rules(_non_empty))
    # 0 = an ephemeral port (paper.toml uses 0 for the embedded venue)
    rest_port: int = field(default=8600, metadata=_rules(_port))
    ws_port: int = field(default=8601, metadata=_rules(_port))
    # The paper account's key pair (printed by `hean sim`); not secrets.
    api_key: str = field(default="hean-paper-key", metadata=_rules(_non_empty))
    api_secret: str = field(default="hean-paper-secret", metadata=_rules(_non_empty))
    initial_balance_usdt: Decimal = field(default=Decimal("10000"), metadata=_rules(_positive))
    # Bybit linear defaults; a negative maker rate models a rebate tier.
    maker_fee_rate: Decimal = field(default=Decimal("0.0002"), metadata=_rules(_FEE_RATE))
    taker_fee_rate: Decimal = field(default=Decimal("0.00055"), metadata=_rules(_FEE_RATE))
    # Annualised volatility of the mid-price random walk; 0 gives a flat market.
    volatility: float = field(
        default=0.6, metadata=_rules(_between(0, 10, lo_open=False, hi_open=False))
    )
    tick_interval_ms: int = field(default=100, metadata=_rules(_at_least(1)))  # market-model step
    feed_latency_ms: int = field(default=5, metadata=_rules(_at_least(0)))
    order_latency_ms: int = field(default=5, metadata=_rules(_at_least(0)))  # client -> matching
    response_latency_ms: int = field(default=5, metadata=_rules(_at_least(0)))  # matching -> client
    admin_enabled: bool = True  # fault-injection admin endpoint on the REST port, loopback only


@frozen
class EngineConfig:
    """Timers, queues and restart budget of the trading engine."""

    symbols: tuple[str, ...] = field(default=("BTCUSDT",), metadata=_rules(_symbols))
    journal_path: str = field(default="var/hean-journal.sqlite3", metadata=_rules(_non_empty))
    reconcile_interval_s: float = field(default=60.0, metadata=_rules(_positive))
    intent_queue_size: int = field(default=64, metadata=_rules(_at_least(1)))
    intent_ttl_s: float = field(default=5.0, metadata=_rules(_positive))
    duplicate_window_s: float = field(default=5.0, metadata=_rules(_positive))
    request_timeout_s: float = field(default=10.0, metadata=_rules(_positive))
    ping_interval_s: float = field(default=20.0, metadata=_rules(_positive))
    pong_timeout_s: float = field(default=10.0, metadata=_rules(_positive))
    stale_after_s: float = field(default=30.0, metadata=_rules(_positive))
    reconnect_base_s: float = field(default=0.5, metadata=_rules(_positive))
    reconnect_cap_s: float = field(default=30.0, metadata=_rules(_positive))
    max_restarts: int = field(default=5, metadata=_rules(_at_least(0)))
    restart_window_s: float = field(default=300.0, metadata=_rules(_positive))
    shutdown_timeout_s: float = field(default=20.0, metadata=_rules(_positive))
    missed_events_alert: int = field(default=5, metadata=_rules(_at_least(1)))
    status_interval_s: float = field(default=5.0, metadata=_rules(_positive))


@frozen
class RiskConfig:
    """Hard limits enforced by the risk governor."""

    max_order_notional_usdt: Decimal = field(default=Decimal("2000"), metadata=_rules(_positive))
    max_position_notional_usdt: Decimal = field(
        default=Decimal("10000"), metadata=_rules(_positive)
    )
    max_open_orders_per_symbol: int = field(default=10, metadata=_rules(_at_least(1)))
    max_drawdown_pct: Decimal = field(
        default=Decimal("10"), metadata=_rules(_between(0, 100, lo_open=True, hi_open=False))
    )
    daily_loss_limit_usdt: Decimal = field(default=Decimal("500"), metadata=_rules(_positive))


@frozen
class StrategyConfig:
    """The strategy to run and its parameters."""

    name: Literal["demo_maker"] = "demo_maker"
    order_notional_usdt: Decimal = field(default=Decimal("200"), metadata=_rules(_positive))
    quote_offset_ticks: int = field(default=2, metadata=_rules(_at_least(0)))
    requote_interval_s: float = field(default=2.0, metadata=_rules(_positive))
    max_position_notional_usdt: Decimal = field(default=Decimal("1000"), metadata=_rules(_positive))


@frozen
class LoggingConfig:
    """How log lines are rendered (see :mod:`hean.logs`)."""

    level: LogLevel = "INFO"
    format: LogFormat = "auto"  # auto = console on a TTY, JSON lines otherwise
    journald_prefix: bool = False  # prefix lines with <3>..<7> so journald records the priority


@frozen
class OpsConfig:
    """The metrics/health HTTP endpoint."""

    host: str = field(default="127.0.0.1", metadata=_rules(_non_empty))
    port: int | None = field(default=None, metadata=_rules(_port))  # None = off


@frozen
class HeanConfig:
    """The whole configuration; every section has defaults."""

    venue: VenueConfig = VenueConfig()
    sim: SimConfig = SimConfig()
    engine: EngineConfig = EngineConfig()
    risk: RiskConfig = RiskConfig()
    strategy: StrategyConfig = StrategyConfig()
    logging: LoggingConfig = LoggingConfig()
    ops: OpsConfig = OpsConfig()


@frozen
class VenueUrls:
    """The three endpoints of a Bybit-v5-compatible venue."""

    rest: str
    ws_public: str
    ws_private: str


TESTNET_URLS: Final = VenueUrls(
    rest="https://api-testnet.bybit.com",
    ws_public="wss://stream-testnet.bybit.com/v5/public/linear",
    ws_private="wss://stream-testnet.bybit.com/v5/private",
)
LIVE_URLS: Final = VenueUrls(
    rest="https://api.bybit.com",
    ws_public="wss://stream.bybit.com/v5/public/linear",
    ws_private="wss://stream.bybit.com/v5/private",
)


def venue_urls(venue: VenueConfig) -> VenueUrls | None:
    """The endpoints to connect to, or None for paper mode's embedded venue.

    In testnet/live mode each URL left unset falls back to Bybit's; in paper mode the URLs are
    either all set (an external ``hean sim``) or all unset (validated by :func:`validate_config`).
    """
    if venue.mode == "paper":
        if venue.rest_url is None or venue.ws_public_url is None or venue.ws_private_url is None:
            return None
        return VenueUrls(venue.rest_url, venue.ws_public_url, venue.ws_private_url)
    base = LIVE_URLS if venue.mode == "live" else TESTNET_URLS
    return VenueUrls(
        rest=venue.rest_url or base.rest,
        ws_public=venue.ws_public_url or base.ws_public,
        ws_private=venue.ws_private_url or base.ws_private,
    )


# --------------------------------------------------------------------------------------------------
# Showing values in messages
# --------------------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """Render a value the way it would be written in TOML, shortened to one short line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        if len(text) > _MAX_SHOWN:
            text = text[: _MAX_SHOWN - 4] + '..."'
    elif isinstance(value, Decimal):
        text = f"{value:f}"  # plain notation: 1E+3 would puzzle whoever reads the message
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
        if len(text) > _MAX_SHOWN:
            text = text[: _MAX_SHOWN - 4] + "...]"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, datetime | date | time):
        text = value.isoformat()
    elif value is None:
        text = "nothing"
    else:
        text = repr(value)[:_MAX_SHOWN]
    return text


def _fail(key: str, rule: str, value: Any) -> ConfigError:
    return ConfigError(f"{key}: {rule}, got {_show(value)}", key=key)


# --------------------------------------------------------------------------------------------------
# Structuring: strict scalar hooks (TOML has exactly the types we need, so no coercion from strings
# except for Decimal, where a string is the *preferred* spelling because it is exact).
# --------------------------------------------------------------------------------------------------


class _Problem(Exception):
    """A type problem found while structuring; turned into a ConfigError with the dotted key."""

    def __init__(self, rule: str, value: Any, suffix: str = "") -> None:
        super().__init__(rule)
        self.rule = rule
        self.value = value
        self.suffix = suffix  # e.g. "[2]" for the third element of a list


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem("expected an integer", value)
    return value


def _structure_optional_int(value: Any, _: Any) -> int | None:
    return None if value is None else _structure_int(value, int)


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Problem("expected a number", value)
    if not math.isfinite(value):
        raise _Problem("expected a finite number", value)
    return float(value)


def _structure_decimal(value: Any, _: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Problem("expected a decimal number (a string or a number)", value)
    try:
        # A TOML float is a binary double; going through repr() keeps "0.0002" as typed.
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise _Problem("expected a decimal number (a string or a number)", value) from None
    if not result.is_finite():
        raise _Problem("expected a finite decimal number", value)
    return result


def _structure_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Problem("expected a string", value)
    return value


def _structure_optional_str(value: Any, _: Any) -> str | None:
    return None if value is None else _structure_str(value, str)


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Problem("expected true or false", value)
    return value


def _structure_symbols(value: Any, _: Any) -> tuple[str, ...]:
    # cattrs would happily turn the string "BTCUSDT" into a tuple of letters; we refuse instead.
    if not isinstance(value, list | tuple):
        raise _Problem('expected a list of symbols like ["BTCUSDT"]', value)
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item or not (item.isascii() and item.isalnum()):
            raise _Problem(
                'expected an upper-case symbol like "BTCUSDT"', item, suffix=f"[{index}]"
            )
        if item != item.upper():
            raise _Problem(
                'expected an upper-case symbol like "BTCUSDT"', item, suffix=f"[{index}]"
            )
        if item in value[:index]:
            raise _Problem("duplicate symbol", item, suffix=f"[{index}]")
    return tuple(value)


def _literal_hook(type_: Any) -> Callable[[Any, Any], Any]:
    choices = get_args(type_)
    rule = "must be one of " + ", ".join(_show(c) for c in choices)

    def hook(value: Any, _: Any) -> Any:
        if isinstance(value, bool) or value not in choices:
            raise _Problem(rule, value)
        return value

    return hook


def _table_hook_factory(cl: Any, converter: Converter) -> Callable[[Any, Any], Any]:
    inner = make_dict_structure_fn(
        cl, converter, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
    )

    def hook(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise _Problem("expected a table", value)
        return inner(value, cl)

    return hook


_LITERAL: Final[object] = Literal  # typed as a plain object so mypy allows the identity test


def _make_converter() -> Converter:
    conv = Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_func(lambda t: t == (int | None), _structure_optional_int)
    conv.register_structure_hook_func(lambda t: t == (str | None), _structure_optional_str)
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], _structure_symbols)
    conv.register_structure_hook_factory(
        lambda t: get_origin(t) is _LITERAL, lambda t: _literal_hook(t)
    )
    conv.register_structure_hook_factory(attrs.has, _table_hook_factory)
    return conv


_CONVERTER: Final = _make_converter()


def _first_error(exc: BaseException, key: str) -> ConfigError:
    """Reduce cattrs' tree of errors to the first one, with its full dotted key.

    Unknown keys at a level are reported before problems inside that level's values: a misspelt key
    is the likeliest root cause and the most useful thing to fix first.
    """
    # cattrs records where an exception happened as a note on the exception, one level at a time.
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            key = f"{key}.{note.name}" if key else note.name
            break
        if isinstance(note, IterableValidationNote):
            key = f"{key}[{note.index}]"
            break
    if isinstance(exc, ClassValidationError):
        subs = sorted(exc.exceptions, key=lambda e: not isinstance(e, ForbiddenExtraKeysError))
        return _first_error(subs[0], key)
    if isinstance(exc, IterableValidationError):
        return _first_error(exc.exceptions[0], key)
    if isinstance(exc, ForbiddenExtraKeysError):
        return _unknown_key(exc, key)
    if isinstance(exc, _Problem):
        full = key + exc.suffix
        return _fail(full, exc.rule, exc.value)
    return ConfigError(f"{key or 'config'}: {exc}", key=key or None)


def _unknown_key(exc: ForbiddenExtraKeysError, parent: str) -> ConfigError:
    name = sorted(exc.extra_fields)[0]
    key = f"{parent}.{name}" if parent else name
    known = [a.name for a in attrs.fields(exc.cl)]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {_show(close[0])}?" if close else "known keys: " + ", ".join(known)
    return ConfigError(f"{key}: unknown key ({hint})", key=key)


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def _check_fields(section: str, value: Any) -> None:
    for attribute in attrs.fields(type(value)):
        current = getattr(value, attribute.name)
        for rule in attribute.metadata.get(_RULES, ()):
            problem = rule(current)
            if problem is not None:
                raise _fail(f"{section}.{attribute.name}", problem, current)
        if isinstance(current, tuple):
            _check_symbols(f"{section}.{attribute.name}", current)


def _check_symbols(key: str, symbols: tuple[str, ...]) -> None:
    # Structuring already checks TOML input; this catches symbols set in code or by CLI flags.
    try:
        _structure_symbols(symbols, None)
    except _Problem as problem:
        raise _fail(key + problem.suffix, problem.rule, problem.value) from None


def validate_sim(sim: SimConfig) -> SimConfig:
    """Check the simulator section on its own (what ``hean sim`` needs); returns it unchanged."""
    _check_fields("sim", sim)
    if sim.rest_port != 0 and sim.rest_port == sim.ws_port:
        raise _fail("sim.ws_port", f"must differ from sim.rest_port ({sim.rest_port})", sim.ws_port)
    return sim


def _check_url(key: str, url: str | None, schemes: tuple[str, ...], mode: str) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise _fail(key, f"must be a URL starting with {wanted} in {mode} mode", url)


def _check_venue(cfg: HeanConfig) -> None:
    venue = cfg.venue
    mode = venue.mode
    rest: tuple[str, ...] = ("http", "https")
    ws: tuple[str, ...] = ("ws", "wss")
    if mode != "paper":
        # Real accounts: never send keys or signatures over plaintext.
        rest, ws = ("https",), ("wss",)
    _check_url("venue.rest_url", venue.rest_url, rest, mode)
    _check_url("venue.ws_public_url", venue.ws_public_url, ws, mode)
    _check_url("venue.ws_private_url", venue.ws_private_url, ws, mode)
    if mode != "paper":
        return
    urls = {"rest_url": venue.rest_url, "ws_public_url": venue.ws_public_url}
    urls["ws_private_url"] = venue.ws_private_url
    missing = [name for name, url in urls.items() if url is None]
    if missing and len(missing) < len(urls):
        # Half a venue (REST on one simulator, streams on another) would look like missed fills.
        name = missing[0]
        raise ConfigError(
            f"venue.{name}: must be set together with the other venue URLs in paper mode "
            "(set all three to use an external simulator, or none for the embedded one)",
            key=f"venue.{name}",
        )
    if not missing:
        return  # an external simulator: its symbol list is not ours to check
    for index, symbol in enumerate(cfg.engine.symbols):
        if symbol not in cfg.sim.symbols:
            raise _fail(
                f"engine.symbols[{index}]",
                f"must be listed by the paper venue (sim.symbols = {_show(cfg.sim.symbols)})",
                symbol,
            )


def _check_cross(cfg: HeanConfig) -> None:
    engine, risk, strategy = cfg.engine, cfg.risk, cfg.strategy
    if engine.reconnect_base_s > engine.reconnect_cap_s:
        raise _fail(
            "engine.reconnect_base_s",
            f"must be <= engine.reconnect_cap_s ({_show(engine.reconnect_cap_s)})",
            engine.reconnect_base_s,
        )
    if risk.max_order_notional_usdt > risk.max_position_notional_usdt:
        raise _fail(
            "risk.max_order_notional_usdt",
            f"must be <= risk.max_position_notional_usdt ({risk.max_position_notional_usdt})",
            risk.max_order_notional_usdt,
        )
    # A strategy asking for more than the governor allows would have every order rejected.
    if strategy.order_notional_usdt > risk.max_order_notional_usdt:
        raise _fail(
            "strategy.order_notional_usdt",
            f"must be <= risk.max_order_notional_usdt ({risk.max_order_notional_usdt})",
            strategy.order_notional_usdt,
        )
    if strategy.max_position_notional_usdt > risk.max_position_notional_usdt:
        raise _fail(
            "strategy.max_position_notional_usdt",
            f"must be <= risk.max_position_notional_usdt ({risk.max_position_notional_usdt})",
            strategy.max_position_notional_usdt,
        )


def validate_config(cfg: HeanConfig) -> HeanConfig:
    """Check every rule; returns ``cfg`` unchanged or raises :class:`ConfigError`.

    Sections are checked in file order, then the rules that span sections.
    """
    _check_fields("venue", cfg.venue)
    validate_sim(cfg.sim)
    for name in ("engine", "risk", "strategy", "logging", "ops"):
        _check_fields(name, getattr(cfg, name))
    _check_venue(cfg)
    _check_cross(cfg)
    return cfg


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def structure_config(raw: Mapping[str, Any]) -> HeanConfig:
    """Turn parsed TOML into a validated :class:`HeanConfig`."""
    try:
        cfg = _CONVERTER.structure(dict(raw), HeanConfig)
    except Exception as exc:  # cattrs wraps our _Problem in exception groups
        raise _first_error(exc, "") from None
    if cfg.venue.mode != "paper" and "sim" in raw:
        raise ConfigError(
            f"sim: the [sim] section is only used in paper mode; remove it "
            f"(venue.mode = {_show(cfg.venue.mode)})",
            key="sim",
        )
    return validate_config(cfg)


def load_config(path: str | Path) -> HeanConfig:
    """Load and validate a TOML config file; raises :class:`ConfigError` with a one-line message."""
    try:
        with Path(path).open("rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError("invalid TOML: the file is not valid UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}") from None
    return structure_config(raw)


def default_config() -> HeanConfig:
    """The built-in defaults: paper mode against the embedded venue."""
    return validate_config(HeanConfig())


def load_config_or_default(
    path: str | Path | None, *, cwd: Path | None = None
) -> tuple[HeanConfig, str]:
    """What ``hean run``/``hean sim`` load: ``path`` if given, else ``configs/paper.toml`` if it
    exists under ``cwd``, else the built-in defaults.

    Returns the config and a description of where it came from, for the start-up log line.
    """
    if path is not None:
        return load_config(path), str(path)
    candidate = (cwd or Path.cwd()) / DEFAULT_CONFIG_PATH
    if candidate.is_file():
        return load_config(candidate), str(DEFAULT_CONFIG_PATH)
    return default_config(), "built-in defaults"
