"""Indicator rules — pure. The event log is the source of truth; counts are derived from it,
so recomputing from history always gives what the live path gives."""
from __future__ import annotations

# The unit an event counts for (None: the event is not attributed to a unit).
def unit_of(event: dict) -> str | None:
    payload = event["payload"]
    return payload.get("unit_id") or payload.get("owner_unit") or payload.get("department")


def summarise(counts: list[dict]) -> dict:
    """{event_type: n} plus the first derived rates (more in the scoring issue)."""
    by_type = {row["_id"]: row["n"] for row in counts}
    received = by_type.get("report_received", 0)
    registered = by_type.get("case_registered", 0)
    dispatched = by_type.get("case_dispatched", 0)
    return {
        "counts": by_type,
        "立案率": round(registered / received, 4) if received else None,
        "派遣率": round(dispatched / registered, 4) if registered else None,
    }
