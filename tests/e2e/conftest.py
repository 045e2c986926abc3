"""``hean sim`` as a real child process on 127.0.0.1 with ephemeral ports.

The ``hean_sim`` fixture runs ``python -m hean sim --rest-port 0 --ws-port 0``, reads the URLs and
the paper key pair from the lines ``serve_sim`` prints (``REST        http://...``), and stops the
process with SIGINT (Ctrl-C, the documented way to stop it) at the end of the module.

Every wait is bounded by a generous deadline that only bounds a hang; nothing sleeps. The child's
stdout (the printed lines and its JSON log lines) is drained by one daemon thread for the whole
life of the process, so a chatty venue can never fill the pipe and stall, and the captured output
goes into any failure message.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO

import pytest
from attrs import field, frozen

from hean.exitcodes import EXIT_INTERRUPTED  # how `hean sim` reports a Ctrl-C stop

# The labels ``hean.sim.serve.serve_sim`` prints, each followed by spaces and the value.
_LABELS = {
    "REST": "rest_url",
    "WS public": "ws_public_url",
    "WS private": "ws_private_url",
    "api key": "api_key",
    "api secret": "api_secret",
}
_STARTUP_TIMEOUT_S = 30.0  # a cold interpreter importing trio/attrs/... on a busy 2-core box
_SHUTDOWN_TIMEOUT_S = 10.0


@frozen
class SimProcess:
    """Where the child ``hean sim`` listens, and its paper account (not a real secret, but kept
    out of ``repr`` like everywhere else)."""

    rest_url: str
    ws_public_url: str
    ws_private_url: str
    api_key: str
    api_secret: str = field(repr=False)
    output: list[str] = field(eq=False, repr=False)  # every line the child printed so far


def _drain(stream: IO[str], lines: queue.Queue[str | None], output: list[str]) -> None:
    """Copy the child's stdout into ``lines`` (until startup is parsed) and ``output``."""
    for line in stream:
        output.append(line.rstrip("\n"))
        lines.put(line)
    lines.put(None)  # EOF: the child exited or closed stdout


def _read_endpoints(
    proc: subprocess.Popen[str], lines: queue.Queue[str | None], output: list[str]
) -> SimProcess:
    found: dict[str, str] = {}
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while len(found) < len(_LABELS):
        remaining = deadline - time.monotonic()
        try:
            line = lines.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            pytest.fail(f"hean sim printed no endpoints within {_STARTUP_TIMEOUT_S} s: {output}")
        if line is None:
            pytest.fail(f"hean sim exited during startup (rc={proc.wait()}): {output}")
        for label, name in _LABELS.items():
            if line.startswith(label + " "):
                found[name] = line[len(label) :].strip()
    return SimProcess(output=output, **found)


def _stop(proc: subprocess.Popen[str], output: list[str]) -> None:
    if proc.poll() is not None:
        pytest.fail(f"hean sim died during the tests (rc={proc.returncode}): {output}")
    proc.send_signal(signal.SIGINT)
    try:
        rc = proc.wait(timeout=_SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"hean sim ignored SIGINT for {_SHUTDOWN_TIMEOUT_S} s: {output}")
    assert rc == EXIT_INTERRUPTED, f"hean sim exited with {rc} on SIGINT: {output}"


@pytest.fixture(scope="module")
def hean_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """A ``hean sim`` child process on ephemeral loopback ports, one per test module.

    It runs in an empty directory so it serves the built-in defaults (seed 7, BTCUSDT and
    ETHUSDT, paper key pair) rather than whatever ``configs/paper.toml`` says.
    """
    cwd = tmp_path_factory.mktemp("hean-sim")
    argv = [sys.executable, "-m", "hean", "sim", "--rest-port", "0", "--ws-port", "0"]
    argv += ["--host", "127.0.0.1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    reader = threading.Thread(
        target=_drain, args=(proc.stdout, lines, output), name="hean-sim-stdout", daemon=True
    )
    reader.start()
    try:
        endpoints = _read_endpoints(proc, lines, output)
        yield endpoints
        _stop(proc, output)
    finally:
        if proc.poll() is None:  # startup failed or a test crashed the fixture: no orphan
            proc.kill()
            proc.wait()
        reader.join(timeout=_SHUTDOWN_TIMEOUT_S)
        proc.stdout.close()
