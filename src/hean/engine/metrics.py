"""Prometheus instruments of the trading engine (order pipeline, private events, reconciliation).

One :class:`EngineMetrics` object holds every engine-level series; the router, the private-event
applier, the reconciler, the application and the ops server all share it. It registers on the
``CollectorRegistry`` it is given (the process registry in production, a private one per test), so
several engines in one process (tests) never collide on metric names.

Naming follows prometheus.io's practices: the ``hean_`` prefix, base units (seconds), ``_total``
on counters (client_python strips it from the constructor name and adds it back on export), and
low-cardinality labels only: symbol, side, reason, outcome, topic — never an order id, a link id
or a price.
"""

from __future__ import annotations

from typing import Final

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CHANNEL_SATURATION_RATIO", "ChannelMonitor", "EngineMetrics"]

log = structlog.get_logger("hean.engine.metrics")

CHANNEL_SATURATION_RATIO: Final = 0.8
"""Buffer use above which a channel counts as saturated (ARCHITECTURE §3: log, count, publish)."""

_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_RECONCILE_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class EngineMetrics:
    """Every engine-level Prometheus series, registered on ``registry`` (default: a private one).

    Attributes are the instruments themselves; callers use ``.labels(...).inc()`` etc.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry

        # ---- intents (signals that passed or failed the gate, the bounded channel)
        self.intents_accepted = Counter(
            "hean_intents_accepted",
            "Signals that passed the risk gate and entered the intent channel.",
            ["symbol", "side"],
            registry=r,
        )
        self.intents_rejected = Counter(
            "hean_intents_rejected",
            "Signals or intents refused before reaching the venue, by reason.",
            ["reason"],
            registry=r,
        )
        self.intents_expired = Counter(
            "hean_intents_expired",
            "Intents dropped unsent because their TTL passed (queued, or waiting for the gate).",
            ["reason"],
            registry=r,
        )
        self.channel_buffer_used = Gauge(
            "hean_channel_buffer_used",
            "Items waiting in a bounded channel (intents, private_events).",
            ["channel"],
            registry=r,
        )
        self.channel_buffer_size = Gauge(
            "hean_channel_buffer_size",
            "Capacity of a bounded channel.",
            ["channel"],
            registry=r,
        )
        self.unordered_fills = Counter(
            "hean_unordered_fills",
            "Fills that could not be replayed in exchange order (older than a fixed starting "
            "state or the replay window): size and fees stay exact, entry and realized PnL may "
            "drift from the exchange's.",
            registry=r,
        )
        self.market_data_overwrites = Counter(
            "hean_market_data_overwrites",
            "Market-data updates replaced by a newer one before the strategy read them "
            "(conflation per symbol: latest wins).",
            registry=r,
        )
        self.channel_saturation = Counter(
            "hean_channel_saturation",
            "Times a channel's buffer use crossed the saturation threshold (80 %).",
            ["channel"],
            registry=r,
        )

        # ---- orders at the venue
        self.orders_submitted = Counter(
            "hean_orders_submitted",
            "Order create requests sent to the venue.",
            ["symbol", "side"],
            registry=r,
        )
        self.order_outcomes = Counter(
            "hean_order_outcomes",
            "Outcome of order create requests (acked, rejected, unknown, duplicate_link_id).",
            ["outcome"],
            registry=r,
        )
        self.order_ack_latency = Histogram(
            "hean_order_ack_latency_seconds",
            "Time from sending an order create to its acknowledgement.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.unknown_orders_resolved = Counter(
            "hean_unknown_orders_resolved",
            "Orders with an unknown create outcome settled by query (found or lost).",
            ["result"],
            registry=r,
        )
        self.cancel_requests = Counter(
            "hean_cancel_requests",
            "Order cancel requests by result (ok, not_found, error, withdrawn).",
            ["result"],
            registry=r,
        )
        self.cancel_retries = Counter(
            "hean_cancel_retries",
            "Cancels sent again for an order still resting after an earlier cancel (the earlier "
            "one failed, or arrived before the create landed), by where the retry came from.",
            ["source"],
            registry=r,
        )
        self.trading_gate_open = Gauge(
            "hean_trading_gate_open",
            "1 while new orders may be placed, 0 while private state is unknown.",
            registry=r,
        )
        self.fail_closed = Gauge(
            "hean_fail_closed",
            "1 while the engine refuses new exposure (state it cannot explain), else 0.",
            registry=r,
        )

        # ---- private events
        self.private_events = Counter(
            "hean_private_events",
            "Private-stream pushes applied, by topic.",
            ["topic"],
            registry=r,
        )
        self.executions_applied = Counter(
            "hean_executions_applied",
            "Executions booked into the portfolio, by source (stream, reconcile).",
            ["source"],
            registry=r,
        )
        self.executions_duplicate = Counter(
            "hean_executions_duplicate",
            "Executions ignored because their execId was already booked.",
            ["source"],
            registry=r,
        )
        self.fills = Counter(
            "hean_fills",
            "Position-changing fills booked, by symbol, side and liquidity (maker/taker).",
            ["symbol", "side", "liquidity"],
            registry=r,
        )
        self.external_orders = Counter(
            "hean_external_orders_adopted",
            "Exchange orders unknown to the journal, adopted and tracked.",
            ["source"],
            registry=r,
        )
        self.order_conflicts = Counter(
            "hean_order_conflicts",
            "Exchange updates contradicting a final local order (ignored, reconciled).",
            registry=r,
        )

        # ---- reconciliation
        self.reconciles = Counter(
            "hean_reconciles",
            "Reconciliations by trigger and result (ok, incomplete, failed).",
            ["trigger", "result"],
            registry=r,
        )
        self.reconcile_duration = Histogram(
            "hean_reconcile_duration_seconds",
            "Wall time of one reconciliation (fetch, plan, apply).",
            registry=r,
            buckets=_RECONCILE_BUCKETS,
        )
        self.missed_fills = Counter(
            "hean_missed_fills",
            "Position-changing executions found by reconciliation, never seen on the stream.",
            registry=r,
        )
        self.missed_events = Counter(
            "hean_missed_events",
            "Events found by reconciliation (fills, order changes, adoptions, losses).",
            registry=r,
        )
        self.reconcile_gap = Gauge(
            "hean_reconcile_gap_seconds",
            "Newest missed execution time minus the previous cursor, at the last reconciliation.",
            registry=r,
        )
        self.position_mismatches = Counter(
            "hean_position_mismatches",
            "Positions that disagreed with the exchange after every fill was applied.",
            ["symbol"],
            registry=r,
        )
        self.alerts = Counter(
            "hean_alerts",
            "Conditions that need a human, by kind.",
            ["kind"],
            registry=r,
        )


class ChannelMonitor:
    """Publishes one bounded channel's buffer use, and raises the saturation alert.

    ARCHITECTURE §3: every channel exports its buffer use; above
    :data:`CHANNEL_SATURATION_RATIO` a saturation alert is logged, counted and published. The
    alert fires once per crossing (not on every item while saturated), so a sustained backlog is
    one event, and a flapping one is counted each time it comes back.
    """

    def __init__(self, metrics: EngineMetrics, channel: str, size: int) -> None:
        self.channel = channel
        self.size = size
        self.saturated = False
        self._used = metrics.channel_buffer_used.labels(channel)
        self._saturation = metrics.channel_saturation.labels(channel)
        metrics.channel_buffer_size.labels(channel).set(size)
        self._used.set(0)

    def observe(self, used: int) -> None:
        """Record the current buffer use (call after every send and receive)."""
        self._used.set(used)
        saturated = used > CHANNEL_SATURATION_RATIO * self.size
        if saturated and not self.saturated:
            self._saturation.inc()
            log.warning("channel_saturated", channel=self.channel, used=used, size=self.size)
        self.saturated = saturated


def note_unordered_fills(metrics: EngineMetrics, before: int, after: int, *, source: str) -> None:
    """Count and log fills a :class:`~hean.engine.portfolio.Portfolio` had to apply out of
    exchange order (``before``/``after`` are its ``unordered_fills`` around the change)."""
    if after > before:
        metrics.unordered_fills.inc(after - before)
        log.warning("fills_applied_out_of_order", count=after - before, source=source)
