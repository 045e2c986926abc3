"""hean.bybit.book: order-book state from Bybit snapshots and deltas."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.book import BookResult, OrderBook
from hean.bybit.types import BookUpdateType, OrderBookUpdate, PriceLevel

from . import strategies as hs

SYM = "BTCUSDT"


def D(x: str | int) -> Decimal:
    return Decimal(x)


def lv(*pairs: tuple[str, str]) -> tuple[PriceLevel, ...]:
    return tuple((D(p), D(s)) for p, s in pairs)


def upd(
    kind: BookUpdateType,
    u: int,
    bids: tuple[PriceLevel, ...] = (),
    asks: tuple[PriceLevel, ...] = (),
    *,
    depth: int = 50,
    symbol: str = SYM,
) -> OrderBookUpdate:
    return OrderBookUpdate(
        symbol=symbol,
        depth=depth,
        type=kind,
        bids=bids,
        asks=asks,
        update_id=u,
        seq=u * 10,
        ts=1_700_000_000_000 + u,
        cts=1_700_000_000_000 + u - 1,
    )


SNAP = BookUpdateType.SNAPSHOT
DELTA = BookUpdateType.DELTA


def seeded() -> OrderBook:
    book = OrderBook(SYM, 50)
    result = book.apply(
        upd(SNAP, 100, lv(("100", "1"), ("99.5", "2"), ("99", "3")), lv(("101", "1"), ("102", "4")))
    )
    assert result is BookResult.OK
    return book


def test_snapshot_builds_sorted_sides() -> None:
    book = seeded()
    assert book.is_valid
    assert book.update_id == 100
    assert book.seq == 1000
    assert book.cts == 1_700_000_000_099
    assert book.bids() == lv(("100", "1"), ("99.5", "2"), ("99", "3"))
    assert book.asks() == lv(("101", "1"), ("102", "4"))
    assert book.best_bid() == (D(100), D(1))
    assert book.best_ask() == (D(101), D(1))
    assert book.mid_price() == D("100.5")
    assert book.bids(limit=2) == lv(("100", "1"), ("99.5", "2"))
    assert len(book) == 5
    assert not book.is_crossed()


def test_delta_inserts_replaces_and_deletes() -> None:
    book = seeded()
    before = book.bids()  # populate the cache: it must be dropped on change
    result = book.apply(
        upd(
            DELTA,
            101,
            lv(("100", "0"), ("99.5", "7"), ("99.8", "1.5"), ("50", "0")),  # 50: absent, no-op
            lv(("100.9", "2")),
        )
    )
    assert result is BookResult.OK
    assert before != book.bids()
    assert book.bids() == lv(("99.8", "1.5"), ("99.5", "7"), ("99", "3"))
    assert book.asks() == lv(("100.9", "2"), ("101", "1"), ("102", "4"))
    assert book.update_id == 101


def test_price_representation_does_not_matter() -> None:
    book = seeded()
    book.apply(upd(DELTA, 101, lv(("100.00", "0"), ("99.50", "5"))))
    assert book.bids() == lv(("99.5", "5"), ("99", "3"))


def test_delta_before_snapshot_needs_resync() -> None:
    book = OrderBook(SYM, 50)
    assert book.apply(upd(DELTA, 5, lv(("1", "1")))) is BookResult.RESYNC_NEEDED
    assert not book.is_valid
    assert book.bids() == ()


def test_gap_needs_resync_until_next_snapshot() -> None:
    book = seeded()
    assert book.apply(upd(DELTA, 102, lv(("98", "1")))) is BookResult.RESYNC_NEEDED
    assert not book.is_valid
    assert book.update_id == 100  # nothing from the gapped message applied
    assert book.bids() == lv(("100", "1"), ("99.5", "2"), ("99", "3"))
    # Even a delta that would have followed the last good one is refused now.
    assert book.apply(upd(DELTA, 101, lv(("98", "1")))) is BookResult.RESYNC_NEEDED
    # The fresh snapshot after resubscribing may have a lower u.
    assert book.apply(upd(SNAP, 40, lv(("90", "1")), lv(("91", "1")))) is BookResult.OK
    assert bool(book.is_valid)  # bool(): mypy would keep is_valid narrowed to False from above
    assert book.update_id == 40
    assert book.bids() == lv(("90", "1"))
    assert book.apply(upd(DELTA, 41, lv(("90", "2")))) is BookResult.OK


@pytest.mark.parametrize("u", [100, 99, 1000])
def test_stale_or_duplicate_delta_is_a_gap(u: int) -> None:
    book = seeded()
    assert book.apply(upd(DELTA, u)) is BookResult.RESYNC_NEEDED


def test_u_equal_one_resets_even_as_delta() -> None:
    book = seeded()
    assert book.apply(upd(DELTA, 1, lv(("10", "1")), lv(("11", "1")))) is BookResult.OK
    assert book.bids() == lv(("10", "1"))
    assert book.asks() == lv(("11", "1"))
    assert book.update_id == 1
    assert book.apply(upd(DELTA, 2, lv(("10", "0")))) is BookResult.OK
    assert book.bids() == ()


def test_later_snapshot_replaces_everything() -> None:
    book = seeded()
    book.apply(upd(SNAP, 500, lv(("1", "1")), ()))
    assert book.bids() == lv(("1", "1"))
    assert book.asks() == ()
    assert book.best_ask() is None
    assert book.mid_price() is None


def test_depth_one_snapshots_repeating_u_are_fine() -> None:
    book = OrderBook(SYM, 1)
    snap = upd(SNAP, 7, lv(("100", "1")), lv(("101", "1")), depth=1)
    for _ in range(3):
        assert book.apply(snap) is BookResult.OK
    assert book.is_valid
    assert book.best_bid() == (D(100), D(1))


def test_snapshot_zero_sizes_and_duplicates() -> None:
    book = OrderBook(SYM, 50)
    book.apply(upd(SNAP, 3, lv(("100", "1"), ("99", "0"), ("100", "2"))))
    assert book.bids() == lv(("100", "2"))


def test_wrong_symbol_or_depth_is_a_caller_bug() -> None:
    book = seeded()
    with pytest.raises(ValueError, match="ETHUSDT"):
        book.apply(upd(DELTA, 101, symbol="ETHUSDT"))
    with pytest.raises(ValueError, match="@200"):
        book.apply(upd(DELTA, 101, depth=200))


def test_crossed_book_is_reported() -> None:
    book = seeded()
    book.apply(upd(DELTA, 101, lv(("101", "1"))))  # bid at the best ask
    assert book.is_crossed()
    book.apply(upd(DELTA, 102, lv(("101", "0"))))
    assert not book.is_crossed()
    book.apply(upd(DELTA, 103, (), lv(("99.7", "1"))))  # ask below the best bid
    assert book.is_crossed()


def test_invalidate() -> None:
    book = seeded()
    book.invalidate()
    assert not book.is_valid
    assert book.apply(upd(DELTA, 101)) is BookResult.RESYNC_NEEDED


def test_snapshot_method_rebuilds_an_equal_book() -> None:
    book = seeded()
    book.apply(upd(DELTA, 101, lv(("99.9", "1")), lv(("101", "0"))))
    copy = OrderBook(SYM, 50)
    copy.apply(book.snapshot())
    assert copy.bids() == book.bids()
    assert copy.asks() == book.asks()
    assert copy.update_id == book.update_id == 101
    assert "u=101" in repr(book)


# --------------------------------------------------------------------------- properties

_prices = st.integers(min_value=1, max_value=60).map(lambda n: Decimal(n) / 2)
_sizes = st.integers(min_value=0, max_value=5).map(Decimal)  # 0 deletes (often)
_levels = st.lists(st.tuples(_prices, _sizes), max_size=8).map(tuple)


@given(
    _levels.map(lambda ls: tuple((p, s) for p, s in ls if s)),
    _levels.map(lambda ls: tuple((p, s) for p, s in ls if s)),
    st.lists(st.tuples(_levels, _levels), max_size=25),
    st.integers(min_value=2, max_value=10**9),
)
@settings(max_examples=200)
def test_random_deltas_equal_rebuilt_book(
    snap_bids: tuple[PriceLevel, ...],
    snap_asks: tuple[PriceLevel, ...],
    deltas: list[tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]]],
    first_u: int,
) -> None:
    book = OrderBook(SYM, 200)
    assert book.apply(upd(SNAP, first_u, snap_bids, snap_asks, depth=200)) is BookResult.OK
    model_bids = dict(snap_bids)
    model_asks = dict(snap_asks)
    for n, (bids, asks) in enumerate(deltas, start=1):
        assert book.apply(upd(DELTA, first_u + n, bids, asks, depth=200)) is BookResult.OK
        for model, levels in ((model_bids, bids), (model_asks, asks)):
            for price, size in levels:
                if size == 0:
                    model.pop(price, None)
                else:
                    model[price] = size
        book.best_bid()  # interleave reads so cached views are exercised
        book.asks()

    rebuilt = OrderBook(SYM, 200)
    rebuilt.apply(
        upd(
            SNAP,
            first_u + len(deltas),
            tuple(sorted(model_bids.items(), reverse=True)),
            tuple(sorted(model_asks.items())),
            depth=200,
        )
    )
    assert book.bids() == rebuilt.bids()
    assert book.asks() == rebuilt.asks()
    assert book.update_id == rebuilt.update_id
    assert [p for p, _ in book.bids()] == sorted(model_bids, reverse=True)
    assert [p for p, _ in book.asks()] == sorted(model_asks)
    assert book.is_crossed() == (
        bool(model_bids) and bool(model_asks) and max(model_bids) >= min(model_asks)
    )


@given(st.lists(st.integers(min_value=-2, max_value=3), min_size=1, max_size=30))
@settings(max_examples=200)
def test_only_contiguous_deltas_are_accepted(steps: list[int]) -> None:
    """Model: a delta is OK iff the book is valid and u == last_u + 1; a gap sticks."""
    book = OrderBook(SYM, 50)
    book.apply(upd(SNAP, 1000, lv(("1", "1"))))
    last_u, valid = 1000, True
    for step in steps:
        u = last_u + step
        if u == 1:
            continue  # u == 1 is a reset, covered elsewhere
        expected_ok = valid and step == 1
        result = book.apply(upd(DELTA, u))
        assert (result is BookResult.OK) == expected_ok
        if expected_ok:
            last_u = u
        else:
            valid = False
        assert book.is_valid == valid
        assert book.update_id == last_u


@given(hs.orderbook_updates(type=BookUpdateType.SNAPSHOT, depth=50))
@settings(max_examples=100)
def test_snapshot_round_trip_through_book(u: OrderBookUpdate) -> None:
    book = OrderBook(u.symbol, 50)
    book.apply(u)
    assert book.bids() == tuple(sorted(u.bids, reverse=True))
    assert book.asks() == tuple(sorted(u.asks))
