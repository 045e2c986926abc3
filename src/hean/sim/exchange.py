"""The venue's trading core: books, accounts, order entry/amend/cancel, fills and events.

Pure: no I/O, no clock; every entry point takes ``now_ms``. The REST layer (:mod:`hean.sim.rest`)
parses requests and calls in here with typed values; the market model (:mod:`hean.sim.market`)
drives the synthetic participants through the ``synth_*`` methods, so their orders sit in the
same level-3 books as the users' and trade with them under the same FIFO rules.

Event order follows Bybit's pushes for one matching event: for every account it touched, in the
order they were touched, the ``order`` update(s), then the ``execution`` message, then the
``position``, then (after fills) the ``wallet``. A create, amend or cancel also pushes the
position, as Bybit does even when it did not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from hean.bybit.errors import error_for
from hean.bybit.instruments import check_order, round_price
from hean.bybit.types import (
    Execution,
    Instrument,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PrivateMessage,
    PublicTrade,
    Side,
    TimeInForce,
    Wallet,
)
from hean.sim.accounts import Account, OpenOrderMargin, fee_for, orders_initial_margin
from hean.sim.ids import IdGen
from hean.sim.matching import Resting
from hean.sim.orders import ExecRecord, OrderRegistry, UserOrder
from hean.sim.params import param_error, valid_link_id
from hean.sim.settings import VenueSettings
from hean.sim.symbols import SymbolState

ZERO = Decimal(0)
#: Market orders are IOC limit orders this far (5 %) beyond the best opposite price.
MARKET_SLIPPAGE = Decimal("0.05")
#: Synthetic open interest (contracts' notional in USDT) shown in tickers besides user positions.
SYNTHETIC_OI_NOTIONAL = Decimal(500_000_000)


_Data = tuple[Order, ...] | tuple[Execution, ...] | tuple[Position, ...] | tuple[Wallet, ...]


class _Touched:
    """What one matching event did to one account (collected, then pushed in Bybit's order)."""

    __slots__ = ("executions", "orders", "symbols", "wallet")

    def __init__(self) -> None:
        self.orders: dict[str, UserOrder] = {}
        self.executions: list[Execution] = []
        self.symbols: dict[str, None] = {}
        self.wallet = False


class _Batch:
    def __init__(self) -> None:
        self.accounts: dict[str, _Touched] = {}

    def touch(self, order: UserOrder) -> _Touched:
        t = self.accounts.get(order.api_key)
        if t is None:
            t = _Touched()
            self.accounts[order.api_key] = t
        t.orders[order.order_id] = order
        t.symbols[order.symbol] = None
        return t


class Exchange:
    """Books, accounts and order lifecycle. See the module docstring for the event order."""

    def __init__(
        self,
        settings: VenueSettings,
        instruments: Mapping[str, Instrument],
        start_prices: Mapping[str, Decimal],
    ) -> None:
        self.settings = settings
        self.ids = IdGen(settings.seed)
        self.symbols: dict[str, SymbolState] = {
            s: SymbolState(instruments[s], start_prices[s]) for s in settings.symbols
        }
        self.accounts: dict[str, Account] = {}
        self.registries: dict[str, OrderRegistry] = {}
        self.trades: list[PublicTrade] = []
        self.private: list[tuple[str, PrivateMessage]] = []
        self._resting_users: dict[int, UserOrder] = {}
        self._next_handle = 0
        self._order_seq = 0
        self._exec_seq = 0

    # ------------------------------------------------------------------ accounts

    def open_account(self, api_key: str, api_secret: str, balance: Decimal) -> None:
        if api_key in self.accounts:
            raise ValueError(f"account {api_key!r} already exists")
        self.accounts[api_key] = Account(
            api_key=api_key,
            api_secret=api_secret,
            wallet_balance=balance,
            leverage=self.settings.leverage,
        )
        self.registries[api_key] = OrderRegistry()

    def marks(self) -> dict[str, Decimal]:
        return {s: st.mark for s, st in self.symbols.items()}

    def symbol(self, name: str | None) -> SymbolState:
        st = self.symbols.get(name) if name is not None else None
        if st is None:
            raise param_error("params error: symbol invalid")
        return st

    def order_im(self, api_key: str, extra: UserOrder | None = None) -> Decimal:
        """Initial margin of the account's open orders (plus a prospective one)."""
        account = self.accounts[api_key]
        by_symbol: dict[str, list[OpenOrderMargin]] = {}
        orders: Iterable[UserOrder] = self.registries[api_key].open.values()
        if extra is not None:
            orders = [*orders, extra]
        for o in orders:
            by_symbol.setdefault(o.symbol, []).append(
                OpenOrderMargin(o.side, o.qty - o.cum_qty, o.price, o.reduce_only)
            )
        return sum(
            (
                orders_initial_margin(account.position_size(s), items, account.leverage)
                for s, items in by_symbol.items()
            ),
            ZERO,
        )

    def _check_margin(self, api_key: str, before: Decimal, after: Decimal) -> None:
        if after <= before:
            return  # a change that needs no more margin is always allowed
        if self.accounts[api_key].available(self.marks(), after) < 0:
            raise error_for(110007, "ab not enough for new order")

    # ------------------------------------------------------------------ user orders

    def create_order(
        self,
        api_key: str,
        *,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        order_link_id: str,
        reduce_only: bool,
        now_ms: int,
    ) -> UserOrder:
        st = self.symbol(symbol)
        registry = self.registries[api_key]
        account = self.accounts[api_key]
        if order_link_id and not valid_link_id(order_link_id):
            raise param_error("params error: orderLinkId invalid")
        if order_link_id in registry.used_link_ids:
            raise error_for(110072, "OrderLinkedID is duplicate")
        is_market = order_type is OrderType.MARKET
        if is_market and time_in_force is TimeInForce.POST_ONLY:
            raise param_error("params error: Market order cannot be PostOnly")
        is_buy = side is Side.BUY
        reference = self._reference_price(st, is_buy)
        violation = check_order(
            st.inst,
            qty=qty,
            price=None if is_market else price,
            is_market=is_market,
            reference_price=reference,
        )
        if violation is not None:
            raise error_for(violation.ret_code, violation.ret_msg)
        if reduce_only:
            pos = account.position_size(symbol)
            if pos == 0 or (pos > 0) == is_buy:
                raise error_for(110017, "Reduce-only rule not satisfied")
            qty = min(qty, abs(pos))
        if is_market:
            # Bybit turns a market order into an IOC limit at a protection price; that price is
            # what the order object reports.
            if is_buy:
                price = round_price(st.inst, reference * (1 + MARKET_SLIPPAGE), rounding="down")
            else:
                price = round_price(st.inst, reference * (1 - MARKET_SLIPPAGE), rounding="up")
            price = min(max(price, st.inst.min_price), st.inst.max_price)
            if time_in_force is not TimeInForce.FOK:
                time_in_force = TimeInForce.IOC
        assert price is not None  # check_order requires it for limit orders
        self._order_seq += 1
        order = UserOrder(
            seq_no=self._order_seq,
            api_key=api_key,
            order_id=self.ids.uuid(),
            order_link_id=order_link_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            time_in_force=time_in_force,
            price=price,
            qty=qty,
            reduce_only=reduce_only,
            now_ms=now_ms,
            last_price=st.last_price,
        )
        self._check_margin(api_key, self.order_im(api_key), self.order_im(api_key, order))
        registry.add(order)
        batch = _Batch()
        batch.touch(order)
        self._enter(st, order, batch, now_ms)
        self._flush(batch, now_ms)
        return order

    def _reference_price(self, st: SymbolState, is_buy: bool) -> Decimal:
        best = st.book.best_ask() if is_buy else st.book.best_bid()
        return st.price_of(best) if best is not None else st.mark

    def _enter(self, st: SymbolState, order: UserOrder, batch: _Batch, now_ms: int) -> None:
        """Match and/or rest an order that is (newly or again, after an amend) entering the book."""
        is_buy = order.side is Side.BUY
        lots = st.to_lots(order.qty - order.cum_qty)
        limit = st.to_ticks(order.price)
        tif = order.time_in_force
        if tif is TimeInForce.POST_ONLY and st.book.crosses(is_buy, limit):
            self._finish(
                order, OrderStatus.CANCELLED, now_ms, reject="EC_PostOnlyWillTakeLiquidity"
            )
            return
        if tif is TimeInForce.FOK and st.book.available(is_buy, limit, lots) < lots:
            self._finish(order, OrderStatus.CANCELLED, now_ms, reject="EC_CancelForNoFullFill")
            return
        if st.book.crosses(is_buy, limit):
            lots -= self._take(st, order, is_buy, limit, lots, batch, now_ms)
        if lots == 0:
            return  # filled (status set by the fills)
        if tif in (TimeInForce.IOC, TimeInForce.FOK):
            reject = "EC_NoImmediateQtyToFill" if order.cum_qty == 0 else "EC_NoError"
            self._finish(order, OrderStatus.CANCELLED, now_ms, reject=reject)
            return
        self._rest(st, order, lots)

    def _rest(self, st: SymbolState, order: UserOrder, lots: int) -> None:
        self._next_handle += 1
        resting = Resting(
            self._next_handle, order.api_key, order.side is Side.BUY, st.to_ticks(order.price), lots
        )
        st.book.add(resting)
        order.resting = resting
        self._resting_users[resting.handle] = order

    def _unrest(self, st: SymbolState, order: UserOrder) -> None:
        if order.resting is not None:
            st.book.cancel(order.resting)
            self._resting_users.pop(order.resting.handle, None)
            order.resting = None

    def _finish(
        self,
        order: UserOrder,
        status: OrderStatus,
        now_ms: int,
        *,
        cancel_type: str = "UNKNOWN",
        reject: str = "EC_NoError",
    ) -> None:
        """Move an order to a final status (its book entry must already be gone)."""
        order.status = status
        order.cancel_type = cancel_type
        order.reject_reason = reject
        order.updated_time = now_ms
        self.registries[order.api_key].closed(order)

    def find_open(
        self,
        api_key: str,
        symbol: str,
        order_id: str | None,
        order_link_id: str | None,
        *,
        verb: str,
    ) -> UserOrder:
        if not order_id and not order_link_id:
            raise param_error("params error: OrderId or orderLinkId is required")
        order = self.registries[api_key].find(order_id, order_link_id)
        if order is None or not order.is_open or order.symbol != symbol:
            raise error_for(110001, f"order not exists or too late to {verb}")
        return order

    def cancel_order(
        self,
        api_key: str,
        *,
        symbol: str,
        order_id: str | None,
        order_link_id: str | None,
        now_ms: int,
    ) -> UserOrder:
        st = self.symbol(symbol)
        order = self.find_open(api_key, symbol, order_id, order_link_id, verb="cancel")
        batch = _Batch()
        self._cancel(st, order, batch, now_ms, "CancelByUser")
        self._flush(batch, now_ms)
        return order

    def _cancel(
        self, st: SymbolState, order: UserOrder, batch: _Batch, now_ms: int, cancel_type: str
    ) -> None:
        self._unrest(st, order)
        self._finish(order, OrderStatus.CANCELLED, now_ms, cancel_type=cancel_type)
        batch.touch(order)

    def cancel_all(
        self,
        api_key: str,
        *,
        symbol: str | None,
        base_coin: str | None,
        settle_coin: str | None,
        now_ms: int,
    ) -> list[UserOrder]:
        if symbol is not None:
            self.symbol(symbol)
        elif base_coin is None and settle_coin is None:
            raise param_error("params error: symbol or settleCoin or baseCoin is required")
        chosen = [
            o
            for o in self.registries[api_key].open.values()
            if (symbol is not None and o.symbol == symbol)
            or (
                symbol is None
                and base_coin is not None
                and self.symbols[o.symbol].inst.base_coin == base_coin
            )
            or (
                symbol is None
                and base_coin is None
                and self.symbols[o.symbol].inst.settle_coin == settle_coin
            )
        ][:500]
        batch = _Batch()
        for o in chosen:
            self._cancel(self.symbols[o.symbol], o, batch, now_ms, "CancelByUser")
        self._flush(batch, now_ms)
        return chosen

    def amend_order(
        self,
        api_key: str,
        *,
        symbol: str,
        order_id: str | None,
        order_link_id: str | None,
        qty: Decimal | None,
        price: Decimal | None,
        now_ms: int,
    ) -> UserOrder:
        st = self.symbol(symbol)
        order = self.find_open(api_key, symbol, order_id, order_link_id, verb="replace")
        if qty is None and price is None:
            raise param_error("params error: qty or price is required")
        new_qty = order.qty if qty is None else qty
        new_price = order.price if price is None else price
        if new_qty == order.qty and new_price == order.price:
            raise error_for(34040, "Not modified")
        if new_qty <= order.cum_qty:
            raise error_for(
                110064,
                "The number of contracts modified cannot be less than or equal to the filled "
                "quantity",
            )
        violation = check_order(st.inst, qty=new_qty, price=new_price, is_market=False)
        if violation is not None:
            raise error_for(violation.ret_code, violation.ret_msg)
        if order.reduce_only:
            pos = abs(self.accounts[api_key].position_size(symbol))
            new_qty = min(new_qty, order.cum_qty + pos)
        before = self.order_im(api_key)
        old_qty, old_price = order.qty, order.price
        order.qty, order.price = new_qty, new_price
        try:
            self._check_margin(api_key, before, self.order_im(api_key))
        except Exception:
            order.qty, order.price = old_qty, old_price
            raise
        order.updated_time = now_ms
        batch = _Batch()
        batch.touch(order)
        new_lots = st.to_lots(new_qty - order.cum_qty)
        resting = order.resting
        if resting is not None and new_price == old_price and new_lots <= resting.leaves:
            st.book.reduce(resting, new_lots)  # a smaller order keeps its place in the queue
        else:
            self._unrest(st, order)  # a new price or a bigger order goes to the back
            self._enter(st, order, batch, now_ms)
        self._flush(batch, now_ms)
        return order

    # ------------------------------------------------------------------ matching

    def _take(
        self,
        st: SymbolState,
        taker: UserOrder | None,
        is_buy: bool,
        limit: int | None,
        lots: int,
        batch: _Batch,
        now_ms: int,
    ) -> int:
        """Match an incoming order against the book; returns the lots filled."""
        fills = st.book.match(is_buy, limit, lots)
        if not fills:
            return 0
        st.cross_seq += 1
        seq = st.cross_seq
        taker_side = Side.BUY if is_buy else Side.SELL
        filled = 0
        for f in fills:
            price = st.price_of(f.price)
            qty = st.qty_of(f.qty)
            filled += f.qty
            st.record_trade(price, qty, now_ms)
            self.trades.append(
                PublicTrade(
                    time=now_ms,
                    symbol=st.symbol,
                    side=taker_side,
                    size=qty,
                    price=price,
                    trade_id=self.ids.uuid(),
                    tick_direction=st.tick_direction,
                    seq=seq,
                )
            )
            if f.maker.owner:
                maker = self._resting_users[f.maker.handle]
                if not f.maker.alive:
                    self._resting_users.pop(f.maker.handle, None)
                    maker.resting = None
                self._fill(st, maker, qty, price, True, batch, now_ms, seq)
            if taker is not None:
                self._fill(st, taker, qty, price, False, batch, now_ms, seq)
        return filled

    def _fill(
        self,
        st: SymbolState,
        order: UserOrder,
        qty: Decimal,
        price: Decimal,
        is_maker: bool,
        batch: _Batch,
        now_ms: int,
        seq: int,
    ) -> None:
        rate = self.settings.maker_fee_rate if is_maker else self.settings.taker_fee_rate
        value = qty * price
        fee = fee_for(value, rate)
        account = self.accounts[order.api_key]
        result = account.apply_fill(st.symbol, order.side, qty, price, fee, now_ms, seq)
        order.cum_qty += qty
        order.cum_value += value
        order.cum_fee += fee
        order.closed_pnl += result.realised
        order.updated_time = now_ms
        if order.cum_qty >= order.qty:
            self._finish(order, OrderStatus.FILLED, now_ms)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        self._exec_seq += 1
        execution = Execution(
            exec_id=self.ids.uuid(),
            symbol=st.symbol,
            order_id=order.order_id,
            order_link_id=order.order_link_id,
            side=order.side,
            exec_price=price,
            exec_qty=qty,
            exec_value=value,
            exec_fee=fee,
            exec_time=now_ms,
            is_maker=is_maker,
            order_type=order.order_type,
            order_price=order.price,
            order_qty=order.qty,
            leaves_qty=order.leaves,
            fee_rate=rate,
            closed_size=result.closed_size,
            exec_pnl=result.realised,
            mark_price=st.mark,
            seq=seq,
        )
        self.registries[order.api_key].executions.append(ExecRecord(self._exec_seq, execution))
        touched = batch.touch(order)
        touched.executions.append(execution)
        touched.wallet = True

    def _enforce_reduce_only(self, batch: _Batch, now_ms: int) -> None:
        """After fills, shrink or cancel reduce-only orders the position no longer supports."""
        for api_key, touched in list(batch.accounts.items()):
            if not touched.executions:
                continue
            account = self.accounts[api_key]
            for o in list(self.registries[api_key].open.values()):
                if not o.reduce_only or o.symbol not in touched.symbols:
                    continue
                st = self.symbols[o.symbol]
                pos = account.position_size(o.symbol)
                if pos == 0 or (pos > 0) == (o.side is Side.BUY):
                    self._cancel(st, o, batch, now_ms, "CancelByReduceOnly")
                elif o.qty - o.cum_qty > abs(pos):
                    o.qty = o.cum_qty + abs(pos)
                    o.updated_time = now_ms
                    if o.resting is not None:
                        st.book.reduce(o.resting, st.to_lots(abs(pos)))
                    batch.touch(o)

    def _flush(self, batch: _Batch, now_ms: int) -> None:
        self._enforce_reduce_only(batch, now_ms)
        marks = self.marks()
        for api_key, touched in batch.accounts.items():
            account = self.accounts[api_key]
            self._push(
                api_key, "order", tuple(o.snapshot() for o in touched.orders.values()), now_ms
            )
            if touched.executions:
                self._push(api_key, "execution", tuple(touched.executions), now_ms)
            positions = tuple(
                account.position(s).to_position(mark=marks[s], leverage=account.leverage)
                for s in touched.symbols
            )
            self._push(api_key, "position", positions, now_ms)
            if touched.wallet:
                wallet = account.wallet(marks, self.order_im(api_key))
                self._push(api_key, "wallet", (wallet,), now_ms)

    def _push(self, api_key: str, topic: str, data: _Data, now_ms: int) -> None:
        msg = PrivateMessage(id=self.ids.uuid(), topic=topic, creation_time=now_ms, data=data)
        self.private.append((api_key, msg))

    def set_mark(self, symbol: str, ticks: int) -> None:
        """The market model's fair price becomes the symbol's mark (and index) price."""
        st = self.symbols[symbol]
        st.mark = st.price_of(ticks)

    # ------------------------------------------------------------------ synthetic participants

    def synth_limit(
        self, symbol: str, is_buy: bool, price: int, lots: int, now_ms: int
    ) -> Resting | None:
        """A synthetic GTC limit order: trades whatever it crosses, rests the rest."""
        st = self.symbols[symbol]
        if st.book.crosses(is_buy, price):
            lots -= self.synth_take(symbol, is_buy, price, lots, now_ms)
            if lots <= 0:
                return None
        self._next_handle += 1
        resting = Resting(self._next_handle, "", is_buy, price, lots)
        st.book.add(resting)
        return resting

    def synth_take(
        self, symbol: str, is_buy: bool, limit: int | None, lots: int, now_ms: int
    ) -> int:
        """A synthetic IOC order (a taker); returns the lots it traded."""
        st = self.symbols[symbol]
        batch = _Batch()
        filled = self._take(st, None, is_buy, limit, lots, batch, now_ms)
        if batch.accounts:
            self._flush(batch, now_ms)
        return filled

    def synth_cancel(self, symbol: str, resting: Resting) -> None:
        self.symbols[symbol].book.cancel(resting)

    # ------------------------------------------------------------------ views

    def open_interest(self, symbol: str) -> Decimal:
        st = self.symbols[symbol]
        users = sum((abs(a.position_size(symbol)) for a in self.accounts.values()), ZERO)
        synthetic = (SYNTHETIC_OI_NOTIONAL / st.mark).quantize(st.step) if st.mark else ZERO
        return synthetic + users
