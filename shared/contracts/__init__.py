"""Contracts: every message that crosses a process boundary has its marshmallow schema here.

- ``events``: the internal lifecycle events services publish on ``<service>.events``.
- ``departments``: the EDXL-DE-style envelope exchanged with department systems.
- ``inbound``: what external channels (hotline bridge, sensors …) publish to intake.
- ``api``: the RPC inputs and HTTP bodies/queries of each service (the gateway validates with
  them; each service's ``schemas.py`` re-exports its module); ``parties``, ``periods`` and
  ``open311`` (the GeoReport v2 protocol) beside them.
- ``errors`` (+ ``remote``): the one error model services raise and the gateway maps to HTTP.

Services meet only here: the gateway imports only ``shared``, no service imports another, and
``shared`` imports no service (``.importlinter``).

Schemas tolerate unknown fields (``EXCLUDE``) so that one service can be upgraded ahead of
the others; a newer producer may add fields, an older consumer ignores them.
"""
from marshmallow import ValidationError  # noqa: F401  (re-exported for handlers)
