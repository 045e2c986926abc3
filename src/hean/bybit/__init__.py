"""The Bybit v5 protocol codec: a pure core (no trio, no I/O; time is passed in).

Modules by concern: ``types`` (domain values), ``signing``, ``rest`` (request builders),
``errors`` and ``envelope`` (response classification), ``wire`` (JSON <-> domain values),
``stream`` (WebSocket frames), ``book`` (order-book state), ``instruments`` (trading rules and
rounding), ``link_id`` (deterministic ``orderLinkId``).
"""
