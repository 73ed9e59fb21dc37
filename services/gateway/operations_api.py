"""joint operations, whistles, department replies over HTTP (issue: coordination)."""
from __future__ import annotations


class OperationsApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""
