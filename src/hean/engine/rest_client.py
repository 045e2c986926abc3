"""The Bybit v5 REST client: a thin trio shell around the pure codec in :mod:`hean.bybit`.

Responsibilities, and the rules behind them:

* **Exact bytes.** Requests are built and signed by :mod:`hean.bybit.rest`; this shell sends
  precisely the signed query/body (the URL is assembled with ``raw_path`` so httpx cannot
  re-encode it) and parses answers with :func:`hean.bybit.envelope.parse_rest_response`.
* **Never meet a 10006.** Every request first takes a slot from the pure per-endpoint
  :class:`~hean.engine.ratelimit.RateLimiter` (Bybit's defaults before any header, then
  ``X-Bapi-Limit*``), sleeping with ``trio.sleep`` when the budget is used up. An order create
  must not be decided before such a wait and sent after it, so its caller can wait first
  (:meth:`BybitRestClient.wait_for_slot`), re-check, and take the slot itself
  (:meth:`BybitRestClient.take_slot`, then ``place_order(..., slot_taken=True)``).
* **Retry only what is safe to repeat.** Queries and cancels are retried with capped, jittered
  exponential backoff on "outcome unknown" (timeout, transport error, 10000/10016, 5xx/429) and
  after a rate-limit wait. A cancel answered 110001 is final. Order create/amend is NEVER
  retried here: a timeout or 5xx on a create means the order may exist, so the caller gets
  :class:`~hean.bybit.errors.OutcomeUnknownError` and resolves it by ``orderLinkId``.
* **Clock.** Signed timestamps come from a :class:`~hean.engine.clock.ServerClock` (local wall
  clock plus the offset measured with ``/v5/market/time``). A 10002 refreshes the offset; a query
  or cancel is then retried once, an order entry is not (it was not executed, the caller decides).
* **Deadlines.** Each HTTP round trip runs under ``trio.fail_after(request_timeout_s)``: it is the
  engine's deadline (httpx's own timeouts do not apply to every transport, e.g. MockTransport).
* **Outcomes.** Every attempt is classified ``ok`` / ``rejected`` / ``unknown`` (see
  :func:`classify`), counted in Prometheus and logged with structlog; secrets never are
  (no headers, no bodies in logs; Bybit's 10004 text is sanitised by the codec).

Cancellation: every method is cancellable at any await; a cancelled order entry has an unknown
outcome, exactly like a timeout, and must be resolved by the caller (reconciliation by link id).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, Self

import httpx
import structlog
import trio
from prometheus_client import CollectorRegistry, Counter, Histogram

from hean.bybit import rest
from hean.bybit.envelope import Envelope, parse_rest_response, rate_limit_info
from hean.bybit.errors import (
    BybitError,
    ClockSkewError,
    OrderNotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
)
from hean.bybit.signing import Credentials
from hean.bybit.types import (
    Execution,
    Instrument,
    Order,
    OrderBookUpdate,
    OrderType,
    Position,
    Side,
    Ticker,
    TimeInForce,
    Wallet,
)
from hean.bybit.wire import (
    WireError,
    execution_from_wire,
    instrument_from_wire,
    order_from_wire,
    orderbook_from_rest,
    position_from_wire,
    ticker_from_wire,
    wallet_from_wire,
)
from hean.engine.backoff import Backoff
from hean.engine.clock import ServerClock, WallClock, system_clock_ms
from hean.engine.ratelimit import RateLimiter

__all__ = [
    "DEFAULT_RETRY_BACKOFF",
    "BybitRestClient",
    "CallKind",
    "Outcome",
    "PaginationError",
    "RestMetrics",
    "classify",
]

log = structlog.get_logger("hean.engine.rest")

DEFAULT_RETRY_BACKOFF: Final = Backoff(base_s=0.25, cap_s=5.0, multiplier=2.0, jitter=0.5)
_MAX_PAGES: Final = 10_000  # a runaway-cursor guard; real accounts never get near it


class Outcome(enum.StrEnum):
    """What one request attempt did, from the caller's point of view."""

    OK = "ok"  # executed (or answered)
    REJECTED = "rejected"  # Bybit answered no: nothing happened
    UNKNOWN = "unknown"  # it may or may not have happened (timeout, 5xx, 10000/10016)


class CallKind(enum.Enum):
    """Retry policy class of a call."""

    QUERY = "query"  # read-only: always safe to repeat
    CANCEL = "cancel"  # idempotent: repeating a cancel cannot do harm; 110001 is final
    ORDER_ENTRY = "order_entry"  # create/amend: never repeated automatically


def classify(exc: BaseException | None) -> Outcome:
    """``ok`` for no error; ``unknown`` for :class:`OutcomeUnknownError` (and anything that is
    not a Bybit answer at all); ``rejected`` for every other Bybit error (it had no effect)."""
    if exc is None:
        return Outcome.OK
    if isinstance(exc, BybitError) and not isinstance(exc, OutcomeUnknownError):
        return Outcome.REJECTED
    return Outcome.UNKNOWN


class PaginationError(Exception):
    """Bybit sent back a cursor we already followed: the listing would never end."""


class RestMetrics:
    """Prometheus instruments of the REST client (labels: endpoint path, never ids).

    Pass the process registry in production; without one a private registry is used, so several
    clients (tests) never collide on metric names.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "hean_rest_requests",
            "REST request attempts by endpoint and outcome (ok/rejected/unknown).",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "hean_rest_request_latency_seconds",
            "Round-trip time of REST request attempts that got an HTTP answer.",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.rate_limited = Counter(
            "hean_rest_rate_limited",
            "Answers that were rate-limit rejections (retCode 10006, HTTP 403).",
            ["endpoint"],
            registry=self.registry,
        )
        self.retries = Counter(
            "hean_rest_retries",
            "Automatic retries of safe-to-repeat calls, by reason.",
            ["endpoint", "reason"],
            registry=self.registry,
        )
        self.throttle_wait = Counter(
            "hean_rest_throttle_wait_seconds",
            "Time spent waiting for the client-side rate limiter.",
            ["endpoint"],
            registry=self.registry,
        )


def _result_list(result: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    raw = result.get("list", [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise WireError(f"{what}: result.list is not a list of objects")
    return raw


def _ids(result: Mapping[str, Any]) -> tuple[str, str]:
    order_id, link_id = result.get("orderId"), result.get("orderLinkId", "")
    if not isinstance(order_id, str) or not isinstance(link_id, str):
        raise WireError("order ack: orderId/orderLinkId missing or not strings")
    return order_id, link_id


class BybitRestClient:
    """Typed, rate-limited, retrying REST access to one Bybit account (or the simulator).

    Use as an async context manager (it owns an ``httpx.AsyncClient``), opened *outside* the
    trading nursery so shutdown cleanup can still use it::

        async with BybitRestClient("https://api.bybit.com", credentials=creds) as rest_client:
            await rest_client.sync_clock()
            ...

    Args:
        base_url: scheme://host[:port][/prefix] of the REST API.
        credentials: API key/secret for private endpoints (``None``: market data only).
        transport: the venue seam (``httpx.MockTransport`` or the simulator's in tests).
        clock: local wall clock in ms (:func:`system_clock_ms` or a ``TrioOffsetClock``).
        request_timeout_s: deadline of one HTTP round trip (``EngineConfig.request_timeout_s``).
        recv_window_ms: ``X-BAPI-RECV-WINDOW`` (``VenueConfig.recv_window_ms``).
        max_attempts: attempts of a safe-to-repeat call, the first included.
        retry_backoff: delay policy between those attempts.
        rng: jitter source for retries (seed it in tests).
        rate_limiter: per-endpoint limiter (default: Bybit's default limits).
        metrics: Prometheus instruments (default: on a private registry).
        settle_coin: scope of account-wide listings when no symbol is given.
    """

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: WallClock = system_clock_ms,
        request_timeout_s: float = 10.0,
        recv_window_ms: int = rest.DEFAULT_RECV_WINDOW_MS,
        max_attempts: int = 4,
        retry_backoff: Backoff = DEFAULT_RETRY_BACKOFF,
        rng: random.Random | None = None,
        rate_limiter: RateLimiter | None = None,
        metrics: RestMetrics | None = None,
        settle_coin: str = "USDT",
    ) -> None:
        if request_timeout_s <= 0:
            raise ValueError("request_timeout_s must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._base = httpx.URL(base_url)
        self._prefix = self._base.raw_path.split(b"?", 1)[0].rstrip(b"/")
        self._creds = credentials
        self._timeout_s = request_timeout_s
        self._recv_window_ms = recv_window_ms
        self._max_attempts = max_attempts
        self._backoff = retry_backoff
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._limiter = rate_limiter if rate_limiter is not None else RateLimiter()
        self.metrics = metrics if metrics is not None else RestMetrics()
        self._settle_coin = settle_coin
        self._clock = ServerClock(clock)
        # httpx's own timeout is a backstop for real sockets; the engine's deadline is fail_after.
        self._http = httpx.AsyncClient(
            transport=transport, timeout=request_timeout_s, follow_redirects=False
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client; shielded and bounded so it also runs during cancellation."""
        with trio.move_on_after(2.0, shield=True):
            await self._http.aclose()

    @property
    def server_clock(self) -> ServerClock:
        """Exchange-time wall clock (for WS auth ``expires`` and history windows)."""
        return self._clock

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._limiter

    # ------------------------------------------------------------------ core

    async def _wait_for_slot(self, endpoint: str, *, take: bool = True) -> None:
        limiter = self._limiter
        check = limiter.acquire if take else limiter.wait_time
        waited = 0.0
        while (delay := check(endpoint, trio.current_time())) > 0:
            waited += delay
            await trio.sleep(delay)
        if waited > 0:
            self.metrics.throttle_wait.labels(endpoint).inc(waited)
            log.debug("rest_throttled", endpoint=endpoint, waited_s=round(waited, 3))

    async def wait_for_slot(self, endpoint: str) -> None:
        """Return once ``endpoint`` has a free rate-limit slot, without taking it.

        The rate limiter can hold a request for seconds (a full window) to minutes (a 10006 or
        an IP ban). An order create must not be decided before that wait and sent after it: the
        caller waits here, re-checks whatever the create depends on (trading gate, TTL, price),
        then calls :meth:`take_slot` and ``place_order(..., slot_taken=True)`` with no await in
        between.
        """
        await self._wait_for_slot(endpoint, take=False)

    def take_slot(self, endpoint: str) -> bool:
        """Take a slot of ``endpoint`` now if one is free (no await); see :meth:`wait_for_slot`."""
        return self._limiter.acquire(endpoint, trio.current_time()) == 0

    def slot_wait_s(self, endpoint: str) -> float:
        """Seconds until ``endpoint`` has a free slot (0.0: now); takes nothing."""
        return self._limiter.wait_time(endpoint, trio.current_time())

    def _url(self, url_path: str) -> httpx.URL:
        return self._base.copy_with(raw_path=self._prefix + url_path.encode("ascii"))

    async def _attempt(self, req: rest.RestRequest, *, slot_taken: bool = False) -> Envelope:
        """One round trip: throttle, sign, send under a deadline, feed the limiter, parse.

        ``slot_taken``: the caller already took this request's rate-limit slot (:meth:`take_slot`).
        """
        endpoint = req.endpoint
        if not slot_taken:
            await self._wait_for_slot(endpoint)
        if req.auth:
            if self._creds is None:
                raise RuntimeError(f"{endpoint} needs API credentials and none are configured")
            signed = req.signed(self._creds, self._clock(), self._recv_window_ms)
        else:
            signed = req.unsigned()
        request = httpx.Request(
            signed.method,
            self._url(signed.url_path),
            headers=list(signed.headers),
            content=signed.body if signed.method == "POST" else None,
        )
        started = trio.current_time()
        try:
            with trio.fail_after(self._timeout_s):
                response = await self._http.send(request)
        except trio.TooSlowError:
            err = OutcomeUnknownError.transport(f"no response within {self._timeout_s:g} s")
            self._count(endpoint, err)
            raise err from None
        except httpx.TransportError as exc:
            err = OutcomeUnknownError.transport(f"transport error: {type(exc).__name__}: {exc}")
            self._count(endpoint, err)
            raise err from exc
        now_s = trio.current_time()
        self.metrics.latency.labels(endpoint).observe(now_s - started)
        info = rate_limit_info(response.headers)
        now_ms = self._clock()
        self._limiter.update(
            endpoint,
            limit=info.limit,
            remaining=info.remaining,
            reset_at_ms=info.reset_at_ms,
            now_s=now_s,
            now_ms=now_ms,
        )
        try:
            envelope = parse_rest_response(response.status_code, response.headers, response.content)
        except RateLimitedError as exc:
            wait_s = exc.wait_ms(now_ms) / 1000.0
            if exc.ip_banned:
                self._limiter.block_all(wait_s=wait_s, now_s=now_s)
            else:
                self._limiter.block(endpoint, wait_s=wait_s, now_s=now_s)
            self.metrics.rate_limited.labels(endpoint).inc()
            self._count(endpoint, exc)
            log.warning(
                "rest_rate_limited",
                endpoint=endpoint,
                ret_code=exc.ret_code,
                http_status=exc.http_status,
                wait_s=round(wait_s, 3),
            )
            raise
        except BybitError as exc:
            self._count(endpoint, exc)
            raise
        self._count(endpoint, None)
        return envelope

    def _count(self, endpoint: str, exc: BybitError | None) -> None:
        outcome = classify(exc)
        self.metrics.requests.labels(endpoint, outcome.value).inc()
        if exc is not None:
            log.info(
                "rest_request_failed",
                endpoint=endpoint,
                outcome=outcome.value,
                error=type(exc).__name__,
                ret_code=exc.ret_code,
                http_status=exc.http_status,
                ret_msg=exc.ret_msg,
            )

    async def _call(
        self, req: rest.RestRequest, kind: CallKind, *, slot_taken: bool = False
    ) -> Envelope:
        """Run ``req`` with the retry policy of ``kind``; see the module docstring.

        ``slot_taken``: the first attempt's rate-limit slot is already taken (a retry takes its
        own).
        """
        endpoint = req.endpoint
        attempt = 0
        skew_retried = False
        while True:
            attempt += 1
            try:
                return await self._attempt(req, slot_taken=slot_taken and attempt == 1)
            except ClockSkewError:
                await self._resync_after_skew()
                if kind is CallKind.ORDER_ENTRY or skew_retried:
                    raise
                skew_retried = True  # a resync is the fix; it gets exactly one extra try
                self._retrying(endpoint, "clock_skew", attempt, 0.0)
                continue
            except OrderNotFoundError:
                raise  # final for a cancel, an answer for a query: never retried
            except RateLimitedError as exc:
                if kind is CallKind.ORDER_ENTRY or exc.ip_banned or attempt >= self._max_attempts:
                    raise
                # The limiter is now blocked until the reset: the next attempt waits in it.
                self._retrying(endpoint, "rate_limited", attempt, 0.0)
                continue
            except OutcomeUnknownError:
                if kind is CallKind.ORDER_ENTRY or attempt >= self._max_attempts:
                    raise
                delay = self._backoff.delay(attempt - 1, self._rng)
                self._retrying(endpoint, "outcome_unknown", attempt, delay)
                await trio.sleep(delay)

    def _retrying(self, endpoint: str, reason: str, attempt: int, delay_s: float) -> None:
        self.metrics.retries.labels(endpoint, reason).inc()
        log.info(
            "rest_retry",
            endpoint=endpoint,
            reason=reason,
            attempt=attempt,
            delay_s=round(delay_s, 3),
        )

    async def _resync_after_skew(self) -> None:
        """10002: the offset estimate is wrong (or the local clock stepped): measure afresh."""
        self._clock.offset.reset()
        try:
            await self.server_time_ms()
        except BybitError as exc:
            log.warning("clock_resync_failed", error=repr(exc))

    async def _pages(
        self, build: Callable[[str | None], rest.RestRequest], kind: CallKind, what: str
    ) -> list[Mapping[str, Any]]:
        """Follow ``nextPageCursor`` until Bybit returns an empty one; every item of every page."""
        items: list[Mapping[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            envelope = await self._call(build(cursor), kind)
            items.extend(_result_list(envelope.result, what))
            nxt = envelope.result.get("nextPageCursor") or ""
            if not isinstance(nxt, str):
                raise WireError(f"{what}: nextPageCursor is not a string")
            if not nxt:
                return items
            if nxt in seen:
                raise PaginationError(f"{what}: cursor {nxt!r} repeated")
            seen.add(nxt)
            cursor = nxt
        raise PaginationError(f"{what}: more than {_MAX_PAGES} pages")

    # ------------------------------------------------------------------ market data

    async def server_time_ms(self) -> int:
        """Bybit's clock in ms; each call also feeds the server-time offset estimator."""
        sent = self._clock.local()
        envelope = await self._call(rest.server_time(), CallKind.QUERY)
        received = self._clock.local()
        server_ms = envelope.time
        nano = envelope.result.get("timeNano")
        if isinstance(nano, str) and nano.isdigit():
            server_ms = int(nano) // 1_000_000
        if server_ms <= 0:
            raise WireError("server time: neither result.timeNano nor time in the answer")
        offset = self._clock.offset.observe(sent_ms=sent, received_ms=received, server_ms=server_ms)
        log.debug("server_time", offset_ms=offset, rtt_ms=received - sent)
        return server_ms

    async def sync_clock(self, samples: int = 3) -> int:
        """Measure the server-time offset ``samples`` times; returns the estimate in ms."""
        for _ in range(max(1, samples)):
            await self.server_time_ms()
        offset = self._clock.offset.offset_ms
        log.info("clock_synced", offset_ms=offset)
        return offset

    async def instruments(self, symbols: Iterable[str] | None = None) -> dict[str, Instrument]:
        """Trading rules by symbol: the given symbols, or every linear instrument (all pages)."""
        rows: list[Mapping[str, Any]] = []
        if symbols is None:
            rows = await self._pages(
                lambda c: rest.instruments_info(limit=1000, cursor=c), CallKind.QUERY, "instruments"
            )
        else:
            for symbol in symbols:
                envelope = await self._call(rest.instruments_info(symbol=symbol), CallKind.QUERY)
                rows.extend(_result_list(envelope.result, "instruments"))
        found = (instrument_from_wire(row) for row in rows)
        return {inst.symbol: inst for inst in found}

    async def tickers(self, symbol: str | None = None) -> list[Ticker]:
        envelope = await self._call(rest.tickers(symbol), CallKind.QUERY)
        return [ticker_from_wire(row) for row in _result_list(envelope.result, "tickers")]

    async def orderbook(self, symbol: str, limit: int = 50) -> OrderBookUpdate:
        """A REST order-book snapshot (``u`` matches the 1000-level WebSocket stream)."""
        envelope = await self._call(rest.orderbook(symbol, limit), CallKind.QUERY)
        return orderbook_from_rest(envelope.result, depth=limit)

    # ------------------------------------------------------------------ order entry

    async def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        order_type: OrderType,
        qty: Decimal,
        order_link_id: str,
        price: Decimal | None = None,
        time_in_force: TimeInForce | None = None,
        reduce_only: bool = False,
        position_idx: int = 0,
        slot_taken: bool = False,
    ) -> tuple[str, str]:
        """``POST /v5/order/create`` -> ``(order_id, order_link_id)``. Never retried.

        Raises ``OutcomeUnknownError`` when the order may or may not exist (resolve it with
        :meth:`query_order` by ``order_link_id``), ``DuplicateOrderLinkIdError`` when an
        earlier attempt with this link id landed, or a ``RejectedError`` subclass.

        ``slot_taken``: the caller took the rate-limit slot itself (:meth:`wait_for_slot`,
        :meth:`take_slot`), so the request leaves without waiting in the limiter.
        """
        req = rest.create_order(
            symbol,
            side,
            order_type,
            qty,
            price=price,
            time_in_force=time_in_force,
            order_link_id=order_link_id,
            reduce_only=reduce_only,
            position_idx=position_idx,
        )
        envelope = await self._call(req, CallKind.ORDER_ENTRY, slot_taken=slot_taken)
        return _ids(envelope.result)

    async def amend_order(
        self,
        symbol: str,
        *,
        order_id: str | None = None,
        order_link_id: str | None = None,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> tuple[str, str]:
        """``POST /v5/order/amend`` -> ``(order_id, order_link_id)``. Never retried."""
        req = rest.amend_order(
            symbol, order_id=order_id, order_link_id=order_link_id, qty=qty, price=price
        )
        envelope = await self._call(req, CallKind.ORDER_ENTRY)
        return _ids(envelope.result)

    async def cancel_order(
        self, symbol: str, *, order_id: str | None = None, order_link_id: str | None = None
    ) -> tuple[str, str]:
        """``POST /v5/order/cancel``; retried when the outcome is unknown (a repeat is harmless).

        ``OrderNotFoundError`` (110001 and friends) is final: the order is unknown or already
        final, and only a query tells which.
        """
        req = rest.cancel_order(symbol, order_id=order_id, order_link_id=order_link_id)
        envelope = await self._call(req, CallKind.CANCEL)
        return _ids(envelope.result)

    async def cancel_all(
        self, symbol: str | None = None, *, settle_coin: str | None = None
    ) -> list[tuple[str, str]]:
        """``POST /v5/order/cancel-all`` for a symbol (default: the whole settle coin).

        Bybit's result carries ``success`` ("1" success, "0" fail; docs v5/order/cancel-all.mdx)
        next to ``retCode`` 0: a "0" raises ``OutcomeUnknownError`` (which orders the attempt
        reached is not said), so the caller checks open orders instead of trusting the list.
        """
        if symbol is None and settle_coin is None:
            settle_coin = self._settle_coin
        envelope = await self._call(
            rest.cancel_all(symbol, settle_coin=settle_coin), CallKind.CANCEL
        )
        success = envelope.result.get("success", "1")  # absent in older answers: success
        if success not in ("1", 1):
            log.warning("cancel_all_failed", success=repr(success))
            raise OutcomeUnknownError(
                envelope.ret_code, f"cancel-all answered success={success!r}: outcome unknown"
            )
        return [_ids(row) for row in _result_list(envelope.result, "cancel_all")]

    # ------------------------------------------------------------------ private queries

    async def query_order(
        self,
        *,
        link_id: str | None = None,
        order_id: str | None = None,
        symbol: str | None = None,
    ) -> Order | None:
        """One order by link id or order id: ``/order/realtime`` first, then ``/order/history``.

        Realtime answers by-id queries for open orders and the last 500 closed ones; history
        covers older ones (and may lag). ``None`` when neither knows the order.
        """
        if (link_id is None) == (order_id is None):
            raise ValueError("query_order needs exactly one of link_id or order_id")

        def matches(row: Mapping[str, Any]) -> bool:
            if link_id is not None:
                return row.get("orderLinkId") == link_id
            return row.get("orderId") == order_id

        realtime = rest.open_orders(
            symbol=symbol,
            settle_coin=None if symbol is not None else self._settle_coin,
            order_id=order_id,
            order_link_id=link_id,
        )
        envelope = await self._call(realtime, CallKind.QUERY)
        for row in _result_list(envelope.result, "order realtime"):
            if matches(row):
                return order_from_wire(row)
        history = rest.order_history(symbol=symbol, order_id=order_id, order_link_id=link_id)
        envelope = await self._call(history, CallKind.QUERY)
        for row in _result_list(envelope.result, "order history"):
            if matches(row):
                return order_from_wire(row)
        return None

    async def open_orders(
        self, symbol: str | None = None, *, settle_coin: str | None = None
    ) -> list[Order]:
        """Every open order of a symbol or settle coin (all pages)."""
        if symbol is None and settle_coin is None:
            settle_coin = self._settle_coin
        rows = await self._pages(
            lambda c: rest.open_orders(symbol=symbol, settle_coin=settle_coin, limit=50, cursor=c),
            CallKind.QUERY,
            "open orders",
        )
        return [order_from_wire(row) for row in rows]

    async def executions(
        self, start_ms: int, end_ms: int | None = None, *, symbol: str | None = None
    ) -> list[Execution]:
        """Every execution with ``start_ms <= execTime <= end_ms`` (default end: now).

        Bybit serves at most 7 days per query, so the range is split into windows, and each
        window's pages are followed to the end. Fills are de-duplicated by ``execId`` (window
        edges) and returned oldest first, ties broken by ``execId`` (Bybit leaves ties unsorted).
        """
        end = end_ms if end_ms is not None else self._clock()
        if end < start_ms:
            raise ValueError(f"end_ms {end} is before start_ms {start_ms}")
        found: dict[str, Execution] = {}
        window_start = start_ms
        while window_start <= end:
            window_end = min(window_start + rest.MAX_TIME_WINDOW_MS, end)

            def page(
                cursor: str | None, start: int = window_start, stop: int = window_end
            ) -> rest.RestRequest:
                return rest.executions(
                    symbol=symbol, start_time=start, end_time=stop, limit=100, cursor=cursor
                )

            rows = await self._pages(page, CallKind.QUERY, "executions")
            for row in rows:
                execution = execution_from_wire(row)
                found.setdefault(execution.exec_id, execution)
            window_start = window_end + 1
        return sorted(found.values(), key=lambda e: (e.exec_time, e.exec_id))

    async def order_executions(
        self, order_id: str, *, symbol: str | None = None
    ) -> list[Execution]:
        """Every execution of one order (all pages; Bybit's default window, the last 7 days).

        Reconciliation uses it for an order whose reported ``cumExecQty`` runs ahead of the fills
        seen: the time-ordered listing can lag behind the order, a query by ``orderId`` does not
        depend on where the execution cursor stands. Oldest first, ties by ``execId``.
        """
        rows = await self._pages(
            lambda c: rest.executions(symbol=symbol, order_id=order_id, limit=100, cursor=c),
            CallKind.QUERY,
            "executions",
        )
        found: dict[str, Execution] = {}
        for row in rows:
            execution = execution_from_wire(row)
            found.setdefault(execution.exec_id, execution)
        return sorted(found.values(), key=lambda e: (e.exec_time, e.exec_id))

    async def positions(
        self, symbol: str | None = None, *, settle_coin: str | None = None
    ) -> list[Position]:
        """Positions of a symbol (a row even when flat) or of a settle coin (non-zero only)."""
        if symbol is None and settle_coin is None:
            settle_coin = self._settle_coin
        rows = await self._pages(
            lambda c: rest.positions(symbol=symbol, settle_coin=settle_coin, limit=200, cursor=c),
            CallKind.QUERY,
            "positions",
        )
        return [position_from_wire(row) for row in rows]

    async def wallet(self) -> Wallet:
        """The UNIFIED wallet."""
        envelope = await self._call(rest.wallet_balance(), CallKind.QUERY)
        rows: Sequence[Mapping[str, Any]] = _result_list(envelope.result, "wallet")
        if not rows:
            raise WireError("wallet: result.list is empty")
        return wallet_from_wire(rows[0])
