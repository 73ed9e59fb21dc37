"""The vocabulary of a joint operation (城管+N) — pure: department states, what a rule returns
(:class:`Effects`), what a refused command raises (:class:`Refused`), the ids of operations and
messages, and the EDXL-DE style envelope every platform message is sent in.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.contracts.base import isoformat
from shared.contracts.departments import CONTRACT_VERSION, PLATFORM_SENDER


LEAD_UNIT = "dept.chengguan"
SENDER = PLATFORM_SENDER
REQUEST_TTL = timedelta(hours=24)
TRIGGERS = ("class_rule", "whistle", "escalation")
STATE_ORDER = {"requested": 0, "accepted": 1, "on_site": 2, "acting": 3, "disposed": 4}
PARTICIPATING = ("requested", "accepted", "on_site", "acting", "disposed")
STAGE_STATE = {"checkin": "on_site", "action": "acting", "disposition": "disposed"}
STATE_NAMES = {"requested": "已发送请求", "accepted": "已接受", "rejected": "已拒绝", "on_site": "已到场报到",
               "acting": "处置中", "disposed": "已处置", "cancelled": "已解除"}
TIMER_KINDS = {"acceptance": "acceptance_due", "checkin": "checkin_due"}


class Refused(Exception):
    """A command that the rules refuse (HTTP 4xx): ``status``, a Chinese+English message."""

    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields


@dataclass
class Effects:
    set_fields: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)     # entries for the operation's message log
    outgoing: list = field(default_factory=list)     # (routing_key, body) to departments.requests
    events: list = field(default_factory=list)       # (event_type, payload, event_id)
    timers: list | None = None                       # the operation's whole new timer list
    refused: dict | None = None                      # set when a department message was refused


# ------------------------------------------------------------------ ids
def operation_id_for(case_id: str, trigger: str, key: str | None = None) -> str:
    """``OP-<case>`` for the class rule (one per case: a redelivered event finds it), and
    ``OP-<case>-W<key>`` / ``OP-<case>-E<key>`` for a whistle / an escalation."""
    if trigger == "class_rule":
        return f"OP-{case_id}"
    if key:
        return f"OP-{case_id}-{'W' if trigger == 'whistle' else 'E'}{key}"
    return f"OP-{case_id}-{trigger}"


def distribution_id(operation_id: str, department: str, kind: str, seq: int = 1) -> str:
    return f"{operation_id}.{department}.{kind.lower()}.{seq}"


def short_hash(text: str, size: int = 12) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:size]


def ms_iso(moment: datetime) -> str:
    """ISO 8601 UTC to the millisecond (what the store keeps), so a message re-sent from the
    stored operation says exactly what the first one said."""
    return isoformat(moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def _iso(moment):
    return ms_iso(moment) if isinstance(moment, datetime) else moment


def _urgency(operation: dict) -> str:
    return operation.get("urgency") or (operation.get("case") or {}).get("urgency") or "normal"


def _place(operation: dict) -> dict:
    if operation.get("place"):
        return operation["place"]
    case = operation.get("case") or {}
    return {"address": case.get("address", ""), "location": case.get("location"),
            "grid_code": case.get("grid_code"), "street_id": case.get("street_id")}


def _envelope(operation_id: str, department: str, kind: str, dist_id: str, now: datetime,
              payload: dict, references=(), ttl: timedelta = REQUEST_TTL) -> dict:
    return {
        "schema_version": CONTRACT_VERSION,
        "distribution_id": dist_id,
        "sender": SENDER,
        "recipients": [department],
        "kind": kind,
        "sent_at": ms_iso(now),
        "expires_at": ms_iso(now + ttl),
        "incident_id": operation_id,
        "in_reply_to": None,
        "references": list(references),
        "payload": payload,
    }


def _log(direction: str, department: str, message: dict, now: datetime, **extra) -> dict:
    entry = {"direction": direction, "at": now, "department": department, "kind": message.get("kind"),
             "distribution_id": message.get("distribution_id"), "message": message}
    entry.update(extra)
    return entry
