"""Instrument trading rules: rounding onto the tick/step grid and pre-trade checks. Pure.

The engine rounds and checks before it sends an order, and the simulator runs the very same
:func:`check_order` to reject what Bybit would reject, with Bybit's ``retCode``/``retMsg``
(``shared/bybit-v5.md`` §5): quantity outside ``minOrderQty``/``maxOrderQty`` -> 10001 with
Bybit's texts, notional below ``minNotionalValue`` -> 110094, price outside
``minPrice``/``maxPrice`` -> 110003. Bybit documents no linear code for an off-tick price or an
off-step quantity; those are answered with 10001 and a plain text (digest §11, unconfirmed).

All arithmetic is exact Decimal arithmetic in a local high-precision context, so rounding never
depends on the caller's decimal context.
"""

from __future__ import annotations

import decimal
from decimal import Decimal, localcontext
from typing import Final, Literal

from attrs import frozen

from hean.bybit.types import Instrument
from hean.bybit.wire import decimal_str

__all__ = [
    "RET_PARAMS_ERROR",
    "RET_PRICE_OUT_OF_RANGE",
    "RET_QTY_BELOW_MIN_NOTIONAL",
    "OrderRuleViolation",
    "Rounding",
    "check_order",
    "is_on_grid",
    "round_price",
    "round_qty",
    "round_to_step",
]

Rounding = Literal["down", "up", "nearest"]

RET_PARAMS_ERROR: Final = 10001
RET_PRICE_OUT_OF_RANGE: Final = 110003
RET_QTY_BELOW_MIN_NOTIONAL: Final = 110094

# Enough digits for any price/qty/step Bybit lists (they are < 1e12 with < 20 decimals) times a
# grid index, so quotient and product are exact.
_PREC: Final = 80
_MAX_PREC: Final = 2_000
# For products whose magnitude is unbounded (a client's absurd price): no overflow, just rounding.
_WIDE: Final = decimal.Context(prec=_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)

# Bybit reports contract quantities scaled by 1e8 in its max-qty text (digest §5, pybit #284).
_QTY_SCALE: Final = Decimal(100_000_000)
_INT64_MAX: Final = Decimal(2**63 - 1)


@frozen
class OrderRuleViolation:
    """Why an order breaks the instrument's rules, and what Bybit answers for it.

    ``field`` is the request field (``"qty"``/``"price"``), ``rule`` a stable machine name
    (``min_order_qty``, ``max_order_qty``, ``max_mkt_order_qty``, ``qty_step``, ``qty_positive``,
    ``tick_size``, ``price_required``, ``price_band``, ``min_notional``), ``value`` the offending
    value and ``limit`` the bound it broke (None when there is no single bound).
    """

    field: str
    rule: str
    value: Decimal | None
    ret_code: int
    ret_msg: str
    limit: Decimal | None = None


def _check_step(step: Decimal) -> None:
    if not step.is_finite() or step <= 0:
        raise ValueError(f"grid step must be a positive finite decimal, got {step}")


def _grid_context(value: Decimal, step: Decimal) -> decimal.Context:
    """A context exact enough for ``value / step`` (digits of the grid index plus a margin).

    Absurd magnitudes (a quantity of ``1E+999999``) are refused instead of computed: the index
    would need that many digits. :func:`check_order` tests bounds first, so a venue never gets here
    with such a value.
    """
    _check_step(step)
    if not value.is_finite():
        raise ValueError(f"cannot put non-finite {value} on a grid")
    needed = max(value.adjusted() - step.adjusted(), 0) + 10
    if needed > _MAX_PREC:
        raise ValueError(f"{value} is too large for a grid of {step}")
    ctx = decimal.Context(prec=max(_PREC, needed))
    ctx.traps[decimal.Inexact] = False
    return ctx


def round_to_step(value: Decimal, step: Decimal, rounding: Rounding = "down") -> Decimal:
    """Round ``value`` onto the grid ``k * step`` (any real step: 0.1, 0.5, 0.25 ...).

    ``down``/``up`` are floor/ceiling (so they also behave for negative values); ``nearest``
    breaks ties upwards (half-up, as a human would quote).
    """
    with localcontext(_grid_context(value, step)):
        quotient, remainder = divmod(value, step)  # quotient truncated towards zero
        if remainder < 0:  # divmod truncates: turn it into floor division
            quotient -= 1
            remainder += step
        if rounding == "up":
            if remainder > 0:
                quotient += 1
        elif rounding == "nearest":
            if remainder * 2 >= step:
                quotient += 1
        elif rounding != "down":
            raise ValueError(f"unknown rounding {rounding!r}")
        return quotient * step


def is_on_grid(value: Decimal, step: Decimal) -> bool:
    """Is ``value`` an integer multiple of ``step``?"""
    with localcontext(_grid_context(value, step)):
        return value % step == 0


def round_price(inst: Instrument, price: Decimal, *, rounding: Rounding = "down") -> Decimal:
    """Round a price onto the instrument's ``tickSize`` (a buy usually rounds down, a sell up)."""
    return round_to_step(price, inst.tick_size, rounding)


def round_qty(inst: Instrument, qty: Decimal) -> Decimal:
    """Round a quantity DOWN onto ``qtyStep``: never more than what was asked for.

    The result may fall below ``minOrderQty`` (even to 0); :func:`check_order` says so.
    """
    return round_to_step(qty, inst.qty_step, "down")


def _scaled(x: Decimal) -> str:
    """Bybit's max-qty text shows quantities as int64 multiples of 1e-8; clamp like an int64."""
    with localcontext(_WIDE):
        scaled = (x * _QTY_SCALE).to_integral_value(rounding=decimal.ROUND_DOWN)
        return decimal_str(min(scaled, _INT64_MAX))


def check_order(
    inst: Instrument,
    *,
    qty: Decimal,
    price: Decimal | None,
    is_market: bool,
    reference_price: Decimal | None = None,
) -> OrderRuleViolation | None:
    """The first rule ``qty``/``price`` break, or None if the order passes.

    ``price`` is ignored for market orders (Bybit does too). The notional is ``qty * price`` for a
    limit order; for a market order it is checked only when ``reference_price`` (e.g. last or
    best opposite price, what the venue would fill around) is given. Checks run quantity (bounds,
    then step), price (bounds, then tick), then notional, so the reported reason is stable and
    an absurd magnitude is reported as out of bounds before any grid arithmetic.
    """
    if qty <= 0:
        return OrderRuleViolation(
            "qty", "qty_positive", qty, RET_PARAMS_ERROR, "params error: qty err"
        )
    if qty < inst.min_order_qty:
        return OrderRuleViolation(
            "qty",
            "min_order_qty",
            qty,
            RET_PARAMS_ERROR,
            "The number of contracts exceeds minimum limit allowed",
            inst.min_order_qty,
        )
    max_qty, max_rule = (
        (inst.max_mkt_order_qty, "max_mkt_order_qty")
        if is_market
        else (inst.max_order_qty, "max_order_qty")
    )
    if qty > max_qty:
        return OrderRuleViolation(
            "qty",
            max_rule,
            qty,
            RET_PARAMS_ERROR,
            "The number of contracts exceeds maximum limit allowed: too large, "
            f"order_qty:{_scaled(qty)} > max_qty:{_scaled(max_qty)}",
            max_qty,
        )
    if not is_on_grid(qty, inst.qty_step):
        return OrderRuleViolation(
            "qty",
            "qty_step",
            qty,
            RET_PARAMS_ERROR,
            f"params error: qty {decimal_str(qty)} is not a multiple of qtyStep "
            f"{decimal_str(inst.qty_step)}",
            inst.qty_step,
        )

    notional_price: Decimal | None
    if is_market:
        notional_price = reference_price
    else:
        if price is None:
            return OrderRuleViolation(
                "price",
                "price_required",
                None,
                RET_PARAMS_ERROR,
                "params error: price is required for a Limit order",
            )
        if price < inst.min_price or price > inst.max_price:
            return OrderRuleViolation(
                "price",
                "price_band",
                price,
                RET_PRICE_OUT_OF_RANGE,
                "Order price is out of permissible range",
                inst.min_price if price < inst.min_price else inst.max_price,
            )
        if not is_on_grid(price, inst.tick_size):
            return OrderRuleViolation(
                "price",
                "tick_size",
                price,
                RET_PARAMS_ERROR,
                f"params error: price {decimal_str(price)} is not a multiple of tickSize "
                f"{decimal_str(inst.tick_size)}",
                inst.tick_size,
            )
        notional_price = price

    if notional_price is not None and inst.min_notional_value > 0:
        with localcontext(_WIDE):
            notional = qty * notional_price
        if notional < inst.min_notional_value:
            return OrderRuleViolation(
                "qty",
                "min_notional",
                notional,
                RET_QTY_BELOW_MIN_NOTIONAL,
                "Order does not meet minimum order value "
                f"{decimal_str(inst.min_notional_value)}{inst.quote_coin}",
                inst.min_notional_value,
            )
    return None
