"""HEAN's embedded Bybit v5 venue (paper trading and tests).

The pure core — matching engine, accounts, market model and REST semantics — is
:class:`hean.sim.venue.Venue`; the trio shells serve it over HTTP and WebSocket. See
``src/hean/sim/MODEL.md`` for the market model and its measured fill curve.
"""

from hean.sim.settings import VenueSettings
from hean.sim.venue import RouteNotFound, Venue, VenueEvents

__all__ = ["RouteNotFound", "Venue", "VenueEvents", "VenueSettings"]
