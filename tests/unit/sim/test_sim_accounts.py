"""Positions, PnL, fees, margin and the wallet of the venue's accounts."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hean.bybit.types import Side
from hean.sim.accounts import (
    Account,
    OpenOrderMargin,
    PositionState,
    fee_for,
    orders_initial_margin,
)

D = Decimal


def test_open_add_and_close_long_realises_pnl() -> None:
    pos = PositionState("BTCUSDT")
    pos.apply_fill(Side.BUY, D("1"), D("100"), D("0"), 1, 1)
    pos.apply_fill(Side.BUY, D("1"), D("110"), D("0"), 2, 2)
    assert pos.size == 2
    assert pos.entry_price == D("105")
    r = pos.apply_fill(Side.SELL, D("0.5"), D("120"), D("0.1"), 3, 3)
    assert r.closed_size == D("0.5")
    assert r.realised == D("7.5")
    assert pos.size == D("1.5")
    assert pos.entry_price == D("105")
    assert pos.cur_realised == D("7.4")
    assert pos.unrealised(D("100")) == D("-7.5")
    p = pos.to_position(mark=D("100"), leverage=D(10))
    assert p.side is Side.BUY
    assert p.size == D("1.5")
    assert p.position_value == D("157.5")
    assert p.position_im == D("15.75")
    assert p.seq == 3


def test_short_and_flip_through_zero() -> None:
    pos = PositionState("X")
    pos.apply_fill(Side.SELL, D("2"), D("50"), D("0"), 1, 1)
    assert pos.side is Side.SELL
    assert pos.unrealised(D("40")) == D("20")
    r = pos.apply_fill(Side.BUY, D("3"), D("40"), D("0"), 2, 2)
    assert r.closed_size == D("2")
    assert r.realised == D("20")
    assert pos.size == D("1")
    assert pos.entry_price == D("40")
    assert pos.cur_realised == D("0")  # a new holding started at the flip
    assert pos.cum_realised == D("20")
    pos.apply_fill(Side.SELL, D("1"), D("40"), D("0"), 3, 3)
    flat = pos.to_position(mark=D("40"), leverage=D(10))
    assert flat.side is None
    assert flat.size == 0
    assert flat.entry_price == 0


def test_fee_rounding_and_rebate() -> None:
    assert fee_for(D("95000.1") * D("0.001"), D("0.00055")) == D("0.05225006")
    assert fee_for(D("100"), D("-0.0001")) == D("-0.01")


def test_orders_margin_nets_against_position_and_takes_larger_side() -> None:
    lev = D(10)
    buys = [OpenOrderMargin(Side.BUY, D("1"), D("100"))]
    sells = [OpenOrderMargin(Side.SELL, D("2"), D("100"))]
    assert orders_initial_margin(D(0), buys, lev) == D("10")
    assert orders_initial_margin(D(0), buys + sells, lev) == D("20")
    # A long of 1.5 absorbs 1.5 of the 2 sold: only 0.5 is charged on the sell side.
    assert orders_initial_margin(D("1.5"), sells, lev) == D("5")
    assert orders_initial_margin(D("-1"), buys, lev) == D("0")
    ro = [OpenOrderMargin(Side.SELL, D("5"), D("100"), reduce_only=True)]
    assert orders_initial_margin(D(0), ro, lev) == D("0")


def test_wallet_fields() -> None:
    acct = Account(api_key="k", api_secret="s", wallet_balance=D("1000"))
    acct.apply_fill("X", Side.BUY, D("1"), D("100"), D("0.055"), 1, 1)
    w = acct.wallet({"X": D("110")}, order_im=D("5"))
    assert w.total_wallet_balance == D("999.945")
    assert w.total_perp_upl == D("10")
    assert w.total_equity == D("1009.945")
    assert w.total_initial_margin == D("15")  # 10 position + 5 orders
    assert w.total_available_balance == D("994.945")
    coin = w.coin("USDT")
    assert coin is not None
    assert coin.cum_realised_pnl == D("-0.055")
    assert "s" not in repr(acct).split("api_key")[0]
    assert "api_secret" not in repr(acct)


fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 50).map(lambda n: D(n) / 10),
        st.integers(900, 1100).map(lambda n: D(n) / 10),
        st.sampled_from([D("0.00055"), D("0.0002"), D("-0.0001")]),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fills)
def test_position_is_signed_sum_and_wallet_moves_by_realised_minus_fees(
    seq: list[tuple[Side, Decimal, Decimal, Decimal]],
) -> None:
    acct = Account(api_key="k", api_secret="s", wallet_balance=D("1000"))
    signed = D(0)
    realised = D(0)
    fees = D(0)
    for i, (side, qty, price, rate) in enumerate(seq):
        fee = fee_for(qty * price, rate)
        r = acct.apply_fill("X", side, qty, price, fee, i, i)
        signed += qty * side.sign
        realised += r.realised
        fees += fee
        assert r.closed_size <= qty
        pos = acct.positions["X"]
        assert pos.size == signed
        assert pos.entry_value >= 0
        assert (pos.entry_value == 0) == (pos.size == 0)
    assert acct.wallet_balance - D("1000") == realised - fees
    assert acct.cum_realised == realised - fees
