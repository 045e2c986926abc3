"""Seeded identifiers: order ids, execution ids, trade ids and message ids look like Bybit's
UUIDs but come from a seeded generator, so a run with the same seed and inputs is identical."""

from __future__ import annotations

import random


class IdGen:
    def __init__(self, seed: int) -> None:
        # A stream of its own: ids never perturb the market's random path.
        self._rng = random.Random(f"hean-sim-ids:{seed}")

    def uuid(self) -> str:
        """A version-4-shaped UUID string, e.g. ``"c6f055d9-7f21-4079-913d-e6523a9cfffa"``."""
        n = self._rng.getrandbits(128)
        n = (n & ~(0xF000 << 64)) | (0x4000 << 64)  # version 4
        n = (n & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
