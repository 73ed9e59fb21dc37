"""Contracts: every message that crosses a process boundary has its marshmallow schema here.

- ``events``: the internal lifecycle events services publish on ``<service>.events``.
- ``departments``: the EDXL-DE-style envelope exchanged with department systems.
- ``inbound``: what external channels (hotline bridge, sensors …) publish to intake.

Schemas tolerate unknown fields (``EXCLUDE``) so that one service can be upgraded ahead of
the others; a newer producer may add fields, an older consumer ignores them.
"""
from marshmallow import ValidationError  # noqa: F401  (re-exported for handlers)
