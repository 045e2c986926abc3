"""Capped exponential backoff with jitter. Pure: no trio, no clocks, the RNG is passed in.

Used by the supervisor between restarts of a child (reconnect storms) and by the REST client
between retries of calls that are safe to repeat. Jitter matters for both: without it, every
engine that lost its connection at the same moment (a Bybit maintenance blip) reconnects at the
same moment, and every retry of a throttled query lands in the same rate-limit window.

The jitter is "equal jitter" by default: the delay is drawn uniformly from
``[ceiling * (1 - jitter), ceiling]`` where ``ceiling = min(cap, base * multiplier**attempt)``.
Keeping a floor (unlike "full jitter", which may draw ~0) guarantees that a flapping child cannot
hammer the venue with near-zero delays, while still spreading retries out.
"""

from __future__ import annotations

import random

from attrs import field, frozen

__all__ = ["Backoff"]


def _non_negative(_inst: object, attribute: object, value: float) -> None:
    if value < 0:
        raise ValueError(f"{getattr(attribute, 'name', 'value')} must be >= 0, got {value}")


def _jitter_range(_inst: object, _attribute: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"jitter must be in [0, 1], got {value}")


@frozen
class Backoff:
    """Delay policy: ``delay(attempt, rng)`` for attempt 0, 1, 2, ...

    Attributes:
        base_s: the ceiling for attempt 0 (seconds).
        cap_s: the largest ceiling ever used, whatever the attempt number.
        multiplier: growth factor of the ceiling per attempt (>= 1).
        jitter: fraction of the ceiling that is randomised (0 = deterministic, 1 = full jitter).
    """

    base_s: float = field(default=0.5, validator=_non_negative)
    cap_s: float = field(default=30.0, validator=_non_negative)
    multiplier: float = field(default=2.0)
    jitter: float = field(default=0.5, validator=_jitter_range)

    def __attrs_post_init__(self) -> None:
        if self.multiplier < 1.0:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s ({self.cap_s}) must be >= base_s ({self.base_s})")

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay for ``attempt`` (0-based), capped at ``cap_s``."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if self.base_s == 0.0 or self.multiplier == 1.0:
            return min(self.base_s, self.cap_s)
        # Grow step by step instead of computing multiplier**attempt (which overflows a float
        # after ~1000 attempts): the loop stops at the cap, so it runs at most
        # log(cap/base)/log(multiplier) times whatever the attempt number.
        delay = self.base_s
        for _ in range(attempt):
            delay *= self.multiplier
            if delay >= self.cap_s:
                return self.cap_s
        return min(delay, self.cap_s)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The jittered delay for ``attempt``: uniform in ``[ceiling*(1-jitter), ceiling]``."""
        ceiling = self.ceiling(attempt)
        floor = ceiling * (1.0 - self.jitter)
        return floor + (ceiling - floor) * rng.random()
