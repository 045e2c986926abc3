"""End to end over real TCP on 127.0.0.1: ``hean sim`` and ``hean run`` as separate processes.

These run on the real clock (sockets and a fake clock do not mix, trio-notes §4), so they are
kept short: a few seconds of trading each.

* crash-restart: ``hean sim`` in another process on ephemeral ports (it prints the URLs it bound),
  the engine in-process over TCP, killed the moment the venue has processed an order create and
  before the answer arrives, then restarted on the same journal: nothing placed twice, positions
  and open orders match the venue;
* ``hean run --duration 20`` (paper mode, embedded venue) exits 0 and prints its summary.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import attrs
import httpx
import pytest
import trio

from hean.bybit.signing import Credentials
from hean.config import VenueUrls
from hean.engine.app import Engine
from hean.engine.clock import system_clock_ms
from hean.engine.journal import Journal
from hean.engine.rest_client import BybitRestClient
from hean.engine.ws_session import default_connect_ws
from tests.conftest import (
    PAPER_KEY,
    PAPER_SECRET,
    EngineRunner,
    RecordingTransport,
    assert_each_link_id_sent_once,
    crash_on_next_create,
    engine_config,
    start_engine,
)

pytestmark = pytest.mark.e2e

SYMBOL = "BTCUSDT"
_URL_LINES = {
    "rest": re.compile(r"^REST\s+(http://\S+)$", re.M),
    "ws_public": re.compile(r"^WS public\s+(ws://\S+)$", re.M),
    "ws_private": re.compile(r"^WS private\s+(ws://\S+)$", re.M),
}


@asynccontextmanager
async def hean_sim(workdir: Path) -> AsyncIterator[VenueUrls]:
    """``python -m hean sim`` on ephemeral ports; yields the URLs it printed; terminated after.

    Run from an empty directory so no ``configs/paper.toml`` is picked up: the flags decide.
    """
    out_path = workdir / "sim.out"
    with out_path.open("wb") as out:
        proc = await trio.lowlevel.open_process(
            [
                sys.executable,
                "-m",
                "hean",
                "sim",
                "--rest-port",
                "0",
                "--ws-port",
                "0",
                "--seed",
                "7",
                "--symbols",
                "BTCUSDT,ETHUSDT",
            ],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        found: dict[str, str] = {}
        with trio.fail_after(30):
            while len(found) < len(_URL_LINES):
                if proc.poll() is not None:
                    raise RuntimeError(f"hean sim exited: {out_path.read_text()[-2000:]}")
                text = out_path.read_text(errors="replace")
                for name, pattern in _URL_LINES.items():
                    match = pattern.search(text)
                    if match:
                        found[name] = match.group(1)
                await trio.sleep(0.05)
        yield VenueUrls(found["rest"], found["ws_public"], found["ws_private"])
    finally:
        with trio.move_on_after(10, shield=True):
            proc.terminate()
            with trio.move_on_after(5):
                await proc.wait()
            if proc.poll() is None:
                proc.kill()
                await proc.wait()


async def venue_truth(urls: VenueUrls) -> tuple[Decimal, set[str]]:
    """The venue's position size and open orderLinkIds, asked over REST like any client."""
    creds = Credentials(api_key=PAPER_KEY, api_secret=PAPER_SECRET)
    async with BybitRestClient(urls.rest, credentials=creds) as rest:
        positions = await rest.positions(SYMBOL)
        orders = await rest.open_orders(SYMBOL)
    size = sum((p.signed_size for p in positions), Decimal(0))
    return size, {o.order_link_id for o in orders}


async def test_crash_restart_over_tcp_against_hean_sim_in_another_process(
    tmp_path: Path,
) -> None:
    journal_path = tmp_path / "journal.sqlite3"
    base = engine_config(status_interval_s=2.0)
    cfg = attrs.evolve(base, strategy=attrs.evolve(base.strategy, requote_interval_s=0.5))
    transport = RecordingTransport(httpx.AsyncHTTPTransport())
    creds = Credentials(api_key=PAPER_KEY, api_secret=PAPER_SECRET)

    async with hean_sim(tmp_path) as urls, trio.open_nursery() as nursery:

        def make() -> Engine:
            return Engine(
                cfg,
                creds,
                urls=urls,
                transport=transport,
                connect_ws=default_connect_ws,
                journal_path=journal_path,
                wall_ms=system_clock_ms,
            )

        first = await start_engine(nursery, make())
        await trio.sleep(3.0)  # quote and trade for a while
        holder: list[EngineRunner] = [first]
        crashed: list[str] = []
        crash_on_next_create(transport, holder, crashed)
        with trio.fail_after(20):
            await first.done.wait()
        assert first.error is None
        assert len(crashed) == 1

        second = await start_engine(nursery, make())
        state = second.engine.state
        assert state is not None
        assert not state.tracker[crashed[0]].state.is_unresolved  # settled by query
        await trio.sleep(2.0)
        report = await second.engine.shutdown("test")
        assert second.error is None
        assert report is not None
        assert report.clean, report

        size, open_links = await venue_truth(urls)
        assert open_links == set()
        assert state.portfolio.position(SYMBOL).size == size
        assert_each_link_id_sent_once(transport)
        with Journal.open(journal_path) as journal:
            loaded = journal.load()
        assert set(loaded.orders) == {c.link_id for c in transport.creates()}
        assert loaded.rebuild_portfolio().position(SYMBOL).size == size
        nursery.cancel_scope.cancel()


def paper_config(tmp_path: Path) -> Path:
    """A paper config: embedded venue on ephemeral ports, journal in ``tmp_path``."""
    config = tmp_path / "paper.toml"
    config.write_text(
        "\n".join(
            [
                "[venue]",
                'mode = "paper"',
                "[sim]",
                "rest_port = 0",
                "ws_port = 0",
                "[engine]",
                f'journal_path = "{tmp_path / "journal.sqlite3"}"',
                "status_interval_s = 5.0",
                "",
            ]
        )
    )
    return config


async def test_hean_run_paper_smoke(tmp_path: Path) -> None:
    config = paper_config(tmp_path)
    with trio.fail_after(120):
        result = await trio.run_process(
            [sys.executable, "-m", "hean", "run", "--config", str(config), "--duration", "20"],
            cwd=tmp_path,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = result.stdout.decode(errors="replace")
    assert result.returncode == 0, (out[-3000:], result.stderr.decode(errors="replace")[-3000:])
    assert "HEAN run summary" in out
    assert "(exit code 0)" in out
    assert '"event":"sim_started"' in out
    assert '"event":"engine_ready"' in out
    fills = re.search(r"^\s+fills\s+(\d+)", out, re.M)
    assert fills is not None
    assert int(fills.group(1)) > 0  # the demo maker trades on the simulator within seconds
    open_orders = re.search(r"^\s+open orders\s+(\d+)", out, re.M)
    assert open_orders is not None
    assert open_orders.group(1) == "0"  # graceful stop: nothing left resting


async def test_second_paper_run_archives_the_first_runs_journal(tmp_path: Path) -> None:
    """The embedded venue starts empty each run: a second `hean run` must not reconcile the
    first run's position against it (that would fail closed), it archives that journal."""
    config = paper_config(tmp_path)
    outputs = []
    for _ in range(2):
        with trio.fail_after(120):
            result = await trio.run_process(
                [sys.executable, "-m", "hean", "run", "--config", str(config), "--duration", "8"],
                cwd=tmp_path,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        out = result.stdout.decode(errors="replace")
        assert result.returncode == 0, (out[-3000:], result.stderr.decode(errors="replace")[-3000:])
        outputs.append(out)
    assert '"event":"journal_archived"' not in outputs[0]
    assert '"event":"journal_archived"' in outputs[1]
    assert journal_files(tmp_path) == (["journal.sqlite3"], 1)  # a fresh one, one archived


def journal_files(directory: Path) -> tuple[list[str], int]:
    """(current journal names, number of archived ones) in ``directory``."""
    return (
        [p.name for p in directory.glob("journal.sqlite3")],
        len(list(directory.glob("journal.*.sqlite3"))),
    )


async def test_hean_run_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    """systemd's stop: SIGTERM -> cancel orders, reconcile, close -> exit 0 with a summary."""
    config = paper_config(tmp_path)
    out_path = tmp_path / "run.out"
    with out_path.open("wb") as out:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "hean", "run", "--config", str(config)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with trio.fail_after(60):
            while '"event":"engine_ready"' not in out_path.read_text(errors="replace"):
                assert proc.poll() is None, out_path.read_text()[-3000:]
                await trio.sleep(0.1)
        await trio.sleep(3.0)  # let it quote
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(60):
            rc = await proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            await proc.wait()
    text = out_path.read_text(errors="replace")
    assert rc == 0, text[-3000:]
    assert "stopped         signal SIGTERM (exit code 0)" in text
    assert '"event":"engine_shutdown_done"' in text
    open_orders = re.search(r"^\s+open orders\s+(\d+)", text, re.M)
    assert open_orders is not None
    assert open_orders.group(1) == "0"
