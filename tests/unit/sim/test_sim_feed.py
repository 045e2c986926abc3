"""The public feed core: orderbook u/seq semantics, depth cadence, ticker deltas, trade batching."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.types import BookUpdateType, PublicTrade, Side, Ticker
from hean.sim.feed import (
    DEPTH1_REPUSH_MS,
    BookFeed,
    PublicTopic,
    TickerFeed,
    TopicKind,
    parse_public_topic,
    trade_messages,
)

D = Decimal


def lv(*pairs: tuple[str, str]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((D(p), D(s)) for p, s in pairs)


def test_first_publish_is_snapshot_with_u1_then_deltas_count_up() -> None:
    feed = BookFeed("BTCUSDT", 50)
    m1 = feed.publish(lv(("100", "1")), lv(("101", "2")), seq=10, now_ms=1000, cts=999)
    assert m1 is not None
    assert m1.type is BookUpdateType.SNAPSHOT
    assert (m1.update_id, m1.seq, m1.ts, m1.cts) == (1, 10, 1000, 999)
    m2 = feed.publish(lv(("100", "3")), lv(("102", "2")), seq=12, now_ms=1020, cts=1019)
    assert m2 is not None
    assert m2.type is BookUpdateType.DELTA
    assert m2.update_id == 2
    assert m2.seq == 12
    assert m2.bids == lv(("100", "3"))
    # 101 removed (size 0), 102 inserted; asks ascending
    assert m2.asks == lv(("101", "0"), ("102", "2"))


def test_no_change_no_push_and_cadence_respected() -> None:
    feed = BookFeed("BTCUSDT", 200)
    assert feed.publish(lv(("1", "1")), (), seq=1, now_ms=0, cts=0) is not None
    # change but too early for depth 200 (100 ms)
    assert feed.publish(lv(("1", "2")), (), seq=2, now_ms=50, cts=0) is None
    assert feed.due_at(dirty=True) == 100
    assert feed.due_at(dirty=False) is None
    m = feed.publish(lv(("1", "2")), (), seq=2, now_ms=100, cts=0)
    assert m is not None
    assert m.update_id == 2
    assert feed.publish(lv(("1", "2")), (), seq=2, now_ms=300, cts=0) is None


def test_depth_truncates_levels_and_emits_entry_and_exit() -> None:
    feed = BookFeed("BTCUSDT", 1)
    m = feed.publish(lv(("100", "1"), ("99", "1")), lv(("101", "1")), seq=1, now_ms=0, cts=0)
    assert m is not None
    assert m.bids == lv(("100", "1"))
    # depth 1 is snapshot-only: a change is a new snapshot with u+1
    m = feed.publish(lv(("99", "1")), lv(("101", "1")), seq=2, now_ms=10, cts=0)
    assert m is not None
    assert m.type is BookUpdateType.SNAPSHOT
    assert m.update_id == 2
    assert m.bids == lv(("99", "1"))


def test_depth1_repushes_same_u_every_3s_when_unchanged() -> None:
    feed = BookFeed("ETHUSDT", 1)
    feed.publish(lv(("100", "1")), lv(("101", "1")), seq=5, now_ms=0, cts=0)
    assert feed.publish(lv(("100", "1")), lv(("101", "1")), seq=5, now_ms=2999, cts=0) is None
    assert feed.due_at(dirty=False) == DEPTH1_REPUSH_MS
    m = feed.publish(lv(("100", "1")), lv(("101", "1")), seq=5, now_ms=3000, cts=0)
    assert m is not None
    assert m.type is BookUpdateType.SNAPSHOT
    assert m.update_id == 1
    assert m.ts == 3000


def test_snapshot_for_new_subscriber_is_last_published_state() -> None:
    feed = BookFeed("BTCUSDT", 50)
    assert feed.snapshot(0) is None
    feed.publish(lv(("100", "1")), lv(("101", "1")), seq=1, now_ms=0, cts=0)
    feed.publish(lv(("100", "2")), lv(("101", "1")), seq=2, now_ms=20, cts=0)
    snap = feed.snapshot(25)
    assert snap is not None
    assert snap.update_id == 2
    assert snap.bids == lv(("100", "2"))
    assert snap.ts == 25


levels = st.dictionaries(st.integers(1, 40).map(D), st.integers(1, 5).map(D), max_size=12)


@settings(max_examples=150)
@given(st.lists(st.tuples(levels, levels), min_size=1, max_size=12), st.sampled_from([1, 50, 200]))
def test_snapshot_plus_deltas_reconstructs_top_levels(
    views: list[tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]], depth: int
) -> None:
    feed = BookFeed("X", depth)
    book_b: dict[Decimal, Decimal] = {}
    book_a: dict[Decimal, Decimal] = {}
    last_u = 0
    now = 0
    for bids, asks in views:
        now += 1000
        b = tuple(sorted(bids.items(), reverse=True))
        a = tuple(sorted(asks.items()))
        msg = feed.publish(b, a, seq=now, now_ms=now, cts=now)
        if msg is None:
            continue
        if msg.type is BookUpdateType.SNAPSHOT:
            book_b, book_a = dict(msg.bids), dict(msg.asks)
        else:
            assert msg.update_id == last_u + 1
            for p, s in msg.bids:
                if s == 0:
                    del book_b[p]
                else:
                    book_b[p] = s
            for p, s in msg.asks:
                if s == 0:
                    del book_a[p]
                else:
                    book_a[p] = s
        assert msg.update_id >= last_u
        last_u = msg.update_id
        assert book_b == dict(b[:depth])
        assert book_a == dict(a[:depth])


def test_ticker_snapshot_then_changed_fields_only() -> None:
    feed = TickerFeed("BTCUSDT")
    t1 = Ticker("BTCUSDT", last_price=D("100"), mark_price=D("100.1"), bid1_price=D("99.9"))
    m1 = feed.publish(t1, cs=1, now_ms=0)
    assert m1 is not None
    assert m1.type is BookUpdateType.SNAPSHOT
    assert m1.ticker == t1
    assert feed.publish(t1, cs=2, now_ms=100) is None  # unchanged
    t2 = Ticker("BTCUSDT", last_price=D("101"), mark_price=D("100.1"), bid1_price=D("99.9"))
    feed2 = TickerFeed("BTCUSDT")
    feed2.publish(t1, cs=1, now_ms=0)
    assert feed2.publish(t2, cs=3, now_ms=50) is None  # cadence: 100 ms
    m2 = feed2.publish(t2, cs=3, now_ms=100)
    assert m2 is not None
    assert m2.type is BookUpdateType.DELTA
    assert m2.ticker == Ticker("BTCUSDT", last_price=D("101"))
    assert m2.cs == 3
    snap = feed2.snapshot(120)
    assert snap is not None
    assert snap.ticker == t2


def test_trade_messages_group_by_symbol_and_chunk() -> None:
    def tr(i: int, sym: str) -> PublicTrade:
        return PublicTrade(i, sym, Side.BUY, D("1"), D("100"), str(i))

    trades = [tr(i, "BTCUSDT") for i in range(1030)] + [tr(5000, "ETHUSDT")]
    msgs = trade_messages(trades, 42)
    assert [(m.topic, len(m.trades)) for m in msgs] == [
        ("publicTrade.BTCUSDT", 1024),
        ("publicTrade.BTCUSDT", 6),
        ("publicTrade.ETHUSDT", 1),
    ]
    assert msgs[0].trades[0].trade_id == "0"
    assert msgs[1].trades[-1].trade_id == "1029"
    assert all(m.ts == 42 for m in msgs)


def test_parse_public_topic() -> None:
    syms = ["BTCUSDT"]
    assert parse_public_topic("orderbook.50.BTCUSDT", syms) == PublicTopic(
        TopicKind.ORDERBOOK, "BTCUSDT", 50
    )
    assert parse_public_topic("tickers.BTCUSDT", syms) == PublicTopic(TopicKind.TICKERS, "BTCUSDT")
    assert parse_public_topic("publicTrade.BTCUSDT", syms) is not None
    for bad in [
        "orderbook.500.BTCUSDT",
        "orderbook.50.XXXUSDT",
        "kline.1.BTCUSDT",
        "tickers",
        5,
        "orderbook.x.BTCUSDT",
        "publicTrade.ETHUSDT",
    ]:
        assert parse_public_topic(bad, syms) is None
    assert PublicTopic(TopicKind.ORDERBOOK, "BTCUSDT", 1).name == "orderbook.1.BTCUSDT"
