"""The ``hean`` command line: ``run``, ``sim``, ``bench``, ``check-config`` and ``version``.

The CLI is the one place that turns problems into exit codes. Configuration and usage problems are
reported as one line on stderr (never a traceback) with exit code 2, so a systemd unit with
``RestartPreventExitStatus=2`` does not restart-loop on a typo; runtime failures exit 1 so it does
restart; an interrupt (Ctrl-C on ``hean sim``, a second one during ``hean run``'s graceful stop)
exits 130 like any shell command.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import math
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol, TextIO, cast

import attrs
import structlog
import trio

import hean
from hean.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    HeanConfig,
    default_config,
    load_config,
    load_config_or_default,
    validate_sim,
)
from hean.credentials import CredentialsError, credentials_for
from hean.engine.journal import JournalLockedError
from hean.exitcodes import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from hean.logs import configure_logging

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "build_parser",
    "main",
]


LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")

EPILOG: Final = """\
exit codes:
  0    success
  1    runtime failure (the engine crashed, or stopped fail-closed on a position mismatch)
  2    usage or configuration error (bad arguments, invalid config, missing credentials)
  130  interrupted (a second Ctrl-C during `hean run`'s graceful stop; Ctrl-C on `hean sim`)

Without --config, `hean run` and `hean sim` load configs/paper.toml if it exists in the
current directory, else the built-in defaults (paper mode against the embedded venue).
"""

# `hean sim` flags and the config keys they override (used to name the flag in error messages).
_SIM_FLAGS: Final = {
    "seed": "--seed",
    "symbols": "--symbols",
    "rest_port": "--rest-port",
    "ws_port": "--ws-port",
    "maker_fee_rate": "--maker-fee",
    "taker_fee_rate": "--taker-fee",
    "volatility": "--volatility",
    "host": "--host",
}

log = structlog.get_logger(__name__)


class _RunEngine(Protocol):
    def __call__(self, cfg: HeanConfig, *, duration: float | None) -> Awaitable[int]: ...


_ServeSim = Callable[[HeanConfig], Awaitable[int]]


# --------------------------------------------------------------------------------------------------
# argument types
# --------------------------------------------------------------------------------------------------


def _decimal_arg(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _finite_float_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _duration_arg(text: str) -> float:
    value = _finite_float_arg(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _positive_int_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return value


def _symbols_arg(text: str) -> tuple[str, ...]:
    # Empty or lower-case entries are left for the config rules to report, with the key named.
    return tuple(part.strip() for part in text.split(","))


# --------------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------------


def _add_common(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """--config and --log-level, accepted before or after the subcommand.

    The subcommand copies default to SUPPRESS so that, when the flag is not repeated after the
    subcommand, it does not overwrite the value given before it.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="TOML config file (default: configs/paper.toml if present, else built-in defaults)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default,
        metavar="LEVEL",
        help="override logging.level: DEBUG, INFO, WARNING or ERROR",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and for generating docs)."""
    parser = argparse.ArgumentParser(
        prog="hean",
        description="HEAN: a trading engine for Bybit v5 USDT perpetuals, "
        "with an embedded Bybit-compatible venue for paper trading.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hean {hean.__version__}")
    _add_common(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run",
        help="run the trading engine",
        description="Run the trading engine in the mode the config selects (paper by default).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(run, default=argparse.SUPPRESS)
    run.add_argument(
        "--duration",
        type=_duration_arg,
        metavar="SECONDS",
        help="stop gracefully after this many seconds (default: run until signalled)",
    )

    sim = sub.add_parser(
        "sim",
        help="run the Bybit-v5-compatible paper venue on its own",
        description="Serve the simulated Bybit v5 venue (REST + WebSocket) on loopback. "
        "Flags override the [sim] section of the config.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(sim, default=argparse.SUPPRESS)
    sim.add_argument("--seed", type=int, metavar="N", help="market model seed")
    sim.add_argument(
        "--symbols", type=_symbols_arg, metavar="A,B", help="comma-separated symbols to list"
    )
    sim.add_argument("--rest-port", type=int, metavar="P", help="REST port (0 = ephemeral)")
    sim.add_argument("--ws-port", type=int, metavar="P", help="WebSocket port (0 = ephemeral)")
    sim.add_argument(
        "--maker-fee", type=_decimal_arg, metavar="R", help="maker fee rate (negative = rebate)"
    )
    sim.add_argument("--taker-fee", type=_decimal_arg, metavar="R", help="taker fee rate")
    sim.add_argument(
        "--volatility", type=_finite_float_arg, metavar="V", help="annualised volatility"
    )
    sim.add_argument("--host", metavar="H", help="address to bind (default 127.0.0.1)")

    check = sub.add_parser(
        "check-config",
        help="validate a config file and exit",
        description="Load and validate FILE; print 'ok: ...' or one line naming the problem.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("file", metavar="FILE")

    bench = sub.add_parser(
        "bench",
        help="measure the paper venue's throughput over loopback TCP",
        description="Start a fresh embedded venue on ephemeral loopback ports, drive it with "
        "WebSocket subscribers and REST clients, and print public messages/s and REST "
        "requests/s. A measurement, not a test: figures depend on the machine and its load.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--duration",
        type=_duration_arg,
        default=5.0,
        metavar="SECONDS",
        help="seconds per phase (default 5)",
    )
    bench.add_argument(
        "--ws-clients",
        type=_positive_int_arg,
        default=8,
        metavar="N",
        help="concurrent public WebSocket subscribers (default 8)",
    )
    bench.add_argument(
        "--rest-concurrency",
        type=_positive_int_arg,
        default=8,
        metavar="N",
        help="concurrent REST clients (default 8)",
    )

    sub.add_parser("version", help="print the version and exit")
    return parser


# --------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------


def _error(message: str, stream: TextIO | None = None) -> None:
    print(message.replace("\n", " "), file=stream or sys.stderr)


def _load(args: argparse.Namespace, command: str) -> tuple[HeanConfig, str] | None:
    try:
        cfg, source = load_config_or_default(args.config)
    except ConfigError as exc:
        where = args.config if args.config is not None else DEFAULT_CONFIG_PATH
        _error(f"hean {command}: error: {where}: {exc.message}")
        return None
    if args.log_level is not None:
        cfg = attrs.evolve(cfg, logging=attrs.evolve(cfg.logging, level=args.log_level))
    return cfg, source


def _optional(module: str, name: str) -> tuple[Any, str | None]:
    """Import ``module.name`` if this build has it; else (None, reason)."""
    try:
        return getattr(importlib.import_module(module), name), None
    except ImportError as exc:
        return None, str(exc)
    except AttributeError:
        return None, f"{module} has no {name}"


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        _error(f"error: {args.file}: {exc.message}")
        return EXIT_USAGE
    symbols = ",".join(cfg.engine.symbols)
    print(f"ok: {args.file} (mode={cfg.venue.mode}, symbols={symbols})")
    return EXIT_OK


def _cmd_version(_args: argparse.Namespace) -> int:
    print(f"hean {hean.__version__}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    loaded = _load(args, "run")
    if loaded is None:
        return EXIT_USAGE
    cfg, source = loaded
    try:
        # Fail before any network I/O when testnet/live keys are missing or unreadable.
        credentials_for(cfg)
    except CredentialsError as exc:
        _error(f"hean run: error: {exc}")
        return EXIT_USAGE
    run_engine, reason = _optional("hean.engine.main", "run_engine")
    if run_engine is None:
        _error(f"hean run: engine not available in this build ({reason})")
        return EXIT_FAILURE
    configure_logging(cfg.logging, cache_loggers=True)
    log.info(
        "config_loaded",
        source=source,
        mode=cfg.venue.mode,
        symbols=list(cfg.engine.symbols),
        duration_s=args.duration,
    )
    engine = cast(_RunEngine, run_engine)
    try:
        rc = trio.run(
            functools.partial(engine, cfg, duration=args.duration),
            restrict_keyboard_interrupt_to_checkpoints=True,
        )
    except Exception as exc:
        refusal = _find_refusal(exc)
        if refusal is not None:
            _error(f"hean run: error: {refusal}")
            return EXIT_USAGE
        log.error("engine_crashed", exc_info=exc)
        return EXIT_FAILURE
    log.info("engine_exited", exit_code=rc)
    return int(rc)


def _find_refusal(exc: BaseException) -> CredentialsError | JournalLockedError | None:
    """A start refused for a reason the operator must fix (missing keys, a journal another engine
    holds): one line and exit 2, so systemd does not restart-loop on it."""
    if isinstance(exc, CredentialsError | JournalLockedError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find_refusal(inner)
            if found is not None:
                return found
    return None


def _cmd_sim(args: argparse.Namespace) -> int:
    loaded = _load(args, "sim")
    if loaded is None:
        return EXIT_USAGE
    cfg, source = loaded
    changes: dict[str, Any] = {}
    for name, flag in _SIM_FLAGS.items():
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if value is not None:
            changes[name] = value
    try:
        sim = validate_sim(attrs.evolve(cfg.sim, **changes))
    except ConfigError as exc:
        _error(f"hean sim: error: {_name_flag(exc, changes)}")
        return EXIT_USAGE
    cfg = attrs.evolve(cfg, sim=sim)
    serve_sim, reason = _optional("hean.sim.serve", "serve_sim")
    if serve_sim is None:
        _error(f"hean sim: simulator not available in this build ({reason})")
        return EXIT_FAILURE
    configure_logging(cfg.logging, cache_loggers=True)
    log.info("config_loaded", source=source, overrides=sorted(changes))
    try:
        stopped_by = trio.run(
            cast(_ServeSim, serve_sim), cfg, restrict_keyboard_interrupt_to_checkpoints=True
        )
    except Exception as exc:
        log.error("sim_crashed", exc_info=exc)
        return EXIT_FAILURE
    # Ctrl-C reads as "interrupted", as for any shell command; SIGTERM (systemd) is a clean stop.
    return EXIT_INTERRUPTED if stopped_by == signal.SIGINT else EXIT_OK


def _name_flag(exc: ConfigError, changes: dict[str, Any]) -> str:
    """Point at the flag when a CLI override broke a rule: "sim.ws_port (from --ws-port): ..."."""
    if exc.key is None:
        return exc.message
    for name, flag in _SIM_FLAGS.items():
        key = f"sim.{name}"
        if name in changes and (exc.key == key or exc.key.startswith(key + "[")):
            return f"{exc.key} (from {flag}){exc.message[len(exc.key) :]}"
    return exc.message


def _cmd_bench(args: argparse.Namespace) -> int:
    from hean.sim.bench import bench_venue

    configure_logging(attrs.evolve(default_config().logging, level="WARNING"))
    result = trio.run(
        functools.partial(
            bench_venue,
            duration_s=args.duration,
            ws_clients=args.ws_clients,
            rest_concurrency=args.rest_concurrency,
        )
    )
    print(result.summary())
    return EXIT_OK


_COMMANDS: Final[dict[str, Callable[[argparse.Namespace], int]]] = {
    "bench": _cmd_bench,
    "run": _cmd_run,
    "sim": _cmd_sim,
    "check-config": _cmd_check_config,
    "version": _cmd_version,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hean`` script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt:
        _error("hean: interrupted")
        return EXIT_INTERRUPTED
    except BaseExceptionGroup as group:
        # trio wraps a Ctrl-C that lands inside a nursery; anything else is not ours to hide.
        rest = group.subgroup(lambda e: not isinstance(e, KeyboardInterrupt | BaseExceptionGroup))
        if rest is None:
            _error("hean: interrupted")
            return EXIT_INTERRUPTED
        raise
