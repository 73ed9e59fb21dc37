"""indicators, rankings, bulletins (issue: scoring)."""
from __future__ import annotations


class ScoringApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""
