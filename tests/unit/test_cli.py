"""hean.cli: exit codes, one-line errors without tracebacks, dispatch to the engine and the sim."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import types
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

import hean
from hean import cli
from hean.config import HeanConfig, LoggingConfig
from hean.engine.journal import JournalLockedError
from hean.logs import configure_logging

REPO = Path(__file__).resolve().parents[2]
PAPER = str(REPO / "configs" / "paper.toml")
LIVE = str(REPO / "configs" / "live.toml.example")


def hean_cmd(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hean", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture(autouse=True)
def log_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The CLI configures logging for the process; in tests, point it at a buffer, uncached."""
    out = io.StringIO()

    def configure(cfg: LoggingConfig, **_kw: Any) -> None:
        configure_logging(cfg, stream=out, is_tty=False, cache_loggers=False)

    monkeypatch.setattr(cli, "configure_logging", configure)
    yield out
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "_HeanHandler":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)


@pytest.fixture
def no_secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "CREDENTIALS_DIRECTORY",
        "HEAN_BYBIT_API_KEY",
        "HEAN_BYBIT_API_SECRET",
        "HEAN_BYBIT_API_KEY_FILE",
        "HEAN_BYBIT_API_SECRET_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def fake_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: Any) -> None:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


# --------------------------------------------------------------------------------------------------
# check-config, version, help: through `python -m hean`, as a user would run them
# --------------------------------------------------------------------------------------------------


def test_check_config_ok() -> None:
    result = hean_cmd("check-config", "configs/paper.toml")
    assert result.returncode == 0
    assert result.stdout == "ok: configs/paper.toml (mode=paper, symbols=BTCUSDT)\n"
    assert result.stderr == ""


def test_check_config_live_example_ok() -> None:
    result = hean_cmd("check-config", "configs/live.toml.example")
    assert result.returncode == 0
    assert "(mode=live, symbols=BTCUSDT)" in result.stdout


def test_check_config_rule_error_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nmax_drawdown_pct = 150\n")
    result = hean_cmd("check-config", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"error: {bad}: risk.max_drawdown_pct: must be in (0, 100], got 150\n"


def test_check_config_bad_toml_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nsymbols = [\n")
    result = hean_cmd("check-config", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {bad}: invalid TOML: ")
    assert "Traceback" not in result.stderr


def test_check_config_missing_file_exit_2(tmp_path: Path) -> None:
    result = hean_cmd("check-config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert result.stderr.endswith("cannot read config file: No such file or directory\n")
    assert result.stderr.count("\n") == 1


def test_check_config_unknown_key_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[ops]\nprot = 9100\n")
    result = hean_cmd("check-config", str(bad))
    assert result.returncode == 2
    assert result.stderr == f'error: {bad}: ops.prot: unknown key (did you mean "port"?)\n'


def test_version() -> None:
    result = hean_cmd("version")
    assert result.returncode == 0
    assert result.stdout == f"hean {hean.__version__}\n"
    assert hean_cmd("--version").stdout == f"hean {hean.__version__}\n"


def test_help_documents_exit_codes() -> None:
    result = hean_cmd("--help")
    assert result.returncode == 0
    for line in (
        "0    success",
        "1    runtime failure",
        "2    usage or configuration error",
        "130  interrupted",
    ):
        assert line in result.stdout
    for command in ("run", "sim", "check-config", "version"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["run", "sim", "bench", "check-config"])
def test_subcommand_help(command: str) -> None:
    result = hean_cmd(command, "--help")
    assert result.returncode == 0
    assert "exit codes:" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert hean_cmd().returncode == 2
    assert hean_cmd("frobnicate").returncode == 2
    assert hean_cmd("run", "--duration", "-1").returncode == 2
    assert hean_cmd("sim", "--maker-fee", "abc").returncode == 2
    assert hean_cmd("bench", "--ws-clients", "0").returncode == 2


def test_bench_measures_the_venue_over_loopback() -> None:
    # Real TCP on 127.0.0.1; asserts what a user reads, never how fast it was.
    result = hean_cmd("bench", "--duration", "0.5", "--ws-clients", "1", "--rest-concurrency", "1")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("public WS: ")
    assert " msgs/s (" in line
    assert " req/s (" in line
    published = int(line.split("msgs/s (")[1].split(" ")[0])
    requests = int(line.split("req/s (")[1].split(" ")[0])
    assert published > 0
    assert requests > 0


# --------------------------------------------------------------------------------------------------
# run: dispatch to hean.engine.main.run_engine (faked here, so these tests do not depend on it)
# --------------------------------------------------------------------------------------------------


def test_run_dispatches_with_duration_and_log_level(
    monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    seen: dict[str, Any] = {}

    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        seen["cfg"], seen["duration"] = cfg, duration
        return 0

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    rc = cli.main(["--log-level", "debug", "run", "--config", PAPER, "--duration", "2.5"])
    assert rc == 0
    assert seen["duration"] == 2.5
    assert seen["cfg"].logging.level == "DEBUG"
    assert seen["cfg"].sim.rest_port == 0  # paper.toml was loaded
    assert '"source":"' + PAPER + '"' in log_output.getvalue()


def test_run_options_after_the_subcommand_override(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        seen["cfg"] = cfg
        return 0

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    assert cli.main(["--log-level", "ERROR", "run", "--log-level", "warning"]) == 0
    assert seen["cfg"].logging.level == "WARNING"


def test_run_defaults_to_builtin_config_outside_the_repo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_output: io.StringIO
) -> None:
    seen: dict[str, Any] = {}

    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        seen["cfg"], seen["duration"] = cfg, duration
        return 0

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 0
    assert seen["cfg"] == HeanConfig()
    assert seen["duration"] is None
    assert '"source":"built-in defaults"' in log_output.getvalue()


def test_run_passes_the_engine_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        return 1  # e.g. stopped fail-closed on a position mismatch

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    assert cli.main(["run", "--config", PAPER]) == 1


def test_run_engine_crash_exits_1_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        raise RuntimeError("socket on fire")

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    assert cli.main(["run", "--config", PAPER]) == 1
    assert "engine_crashed" in log_output.getvalue()
    assert "socket on fire" in log_output.getvalue()


def test_run_refused_on_a_journal_another_engine_holds_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    held = tmp_path / "j.sqlite3"

    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        async with trio.open_nursery():  # raised inside a nursery, as the engine would
            raise JournalLockedError(held, "another engine holds it")

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    assert cli.main(["run", "--config", PAPER]) == 2
    err = capsys.readouterr().err
    assert err == f"hean run: error: journal {str(held)!r}: another engine holds it\n"


def test_run_without_engine_in_build(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "hean.engine.main", None)  # import now raises ImportError
    assert cli.main(["run", "--config", PAPER]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hean run: engine not available in this build (")
    assert err.count("\n") == 1


def test_run_invalid_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[engine]\nintent_queue_size = "abc"\n')
    assert cli.main(["run", "--config", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f'hean run: error: {bad}: engine.intent_queue_size: expected an integer, got "abc"\n'
    )


def test_run_live_without_credentials_exit_2(
    monkeypatch: pytest.MonkeyPatch, no_secrets_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    called = False

    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        nonlocal called
        called = True
        return 0

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    assert cli.main(["run", "--config", LIVE]) == 2
    assert not called
    err = capsys.readouterr().err
    assert err.startswith("hean run: error: no Bybit API credentials for live mode")
    assert err.count("\n") == 1


def test_run_live_half_pair_never_prints_the_secret(
    monkeypatch: pytest.MonkeyPatch, no_secrets_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEAN_BYBIT_API_SECRET", "super-secret-value-123")
    assert cli.main(["run", "--config", LIVE]) == 2
    captured = capsys.readouterr()
    assert "HEAN_BYBIT_API_KEY is not" in captured.err
    assert "super-secret-value-123" not in captured.err + captured.out


def test_keyboard_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        raise KeyboardInterrupt

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    assert cli.main(["run", "--config", PAPER]) == 130
    assert capsys.readouterr().err == "hean: interrupted\n"


def test_keyboard_interrupt_inside_a_group_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    async def run_engine(cfg: HeanConfig, *, duration: float | None) -> int:
        raise BaseExceptionGroup("nursery", [KeyboardInterrupt()])

    fake_module(monkeypatch, "hean.engine.main", run_engine=run_engine)
    assert cli.main(["run", "--config", PAPER]) == 130


# --------------------------------------------------------------------------------------------------
# sim: overrides applied with evolve and re-validated, dispatch to hean.sim.serve.serve_sim
# --------------------------------------------------------------------------------------------------


def test_sim_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, HeanConfig] = {}

    async def serve_sim(cfg: HeanConfig) -> None:
        seen["cfg"] = cfg

    fake_module(monkeypatch, "hean.sim.serve", serve_sim=serve_sim)
    rc = cli.main(
        [
            "sim",
            "--config",
            PAPER,
            "--seed",
            "42",
            "--symbols",
            "SOLUSDT,BTCUSDT",
            "--rest-port",
            "18600",
            "--ws-port",
            "18601",
            "--maker-fee",
            "-0.0001",
            "--taker-fee",
            "0.0006",
            "--volatility",
            "1.5",
            "--host",
            "0.0.0.0",
        ]
    )
    assert rc == 0
    sim = seen["cfg"].sim
    assert sim.seed == 42
    assert sim.symbols == ("SOLUSDT", "BTCUSDT")
    assert (sim.rest_port, sim.ws_port) == (18600, 18601)
    assert sim.maker_fee_rate == Decimal("-0.0001")
    assert sim.taker_fee_rate == Decimal("0.0006")
    assert sim.volatility == 1.5
    assert sim.host == "0.0.0.0"


def test_sim_without_flags_uses_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, HeanConfig] = {}

    async def serve_sim(cfg: HeanConfig) -> None:
        seen["cfg"] = cfg

    fake_module(monkeypatch, "hean.sim.serve", serve_sim=serve_sim)
    assert cli.main(["sim", "--config", PAPER]) == 0
    assert seen["cfg"].sim.symbols == ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--maker-fee", "0.5"],
            "hean sim: error: sim.maker_fee_rate (from --maker-fee): "
            "must be in (-0.01, 0.01), got 0.5\n",
        ),
        (
            ["--symbols", "BTCUSDT,eth"],
            "hean sim: error: sim.symbols[1] (from --symbols): expected an upper-case symbol "
            'like "BTCUSDT", got "eth"\n',
        ),
        (
            ["--rest-port", "99999"],
            "hean sim: error: sim.rest_port (from --rest-port): "
            "must be a TCP port in [0, 65535], got 99999\n",
        ),
        (
            ["--rest-port", "9000", "--ws-port", "9000"],
            "hean sim: error: sim.ws_port (from --ws-port): "
            "must differ from sim.rest_port (9000), got 9000\n",
        ),
    ],
)
def test_sim_bad_override_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    async def serve_sim(cfg: HeanConfig) -> None:
        raise AssertionError("must not start")

    fake_module(monkeypatch, "hean.sim.serve", serve_sim=serve_sim)
    assert cli.main(["sim", "--config", PAPER, *flags]) == 2
    assert capsys.readouterr().err == message


def test_sim_without_simulator_in_build(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "hean.sim.serve", None)
    assert cli.main(["sim", "--config", PAPER]) == 1
    assert capsys.readouterr().err.startswith("hean sim: simulator not available in this build (")


def test_sim_crash_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    async def serve_sim(cfg: HeanConfig) -> None:
        raise OSError("address in use")

    fake_module(monkeypatch, "hean.sim.serve", serve_sim=serve_sim)
    assert cli.main(["sim", "--config", PAPER]) == 1


def test_sim_interrupted_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    async def serve_sim(cfg: HeanConfig) -> None:
        raise KeyboardInterrupt

    fake_module(monkeypatch, "hean.sim.serve", serve_sim=serve_sim)
    assert cli.main(["sim", "--config", PAPER]) == 130
