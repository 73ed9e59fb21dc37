"""case actions and timelines (issue: dispatch)."""
from __future__ import annotations


class CasesApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""
