"""hean.credentials: each source, their order, every error path, and no secret ever shown."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from hean.bybit.signing import Credentials
from hean.config import HeanConfig, LoggingConfig, VenueConfig, default_config
from hean.credentials import CredentialsError, credentials_for, load_credentials
from hean.logs import configure_logging

KEY = "kEy0123456789ABCDE"
SECRET = "sEcReT-must-never-be-seen-0123456789"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler).__name__ == "_HeanHandler":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def systemd_dir(tmp_path: Path, key: str | None = KEY, secret: str | None = SECRET) -> Path:
    directory = tmp_path / "creds"
    directory.mkdir()
    if key is not None:
        (directory / "bybit-api-key").write_text(key + "\n")
    if secret is not None:
        (directory / "bybit-api-secret").write_text(secret + "\n")
    return directory


def secret_files(tmp_path: Path, key: str = KEY, secret: str = SECRET) -> dict[str, str]:
    key_file, secret_file = tmp_path / "key.txt", tmp_path / "secret.txt"
    key_file.write_text(key)
    secret_file.write_text(secret + "\r\n")
    return {
        "HEAN_BYBIT_API_KEY_FILE": str(key_file),
        "HEAN_BYBIT_API_SECRET_FILE": str(secret_file),
    }


def load_error(env: dict[str, str]) -> str:
    with pytest.raises(CredentialsError) as info:
        load_credentials("live", env)
    message = str(info.value)
    assert SECRET not in message
    assert info.value.__cause__ is None
    return message


# --------------------------------------------------------------------------------------------------
# sources and precedence
# --------------------------------------------------------------------------------------------------


def test_paper_mode_needs_no_secrets() -> None:
    assert load_credentials("paper", {"HEAN_BYBIT_API_KEY": KEY}) is None


def test_paper_mode_signs_with_the_sim_account() -> None:
    cfg = default_config()
    assert credentials_for(cfg, {}) == Credentials("hean-paper-key", "hean-paper-secret")


@pytest.mark.parametrize("mode", ["testnet", "live"])
def test_no_source_at_all_is_none(mode: str) -> None:
    assert load_credentials(mode, {}) is None  # type: ignore[arg-type]


def test_systemd_credentials_directory(tmp_path: Path) -> None:
    env = {"CREDENTIALS_DIRECTORY": str(systemd_dir(tmp_path))}
    assert load_credentials("live", env) == Credentials(KEY, SECRET)


def test_credential_files(tmp_path: Path) -> None:
    assert load_credentials("testnet", secret_files(tmp_path)) == Credentials(KEY, SECRET)


def test_environment_variables() -> None:
    env = {"HEAN_BYBIT_API_KEY": KEY, "HEAN_BYBIT_API_SECRET": SECRET + "\n"}
    assert load_credentials("live", env) == Credentials(KEY, SECRET)


def test_systemd_wins_over_files_and_env(tmp_path: Path) -> None:
    env = {
        "CREDENTIALS_DIRECTORY": str(systemd_dir(tmp_path)),
        **secret_files(tmp_path, key="filekey", secret="filesecret"),
        "HEAN_BYBIT_API_KEY": "envkey",
        "HEAN_BYBIT_API_SECRET": "envsecret",
    }
    assert load_credentials("live", env) == Credentials(KEY, SECRET)


def test_files_win_over_env(tmp_path: Path) -> None:
    env = {
        **secret_files(tmp_path),
        "HEAN_BYBIT_API_KEY": "envkey",
        "HEAN_BYBIT_API_SECRET": "envsecret",
    }
    assert load_credentials("live", env) == Credentials(KEY, SECRET)


def test_systemd_directory_without_our_files_falls_through(tmp_path: Path) -> None:
    empty = tmp_path / "other-creds"
    empty.mkdir()
    (empty / "something-else").write_text("x")
    env = {"CREDENTIALS_DIRECTORY": str(empty), "HEAN_BYBIT_API_KEY": KEY}
    env["HEAN_BYBIT_API_SECRET"] = SECRET
    assert load_credentials("live", env) == Credentials(KEY, SECRET)


def test_credentials_for_live_requires_a_source() -> None:
    cfg = HeanConfig(venue=VenueConfig(mode="live"))
    with pytest.raises(CredentialsError) as info:
        credentials_for(cfg, {})
    message = str(info.value)
    assert message.startswith("no Bybit API credentials for live mode: provide ")
    for where in (
        "$CREDENTIALS_DIRECTORY/bybit-api-key",
        "HEAN_BYBIT_API_KEY_FILE",
        "HEAN_BYBIT_API_SECRET",
    ):
        assert where in message


def test_credentials_for_testnet_uses_the_source() -> None:
    cfg = HeanConfig(venue=VenueConfig(mode="testnet"))
    env = {"HEAN_BYBIT_API_KEY": KEY, "HEAN_BYBIT_API_SECRET": SECRET}
    assert credentials_for(cfg, env) == Credentials(KEY, SECRET)


# --------------------------------------------------------------------------------------------------
# error paths (each names the source, none shows the secret)
# --------------------------------------------------------------------------------------------------


def test_systemd_half_pair(tmp_path: Path) -> None:
    directory = systemd_dir(tmp_path, secret=None)
    message = load_error({"CREDENTIALS_DIRECTORY": str(directory)})
    assert message == (
        f"$CREDENTIALS_DIRECTORY ({directory}) has no bybit-api-secret file; "
        "both files are required"
    )


def test_systemd_half_pair_does_not_fall_back_to_env(tmp_path: Path) -> None:
    directory = systemd_dir(tmp_path, key=None)
    env = {"CREDENTIALS_DIRECTORY": str(directory), "HEAN_BYBIT_API_KEY": KEY}
    env["HEAN_BYBIT_API_SECRET"] = SECRET
    assert "has no bybit-api-key file" in load_error(env)


def test_systemd_empty_file(tmp_path: Path) -> None:
    directory = systemd_dir(tmp_path, key="")
    message = load_error({"CREDENTIALS_DIRECTORY": str(directory)})
    assert message == f"bybit-api-key in $CREDENTIALS_DIRECTORY ({directory}) is empty"


def test_file_env_half_pair(tmp_path: Path) -> None:
    env = secret_files(tmp_path)
    del env["HEAN_BYBIT_API_KEY_FILE"]
    assert load_error(env) == (
        "HEAN_BYBIT_API_SECRET_FILE is set but HEAN_BYBIT_API_KEY_FILE is not; set both"
    )


def test_file_env_empty_name(tmp_path: Path) -> None:
    env = secret_files(tmp_path)
    env["HEAN_BYBIT_API_KEY_FILE"] = ""
    assert load_error(env) == "HEAN_BYBIT_API_KEY_FILE is empty; it must name a file"


def test_missing_file(tmp_path: Path) -> None:
    env = secret_files(tmp_path)
    missing = tmp_path / "gone.txt"
    env["HEAN_BYBIT_API_SECRET_FILE"] = str(missing)
    assert load_error(env) == (
        f"cannot read HEAN_BYBIT_API_SECRET_FILE file {missing}: No such file or directory"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    # A directory cannot be read as a file, even by root (chmod 000 would not stop root).
    env = secret_files(tmp_path)
    env["HEAN_BYBIT_API_KEY_FILE"] = str(tmp_path)
    assert load_error(env) == (
        f"cannot read HEAN_BYBIT_API_KEY_FILE file {tmp_path}: Is a directory"
    )


def test_empty_file(tmp_path: Path) -> None:
    env = secret_files(tmp_path)
    Path(env["HEAN_BYBIT_API_SECRET_FILE"]).write_text("\n")
    path = env["HEAN_BYBIT_API_SECRET_FILE"]
    assert load_error(env) == f"HEAN_BYBIT_API_SECRET_FILE file {path} is empty"


def test_file_with_inner_whitespace(tmp_path: Path) -> None:
    env = secret_files(tmp_path, secret=SECRET + " trailing")
    path = env["HEAN_BYBIT_API_SECRET_FILE"]
    assert load_error(env) == (
        f"HEAN_BYBIT_API_SECRET_FILE file {path} contains whitespace or control characters"
    )


def test_non_utf8_file_does_not_leak_bytes(tmp_path: Path) -> None:
    env = secret_files(tmp_path)
    path = Path(env["HEAN_BYBIT_API_SECRET_FILE"])
    path.write_bytes(SECRET.encode() + b"\xff\xfe")
    message = load_error(env)
    assert message == f"HEAN_BYBIT_API_SECRET_FILE file {path} is not valid UTF-8"
    assert "xff" not in message


def test_oversized_file(tmp_path: Path) -> None:
    env = secret_files(tmp_path)
    path = Path(env["HEAN_BYBIT_API_SECRET_FILE"])
    path.write_text("a" * 5000)
    assert load_error(env) == (f"HEAN_BYBIT_API_SECRET_FILE file {path} is larger than 4096 bytes")


def test_env_half_pair() -> None:
    assert load_error({"HEAN_BYBIT_API_KEY": KEY}) == (
        "HEAN_BYBIT_API_KEY is set but HEAN_BYBIT_API_SECRET is not; set both"
    )
    assert load_error({"HEAN_BYBIT_API_SECRET": SECRET}) == (
        "HEAN_BYBIT_API_SECRET is set but HEAN_BYBIT_API_KEY is not; set both"
    )


def test_env_empty_value() -> None:
    env = {"HEAN_BYBIT_API_KEY": KEY, "HEAN_BYBIT_API_SECRET": ""}
    assert load_error(env) == "environment variable HEAN_BYBIT_API_SECRET is empty"


def test_env_value_with_control_characters() -> None:
    env = {"HEAN_BYBIT_API_KEY": KEY, "HEAN_BYBIT_API_SECRET": SECRET + "\x00"}
    assert load_error(env) == (
        "environment variable HEAN_BYBIT_API_SECRET contains whitespace or control characters"
    )


# --------------------------------------------------------------------------------------------------
# no leaks: repr, str, logs
# --------------------------------------------------------------------------------------------------


def test_loaded_credentials_repr_and_str_hide_the_secret(tmp_path: Path) -> None:
    creds = load_credentials("live", secret_files(tmp_path))
    assert creds is not None
    assert SECRET not in repr(creds)
    assert SECRET not in str(creds)
    assert SECRET not in f"{creds!r} {creds}"


def test_log_output_names_the_source_but_not_the_secret(tmp_path: Path) -> None:
    out = io.StringIO()
    configure_logging(LoggingConfig(level="DEBUG", format="json"), stream=out)
    creds = load_credentials("live", {"CREDENTIALS_DIRECTORY": str(systemd_dir(tmp_path))})
    structlog.get_logger().info("using_credentials", creds=creds, api_secret=SECRET)
    text = out.getvalue()
    assert '"source":"systemd-credentials"' in text
    assert "using_credentials" in text
    assert SECRET not in text
