"""Channel buffer gauges and the saturation alert (ARCHITECTURE §3), conflation overwrites."""

from __future__ import annotations

from structlog.testing import capture_logs

from hean.engine.metrics import ChannelMonitor, EngineMetrics, note_unordered_fills
from hean.engine.ws_session import Conflator


def sample(m: EngineMetrics, name: str, channel: str | None = None) -> float | None:
    labels = None if channel is None else {"channel": channel}
    return m.registry.get_sample_value(name, labels)


def test_channel_monitor_publishes_use_and_alerts_once_per_crossing() -> None:
    m = EngineMetrics()
    mon = ChannelMonitor(m, "private_events", 10)
    assert sample(m, "hean_channel_buffer_size", "private_events") == 10
    assert sample(m, "hean_channel_buffer_used", "private_events") == 0
    with capture_logs() as logs:
        for used in (3, 8, 9, 10, 9):  # 80 % of 10 is not yet saturated; 9 is
            mon.observe(used)
        mon.observe(2)  # drained
        mon.observe(9)  # saturated again: a second alert
    assert sample(m, "hean_channel_buffer_used", "private_events") == 9
    assert sample(m, "hean_channel_saturation_total", "private_events") == 2
    alerts = [e for e in logs if e["event"] == "channel_saturated"]
    assert [(e["channel"], e["used"], e["log_level"]) for e in alerts] == [
        ("private_events", 9, "warning"),
        ("private_events", 9, "warning"),
    ]


def test_conflator_reports_each_overwrite() -> None:
    m = EngineMetrics()
    c: Conflator[str, int] = Conflator(on_overwrite=m.market_data_overwrites.inc)
    c.put("BTCUSDT", 1)
    c.put("ETHUSDT", 1)
    c.put("BTCUSDT", 2)  # the first BTC value was never read: overwritten
    c.put("BTCUSDT", 3)
    assert c.overwritten == 2
    assert sample(m, "hean_market_data_overwrites_total") == 2


def test_unordered_fills_are_counted_and_logged_only_when_they_grow() -> None:
    m = EngineMetrics()
    with capture_logs() as logs:
        note_unordered_fills(m, 3, 3, source="stream")
        note_unordered_fills(m, 3, 5, source="reconcile")
    assert sample(m, "hean_unordered_fills_total") == 2
    assert [(e["event"], e["count"], e["source"]) for e in logs] == [
        ("fills_applied_out_of_order", 2, "reconcile")
    ]
