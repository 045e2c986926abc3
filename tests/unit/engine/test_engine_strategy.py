"""The demo maker's pure core: wanted quotes, skew, limits, keep/cancel/place planning, ids."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.instruments import is_on_grid
from hean.bybit.types import BookUpdateType, OrderBookUpdate, Side, TimeInForce
from hean.engine.strategy import (
    LiveQuote,
    MakerParams,
    Quote,
    SignalIds,
    desired_quotes,
    plan_quotes,
    quote_signal,
)
from hean.sim.instruments_catalog import default_instrument

D = Decimal
BTC = default_instrument("BTCUSDT")  # tick 0.1, step 0.001, min notional 5
PARAMS = MakerParams(
    symbol="BTCUSDT",
    order_notional=D("200"),
    quote_offset_ticks=2,
    max_position_notional=D("1000"),
)
NOW_MS = 1_767_225_600_000


def book(bid: str, ask: str, *, ts: int = NOW_MS) -> OrderBookUpdate:
    return OrderBookUpdate(
        symbol="BTCUSDT",
        depth=50,
        type=BookUpdateType.SNAPSHOT,
        bids=((D(bid), D("1")),),
        asks=((D(ask), D("1")),),
        update_id=1,
        seq=1,
        ts=ts,
        cts=ts,
    )


def test_flat_quotes_are_symmetric_around_the_mid() -> None:
    quotes = desired_quotes(PARAMS, BTC, D("100000.0"), D("100000.2"), D("0"))
    # mid 100000.1: bid 2 ticks below (rounded down), ask 2 ticks above (rounded up)
    assert quotes[Side.BUY] == Quote(Side.BUY, D("99999.9"), D("0.001"))
    assert quotes[Side.SELL] == Quote(Side.SELL, D("100000.3"), D("0.001"))


def test_long_position_skews_the_bid_away_and_the_ask_closer() -> None:
    flat = desired_quotes(PARAMS, BTC, D("100000.0"), D("100000.2"), D("0"))
    long = desired_quotes(PARAMS, BTC, D("100000.0"), D("100000.2"), D("0.005"))  # 500 USDT
    assert long[Side.BUY].price < flat[Side.BUY].price
    assert long[Side.SELL].price < flat[Side.SELL].price


def test_side_that_would_exceed_the_position_limit_is_stopped() -> None:
    quotes = desired_quotes(PARAMS, BTC, D("100000.0"), D("100000.2"), D("0.010"))  # 1000 USDT
    assert Side.BUY not in quotes
    assert Side.SELL in quotes  # reducing is always allowed
    short = desired_quotes(PARAMS, BTC, D("100000.0"), D("100000.2"), D("-0.010"))
    assert Side.SELL not in short
    assert Side.BUY in short


def test_order_below_the_minimum_is_not_quoted() -> None:
    tiny = MakerParams("BTCUSDT", D("50"), 2, D("1000"))  # 50 USDT < one 0.001 step at 100k
    assert desired_quotes(tiny, BTC, D("100000.0"), D("100000.2"), D("0")) == {}


@settings(max_examples=150, deadline=None)
@given(
    bid_ticks=st.integers(min_value=100_000, max_value=2_000_000),
    spread=st.integers(min_value=1, max_value=50),
    position_steps=st.integers(min_value=-30, max_value=30),
    offset=st.integers(min_value=0, max_value=10),
)
def test_quotes_are_on_grid_never_cross_and_respect_the_limit(
    bid_ticks: int, spread: int, position_steps: int, offset: int
) -> None:
    params = MakerParams("BTCUSDT", D("200"), offset, D("1000"))
    bid = bid_ticks * BTC.tick_size
    ask = (bid_ticks + spread) * BTC.tick_size
    position = position_steps * BTC.qty_step
    quotes = desired_quotes(params, BTC, bid, ask, position)
    mid = (bid + ask) / 2
    for quote in quotes.values():
        assert is_on_grid(quote.price, BTC.tick_size)
        assert is_on_grid(quote.qty, BTC.qty_step)
        projected = position + quote.qty * quote.side.sign
        assert (
            abs(projected) <= abs(position) or abs(projected) * mid <= params.max_position_notional
        )
    if Side.BUY in quotes and Side.SELL in quotes:
        assert quotes[Side.BUY].price < quotes[Side.SELL].price
    if Side.BUY in quotes:
        assert quotes[Side.BUY].price < ask  # a bid never crosses the book
    if Side.SELL in quotes:
        assert quotes[Side.SELL].price > bid


def test_plan_keeps_a_quote_at_the_right_price_and_replaces_a_wrong_one() -> None:
    live = [
        LiveQuote("bid-1", Side.BUY, D("99999.9"), D("0.001")),  # right price: keep
        LiveQuote("ask-1", Side.SELL, D("100000.9"), D("0.001")),  # stale price: replace
    ]
    plan = plan_quotes(PARAMS, BTC, book("100000.0", "100000.2"), D("0"), live, now_ms=NOW_MS)
    assert [(c.link_id, c.reason) for c in plan.cancels] == [("ask-1", "requote")]
    assert plan.places == (Quote(Side.SELL, D("100000.3"), D("0.001")),)
    assert plan.idle is None


def test_plan_cancels_duplicates_and_ignores_quotes_being_cancelled() -> None:
    live = [
        LiveQuote("bid-1", Side.BUY, D("99999.9"), D("0.001")),
        LiveQuote("bid-2", Side.BUY, D("99999.9"), D("0.001")),
        LiveQuote("ask-old", Side.SELL, D("100000.3"), D("0.001"), cancelling=True),
    ]
    plan = plan_quotes(PARAMS, BTC, book("100000.0", "100000.2"), D("0"), live, now_ms=NOW_MS)
    assert [(c.link_id, c.reason) for c in plan.cancels] == [("bid-2", "duplicate")]
    assert plan.places == (Quote(Side.SELL, D("100000.3"), D("0.001")),)


def test_plan_without_a_fresh_book_cancels_everything_and_places_nothing() -> None:
    live = [LiveQuote("bid-1", Side.BUY, D("99999.9"), D("0.001"))]
    stale = book("100000.0", "100000.2", ts=NOW_MS - 60_000)
    for the_book, reason in ((None, "no_book"), (stale, "stale_book")):
        plan = plan_quotes(PARAMS, BTC, the_book, D("0"), live, now_ms=NOW_MS)
        assert plan.idle == reason
        assert [c.link_id for c in plan.cancels] == ["bid-1"]
        assert plan.places == ()


def test_plan_stops_the_side_at_the_limit_and_cancels_its_quote() -> None:
    live = [LiveQuote("bid-1", Side.BUY, D("99999.9"), D("0.001"))]
    plan = plan_quotes(PARAMS, BTC, book("100000.0", "100000.2"), D("0.010"), live, now_ms=NOW_MS)
    assert [(c.link_id, c.reason) for c in plan.cancels] == [("bid-1", "side_stopped")]
    assert [q.side for q in plan.places] == [Side.SELL]


def test_signal_ids_are_deterministic_unique_and_epoch_scoped() -> None:
    a, b = SignalIds(NOW_MS), SignalIds(NOW_MS)
    first = [a.next("BTCUSDT", Side.BUY), a.next("BTCUSDT", Side.SELL)]
    assert first == [b.next("BTCUSDT", Side.BUY), b.next("BTCUSDT", Side.SELL)]
    assert len(set(first)) == 2
    later = SignalIds(NOW_MS + 1)  # a restarted engine: a new epoch, new ids
    assert later.next("BTCUSDT", Side.BUY) not in first


def test_quote_signal_is_a_post_only_limit_order() -> None:
    signal = quote_signal(PARAMS, Quote(Side.BUY, D("99999.9"), D("0.001")), "sid", 1.5)
    assert signal.time_in_force is TimeInForce.POST_ONLY
    assert signal.price == D("99999.9")
    assert signal.strategy == "demo_maker"
    assert signal.created_at == 1.5
