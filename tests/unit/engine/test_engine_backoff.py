"""Backoff: capped exponential growth, bounded jitter, reproducible with a seeded RNG."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.engine.backoff import Backoff


def test_ceiling_doubles_then_caps() -> None:
    b = Backoff(base_s=0.5, cap_s=30.0, multiplier=2.0)
    assert [b.ceiling(n) for n in range(8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_huge_attempt_numbers_do_not_overflow() -> None:
    b = Backoff(base_s=0.5, cap_s=30.0)
    assert b.ceiling(10**6) == 30.0
    assert Backoff(base_s=1.0, cap_s=5.0, multiplier=1.0).ceiling(10**9) == 1.0
    assert Backoff(base_s=0.0, cap_s=5.0).ceiling(10**9) == 0.0


def test_zero_jitter_is_deterministic() -> None:
    b = Backoff(base_s=1.0, cap_s=10.0, jitter=0.0)
    rng = random.Random(1)
    assert [b.delay(n, rng) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_seeded_rng_reproduces_the_sequence() -> None:
    b = Backoff()
    first = [b.delay(n, random.Random(42)) for n in range(6)]
    again = [b.delay(n, random.Random(42)) for n in range(6)]
    assert first == again
    assert len({b.delay(3, random.Random(seed)) for seed in range(20)}) > 1  # really jittered


@settings(max_examples=200)
@given(
    base=st.floats(0.001, 10.0),
    extra=st.floats(0.0, 100.0),
    multiplier=st.floats(1.0, 4.0),
    jitter=st.floats(0.0, 1.0),
    attempt=st.integers(0, 200),
    seed=st.integers(0, 2**32),
)
def test_delay_stays_within_the_jitter_band(
    base: float, extra: float, multiplier: float, jitter: float, attempt: int, seed: int
) -> None:
    b = Backoff(base_s=base, cap_s=base + extra, multiplier=multiplier, jitter=jitter)
    ceiling = b.ceiling(attempt)
    assert base <= ceiling + 1e-12
    assert ceiling <= b.cap_s
    d = b.delay(attempt, random.Random(seed))
    assert ceiling * (1 - jitter) - 1e-9 <= d <= ceiling + 1e-9


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": -1.0},
        {"base_s": 2.0, "cap_s": 1.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Backoff(**kwargs)


def test_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt must be"):
        Backoff().ceiling(-1)
