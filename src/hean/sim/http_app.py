"""The venue's REST front end: one request handler, two transports.

:class:`RestApp` turns an :class:`HttpRequest` into an :class:`HttpResponse` (or into a dropped
connection) the way Bybit's gateway does: route table with HTTP 404 for unknown paths, HTTP 403
for a GET carrying a body, authentication (:mod:`hean.sim.auth`), per-UID rate limits with the
``X-Bapi-Limit*`` headers (:mod:`hean.sim.ratelimit`), Bybit's envelope, ``Traceid``/``Timenow``
headers, the latency model, and the planned REST faults (:mod:`hean.sim.faults`).

The same handler is reached two ways:

* :func:`serve_http_connection` — HTTP/1.1 over any trio stream (TCP from ``trio.serve_tcp`` for
  ``hean sim``, paper mode and the e2e tests), a small h11 loop;
* :class:`SimTransport` — an ``httpx.AsyncBaseTransport`` that calls the handler in-process, for
  fake-clock tests (no sockets, so ``autojump_clock`` is safe).

Why h11 on ``trio.serve_tcp`` rather than hypercorn: hypercorn's trio worker does report ephemeral
ports (``task_status.started(binds)``), but an ASGI application cannot close a connection without
answering — hypercorn turns an application that sends nothing into a 500 and one that stops after
the headers into a truncated response. The "process the order, then lose the response" fault needs
a connection closed with no byte of reply, which is what a client sees when Bybit's gateway dies
mid-request. Owning the ~80-line HTTP loop gives exactly that, and nothing else is lost: the venue
serves one JSON API on loopback, without TLS, HTTP/2 or streaming bodies.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

import h11
import httpx
import orjson
import structlog
import trio
from attrs import frozen

from hean.bybit.envelope import envelope_bytes
from hean.bybit.errors import BybitError
from hean.sim.auth import AuthFailure, check_rest_auth
from hean.sim.faults import FaultCommand, FaultPlan, RestFault, RestFaultKind, parse_fault_command
from hean.sim.ratelimit import RATE_LIMIT_MSG, RateDecision, RateLimiter
from hean.sim.venue import RouteNotFound

__all__ = [
    "ADMIN_FAULT_PATH",
    "ROUTES",
    "HttpRequest",
    "HttpResponse",
    "RestApp",
    "RestHandler",
    "Route",
    "SimTransport",
    "VenueLike",
    "serve_http_connection",
]

log = structlog.get_logger()

ADMIN_FAULT_PATH: Final = "/sim/admin/fault"
_MAX_BODY: Final = 1 << 20  # Bybit bodies are small; refuse anything absurd with 413
_JSON: Final = (("Content-Type", "application/json; charset=utf-8"),)


@frozen
class Route:
    method: str
    private: bool
    trade: bool = False  # order entry: pays the order-entry latency


#: The endpoints the venue serves (``hean.sim.venue.Venue.handle``), by path.
ROUTES: Final[Mapping[str, Route]] = {
    "/v5/market/time": Route("GET", False),
    "/v5/market/instruments-info": Route("GET", False),
    "/v5/market/tickers": Route("GET", False),
    "/v5/market/orderbook": Route("GET", False),
    "/v5/order/create": Route("POST", True, True),
    "/v5/order/amend": Route("POST", True, True),
    "/v5/order/cancel": Route("POST", True, True),
    "/v5/order/cancel-all": Route("POST", True, True),
    "/v5/order/realtime": Route("GET", True),
    "/v5/order/history": Route("GET", True),
    "/v5/execution/list": Route("GET", True),
    "/v5/position/list": Route("GET", True),
    "/v5/account/wallet-balance": Route("GET", True),
}


@frozen
class HttpRequest:
    """One request as received: raw query text and raw body bytes, header names lower-cased."""

    method: str
    path: str
    raw_query: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    loopback: bool  # the peer is on this host (admin endpoint gate)

    def header_map(self) -> dict[str, str]:
        return dict(self.headers)


@frozen
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


RestHandler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]
"""A request handler; ``None`` means "close the connection without answering"."""


class VenueLike(Protocol):
    """What :class:`RestApp` needs from the venue (``hean.sim.venue.Venue`` provides it)."""

    def handle(
        self, path: str, params: Mapping[str, Any], *, api_key: str | None, now_ms: int
    ) -> dict[str, Any]: ...

    def account_secret(self, api_key: str) -> str | None: ...

    def advance(self, now_ms: int) -> None: ...


class RestApp:
    """Bybit's REST gateway in front of one venue.

    ``clock`` gives the venue time (ms). ``after_venue`` runs right after every venue call so the
    server can push the private events it produced before the REST answer leaves (Bybit's private
    stream usually beats the REST response). ``on_admin`` applies an admin fault command and
    returns a JSON-able status. Latencies are in milliseconds.
    """

    def __init__(
        self,
        venue: VenueLike,
        *,
        clock: Callable[[], int],
        faults: FaultPlan,
        limiter: RateLimiter,
        after_venue: Callable[[int], None],
        on_admin: Callable[[FaultCommand], Mapping[str, Any]] | None,
        order_latency_ms: int = 0,
        response_latency_ms: int = 0,
    ) -> None:
        self._venue = venue
        self._clock = clock
        self._faults = faults
        self._limiter = limiter
        self._after_venue = after_venue
        self._on_admin = on_admin
        self.order_latency_ms = order_latency_ms
        self.response_latency_ms = response_latency_ms
        self._trace_ids = itertools.count(1)
        self.requests_total = 0

    # ------------------------------------------------------------------ entry point

    async def handle(self, req: HttpRequest) -> HttpResponse | None:
        """Answer one request (or return None to drop the connection unanswered)."""
        self.requests_total += 1
        if req.path == ADMIN_FAULT_PATH:
            return self._admin(req)
        route = ROUTES.get(req.path)
        if route is None or route.method != req.method:
            return HttpResponse(404, (("Content-Length", "0"),), b"")
        if req.method == "GET" and req.body:
            # Bybit's gateway refuses a GET that carries a (JSON) body with a bare 403.
            return HttpResponse(403, (), b"")

        fault = self._faults.take_rest_fault(req.path)
        if fault is not None and not fault.process and fault.kind is not RestFaultKind.DROP:
            await self._sleep_ms(self.response_latency_ms + self._faults.rest_delay_ms)
            return self._fault_response(fault)

        now = self._clock()
        api_key: str | None = None
        limits: RateDecision | None = None
        if route.private:
            verdict = check_rest_auth(
                req.header_map(),
                raw_query=req.raw_query,
                raw_body=req.body,
                method=req.method,
                now_ms=now,
                secret_for=self._venue.account_secret,
            )
            if isinstance(verdict, AuthFailure):
                await self._sleep_ms(self.response_latency_ms)
                return self._envelope(
                    None, verdict.ret_code, verdict.ret_msg, status=verdict.http_status
                )
            api_key = verdict.api_key
            limits = self._limiter.check(api_key, req.path, now)
            if limits is not None and not limits.allowed:
                await self._sleep_ms(self.response_latency_ms)
                return self._envelope(None, 10006, RATE_LIMIT_MSG, limits=limits)

        params = self._params(req)
        if params is None:
            await self._sleep_ms(self.response_latency_ms)
            return self._envelope(None, 10001, "Request parameter error.", limits=limits)

        if route.trade:
            await self._sleep_ms(self.order_latency_ms)
        handled_at = self._clock()
        # Catch the market up to the request's time first. The market loop may not have run the
        # steps due before this instant yet (it wakes on its own schedule, late on a busy host);
        # run after the request, such a step would fill the new order with a fill stamped before
        # the order existed, and Bybit clients drop that update as older than the order's "New".
        self._venue.advance(handled_at)
        try:
            result = self._venue.handle(req.path, params, api_key=api_key, now_ms=handled_at)
        except RouteNotFound:
            return HttpResponse(404, (("Content-Length", "0"),), b"")
        except BybitError as exc:
            response_args: tuple[dict[str, Any] | None, int, str] = (
                None,
                exc.ret_code,
                exc.ret_msg,
            )
        else:
            response_args = (result, 0, "OK")
        finally:
            self._after_venue(handled_at)

        if fault is not None and fault.kind is RestFaultKind.DROP:
            log.info("sim_rest_response_dropped", path=req.path)
            return None
        await self._sleep_ms(self.response_latency_ms + self._faults.rest_delay_ms)
        if fault is not None:
            return self._fault_response(fault)
        return self._envelope(*response_args, limits=limits)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    async def _sleep_ms(ms: int) -> None:
        if ms > 0:
            await trio.sleep(ms / 1000)

    @staticmethod
    def _params(req: HttpRequest) -> dict[str, Any] | None:
        if req.method == "GET":
            return dict(parse_qsl(req.raw_query, keep_blank_values=True))
        if not req.body.strip():
            return {}
        try:
            obj = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None

    def _headers(self, limits: RateDecision | None) -> tuple[tuple[str, str], ...]:
        extra = limits.headers() if limits is not None else ()
        trace = f"{next(self._trace_ids):032x}"
        return (*_JSON, *extra, ("Traceid", trace), ("Timenow", str(self._clock())))

    def _envelope(
        self,
        result: Mapping[str, Any] | None,
        ret_code: int,
        ret_msg: str,
        *,
        status: int = 200,
        limits: RateDecision | None = None,
    ) -> HttpResponse:
        body = envelope_bytes(result, ret_code=ret_code, ret_msg=ret_msg, time_ms=self._clock())
        return HttpResponse(status, self._headers(limits), body)

    def _fault_response(self, fault: RestFault) -> HttpResponse:
        if fault.kind is RestFaultKind.HTTP:
            log.info("sim_rest_fault", kind="http", status=fault.http_status)
            text = f"<html><body>{fault.http_status}</body></html>".encode()
            return HttpResponse(fault.http_status, (("Content-Type", "text/html"),), text)
        log.info("sim_rest_fault", kind="error", ret_code=fault.ret_code)
        reset = (str(self._clock() + 1000),)
        headers = self._headers(None)
        if fault.ret_code == 10006:
            headers = (*headers, ("X-Bapi-Limit-Reset-Timestamp", reset[0]))
        body = envelope_bytes(
            None, ret_code=fault.ret_code, ret_msg=fault.ret_msg, time_ms=self._clock()
        )
        return HttpResponse(200, headers, body)

    def _admin(self, req: HttpRequest) -> HttpResponse:
        if self._on_admin is None or not req.loopback:
            return HttpResponse(404, (("Content-Length", "0"),), b"")
        if req.method != "POST":
            return HttpResponse(405, (("Allow", "POST"),), b"")
        try:
            command = parse_fault_command(orjson.loads(req.body or b"null"))
        except (orjson.JSONDecodeError, ValueError) as exc:
            body = orjson.dumps({"ok": False, "error": str(exc)})
            return HttpResponse(400, _JSON, body)
        status = self._on_admin(command)
        return HttpResponse(200, _JSON, orjson.dumps({"ok": True, **status}))


# --------------------------------------------------------------------------- HTTP/1.1 over a stream


def _is_loopback_stream(stream: trio.abc.Stream) -> bool:
    sock = getattr(stream, "socket", None)
    if sock is None:
        return True  # in-memory streams never leave the process
    try:
        host = sock.getpeername()[0]
    except OSError:
        return False
    return host in ("127.0.0.1", "::1") or str(host).startswith("127.")


async def serve_http_connection(stream: trio.abc.Stream, handler: RestHandler) -> None:
    """Serve HTTP/1.1 requests on ``stream`` until the peer closes it (keep-alive supported).

    A handler answer of ``None`` closes the connection at once, without a byte of response.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_BODY)
    loopback = _is_loopback_stream(stream)
    try:
        while True:
            request = await _read_request(stream, conn, loopback)
            if request is None:
                return
            response = await handler(request)
            if response is None:
                return  # finally: close without answering
            await _send_response(stream, conn, response)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            bad = HttpResponse(exc.error_status_hint, (("Connection", "close"),), b"")
            # The peer may be gone or the state may forbid an answer; we close either way.
            with contextlib.suppress(
                trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError
            ):
                await _send_response(stream, conn, bad)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client went away mid-request: nothing to answer
    finally:
        await trio.aclose_forcefully(stream)


async def _read_request(
    stream: trio.abc.Stream, conn: h11.Connection, loopback: bool
) -> HttpRequest | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            conn.receive_data(bytes(data))  # b"" marks EOF
            continue
        if isinstance(event, h11.ConnectionClosed):
            return None
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_BODY:
                raise h11.RemoteProtocolError("body too large", error_status_hint=413)
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None  # h11 guarantees Request before EndOfMessage
            path, _, query = head.target.decode("latin-1").partition("?")
            headers = tuple(
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in head.headers
            )
            return HttpRequest(
                method=head.method.decode("ascii").upper(),
                path=path,
                raw_query=query,
                headers=headers,
                body=bytes(body),
                loopback=loopback,
            )


async def _send_response(stream: trio.abc.Stream, conn: h11.Connection, resp: HttpResponse) -> None:
    headers = [(k, v) for k, v in resp.headers if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(resp.body))))
    out = conn.send(h11.Response(status_code=resp.status, headers=headers))
    if resp.body:
        out += conn.send(h11.Data(data=resp.body))
    out += conn.send(h11.EndOfMessage())
    await stream.send_all(out)


# --------------------------------------------------------------------------- in-process transport


class SimTransport(httpx.AsyncBaseTransport):
    """An httpx transport that hands requests straight to a :data:`RestHandler`.

    No sockets and no threads, so it runs under trio's fake clock. A dropped response surfaces as
    ``httpx.RemoteProtocolError``, the error httpx raises when a real server closes the connection
    without answering.
    """

    def __init__(self, handler: RestHandler) -> None:
        self._handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path, _, query = request.url.raw_path.decode("ascii").partition("?")
        headers = tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.headers.raw
        )
        sim_request = HttpRequest(
            method=request.method.upper(),
            path=path,
            raw_query=query,
            headers=headers,
            body=body,
            loopback=True,
        )
        response = await self._handler(sim_request)
        if response is None:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            response.status, headers=list(response.headers), content=response.body
        )
