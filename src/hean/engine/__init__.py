"""The trading engine: pure cores and the trio shells around them.

Pure cores (no trio, no I/O; time passed in):

* :mod:`hean.engine.intents` — ``Signal``, ``OrderIntent`` (with its deterministic
  ``orderLinkId``), ``Fingerprint`` and ``DuplicateGuard``;
* :mod:`hean.engine.orders` — the order state machine (``apply_event``, ``TRANSITIONS``) and the
  ``OrderTracker`` registry;
* :mod:`hean.engine.portfolio` — positions and PnL from executions (``Portfolio``);
* :mod:`hean.engine.reconcile_plan` — local state vs REST truth -> ``ReconcilePlan``.

Synchronous storage: :mod:`hean.engine.journal` (SQLite WAL). Submodules are not imported here,
so importing a pure core never pulls in trio.
"""
