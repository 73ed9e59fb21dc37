"""Open311 GeoReport v2 under /open311/v2/ (issue: intake)."""
from __future__ import annotations


class Open311Api:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""
