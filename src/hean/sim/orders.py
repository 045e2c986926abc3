"""User orders and their per-account registry (open orders, recently closed, history, fills).

Retention follows Bybit:

* ``/order/realtime`` sees open orders plus the last :data:`RECENT_CLOSED` closed ones per account.
* ``/order/history`` keeps Cancelled/Rejected orders without fills for 24 h and other closed
  orders for 7 days.
* ``orderLinkId``s are remembered for the life of the venue (a duplicate is always 110072).
* Executions are kept for :data:`EXECUTION_RETENTION_MS` (30 days): Bybit keeps two years, but a
  paper venue that runs for weeks must not grow without bound, and clients query in 7-day windows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal

from hean.bybit.types import (
    Execution,
    Order,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from hean.sim.matching import Resting

ZERO = Decimal(0)
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
RECENT_CLOSED = 500
EXECUTION_RETENTION_MS = 30 * DAY_MS


class UserOrder:
    """The venue's mutable record of one user order; :meth:`snapshot` gives Bybit's view."""

    __slots__ = (
        "api_key",
        "cancel_type",
        "closed_pnl",
        "created_time",
        "cum_fee",
        "cum_qty",
        "cum_value",
        "last_price_on_created",
        "order_id",
        "order_link_id",
        "order_type",
        "price",
        "qty",
        "reduce_only",
        "reject_reason",
        "resting",
        "seq_no",
        "side",
        "status",
        "symbol",
        "time_in_force",
        "updated_time",
    )

    def __init__(
        self,
        *,
        seq_no: int,
        api_key: str,
        order_id: str,
        order_link_id: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        time_in_force: TimeInForce,
        price: Decimal,
        qty: Decimal,
        reduce_only: bool,
        now_ms: int,
        last_price: Decimal,
    ) -> None:
        self.seq_no = seq_no
        self.api_key = api_key
        self.order_id = order_id
        self.order_link_id = order_link_id
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.time_in_force = time_in_force
        self.price = price
        self.qty = qty
        self.reduce_only = reduce_only
        self.status = OrderStatus.NEW
        self.created_time = now_ms
        self.updated_time = now_ms
        self.cum_qty = ZERO
        self.cum_value = ZERO
        self.cum_fee = ZERO
        self.closed_pnl = ZERO
        self.cancel_type = "UNKNOWN"
        self.reject_reason = "EC_NoError"
        self.last_price_on_created = last_price
        self.resting: Resting | None = None

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.cum_qty if self.status.is_open else ZERO

    def snapshot(self) -> Order:
        leaves = self.leaves
        avg: Decimal | None = None
        if self.cum_qty > 0:
            avg = (self.cum_value / self.cum_qty).quantize(
                Decimal("0.00000001"), rounding=ROUND_HALF_EVEN
            )
        return Order(
            order_id=self.order_id,
            order_link_id=self.order_link_id,
            symbol=self.symbol,
            side=self.side,
            order_type=self.order_type,
            price=self.price,
            qty=self.qty,
            time_in_force=self.time_in_force,
            order_status=self.status,
            created_time=self.created_time,
            updated_time=self.updated_time,
            position_idx=0,
            avg_price=avg,
            leaves_qty=leaves,
            leaves_value=leaves * self.price,
            cum_exec_qty=self.cum_qty,
            cum_exec_value=self.cum_value,
            cum_exec_fee=self.cum_fee,
            reduce_only=self.reduce_only,
            close_on_trigger=False,
            cancel_type=self.cancel_type,
            reject_reason=self.reject_reason,
            create_type="CreateByUser",
            stop_order_type="UNKNOWN",
            trigger_price=ZERO,
            last_price_on_created=self.last_price_on_created,
            closed_pnl=self.closed_pnl,
        )


class ExecRecord:
    """A stored execution plus the internal sequence number used for sorting and cursors."""

    __slots__ = ("execution", "seq_no")

    def __init__(self, seq_no: int, execution: Execution) -> None:
        self.seq_no = seq_no
        self.execution = execution


class OrderRegistry:
    """One account's orders and executions."""

    def __init__(self) -> None:
        self.by_id: dict[str, UserOrder] = {}
        self.by_link: dict[str, UserOrder] = {}
        self.used_link_ids: set[str] = set()
        self.open: dict[str, UserOrder] = {}  # insertion (creation) order
        self.recent_closed: deque[UserOrder] = deque(maxlen=RECENT_CLOSED)
        self.history: deque[UserOrder] = deque()  # closed orders, in closing order
        self.executions: deque[ExecRecord] = deque()

    def add(self, order: UserOrder) -> None:
        self.by_id[order.order_id] = order
        if order.order_link_id:
            self.by_link[order.order_link_id] = order
            self.used_link_ids.add(order.order_link_id)
        if order.is_open:
            self.open[order.order_id] = order
        else:
            self.closed(order)

    def closed(self, order: UserOrder) -> None:
        """Record that ``order`` reached a final status."""
        self.open.pop(order.order_id, None)
        self.recent_closed.append(order)
        self.history.append(order)

    def find(self, order_id: str | None, order_link_id: str | None) -> UserOrder | None:
        """Look an order up; ``orderId`` wins when both are given (as on Bybit)."""
        if order_id:
            return self.by_id.get(order_id)
        if order_link_id:
            return self.by_link.get(order_link_id)
        return None

    def open_orders(self, symbol: str | None = None) -> Iterator[UserOrder]:
        return (o for o in self.open.values() if symbol is None or o.symbol == symbol)

    def realtime_visible(self, order: UserOrder) -> bool:
        """An order ``/order/realtime`` can still return (open, or among the recent closed)."""
        return order.is_open or any(o is order for o in self.recent_closed)

    def prune(self, now_ms: int) -> None:
        """Forget closed orders and executions past their retention."""
        recent = {id(o) for o in self.recent_closed}
        while self.history and now_ms - self.history[0].updated_time > WEEK_MS:
            old = self.history.popleft()
            if id(old) not in recent:
                self.by_id.pop(old.order_id, None)
                if old.order_link_id and self.by_link.get(old.order_link_id) is old:
                    del self.by_link[old.order_link_id]
        while self.executions and (
            now_ms - self.executions[0].execution.exec_time > EXECUTION_RETENTION_MS
        ):
            self.executions.popleft()

    def history_visible(self, order: UserOrder, now_ms: int) -> bool:
        """Bybit keeps unfilled Cancelled/Rejected orders 24 h in history, others 7 days."""
        if order.is_open:
            return False
        age = now_ms - order.updated_time
        if order.cum_qty == 0 and order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
            return age <= DAY_MS
        return age <= WEEK_MS
