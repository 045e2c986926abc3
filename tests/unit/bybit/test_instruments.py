"""hean.bybit.instruments: tick/step rounding and Bybit's order rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from attrs import evolve
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hean.bybit.instruments import (
    OrderRuleViolation,
    check_order,
    is_on_grid,
    round_price,
    round_qty,
    round_to_step,
)
from hean.bybit.types import Instrument

from . import strategies as hs

D = Decimal

BTC = Instrument(
    symbol="BTCUSDT",
    status="Trading",
    base_coin="BTC",
    quote_coin="USDT",
    settle_coin="USDT",
    tick_size=D("0.10"),
    min_price=D("0.10"),
    max_price=D("1999999.80"),
    qty_step=D("0.001"),
    min_order_qty=D("0.001"),
    max_order_qty=D("1190"),
    max_mkt_order_qty=D("500"),
    min_notional_value=D("5"),
)


# --------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("price", "rounding", "expected"),
    [
        ("65000.17", "down", "65000.1"),
        ("65000.17", "up", "65000.2"),
        ("65000.17", "nearest", "65000.2"),
        ("65000.14", "nearest", "65000.1"),
        ("65000.15", "nearest", "65000.2"),  # ties go up
        ("65000.1", "down", "65000.1"),  # on the grid: unchanged
        ("65000.1", "up", "65000.1"),
        ("0.05", "down", "0"),
    ],
)
def test_round_price(price: str, rounding: str, expected: str) -> None:
    assert round_price(BTC, D(price), rounding=rounding) == D(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tick", "price", "down", "up", "nearest"),
    [
        ("0.5", "100.3", "100", "100.5", "100.5"),
        ("0.25", "100.3", "100.25", "100.5", "100.25"),
        ("5", "101", "100", "105", "100"),
        ("0.5", "-100.3", "-100.5", "-100", "-100.5"),  # floor/ceiling also for negatives
    ],
)
def test_round_to_non_decimal_steps(
    tick: str, price: str, down: str, up: str, nearest: str
) -> None:
    assert round_to_step(D(price), D(tick), "down") == D(down)
    assert round_to_step(D(price), D(tick), "up") == D(up)
    assert round_to_step(D(price), D(tick), "nearest") == D(nearest)


def test_round_qty_is_down_only() -> None:
    assert round_qty(BTC, D("0.0129")) == D("0.012")
    assert round_qty(BTC, D("0.012")) == D("0.012")
    assert round_qty(BTC, D("0.0009")) == 0


def test_rounding_ignores_a_low_precision_caller_context() -> None:
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 3
        assert round_price(BTC, D("123456.789")) == D("123456.7")


def test_bad_step_or_mode() -> None:
    with pytest.raises(ValueError, match="positive"):
        round_to_step(D(1), D(0))
    with pytest.raises(ValueError, match="positive"):
        is_on_grid(D(1), D(-1))
    with pytest.raises(ValueError, match="unknown rounding"):
        round_to_step(D(1), D("0.1"), "sideways")  # type: ignore[arg-type]


@given(hs.instruments(), hs.decimals(0, 10**7, max_places=10))
@settings(max_examples=200)
def test_round_qty_properties(inst: Instrument, qty: Decimal) -> None:
    r = round_qty(inst, qty)
    assert r <= qty
    assert is_on_grid(r, inst.qty_step)
    assert qty - r < inst.qty_step


@given(hs.instruments(), hs.decimals(0, 10**7, max_places=10))
@settings(max_examples=200)
def test_round_price_properties(inst: Instrument, price: Decimal) -> None:
    tick = inst.tick_size
    down = round_price(inst, price, rounding="down")
    up = round_price(inst, price, rounding="up")
    nearest = round_price(inst, price, rounding="nearest")
    for r in (down, up, nearest):
        assert is_on_grid(r, tick)
    assert down <= price < down + tick
    assert up - tick < price <= up
    assert abs(nearest - price) * 2 <= tick
    assert nearest in (down, up)


# --------------------------------------------------------------------------- check_order


def test_valid_orders_pass() -> None:
    assert check_order(BTC, qty=D("0.001"), price=D("65000.1"), is_market=False) is None
    assert check_order(BTC, qty=D("0.5"), price=None, is_market=True) is None


@pytest.mark.parametrize(
    ("kwargs", "rule", "code", "msg"),
    [
        (
            {"qty": D("0"), "price": D("65000"), "is_market": False},
            "qty_positive",
            10001,
            "params error: qty err",
        ),
        (
            {"qty": D("0.0015"), "price": D("65000"), "is_market": False},
            "qty_step",
            10001,
            "params error: qty 0.0015 is not a multiple of qtyStep 0.001",
        ),
        (
            {"qty": D("1191"), "price": D("65000"), "is_market": False},
            "max_order_qty",
            10001,
            "The number of contracts exceeds maximum limit allowed: too large, "
            "order_qty:119100000000 > max_qty:119000000000",
        ),
        (
            {"qty": D("501"), "price": None, "is_market": True},
            "max_mkt_order_qty",
            10001,
            "The number of contracts exceeds maximum limit allowed: too large, "
            "order_qty:50100000000 > max_qty:50000000000",
        ),
        (
            {"qty": D("0.01"), "price": None, "is_market": False},
            "price_required",
            10001,
            "params error: price is required for a Limit order",
        ),
        (
            {"qty": D("0.01"), "price": D("65000.15"), "is_market": False},
            "tick_size",
            10001,
            "params error: price 65000.15 is not a multiple of tickSize 0.1",
        ),
        (
            {"qty": D("0.01"), "price": D("2000000"), "is_market": False},
            "price_band",
            110003,
            "Order price is out of permissible range",
        ),
        (
            {"qty": D("0.001"), "price": D("4000"), "is_market": False},
            "min_notional",
            110094,
            "Order does not meet minimum order value 5USDT",
        ),
        (
            {"qty": D("0.001"), "price": None, "is_market": True, "reference_price": D("4999.9")},
            "min_notional",
            110094,
            "Order does not meet minimum order value 5USDT",
        ),
    ],
)
def test_violations_carry_bybit_answers(
    kwargs: dict[str, object], rule: str, code: int, msg: str
) -> None:
    v = check_order(BTC, **kwargs)  # type: ignore[arg-type]
    assert isinstance(v, OrderRuleViolation)
    assert (v.rule, v.ret_code, v.ret_msg) == (rule, code, msg)


def test_min_qty_text_and_limits() -> None:
    inst = evolve(BTC, min_order_qty=D("0.01"))
    v = check_order(inst, qty=D("0.005"), price=D("65000"), is_market=False)
    assert v == OrderRuleViolation(
        field="qty",
        rule="min_order_qty",
        value=D("0.005"),
        ret_code=10001,
        ret_msg="The number of contracts exceeds minimum limit allowed",
        limit=D("0.01"),
    )
    # 0.05 is both off the 0.1 grid and below minPrice: bounds are reported first.
    low = check_order(BTC, qty=D("0.01"), price=D("0.05"), is_market=False)
    assert low is not None
    assert (low.rule, low.ret_code, low.limit) == ("price_band", 110003, D("0.1"))
    # Below minimum and off the step: the minimum wins too.
    tiny = check_order(BTC, qty=D("0.0005"), price=D("65000"), is_market=False)
    assert tiny is not None
    assert tiny.rule == "min_order_qty"


def test_absurd_magnitudes_are_bounds_violations_not_crashes() -> None:
    huge = check_order(BTC, qty=D("1E+999999"), price=D("65000"), is_market=False)
    assert huge is not None
    assert huge.rule == "max_order_qty"
    assert "order_qty:9223372036854775807 > max_qty:119000000000" in huge.ret_msg
    far = check_order(BTC, qty=D("0.01"), price=D("1E+999999"), is_market=False)
    assert far is not None
    assert far.rule == "price_band"
    fine = check_order(BTC, qty=D("0.01"), price=D("65000.1" + "0" * 500), is_market=False)
    assert fine is None
    huge_mkt = check_order(
        BTC, qty=D("0.01"), price=None, is_market=True, reference_price=D("1E+999999")
    )
    assert huge_mkt is None  # notional is enormous, which is not a rule violation
    with pytest.raises(ValueError, match="too large"):
        round_qty(BTC, D("1E+999999"))


def test_market_price_is_ignored_and_notional_needs_a_reference() -> None:
    # Off-tick, out-of-band price on a market order: Bybit ignores it, so do we.
    assert check_order(BTC, qty=D("0.001"), price=D("0.01"), is_market=True) is None
    assert (
        check_order(BTC, qty=D("0.001"), price=None, is_market=True, reference_price=D(5000))
        is None
    )


def test_no_min_notional_when_zero() -> None:
    inst = evolve(BTC, min_notional_value=D(0))
    assert check_order(inst, qty=D("0.001"), price=D("0.1"), is_market=False) is None


@given(
    hs.instruments(),
    hs.decimals(0, 10**7, max_places=4),
    hs.decimals(0, 10**7, max_places=4),
    st.booleans(),
)
@settings(max_examples=200)
def test_check_order_matches_a_plain_model(
    inst: Instrument, qty: Decimal, price: Decimal, is_market: bool
) -> None:
    assume(qty > 0)
    v = check_order(inst, qty=qty, price=price, is_market=is_market, reference_price=price)
    max_qty = inst.max_mkt_order_qty if is_market else inst.max_order_qty
    expected: str | None
    if qty < inst.min_order_qty:
        expected = "min_order_qty"
    elif qty > max_qty:
        expected = "max_order_qty" if not is_market else "max_mkt_order_qty"
    elif qty % inst.qty_step != 0:
        expected = "qty_step"
    elif not is_market and not inst.min_price <= price <= inst.max_price:
        expected = "price_band"
    elif not is_market and price % inst.tick_size != 0:
        expected = "tick_size"
    elif qty * price < inst.min_notional_value:
        expected = "min_notional"
    else:
        expected = None
    assert (None if v is None else v.rule) == expected


@given(hs.instruments(), hs.decimals(0, 10**6, max_places=6), hs.decimals(0, 10**6, max_places=6))
@settings(max_examples=200)
def test_rounded_in_range_orders_only_fail_on_size(
    inst: Instrument, qty: Decimal, price: Decimal
) -> None:
    """What the engine does: round, then check; only size-related rules can still fail."""
    p = round_price(inst, price, rounding="nearest")
    assume(inst.min_price <= p <= inst.max_price)
    v = check_order(inst, qty=round_qty(inst, qty), price=p, is_market=False)
    assert v is None or v.rule in {"qty_positive", "min_order_qty", "max_order_qty", "min_notional"}
