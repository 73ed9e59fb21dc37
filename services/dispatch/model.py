"""Dispatch's vocabulary — pure (no I/O): the states and their labels, the errors an action can
raise, the :class:`Context` a rule runs in and the :class:`Change` it returns, and the small helpers
every rule uses (millisecond times, working seconds, applying fields, queuing a notification)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shared.contracts.api.case_actions import STATE_LABELS  # noqa: F401  (one vocabulary: API and pages)
from shared.contracts.api.dispatch import STATES  # noqa: F401  (the contract owns the states)

from . import notices as notifications
from .routing import Settings

OPEN_STATES = ("dispatched", "accepted")          # the handling clock runs
LABELS = {
    "report_received": "受理", "case_registered": "立案", "case_dispatched": "派遣",
    "case_accepted": "签收", "case_returned": "回退", "extension_requested": "申请延期",
    "extension_decided": "延期审批", "park_requested": "申请挂账", "park_refused": "挂账未批准",
    "case_parked": "挂账", "case_unparked": "解除挂账", "case_feedback_given": "处置反馈",
    "case_verified": "核查", "case_closed": "结案", "case_rework_ordered": "返工",
    "case_warned": "预警", "case_supervised": "督办", "case_escalated": "升级（领导小组）",
    "case_ownership_disputed": "权属争议", "ownership_decided": "权属裁定",
    "case_urgency_changed": "调整紧急程度", "verification_overdue": "核查超时提醒",
    "case_reopened": "重复举报重新打开", "case_stage_reported": "阶段报告", "case_stage_overdue": "阶段超时督办",
    "first_contact": "首问负责（限时回复）", "first_reply": "首问回复", "first_reply_overdue": "首问回复超时督办",
    "case_check_requested": "发起核实", "case_checked": "核实", "check_overdue": "核实超时督办",
    "case_cancelled": "不立案（作废）",
}
TIMER_KINDS = ("warn", "supervise", "escalate", "verify_overdue", "stage_overdue", "first_reply", "check_overdue")


class Refused(Exception):
    """The action is not allowed in the case's current state (HTTP 422)."""


class Forbidden(Exception):
    """This actor may not do this (wrong unit, approver rank too low) (HTTP 403)."""


@dataclass
class Context:
    now: datetime
    district: object
    settings: Settings

    def __post_init__(self):
        self.now = ms(self.now)

    @property
    def calendar(self):
        return self.district.calendar


@dataclass
class Change:
    case_id: str
    set: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    events: list = field(default_factory=list)         # (type, payload, event_id)
    notes: list = field(default_factory=list)          # notifications
    timers: list | None = None                         # the whole new list, or None: unchanged

    def event(self, event_type: str, payload: dict, event_id: str):
        self.events.append((event_type, dict(payload, case_id=self.case_id), event_id))

    def record(self, entry_type: str, at: datetime, actor: str, reason: str = "", **details):
        entry = {"type": entry_type, "label": LABELS.get(entry_type, entry_type), "at": at,
                 "actor": actor, "reason": reason or ""}
        entry.update({key: value for key, value in details.items() if value is not None})
        self.history.append(entry)


def ms(moment: datetime) -> datetime:
    """Millisecond precision: what the store keeps, so values compare equal after a round trip."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def working_seconds(calendar, a: datetime, b: datetime) -> int:
    return int(calendar.working_time_between(a, b).total_seconds())


def _apply(doc: dict, change: Change, fields: dict):
    """Set fields on the in-memory document and in the change (later rules see the new values)."""
    doc.update(fields)
    change.set.update(fields)


def _notify(doc: dict, change: Change, ctx: Context, kind: str, unit_id: str, note_id: str | None = None,
            people: list | None = None, **extra):
    settings = ctx.settings
    words = settings.notify_roles.get(kind, settings.notify_roles.get("dispatch", []))
    if people is None:
        people = notifications.recipients(ctx.district, unit_id, words)
    message = notifications.text(kind, ctx.district, doc["case"], doc, **extra)
    note_id = note_id or f"{doc['_id']}.notified.{kind}.{doc.get('_version', 0)}.{len(change.notes) + 1}"
    change.notes.append({"id": note_id, "kind": kind, "case_id": doc["_id"], "unit_id": unit_id,
                         "recipients": people, "message": message, "at": ctx.now})
