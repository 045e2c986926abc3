"""Chaos scenarios for HEAN: real processes over loopback TCP, faults injected through the
simulator's admin endpoint, invariants checked against the venue's REST truth and the journal.

Run one from the repository root: ``python -m chaos.fault_storm --duration 60 --seed 7``
(see ``chaos/README.md``).
"""
