"""HEAN: a trading engine for Bybit v5 USDT perpetuals on Trio."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hean")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
