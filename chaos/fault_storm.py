"""Fault storm: ``hean sim`` and ``hean run`` as real processes on 127.0.0.1, a seeded storm of
venue faults, then the invariants of :mod:`chaos.invariants` against the venue's REST truth and
the engine's journal.

Run from the repository root::

    python -m chaos.fault_storm --duration 60 --seed 7 [--kill-engine]

Exit codes: 0 every invariant held; 1 an invariant broke (each is named); 2 the scenario could
not run (the venue did not start, the engine never became ready the first time, the admin
endpoint refused a command, the venue's truth could not be read). On anything but 0 the work
directory (configs, journal, every process's output) is kept and its path printed.

What happens, in order (every wait has a deadline; every child process is terminated in a
``finally``):

1. ``python -m hean sim --rest-port 0 --ws-port 0 --seed N`` in a fresh work directory; the URLs
   and the paper key pair are parsed from the lines it prints.
2. An engine config (paper mode, ``[venue]`` naming those URLs so the engine trades on that
   external venue, journal in the work directory, BTCUSDT) and ``python -m hean run --config``.
   The config shortens the engine's detection timers (see :func:`engine_config_text`) so a
   blackholed stream is noticed within seconds rather than half a minute.
3. For ``--duration`` seconds, every ~``--interval`` seconds one fault drawn by a
   ``random.Random(seed)`` (:data:`FAULT_KINDS`, each kind once per round: :class:`FaultBag`)
   is injected with
   ``POST {rest}/sim/admin/fault``. With ``--kill-engine`` the engine is SIGKILLed once, at a
   seeded point between 30 % and 60 % of the storm, and restarted on the same journal.
4. Pending faults are cleared and the engine is stopped with SIGTERM (it must exit 0). Then the
   venue is read over REST (executions, positions, open orders, order history), the journal is
   loaded, the engine output is parsed, and :func:`chaos.invariants.check_all` decides.

The fault *sequence* is a function of the seed; the moments at which faults meet the engine's
state are not (real processes, real time), so two runs with one seed stress different
interleavings of the same faults.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs
import httpx
import trio
from attrs import frozen

from chaos.invariants import (
    INVARIANTS,
    JournalTruth,
    Kill,
    LogFigures,
    LogRecord,
    ProcessFacts,
    VenueTruth,
    Violation,
    check_all,
    log_figures,
    parse_log,
)
from hean.bybit import rest
from hean.bybit.envelope import parse_rest_response
from hean.bybit.errors import BybitError
from hean.bybit.signing import Credentials
from hean.bybit.types import ZERO, Order, Position
from hean.bybit.wire import WireError, order_from_wire
from hean.engine.clock import system_clock_ms
from hean.engine.journal import Journal, JournalError
from hean.engine.rest_client import BybitRestClient

__all__ = [
    "EXIT_BROKEN",
    "EXIT_OK",
    "EXIT_SETUP",
    "FAULT_KINDS",
    "Fault",
    "FaultBag",
    "SetupError",
    "StormResult",
    "engine_config_text",
    "main",
    "plan_fault",
    "run_storm",
]

EXIT_OK: Final = 0
EXIT_BROKEN: Final = 1
EXIT_SETUP: Final = 2

SYMBOL: Final = "BTCUSDT"
ADMIN_PATH: Final = "/sim/admin/fault"
CREATE_PATH: Final = "/v5/order/create"

SIM_START_TIMEOUT_S: Final = 30.0  # a cold interpreter importing trio/attrs/... on a busy box
ENGINE_READY_TIMEOUT_S: Final = 60.0
KILL_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 90.0  # the engine's own shutdown budget (20 s) plus the final reconcile
TRUTH_TIMEOUT_S: Final = 60.0
ADMIN_TIMEOUT_S: Final = 5.0
POLL_S: Final = 0.1

_SIM_LINES: Final = {
    "rest": re.compile(r"^REST\s+(http://127\.0\.0\.1:\d+)\s*$", re.M),
    "ws_public": re.compile(r"^WS public\s+(ws://127\.0\.0\.1:\d+\S*)\s*$", re.M),
    "ws_private": re.compile(r"^WS private\s+(ws://127\.0\.0\.1:\d+\S*)\s*$", re.M),
    "api_key": re.compile(r"^api key\s+(\S+)\s*$", re.M),
    "api_secret": re.compile(r"^api secret\s+(\S+)\s*$", re.M),
}
_READY: Final = '"event":"engine_ready"'


class SetupError(Exception):
    """The scenario could not run; says what and where to look."""


# --------------------------------------------------------------------------- the fault plan

FAULT_KINDS: Final = (
    "ws_private_drop",  # abort the private WebSocket (1006): fills pushed meanwhile are lost
    "ws_public_drop",  # abort the public WebSocket: the book must be resynchronised
    "create_response_lost",  # the venue places the order and closes the connection unanswered
    "create_10016_processed",  # 10016 "Server error", but the order WAS placed
    "create_10000_processed",  # 10000 "Server Timeout", but the order WAS placed
    "rate_limit_10006_storm",  # 3-8 requests answered 10006, not processed
    "http_503",  # a bare 503 on an order endpoint, processed or not (seeded)
    "private_pause",  # private pushes lost for 2-5 s, the connection stays up
    "blackhole_private",  # the private connection stops moving bytes, without closing
    "blackhole_public",  # the public connection stops moving bytes, without closing
)


@frozen
class Fault:
    """One injection: ``commands`` now, then after ``hold_s`` the ``release`` commands."""

    kind: str
    commands: tuple[Mapping[str, Any], ...]
    hold_s: float = 0.0
    release: tuple[Mapping[str, Any], ...] = ()


class FaultBag:
    """Fault kinds in seeded random order, every kind once per round of ``len(FAULT_KINDS)``:
    a plain random choice can leave a kind out of a short storm altogether."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._bag: list[str] = []

    def draw(self) -> str:
        if not self._bag:
            self._bag = list(FAULT_KINDS)
            self._rng.shuffle(self._bag)
        return self._bag.pop()


def plan_fault(kind: str, rng: random.Random) -> Fault:
    """The admin commands (``hean.sim.faults.parse_fault_command`` language) of one fault."""
    match kind:
        case "ws_private_drop":
            return Fault(kind, ({"action": "drop_ws", "stream": "private"},))
        case "ws_public_drop":
            return Fault(kind, ({"action": "drop_ws", "stream": "public"},))
        case "create_response_lost":
            return Fault(
                kind, ({"action": "drop_response", "count": 1, "path_prefix": CREATE_PATH},)
            )
        case "create_10016_processed" | "create_10000_processed":
            code = 10016 if kind == "create_10016_processed" else 10000
            cmd = {
                "action": "rest_error",
                "ret_code": code,
                "process": True,
                "path_prefix": CREATE_PATH,
            }
            return Fault(kind, (cmd,))
        case "rate_limit_10006_storm":
            cmd = {"action": "rest_error", "ret_code": 10006, "count": rng.randint(3, 8)}
            return Fault(kind, (cmd,))
        case "http_503":
            cmd = {
                "action": "rest_http",
                "status": 503,
                "process": rng.random() < 0.5,
                "path_prefix": "/v5/order/",
            }
            return Fault(kind, (cmd,))
        case "private_pause":
            return Fault(
                kind,
                ({"action": "pause_private"},),
                hold_s=rng.uniform(2.0, 5.0),
                release=({"action": "resume_private"},),
            )
        case "blackhole_private" | "blackhole_public":
            stream = kind.removeprefix("blackhole_")
            return Fault(kind, ({"action": "blackhole", "stream": stream},))
        case _:
            raise ValueError(f"unknown fault kind {kind!r}")


# --------------------------------------------------------------------------- configuration


@frozen
class SimInfo:
    rest_url: str
    ws_public_url: str
    ws_private_url: str
    api_key: str
    api_secret: str = attrs.field(repr=False)  # the paper pair: not a secret, still not logged


def engine_config_text(sim: SimInfo, journal_path: Path) -> str:
    """The engine's config: paper mode against the external venue ``sim``.

    Timers differ from the defaults on purpose, so that a 60 s storm exercises recovery many
    times: ping every 2 s with a 2 s pong deadline (a blackholed connection is noticed within
    4 s, not 30 s), reconnect backoff 0.2-2 s, periodic reconciliation every 10 s (fills lost to
    a private pause are found while trading goes on, not only at the final reconcile), requote
    every second (more orders, more fills). Everything else, the restart budget included, is
    the default.
    """
    q = json.dumps  # a JSON string is a valid TOML basic string
    return "\n".join(
        [
            "[venue]",
            'mode = "paper"',
            f"rest_url = {q(sim.rest_url)}",
            f"ws_public_url = {q(sim.ws_public_url)}",
            f"ws_private_url = {q(sim.ws_private_url)}",
            "",
            "[sim]",  # only the key pair matters: paper mode signs with the sim's pair
            f"api_key = {q(sim.api_key)}",
            f"api_secret = {q(sim.api_secret)}",
            "",
            "[engine]",
            f"symbols = [{q(SYMBOL)}]",
            f"journal_path = {q(str(journal_path))}",
            "reconcile_interval_s = 10.0",
            "ping_interval_s = 2.0",
            "pong_timeout_s = 2.0",
            "stale_after_s = 10.0",
            "reconnect_base_s = 0.2",
            "reconnect_cap_s = 2.0",
            "request_timeout_s = 5.0",
            "status_interval_s = 5.0",
            "",
            "[strategy]",
            "requote_interval_s = 1.0",
            "",
            "[logging]",
            'level = "INFO"',
            'format = "json"',
            "",
        ]
    )


# --------------------------------------------------------------------------- processes


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # every log line reaches the file as it is written
    return env


async def _spawn(argv: Sequence[str], cwd: Path, out_path: Path) -> trio.Process:
    with out_path.open("ab") as out:
        return await trio.lowlevel.open_process(
            list(argv),
            cwd=cwd,
            env=_child_env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


async def _stop_process(proc: trio.Process, sig: signal.Signals, timeout_s: float) -> int | None:
    """Send ``sig`` and wait up to ``timeout_s``; None if it is still running then."""
    if proc.poll() is None:
        proc.send_signal(sig)
    with trio.move_on_after(timeout_s):
        return await proc.wait()
    return None


async def _reap(proc: trio.Process, sig: signal.Signals, timeout_s: float) -> None:
    """Make sure ``proc`` is gone: ``sig``, then SIGKILL after ``timeout_s``. Shielded, bounded."""
    with trio.move_on_after(timeout_s + KILL_TIMEOUT_S, shield=True):
        if await _stop_process(proc, sig, timeout_s) is None:
            proc.kill()
            await proc.wait()


async def start_sim(workdir: Path, seed: int) -> tuple[trio.Process, SimInfo]:
    out_path = workdir / "sim.log"
    argv = [sys.executable, "-m", "hean", "sim", "--rest-port", "0", "--ws-port", "0"]
    argv += ["--seed", str(seed), "--host", "127.0.0.1"]
    proc = await _spawn(argv, workdir, out_path)
    try:
        found: dict[str, str] = {}
        with trio.move_on_after(SIM_START_TIMEOUT_S):
            while len(found) < len(_SIM_LINES):
                if proc.poll() is not None:
                    raise SetupError(f"hean sim exited with {proc.returncode}: {_tail(out_path)}")
                text = out_path.read_text(errors="replace")
                for name, pattern in _SIM_LINES.items():
                    match = pattern.search(text)
                    if match:
                        found[name] = match.group(1)
                if len(found) < len(_SIM_LINES):
                    await trio.sleep(POLL_S)
        if len(found) < len(_SIM_LINES):
            raise SetupError(
                f"hean sim printed no endpoints within {SIM_START_TIMEOUT_S:g} s: {_tail(out_path)}"
            )
    except BaseException:
        await _reap(proc, signal.SIGINT, 10.0)
        raise
    return proc, SimInfo(
        found["rest"],
        found["ws_public"],
        found["ws_private"],
        found["api_key"],
        found["api_secret"],
    )


@attrs.define
class EngineRun:
    run: int
    proc: trio.Process
    log_path: Path
    ready_after_s: float | None = None


async def start_engine(workdir: Path, config: Path, run: int) -> EngineRun:
    log_path = workdir / f"engine-run{run}.log"
    argv = [sys.executable, "-m", "hean", "run", "--config", str(config)]
    proc = await _spawn(argv, workdir, log_path)
    return EngineRun(run, proc, log_path)


async def wait_ready(engine: EngineRun, timeout_s: float) -> bool:
    """Wait for the run's ``engine_ready`` line; False if the process exits or time runs out."""
    started = trio.current_time()
    offset = 0
    carry = b""
    with trio.move_on_after(timeout_s):
        while True:
            with engine.log_path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            data = carry + chunk
            if _READY.encode() in data:
                engine.ready_after_s = trio.current_time() - started
                return True
            carry = data[-len(_READY) :]
            if engine.proc.poll() is not None:
                return False
            await trio.sleep(POLL_S)
    return False


# --------------------------------------------------------------------------- the venue


class Admin:
    """The simulator's fault-injection endpoint."""

    def __init__(self, http: httpx.AsyncClient, rest_url: str) -> None:
        self._http = http
        self._url = rest_url + ADMIN_PATH

    async def send(self, command: Mapping[str, Any]) -> None:
        try:
            with trio.fail_after(ADMIN_TIMEOUT_S):
                response = await self._http.post(self._url, json=dict(command))
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            raise SetupError(f"admin {command}: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise SetupError(f"admin {command}: HTTP {response.status_code} {response.text}")


async def _order_history(
    http: httpx.AsyncClient, rest_url: str, creds: Credentials, symbol: str
) -> list[Order]:
    """Every order ``/v5/order/history`` lists for ``symbol`` (all pages).

    ``BybitRestClient`` offers no history listing (the engine only ever asks it by id), so the
    pages are fetched here with the codec's own request builder and signer.
    """
    base = httpx.URL(rest_url)
    orders: list[Order] = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(10_000):
        req = rest.order_history(symbol=symbol, limit=50, cursor=cursor)
        signed = req.signed(creds, system_clock_ms())
        response = await http.send(
            httpx.Request(
                signed.method,
                base.copy_with(raw_path=signed.url_path.encode("ascii")),
                headers=list(signed.headers),
            )
        )
        envelope = parse_rest_response(response.status_code, response.headers, response.content)
        rows = envelope.result.get("list", [])
        if not isinstance(rows, list):
            raise WireError("order history: result.list is not a list")
        orders.extend(order_from_wire(row) for row in rows)
        nxt = envelope.result.get("nextPageCursor") or ""
        if not isinstance(nxt, str) or not nxt:
            return orders
        if nxt in seen:
            raise WireError(f"order history: cursor {nxt!r} repeated")
        seen.add(nxt)
        cursor = nxt
    raise WireError("order history: too many pages")


async def read_venue(http: httpx.AsyncClient, sim: SimInfo, since_ms: int) -> VenueTruth:
    """The account as the venue sees it, over REST like any client."""
    creds = Credentials(api_key=sim.api_key, api_secret=sim.api_secret)
    async with BybitRestClient(sim.rest_url, credentials=creds) as client:
        symbols = sorted(await client.instruments())
        executions = await client.executions(since_ms)
        positions: dict[str, Position] = {
            p.symbol: p for p in await client.positions(settle_coin="USDT")
        }
        for p in await client.positions(SYMBOL):
            positions[p.symbol] = p
        open_orders = await client.open_orders(settle_coin="USDT")
    orders: dict[str, Order] = {o.order_id: o for o in open_orders}
    for symbol in symbols:
        for o in await _order_history(http, sim.rest_url, creds, symbol):
            orders.setdefault(o.order_id, o)
    return VenueTruth(
        executions=tuple(executions),
        positions=positions,
        orders=tuple(orders.values()),
        open_orders=tuple(open_orders),
    )


def read_journal(path: Path) -> JournalTruth:
    """The journal as a restarted engine would load it (plus each intent's journaling time)."""
    with Journal.open(path) as journal:
        state = journal.load()
    portfolio = state.rebuild_portfolio()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        created = dict(conn.execute("SELECT order_link_id, created_ms FROM intents").fetchall())
    finally:
        conn.close()
    return JournalTruth(
        executions=state.executions,
        positions=portfolio.positions(),
        intent_created_ms={str(k): int(v) for k, v in created.items()},
        non_final_orders=tuple(o.key for o in state.non_final_orders),
    )


# --------------------------------------------------------------------------- the storm


@frozen
class StormOptions:
    duration_s: float
    seed: int
    kill_engine: bool
    workdir: Path
    interval_s: float = 3.0


@frozen
class StormResult:
    """Everything the report shows."""

    options: StormOptions
    workdir: Path
    storm_s: float
    total_s: float
    faults: Mapping[str, int]
    kills: tuple[Kill, ...]
    runs: tuple[EngineRun, ...]
    stop_exit_code: int | None
    venue: VenueTruth
    journal: JournalTruth
    figures: LogFigures
    violations: tuple[Violation, ...]


async def _storm(
    opts: StormOptions,
    admin: Admin,
    workdir: Path,
    config: Path,
    runs: list[EngineRun],
    faults: Counter[str],
    kills: list[Kill],
    died_early: list[tuple[int, int]],
    not_ready: list[int],
) -> None:
    """Inject faults for ``opts.duration_s``; kill and restart the engine once if asked."""
    rng = random.Random(opts.seed)
    start = trio.current_time()
    end = start + opts.duration_s
    kill_at = start + rng.uniform(0.3, 0.6) * opts.duration_s if opts.kill_engine else None
    bag = FaultBag(rng)
    while trio.current_time() < end:
        engine = runs[-1]
        code = engine.proc.poll()
        if code is not None:
            died_early.append((engine.run, code))
            return
        if kill_at is not None and trio.current_time() >= kill_at:
            kill_at = None
            engine.proc.kill()
            with trio.move_on_after(KILL_TIMEOUT_S):
                await engine.proc.wait()
            kills.append(Kill(engine.run, system_clock_ms()))
            restarted = await start_engine(workdir, config, engine.run + 1)
            runs.append(restarted)
            if not await wait_ready(restarted, ENGINE_READY_TIMEOUT_S):
                not_ready.append(restarted.run)
            continue
        kind = bag.draw()
        fault = plan_fault(kind, rng)
        for command in fault.commands:
            await admin.send(command)
        faults[kind] += 1
        if fault.release:
            try:
                await trio.sleep(min(fault.hold_s, max(0.0, end - trio.current_time())))
            finally:
                with trio.move_on_after(ADMIN_TIMEOUT_S * 2, shield=True):
                    for command in fault.release:
                        await admin.send(command)
        gap = rng.uniform(0.5, 1.5) * opts.interval_s
        wake = min(trio.current_time() + gap, end)
        if kill_at is not None:
            wake = min(wake, kill_at)
        await trio.sleep_until(wake)


async def run_storm(opts: StormOptions) -> StormResult:
    """Run the whole scenario; raises :class:`SetupError` when it cannot."""
    workdir = opts.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    began = trio.current_time()
    since_ms = system_clock_ms() - 60_000
    journal_path = workdir / "journal.sqlite3"
    runs: list[EngineRun] = []
    faults: Counter[str] = Counter()
    kills: list[Kill] = []
    died_early: list[tuple[int, int]] = []
    not_ready: list[int] = []
    sim_proc: trio.Process | None = None
    try:
        sim_proc, sim = await start_sim(workdir, opts.seed)
        config = workdir / "engine.toml"
        config.write_text(engine_config_text(sim, journal_path))
        async with httpx.AsyncClient(timeout=ADMIN_TIMEOUT_S * 2) as http:
            admin = Admin(http, sim.rest_url)
            first = await start_engine(workdir, config, 1)
            runs.append(first)
            if not await wait_ready(first, ENGINE_READY_TIMEOUT_S):
                raise SetupError(
                    f"the engine never became ready (exit {first.proc.poll()}): "
                    f"{_tail(first.log_path)}"
                )
            storm_began = trio.current_time()
            await _storm(opts, admin, workdir, config, runs, faults, kills, died_early, not_ready)
            storm_s = trio.current_time() - storm_began
            # A calm venue for the stop: the storm tested the running engine; a planned 10006
            # still queued would only slow the cancels down, not test anything new.
            await admin.send({"action": "clear"})
            last = runs[-1]
            stop_code: int | None = last.proc.poll()
            sigterm_sent = stop_code is None  # else it died by itself: counted in died_early
            if sigterm_sent:
                stop_code = await _stop_process(last.proc, signal.SIGTERM, STOP_TIMEOUT_S)
                if stop_code is None:
                    await _reap(last.proc, signal.SIGKILL, KILL_TIMEOUT_S)
            try:
                with trio.fail_after(TRUTH_TIMEOUT_S):
                    venue = await read_venue(http, sim, since_ms)
            except (BybitError, WireError, httpx.HTTPError, trio.TooSlowError) as exc:
                raise SetupError(f"reading the venue's truth: {exc!r}") from exc
        try:
            journal = read_journal(journal_path)
        except (JournalError, sqlite3.Error) as exc:
            raise SetupError(f"reading the journal: {exc!r}") from exc
        records: list[LogRecord] = []
        for run in runs:
            records.extend(parse_log(run.log_path.read_text(errors="replace"), run.run))
        facts = ProcessFacts(
            stop_exit_code=stop_code,
            runs_not_ready=tuple(not_ready),
            died_early=tuple(died_early),
            sigterm_sent=sigterm_sent,
        )
        violations = check_all(venue, journal, records, facts, kills)
        return StormResult(
            options=opts,
            workdir=workdir,
            storm_s=storm_s,
            total_s=trio.current_time() - began,
            faults=dict(faults),
            kills=tuple(kills),
            runs=tuple(runs),
            stop_exit_code=stop_code,
            venue=venue,
            journal=journal,
            figures=log_figures(records),
            violations=tuple(violations),
        )
    finally:
        for run in runs:
            if run.proc.poll() is None:
                await _reap(run.proc, signal.SIGKILL, KILL_TIMEOUT_S)
        if sim_proc is not None:
            await _reap(sim_proc, signal.SIGINT, 10.0)


# --------------------------------------------------------------------------- the report


def _num(x: Decimal) -> str:
    """Plain notation without trailing zeros (``0.003``, not ``3E-3`` or ``0.00300``)."""
    text = f"{x.normalize():f}"
    return "0" if x == 0 else text


def format_report(r: StormResult) -> str:
    o = r.options
    f = r.figures
    faults_total = sum(r.faults.values())
    by_kind = ", ".join(f"{k} {n}" for k, n in sorted(r.faults.items())) or "-"
    reconnects = sum(f.reconnects.values())
    by_stream = ", ".join(f"{k} {n}" for k, n in f.reconnects.items()) or "-"
    lines = [
        f"HEAN chaos: fault storm   seed {o.seed}   storm {r.storm_s:.1f} s   "
        f"total {r.total_s:.1f} s   kill-engine {'yes' if o.kill_engine else 'no'}",
        f"  faults injected      {faults_total} ({by_kind})",
        f"  engine runs          {len(r.runs)}"
        + "".join(
            f"; run {run.run} ready after {run.ready_after_s:.1f} s"
            for run in r.runs
            if run.ready_after_s is not None
        ),
    ]
    for kill in r.kills:
        lines.append(f"  SIGKILL              run {kill.run}, restarted on the same journal")
    lines += [
        f"  fills                {len(r.venue.executions)} at the venue, "
        f"{len(r.journal.executions)} in the journal",
        f"  missed fills recovered {f.missed_fills_recovered} (missed_execution_applied)",
        f"  reconnects           {reconnects} ({by_stream})",
        f"  creates              {f.creates} sent, {f.unknown_outcomes} unknown outcome, "
        f"{f.duplicate_link_ids} answered 110072; venue lists {len(r.venue.orders)} orders",
        f"  trading restarts     {f.trading_restarts}",
        f"  acked while private dead {f.acked_while_private_dead}"
        + (
            "  WARN: orders placed between a private pong timeout and the gate closing"
            if f.acked_while_private_dead
            else ""
        ),
    ]
    if f.crash_causes:
        lines.append(f"    crash causes       {'; '.join(sorted(set(f.crash_causes)))[:400]}")
    for symbol, p in sorted(r.venue.positions.items()):
        mine = r.journal.positions.get(symbol)
        size, entry = (ZERO, ZERO) if mine is None else (mine.size, mine.avg_entry)
        lines.append(
            f"  position {symbol:<11} venue {_num(p.signed_size)} @ {_num(p.entry_price)}, "
            f"journal {_num(size)} @ {_num(entry.quantize(Decimal('1e-8')))}"
        )
    lines.append(f"  graceful stop        exit {r.stop_exit_code}")
    lines.append("  invariants")
    broken = {v.invariant for v in r.violations}
    for key, name in INVARIANTS.items():
        lines.append(f"    [{'FAIL' if key in broken else ' ok '}] {key} {name}")
        lines.extend(f"           - {v.detail}" for v in r.violations if v.invariant == key)
    verdict = "FAIL" if r.violations else "PASS"
    lines.append(
        f"  result               {verdict} (exit {EXIT_BROKEN if r.violations else EXIT_OK})"
    )
    return "\n".join(lines)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.fault_storm",
        description="Run hean sim + hean run on loopback under a seeded storm of venue faults, "
        "then check the invariants against the venue's REST truth and the journal.",
        epilog="exit codes: 0 invariants held, 1 an invariant broke, 2 setup failure",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="storm length in seconds")
    parser.add_argument("--seed", type=int, default=7, help="seed of the venue and the storm")
    parser.add_argument(
        "--kill-engine",
        action="store_true",
        help="SIGKILL the engine once mid-storm and restart it",
    )
    parser.add_argument(
        "--interval", type=float, default=3.0, help="mean seconds between faults (default 3)"
    )
    parser.add_argument("--workdir", type=Path, help="work directory (default: a fresh temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory on success")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.interval <= 0:
        parser.error("--duration and --interval must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="hean-chaos-")) if temporary else args.workdir
    opts = StormOptions(
        duration_s=args.duration,
        seed=args.seed,
        kill_engine=args.kill_engine,
        workdir=workdir,
        interval_s=args.interval,
    )
    try:
        result = trio.run(run_storm, opts)
    except SetupError as exc:
        print(f"HEAN chaos: SETUP FAILURE: {exc}", flush=True)
        print(f"  work directory       {workdir}", flush=True)
        return EXIT_SETUP
    print(format_report(result), flush=True)
    if result.violations or args.keep or not temporary:
        print(f"  work directory       {workdir}", flush=True)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return EXIT_BROKEN if result.violations else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
