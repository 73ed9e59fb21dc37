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
from .notices import local_text, recipients, text, unit_name  # noqa: E402,F401  (the texts, pure)
