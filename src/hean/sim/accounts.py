"""Accounts of the embedded venue: a UNIFIED USDT wallet, one-way positions, fees, margin, PnL.

Accounting rules (kept deliberately simple and exact):

* A fill of ``qty`` at ``price`` changes the signed position by ``side.sign * qty``. The part that
  closes an existing position realises ``(exit - entry) * closed`` (sign-adjusted); the part that
  opens adds to the position's entry value. The average entry price is entry value / size.
* Every fill pays ``fee = price * qty * rate`` (maker or taker rate; a negative maker rate is a
  rebate). Fees and realised PnL are rounded to 8 decimals — the only rounding there is — and the
  wallet balance changes by exactly ``realised - fee`` per fill.
* Like Bybit, a position's ``curRealisedPnl``/``cumRealisedPnl`` include the fees paid; the
  wallet's ``cumRealisedPnl`` does too.
* Unrealised PnL marks the position to the symbol's mark price (the market's fair price).
* Initial margin is notional / leverage: positions at their entry value, open orders at their
  remaining value. Orders that can only reduce the position need no margin, and per symbol only
  the larger of the buy and sell sides counts (a two-sided quote cannot fill both ways at once
  without the position absorbing it). Maintenance margin is 0.5 % of position value.
* ``available = equity - initial margin``; an order whose margin does not fit is rejected
  (110007 "ab not enough for new order").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from attrs import define, field

from hean.bybit.types import CoinBalance, Position, Side, Wallet

ZERO = Decimal(0)
_Q8 = Decimal("0.00000001")
MAINTENANCE_RATE = Decimal("0.005")


def q8(x: Decimal) -> Decimal:
    """Round money to 8 decimals, the precision Bybit reports fees and PnL with."""
    return x.quantize(_Q8, rounding=ROUND_HALF_EVEN)


def fee_for(value: Decimal, rate: Decimal) -> Decimal:
    return q8(value * rate)


@define
class FillResult:
    """What one fill did to a position."""

    closed_size: Decimal  # how much of an existing position the fill closed
    realised: Decimal  # PnL realised by the closed part, before fees


@define
class PositionState:
    """A mutable one-way position. ``size`` is signed (+ long, - short)."""

    symbol: str
    size: Decimal = ZERO
    entry_value: Decimal = ZERO  # sum of open price * qty of the current holding, always >= 0
    cur_realised: Decimal = ZERO  # since the position was last opened from flat, after fees
    cum_realised: Decimal = ZERO  # lifetime, after fees
    created_time: int = 0
    updated_time: int = 0
    seq: int = 0

    @property
    def side(self) -> Side | None:
        if self.size > 0:
            return Side.BUY
        if self.size < 0:
            return Side.SELL
        return None

    @property
    def entry_price(self) -> Decimal:
        if self.size == 0:
            return ZERO
        return q8(self.entry_value / abs(self.size))

    def unrealised(self, mark: Decimal) -> Decimal:
        if self.size == 0:
            return ZERO
        if self.size > 0:
            return q8(self.size * mark - self.entry_value)
        return q8(self.entry_value + self.size * mark)

    def apply_fill(
        self, side: Side, qty: Decimal, price: Decimal, fee: Decimal, now_ms: int, seq: int
    ) -> FillResult:
        """Apply one fill; returns the closed size and the realised PnL (before fees)."""
        signed = qty * side.sign
        closed = ZERO
        realised = ZERO
        if self.size != 0 and (self.size > 0) != (signed > 0):
            closed = min(qty, abs(self.size))
            removed = q8(self.entry_value * closed / abs(self.size))
            exit_value = closed * price
            realised = q8(exit_value - removed) if self.size > 0 else q8(removed - exit_value)
            self.entry_value -= removed
        opened = qty - closed
        was_flat = self.size == 0
        self.size += signed
        if self.size == 0:
            self.entry_value = ZERO
        if opened > 0:
            self.entry_value += opened * price
        if was_flat or (opened > 0 and closed > 0):
            # A new holding starts (from flat, or by flipping through zero); the PnL the flip
            # realised belongs to the old holding, its fee to the new one.
            self.cur_realised = -fee
            self.created_time = now_ms
        else:
            self.cur_realised += realised - fee
        self.cum_realised += realised - fee
        self.updated_time = now_ms
        self.seq = seq
        return FillResult(closed_size=closed, realised=realised)

    def to_position(self, *, mark: Decimal, leverage: Decimal) -> Position:
        value = self.entry_value if self.size != 0 else ZERO
        return Position(
            symbol=self.symbol,
            side=self.side,
            size=abs(self.size),
            entry_price=self.entry_price,
            position_value=value,
            mark_price=mark,
            leverage=leverage,
            unrealised_pnl=self.unrealised(mark),
            cur_realised_pnl=self.cur_realised,
            cum_realised_pnl=self.cum_realised,
            liq_price=None,
            position_im=q8(value / leverage),
            position_mm=q8(value * MAINTENANCE_RATE),
            position_idx=0,
            created_time=self.created_time,
            updated_time=self.updated_time,
            seq=self.seq,
        )


@define
class OpenOrderMargin:
    """What an open order contributes to margin: side, remaining qty and price."""

    side: Side
    leaves: Decimal
    price: Decimal
    reduce_only: bool = False


def orders_initial_margin(
    position_size: Decimal, orders: Iterable[OpenOrderMargin], leverage: Decimal
) -> Decimal:
    """Initial margin of one symbol's open orders given the signed position size.

    Buy orders first absorb a short position (they close it, needing no margin) and only the
    excess is charged, pro rata to value; the same for sells against a long. The symbol's order
    margin is the larger of the two sides.
    """
    qty = {Side.BUY: ZERO, Side.SELL: ZERO}
    value = {Side.BUY: ZERO, Side.SELL: ZERO}
    for o in orders:
        if o.reduce_only or o.leaves <= 0:
            continue
        qty[o.side] += o.leaves
        value[o.side] += o.leaves * o.price
    margins = []
    for side, reducible in (
        (Side.BUY, max(ZERO, -position_size)),
        (Side.SELL, max(ZERO, position_size)),
    ):
        q = qty[side]
        if q <= 0:
            margins.append(ZERO)
            continue
        charged = max(ZERO, q - reducible)
        margins.append(value[side] * charged / q / leverage)
    return q8(max(margins))


@define
class Account:
    """One API key's UNIFIED account (USDT only)."""

    api_key: str
    api_secret: str = field(repr=False)
    wallet_balance: Decimal
    leverage: Decimal = Decimal(10)
    cum_realised: Decimal = ZERO  # lifetime realised PnL after fees, all symbols
    positions: dict[str, PositionState] = field(factory=dict)

    def position(self, symbol: str) -> PositionState:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = PositionState(symbol=symbol)
            self.positions[symbol] = pos
        return pos

    def position_size(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.size if pos is not None else ZERO

    def apply_fill(
        self,
        symbol: str,
        side: Side,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        now_ms: int,
        seq: int,
    ) -> FillResult:
        result = self.position(symbol).apply_fill(side, qty, price, fee, now_ms, seq)
        self.wallet_balance += result.realised - fee
        self.cum_realised += result.realised - fee
        return result

    def position_margin(self) -> Decimal:
        return q8(
            sum((p.entry_value for p in self.positions.values() if p.size != 0), ZERO)
            / self.leverage
        )

    def unrealised(self, marks: Mapping[str, Decimal]) -> Decimal:
        return sum(
            (
                p.unrealised(marks[s])
                for s, p in self.positions.items()
                if p.size != 0 and s in marks
            ),
            ZERO,
        )

    def available(self, marks: Mapping[str, Decimal], order_im: Decimal) -> Decimal:
        equity = self.wallet_balance + self.unrealised(marks)
        return equity - self.position_margin() - order_im

    def wallet(self, marks: Mapping[str, Decimal], order_im: Decimal) -> Wallet:
        upl = self.unrealised(marks)
        equity = self.wallet_balance + upl
        pos_im = self.position_margin()
        pos_mm = q8(
            sum((p.entry_value for p in self.positions.values() if p.size != 0), ZERO)
            * MAINTENANCE_RATE
        )
        total_im = pos_im + order_im
        available = max(ZERO, equity - total_im)
        coin = CoinBalance(
            coin="USDT",
            equity=equity,
            wallet_balance=self.wallet_balance,
            unrealised_pnl=upl,
            cum_realised_pnl=self.cum_realised,
            total_order_im=order_im,
            total_position_im=pos_im,
            total_position_mm=pos_mm,
            usd_value=equity,
            available_to_withdraw=max(ZERO, min(self.wallet_balance, equity) - total_im),
        )
        return Wallet(
            account_type="UNIFIED",
            total_equity=equity,
            total_wallet_balance=self.wallet_balance,
            total_margin_balance=equity,
            total_available_balance=available,
            total_perp_upl=upl,
            total_initial_margin=total_im,
            total_maintenance_margin=pos_mm,
            coins=(coin,),
        )
