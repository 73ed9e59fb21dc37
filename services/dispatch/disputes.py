"""Dispatch's copy of intake's ownership disputes (争议确权) — pure (no I/O).

intake owns a dispute; dispatch keeps, in its ``disputes`` collection, what it needs to re-dispatch
after 确权: the case(s) it is about, the interim owner (属地兜底) and the decision. The copy is a
projection (shared.projection): each event sets its fields by the owner's aggregate position, so
``ownership_dispute_opened`` and ``ownership_decided`` in any order, duplicated or redelivered,
give the same copy as in-order delivery. The state is not a field that two events fight over:
a copy with a decided owner is decided (a monotone order: open → decided).
"""
from __future__ import annotations

from shared import projection

OPENED = "ownership_dispute_opened"
DECIDED = "ownership_decided"


def fields_of(event: dict) -> dict:
    """The projected fields one of intake's dispute events says ({} for other events)."""
    payload = event.get("payload") or {}
    if event.get("type") == OPENED:
        fields = {"case_id": payload.get("case_id"), "interim_owner": payload.get("interim_owner"),
                  "level": payload.get("level"), "opened_at": payload.get("opened_at")}
    elif event.get("type") == DECIDED:
        fields = {"owner_unit": payload.get("owner_unit"), "decided_level": payload.get("level"),
                  "decided_by": payload.get("decided_by"), "decided_at": payload.get("decided_at"),
                  "case_ids": list(payload.get("case_ids") or []), "decided_event_id": event.get("event_id"),
                  "case_id": payload.get("case_id"), "interim_owner": payload.get("interim_owner")}
    else:
        return {}
    return {key: value for key, value in fields.items() if value not in (None, [])}


def changes(doc: dict | None, event: dict) -> dict:
    """The ``$set`` that applies ``event`` to the copy ``doc`` ({} when it adds nothing)."""
    fields = fields_of(event)
    return projection.merge(doc, fields, event) if fields else {}


def state(doc: dict | None) -> str | None:
    """open | decided (None: nothing known yet)."""
    if not doc:
        return None
    return "decided" if doc.get("owner_unit") else "open"


def decision(dispute_id: str, doc: dict) -> dict | None:
    """The decision as rules.ownership_decided reads it, once the copy holds one."""
    if state(doc) != "decided":
        return None
    return {"dispute_id": dispute_id, "owner_unit": doc["owner_unit"], "level": doc.get("decided_level"),
            "decided_by": doc.get("decided_by") or "arbitration"}


def case_ids(doc: dict) -> list:
    """The cases the dispute is about, as far as the copy knows."""
    return list(dict.fromkeys([case_id for case_id in [doc.get("case_id")] if case_id]
                              + list(doc.get("case_ids") or [])))


def view(doc: dict | None) -> dict:
    """The copy without bookkeeping, with its state (for tests and answers)."""
    out = {key: value for key, value in projection.view(doc).items() if not key.startswith("_")}
    if doc:
        out["state"] = state(doc)
    return out
