"""Notifications to the responsible people (短信/通知 outbox), behind an adapter interface.

A notification is decided by the rules (who, what, why) and saved IN THE SAME atomic update as the
state change that caused it — in the case's ``notifications`` list and as an ``owner_notified``
event in the case's outbox. Nothing is sent before the change is saved, and nothing saved is lost.

How a saved notification reaches people is the adapter's business:

* :class:`NotificationAdapter` is the interface. ``outbox_entries(note)`` returns what to save with
  the change (outbox entries: events or messages to any exchange); ``after_commit(notes)`` runs
  once the change is saved (side effects that may be repeated harmlessly: logs, metrics).
* :class:`LogAndQueueAdapter` is the default: it saves an ``owner_notified`` event per notification
  — the broker routes it to the queue ``notify.sms-outbox`` (it stands in for the SMS gateway;
  a real SMS bridge consumes that queue) — and writes one structured log line per notification.

Choose another adapter with ``NOTIFY_ADAPTER=package.module:ClassName`` in the service config or
environment. The texts are built here too (pure functions; Chinese, for the people who read them).
"""
from __future__ import annotations

import importlib
import logging
import os

from shared.messaging import outbox

log = logging.getLogger("dispatch.notifications")

CHANNEL = "sms-outbox"


class NotificationAdapter:
    """Interface. ``note``: ``{id, kind, case_id, unit_id, recipients, message, at}``."""

    channel = CHANNEL

    def outbox_entries(self, note: dict) -> list[dict]:      # pragma: no cover - interface
        raise NotImplementedError

    def after_commit(self, notes: list[dict]) -> None:       # pragma: no cover - interface
        pass


class LogAndQueueAdapter(NotificationAdapter):
    """Default: an ``owner_notified`` event (→ queue ``notify.sms-outbox``) and a log line."""

    def outbox_entries(self, note: dict) -> list[dict]:
        return [outbox.event("owner_notified", {
            "case_id": note["case_id"], "unit_id": note["unit_id"], "channel": self.channel,
            "message": note["message"], "notified_at": note["at"], "kind": note["kind"],
            "recipients": note["recipients"]}, note["case_id"], note["id"])]

    def after_commit(self, notes: list[dict]) -> None:
        for note in notes:
            phones = ",".join(person.get("phone", "") for person in note["recipients"])
            log.info("通知 %s → %s [%s]: %s", note["kind"], note["unit_id"], phones, note["message"],
                     extra={"case_id": note["case_id"], "event_type": "owner_notified"})


def load_adapter(config: dict | None = None) -> NotificationAdapter:
    spec = (config or {}).get("NOTIFY_ADAPTER") or os.environ.get("NOTIFY_ADAPTER")
    if not spec:
        return LogAndQueueAdapter()
    module, _, name = str(spec).partition(":")
    return getattr(importlib.import_module(module), name)()


# ---------------------------------------------------------------------- recipients and texts (pure)
def recipients(district, unit_id: str, keywords: list[str]) -> list[dict]:
    """The unit's contacts whose role contains one of the keywords (all contacts when none does)."""
    unit = district.units.get(unit_id) or {}
    contacts = [dict(contact) for contact in unit.get("contacts") or []]
    chosen = [contact for contact in contacts if any(word in contact.get("role", "") for word in keywords)]
    return [{"name": c["name"], "role": c["role"], "phone": c["phone"]} for c in (chosen or contacts)]


def unit_name(district, unit_id: str) -> str:
    return (district.units.get(unit_id) or {}).get("name", unit_id)


def local_text(district, moment) -> str:
    """A moment as the people reading a notice see it: local date and time to the minute."""
    return f"{district.calendar.to_local(moment):%Y-%m-%d %H:%M}"


def text(kind: str, district, case: dict, doc: dict, **extra) -> str:
    """The message for one notification kind (``case`` is the registration, ``doc`` the case)."""
    name = unit_name(district, doc["unit_id"])
    what = f"案件 {doc['_id']}（{case.get('class_name', case.get('class_code'))}，{case.get('address') or '见地图'}）"
    deadline = local_text(district, doc["deadline"]) if doc.get("deadline") else ""
    if kind == "dispatch":
        return f"【大城管】{name}：{what}已派遣给贵单位，请于 {deadline} 前处置。"
    if kind == "warning":
        return (f"【大城管·预警】{name}：{what}处置时限已用 {extra.get('share', 0):.0%}，"
                f"请于 {deadline} 前处置完毕。")
    if kind == "supervision":
        return f"【大城管·督办】{name}：{what}已超过处置时限 {deadline}，请立即处置并反馈。"
    if kind == "escalation":
        return (f"【大城管·升级】{unit_name(district, extra['to'])}：{what}由{name}处置，"
                f"超过时限 {deadline} 仍未办结，已督办未果，请领导小组协调。")
    if kind == "rework":
        return f"【大城管·返工】{name}：{what}{extra.get('reason', '')}，请返工并于 {deadline} 前反馈。"
    if kind == "verification":
        inspector = extra.get("inspector") or "网格员"
        return (f"【大城管·核查】{inspector}：{what}已由{name}反馈处置结果，"
                f"请于 {local_text(district, extra['due'])} 前到现场核查。")
    if kind == "stage_overdue":
        return (f"【大城管·阶段督办】{name}：{what}「{extra['stage']}」应于 {local_text(district, extra['due'])} "
                f"前完成，尚未报告，请立即处置并报告进展。")
    if kind == "verification_overdue":
        inspector = extra.get("inspector") or "网格员"
        return f"【大城管·核查超时】{inspector}：{what}核查时限 {local_text(district, extra['due'])} 已过，请尽快核查。"
    raise ValueError(f"unknown notification kind {kind!r}")
