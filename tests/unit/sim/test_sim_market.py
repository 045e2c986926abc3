"""The synthetic market: determinism, realism properties and venue-wide invariants."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.errors import BybitError
from hean.bybit.types import Execution
from hean.sim import Venue, VenueSettings
from hean.sim.market import ModelParams

D = Decimal
T0 = 1_767_225_600_000


def make(
    seed: int = 11,
    volatility: float = 0.6,
    symbols: tuple[str, ...] = ("BTCUSDT",),
    model: ModelParams | None = None,
) -> Venue:
    v = Venue(
        VenueSettings(
            seed=seed,
            symbols=symbols,
            initial_balance_usdt=D("100000"),
            maker_fee_rate=D("0.0002"),
            taker_fee_rate=D("0.00055"),
            volatility=volatility,
            tick_interval_ms=100,
        ),
        model=model,
    )
    v.open_account("k", "s")
    return v


def create(v: Venue, now: int, **params: Any) -> dict[str, Any]:
    body = {"category": "linear", "symbol": "BTCUSDT", **params}
    return v.handle("/v5/order/create", body, api_key="k", now_ms=now)


def run_script(seed: int) -> list[object]:
    """A fixed sequence of calls; returns everything observable."""
    v = make(seed, symbols=("BTCUSDT", "ETHUSDT"))
    out: list[object] = []
    now = T0
    for i in range(200):
        now += 100
        v.advance(now)
        if i % 20 == 5:
            bid = v.book_levels("BTCUSDT", 1)[0][0][0]
            create(v, now, side="Buy", orderType="Limit", qty="0.002", price=str(bid))
        if i % 50 == 7:
            create(v, now, side="Sell", orderType="Market", qty="0.001")
        out.append(v.drain_events())
        out.append(v.book_levels("ETHUSDT", 10))
    return out


def test_same_seed_same_calls_same_events() -> None:
    a = run_script(5)
    b = run_script(5)
    assert a == b
    assert a != run_script(6)


def test_fair_price_path_does_not_depend_on_user_activity() -> None:
    quiet, busy = make(21), make(21)
    now = T0
    marks_q, marks_b = [], []
    for i in range(300):
        now += 100
        if i % 3 == 0:
            create(busy, now, side="Sell" if i % 2 else "Buy", orderType="Market", qty="0.005")
        quiet.advance(now)
        busy.advance(now)
        marks_q.append(quiet.ticker("BTCUSDT", now).mark_price)
        marks_b.append(busy.ticker("BTCUSDT", now).mark_price)
    assert marks_q == marks_b


def test_book_is_two_sided_tight_and_never_crossed() -> None:
    v = make(3, symbols=("BTCUSDT", "ETHUSDT"))
    now = T0
    spreads = []
    for _ in range(600):
        now += 100
        v.advance(now)
        for sym in ("BTCUSDT", "ETHUSDT"):
            bids, asks = v.book_levels(sym, 1)
            assert bids
            assert asks
            assert bids[0][0] < asks[0][0]
            if sym == "BTCUSDT":
                spreads.append((asks[0][0] - bids[0][0]) / D("0.1"))
    spreads.sort()
    assert spreads[len(spreads) // 2] <= 3  # median spread of a few ticks


def test_realised_volatility_matches_the_setting() -> None:
    v = make(8, volatility=0.6, model=ModelParams(touch_rate=0, depth_rate=0, taker_rate=0))
    model = v._market.models[0]
    logs = []
    for _ in range(20_000):
        model.step(T0)
        logs.append(model.log_fair)
    rets = [b - a for a, b in itertools.pairwise(logs)]
    var = sum(r * r for r in rets) / len(rets)
    annual = math.sqrt(var / 0.1 * 365 * 24 * 3600)
    assert 0.4 < annual < 0.8


def test_resting_order_near_touch_fills_more_than_far_one() -> None:
    v = make(13)
    now = T0
    near_filled = far_filled = 0
    for _round in range(15):
        bid = v.book_levels("BTCUSDT", 1)[0][0][0]
        near = create(v, now, side="Buy", orderType="Limit", qty="0.001", price=str(bid))
        far = create(
            v, now, side="Buy", orderType="Limit", qty="0.001", price=str(bid - D("0.1") * 200)
        )
        for _ in range(50):
            now += 100
            v.advance(now)
        for oid, which in ((near["orderId"], "near"), (far["orderId"], "far")):
            row = v.handle(
                "/v5/order/realtime",
                {"category": "linear", "orderId": oid},
                api_key="k",
                now_ms=now,
            )["list"][0]
            if row["orderStatus"] == "Filled":
                if which == "near":
                    near_filled += 1
                else:
                    far_filled += 1
            else:
                v.handle(
                    "/v5/order/cancel",
                    {"category": "linear", "symbol": "BTCUSDT", "orderId": oid},
                    api_key="k",
                    now_ms=now,
                )
    assert near_filled > far_filled
    assert near_filled >= 5


def test_zero_volatility_market_still_trades() -> None:
    v = make(2, volatility=0.0)
    now = T0
    trades = 0
    for _ in range(100):
        now += 100
        v.advance(now)
        trades += len(v.drain_events().trades)
    assert trades > 0
    assert v.ticker("BTCUSDT", now).mark_price == D("95000.0")


actions = st.lists(
    st.tuples(
        st.sampled_from(["limit", "market", "cancel", "amend", "wait", "reduce"]),
        st.booleans(),
        st.integers(-30, 30),
        st.integers(1, 20),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(actions, st.integers(0, 3))
def test_venue_invariants_under_random_user_flow(
    steps: list[tuple[str, bool, int, int]], seed: int
) -> None:
    """Never crossed; no order overfills; position == signed sum of fills; the wallet moved by
    exactly realised PnL minus fees; every execId unique."""
    v = make(seed)
    now = T0
    open_ids: list[str] = []
    executions: list[Execution] = []
    for kind, buy, offset, n in steps:
        now += 100
        side = "Buy" if buy else "Sell"
        bid, ask = v.book_levels("BTCUSDT", 1)
        ref = bid[0][0] if buy else ask[0][0]
        price = str(ref + D("0.1") * offset * (-1 if buy else 1))
        try:
            if kind == "limit":
                res = create(
                    v,
                    now,
                    side=side,
                    orderType="Limit",
                    qty=str(D(n) / 1000),
                    price=price,
                    timeInForce="PostOnly" if offset % 3 == 0 else "GTC",
                )
                open_ids.append(res["orderId"])
            elif kind == "market":
                create(v, now, side=side, orderType="Market", qty=str(D(n) / 1000))
            elif kind == "reduce":
                create(v, now, side=side, orderType="Market", qty=str(D(n) / 1000), reduceOnly=True)
            elif kind == "cancel" and open_ids:
                v.handle(
                    "/v5/order/cancel",
                    {
                        "category": "linear",
                        "symbol": "BTCUSDT",
                        "orderId": open_ids.pop(n % len(open_ids)),
                    },
                    api_key="k",
                    now_ms=now,
                )
            elif kind == "amend" and open_ids:
                v.handle(
                    "/v5/order/amend",
                    {
                        "category": "linear",
                        "symbol": "BTCUSDT",
                        "orderId": open_ids[n % len(open_ids)],
                        "price": price,
                    },
                    api_key="k",
                    now_ms=now,
                )
        except BybitError:
            pass  # rejections (110001 after a fill, 110017, 34040 ...) are legitimate outcomes
        for _ in range(n % 5):
            now += 100
            v.advance(now)
        ev = v.drain_events()
        for _key, msg in ev.private:
            if msg.topic == "execution":
                executions.extend(e for e in msg.data if isinstance(e, Execution))
            if msg.topic == "order":
                for o in msg.data:
                    assert o.cum_exec_qty <= o.qty  # type: ignore[union-attr]
        b, a = v.book_levels("BTCUSDT", 1)
        assert not (b and a) or b[0][0] < a[0][0]
    ex = v.exchange
    pos = ex.accounts["k"].position("BTCUSDT")
    assert pos.size == sum((e.exec_qty * e.side.sign for e in executions), D(0))
    realised = sum((e.exec_pnl for e in executions), D(0))
    fees = sum((e.exec_fee for e in executions), D(0))
    assert ex.accounts["k"].wallet_balance - D("100000") == realised - fees
    assert len({e.exec_id for e in executions}) == len(executions)
    for book_order in ex.symbols["BTCUSDT"].book.orders():
        assert book_order.leaves > 0
