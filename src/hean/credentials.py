"""Where the Bybit API key pair comes from.

Secrets never live in the config file. For testnet and live they are looked up, first source wins:

1. systemd credentials: ``$CREDENTIALS_DIRECTORY/bybit-api-key`` and ``bybit-api-secret``
   (``LoadCredential=``/``LoadCredentialEncrypted=`` in the unit; only the service can read them);
2. files named by ``HEAN_BYBIT_API_KEY_FILE`` and ``HEAN_BYBIT_API_SECRET_FILE``
   (Docker/Kubernetes secrets);
3. the environment variables ``HEAN_BYBIT_API_KEY`` and ``HEAN_BYBIT_API_SECRET``.

A source is used as a pair: half a pair, an empty value or an unreadable file is an error naming the
source, never a reason to fall through to the next source (that would silently mix keys from two
places). Error messages and log lines name files and variables, never their contents.

Paper mode needs no secrets: the embedded venue's key pair comes from the ``[sim]`` section.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import structlog

from hean.bybit.signing import Credentials
from hean.config import HeanConfig, Mode

__all__ = [
    "API_KEY_ENV",
    "API_KEY_FILE_ENV",
    "API_SECRET_ENV",
    "API_SECRET_FILE_ENV",
    "SYSTEMD_KEY_NAME",
    "SYSTEMD_SECRET_NAME",
    "CredentialsError",
    "credentials_for",
    "load_credentials",
]

SYSTEMD_KEY_NAME: Final = "bybit-api-key"
SYSTEMD_SECRET_NAME: Final = "bybit-api-secret"  # noqa: S105
API_KEY_FILE_ENV: Final = "HEAN_BYBIT_API_KEY_FILE"
API_SECRET_FILE_ENV: Final = "HEAN_BYBIT_API_SECRET_FILE"  # noqa: S105
API_KEY_ENV: Final = "HEAN_BYBIT_API_KEY"
API_SECRET_ENV: Final = "HEAN_BYBIT_API_SECRET"  # noqa: S105

# The names below are where secrets live, not secrets (hence the S105 waivers).
# Bybit keys and secrets are a few dozen characters; anything much longer is the wrong file.
_MAX_FILE_BYTES: Final = 4096

log = structlog.get_logger(__name__)


class CredentialsError(Exception):
    """The key pair could not be loaded. The message names the source, never a secret."""


def _check_value(value: str, what: str) -> str:
    """Strip the trailing newline editors and ``echo`` add; refuse anything else odd.

    Whitespace inside a key would only surface later as a baffling signature error (10004), so it
    is reported here, naming where the value came from.
    """
    value = value.rstrip("\r\n")
    if not value:
        raise CredentialsError(f"{what} is empty")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise CredentialsError(f"{what} contains whitespace or control characters")
    return value


def _read_secret_file(path: Path, what: str) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        # strerror ("Permission denied"); the path is already in `what`.
        reason = exc.strerror or type(exc).__name__
        raise CredentialsError(f"cannot read {what}: {reason}") from None
    if len(data) > _MAX_FILE_BYTES:
        raise CredentialsError(f"{what} is larger than {_MAX_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Never chain or quote the decode error: it carries the file's bytes.
        raise CredentialsError(f"{what} is not valid UTF-8") from None
    return _check_value(text, what)


def _from_systemd(env: Mapping[str, str]) -> Credentials | None:
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    key_path = Path(directory) / SYSTEMD_KEY_NAME
    secret_path = Path(directory) / SYSTEMD_SECRET_NAME
    has_key, has_secret = key_path.exists(), secret_path.exists()
    if not has_key and not has_secret:
        return None  # systemd passes credentials for other purposes too; this pair is just not here
    source = f"$CREDENTIALS_DIRECTORY ({directory})"
    if not (has_key and has_secret):
        missing = SYSTEMD_SECRET_NAME if has_key else SYSTEMD_KEY_NAME
        raise CredentialsError(f"{source} has no {missing} file; both files are required")
    return Credentials(
        api_key=_read_secret_file(key_path, f"{SYSTEMD_KEY_NAME} in {source}"),
        api_secret=_read_secret_file(secret_path, f"{SYSTEMD_SECRET_NAME} in {source}"),
    )


def _from_files(env: Mapping[str, str]) -> Credentials | None:
    key_file = env.get(API_KEY_FILE_ENV)
    secret_file = env.get(API_SECRET_FILE_ENV)
    if key_file is None and secret_file is None:
        return None
    if key_file is None or secret_file is None:
        missing = API_KEY_FILE_ENV if key_file is None else API_SECRET_FILE_ENV
        present = API_SECRET_FILE_ENV if key_file is None else API_KEY_FILE_ENV
        raise CredentialsError(f"{present} is set but {missing} is not; set both")
    if not key_file or not secret_file:
        empty = API_KEY_FILE_ENV if not key_file else API_SECRET_FILE_ENV
        raise CredentialsError(f"{empty} is empty; it must name a file")
    return Credentials(
        api_key=_read_secret_file(Path(key_file), f"{API_KEY_FILE_ENV} file {key_file}"),
        api_secret=_read_secret_file(
            Path(secret_file), f"{API_SECRET_FILE_ENV} file {secret_file}"
        ),
    )


def _from_env(env: Mapping[str, str]) -> Credentials | None:
    key = env.get(API_KEY_ENV)
    secret = env.get(API_SECRET_ENV)
    if key is None and secret is None:
        return None
    if key is None or secret is None:
        missing = API_KEY_ENV if key is None else API_SECRET_ENV
        present = API_SECRET_ENV if key is None else API_KEY_ENV
        raise CredentialsError(f"{present} is set but {missing} is not; set both")
    return Credentials(
        api_key=_check_value(key, f"environment variable {API_KEY_ENV}"),
        api_secret=_check_value(secret, f"environment variable {API_SECRET_ENV}"),
    )


def load_credentials(mode: Mode, env: Mapping[str, str] = os.environ) -> Credentials | None:
    """The testnet/live key pair from the first source that has one, or None if no source does.

    Returns None in paper mode: the paper venue's keys are configuration (see
    :func:`credentials_for`). Raises :class:`CredentialsError` for a broken source.
    """
    if mode == "paper":
        return None
    sources = (
        ("systemd-credentials", _from_systemd),
        ("credential-files", _from_files),
        ("environment", _from_env),
    )
    for name, source in sources:
        creds = source(env)
        if creds is not None:
            log.info("credentials_loaded", source=name, mode=mode)
            return creds
    return None


def credentials_for(cfg: HeanConfig, env: Mapping[str, str] = os.environ) -> Credentials:
    """The key pair the engine signs with: the sim's in paper mode, else a required secret pair."""
    if cfg.venue.mode == "paper":
        return Credentials(api_key=cfg.sim.api_key, api_secret=cfg.sim.api_secret)
    creds = load_credentials(cfg.venue.mode, env)
    if creds is None:
        raise CredentialsError(
            f"no Bybit API credentials for {cfg.venue.mode} mode: provide "
            f"$CREDENTIALS_DIRECTORY/{SYSTEMD_KEY_NAME} and {SYSTEMD_SECRET_NAME}, "
            f"or {API_KEY_FILE_ENV} and {API_SECRET_FILE_ENV}, "
            f"or {API_KEY_ENV} and {API_SECRET_ENV}"
        )
    return creds
