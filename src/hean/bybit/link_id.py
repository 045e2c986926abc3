"""Deterministic ``orderLinkId``s: the engine's idempotency key towards Bybit. Pure.

Bybit accepts at most 36 characters of ``[A-Za-z0-9_-]`` and treats an ``orderLinkId`` as never
reusable (a duplicate is answered 110072, "the first one landed"). The engine derives the id from
``(strategy, signal_id, purpose)`` so that a retry after a timeout, or a restart that replays the
journal, sends the *same* id and can never double an order.

Layout: ``{strategy:<=8}-{purpose:<=6}-{hash:20}`` (at most 36 chars). The two readable parts
make ids recognisable in Bybit's UI and logs; they are lossy (non-alphanumerics dropped, cut
short), so uniqueness comes from the hash, which covers the *full* inputs: 20 base-32 characters
are 100 bits of BLAKE2b, far beyond any realistic number of orders for a birthday collision. Hash
characters are lowercase so that ids stay distinct even if something downstream folds case.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from typing import Final

__all__ = ["MAX_LEN", "is_valid_order_link_id", "make_order_link_id"]

MAX_LEN: Final = 36
_VALID: Final = re.compile(r"[A-Za-z0-9_-]{1,36}")
_STRATEGY_CHARS: Final = 8
_PURPOSE_CHARS: Final = 6
_HASH_CHARS: Final = 20  # 100 bits
_PERSON: Final = b"hean-olid-v1"  # domain separation: these digests mean nothing elsewhere


def _readable(text: str, limit: int) -> str:
    """ASCII letters/digits of ``text`` (accents folded away), at most ``limit``; ``x`` if none."""
    folded = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in folded if ch.isascii() and ch.isalnum())
    return kept[:limit] or "x"


def _encode(part: str) -> bytes:
    # Length-prefixing makes the encoding injective: ("ab", "c") and ("a", "bc") hash differently.
    # surrogatepass keeps even lone surrogates (legal in a Python str) encodable.
    raw = part.encode("utf-8", "surrogatepass")
    return len(raw).to_bytes(8, "big") + raw


def make_order_link_id(strategy: str, signal_id: str, purpose: str) -> str:
    """The ``orderLinkId`` for one order intent; the same inputs always give the same id."""
    digest = hashlib.blake2b(
        _encode(strategy) + _encode(signal_id) + _encode(purpose), digest_size=16, person=_PERSON
    ).digest()
    tag = base64.b32encode(digest).decode("ascii").lower()[:_HASH_CHARS]
    link_id = f"{_readable(strategy, _STRATEGY_CHARS)}-{_readable(purpose, _PURPOSE_CHARS)}-{tag}"
    assert is_valid_order_link_id(link_id), link_id
    return link_id


def is_valid_order_link_id(s: str) -> bool:
    """Would Bybit accept ``s`` as an ``orderLinkId``? (1-36 chars of ``[A-Za-z0-9_-]``)."""
    return _VALID.fullmatch(s) is not None
