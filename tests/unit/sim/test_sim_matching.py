"""The level-3 book: price-time priority, partial fills, cancels, and its invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hean.sim.matching import OrderBook, Resting


def order(handle: int, is_buy: bool, price: int, qty: int, owner: str = "u") -> Resting:
    return Resting(handle, owner, is_buy, price, qty)


def test_price_priority_then_fifo_within_a_level() -> None:
    book = OrderBook("X")
    a = order(1, False, 101, 5)
    b = order(2, False, 100, 5)
    c = order(3, False, 100, 5)
    for r in (a, b, c):
        book.add(r)
    fills = book.match(True, None, 12)
    assert [(f.maker.handle, f.price, f.qty) for f in fills] == [
        (2, 100, 5),
        (3, 100, 5),
        (1, 101, 2),
    ]
    assert a.leaves == 3
    assert a.alive
    assert not b.alive
    assert not c.alive
    assert book.levels(False, 5) == [(101, 3)]


def test_new_order_joins_the_back_and_waits_for_volume_ahead() -> None:
    book = OrderBook("X")
    first = order(1, True, 100, 4, owner="")
    mine = order(2, True, 100, 1)
    book.add(first)
    book.add(mine)
    assert book.queue_ahead(mine) == 4
    fills = book.match(False, 100, 3)
    assert [f.maker.handle for f in fills] == [1]
    assert mine.leaves == 1
    assert book.queue_ahead(mine) == 1
    book.cancel(first)  # a cancel ahead moves us to the front
    assert book.queue_ahead(mine) == 0
    fills = book.match(False, 100, 1)
    assert [f.maker.handle for f in fills] == [2]
    assert book.best_bid() is None


def test_limit_stops_matching_at_worse_prices() -> None:
    book = OrderBook("X")
    book.add(order(1, True, 99, 5))
    book.add(order(2, True, 98, 5))
    fills = book.match(False, 99, 10)
    assert sum(f.qty for f in fills) == 5
    assert book.best_bid() == 98


def test_reduce_keeps_queue_position_and_updates_level() -> None:
    book = OrderBook("X")
    a = order(1, False, 100, 5)
    b = order(2, False, 100, 5)
    book.add(a)
    book.add(b)
    book.reduce(a, 2)
    assert book.levels(False, 1) == [(100, 7)]
    fills = book.match(True, 100, 2)
    assert [f.maker.handle for f in fills] == [1]
    with pytest.raises(ValueError, match="cannot reduce"):
        book.reduce(b, 6)


def test_add_refuses_a_crossing_order_and_a_live_one() -> None:
    book = OrderBook("X")
    ask = order(1, False, 100, 1)
    book.add(ask)
    with pytest.raises(ValueError, match="cross"):
        book.add(order(2, True, 100, 1))
    with pytest.raises(ValueError, match="already resting"):
        book.add(ask)
    assert book.crosses(True, 100)
    assert not book.crosses(True, 99)


def test_available_and_levels_beyond() -> None:
    book = OrderBook("X")
    for i, price in enumerate((100, 101, 102)):
        book.add(order(i, False, price, 3))
    assert book.available(True, 101, 100) == 6
    assert book.available(True, None, 4) == 4
    assert [lv.price for lv in book.levels_beyond(False, 100)] == [101, 102]
    book.add(order(9, True, 90, 1))
    assert [lv.price for lv in book.levels_beyond(True, 91)] == [90]


def test_cancel_is_idempotent_and_drops_empty_levels() -> None:
    book = OrderBook("X")
    a = order(1, True, 100, 2)
    book.add(a)
    v = book.version
    book.cancel(a)
    book.cancel(a)
    assert book.best_bid() is None
    assert book.version == v + 1
    assert book.levels(True, 10) == []


ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.booleans(), st.integers(90, 110), st.integers(1, 10)),
        st.tuples(st.just("take"), st.booleans(), st.integers(90, 110), st.integers(1, 30)),
        st.tuples(st.just("cancel"), st.integers(0, 200)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_book_invariants_under_random_flow(actions: list[tuple[object, ...]]) -> None:
    """Never crossed; fills never exceed the incoming or resting quantity; L2 == live L3."""
    book = OrderBook("X")
    placed: list[Resting] = []
    original: dict[int, int] = {}
    filled: dict[int, int] = {}
    for action in actions:
        if action[0] == "cancel":
            if placed:
                book.cancel(placed[int(action[1]) % len(placed)])  # type: ignore[call-overload]
        else:
            _, is_buy, price, qty = action
            assert isinstance(is_buy, bool)
            assert isinstance(price, int)
            assert isinstance(qty, int)
            fills = book.match(is_buy, price, qty)
            assert sum(f.qty for f in fills) <= qty
            for f in fills:
                assert (f.price <= price) if is_buy else (f.price >= price)
                filled[f.maker.handle] = filled.get(f.maker.handle, 0) + f.qty
            rest = qty - sum(f.qty for f in fills)
            if action[0] == "add" and rest > 0:
                r = order(len(placed), is_buy, price, rest)
                book.add(r)
                placed.append(r)
                original[r.handle] = rest
        assert not book.is_crossed()
        for h, q in filled.items():
            assert q <= original[h]
        for is_buy in (True, False):
            levels = book.levels(is_buy, 1000)
            live: dict[int, int] = {}
            for r in book.orders():
                if r.is_buy is is_buy:
                    live[r.price] = live.get(r.price, 0) + r.leaves
            assert dict(levels) == live
            prices = [p for p, _ in levels]
            assert prices == sorted(prices, reverse=is_buy)
