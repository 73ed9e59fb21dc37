"""Graduated enforcement (说服→教育→引导→警告→处罚, 首违不罚) and 限期整改 follow-ups: the
entrypoints on the ``parties`` aggregates, mixed into CoordinationService (service.py). The
decisions are enforcement.py's (pure); here each change is saved with its events and timers in
one atomic update of one party."""
from __future__ import annotations

import uuid

from marshmallow import ValidationError

from shared import storage
from shared.contracts import errors
from shared.messaging import outbox
from shared.messaging.consumer import PermanentError, consume_reliably
from shared.messaging.rpc import rpc
from shared.refdata import load_district
from shared.timers import timer_due

from . import enforcement, schemas
from .answers import _invalid, _policy, now_ms, ok, refused


class EnforcementHandlers:
    """Mixed into CoordinationService: needs ``self.db`` and ``self.settings``."""

    @property
    def _policy(self) -> enforcement.Policy:
        return _policy(self.settings.rules_file)

    @rpc
    def record_violation(self, data: dict) -> dict:
        """A violation found on site: the ladder step, 首违不罚, and a rectification order."""
        try:
            command = schemas.load(schemas.RecordViolation, data)
        except ValidationError as exc:
            return _invalid(exc)
        try:
            eligible = load_district().minor_class(command["class_code"]).get("minor_violation_eligible")
        except KeyError:
            return refused(400, f"未知的案件类别 {command['class_code']}", {"class_code": ["未知的类别"]})
        kind = command["party"]["kind"]
        number = enforcement.normalise(kind, command["party"]["number"])
        ref = enforcement.party_ref(kind, number)
        command["violation_id"] = command.get("violation_id") or f"V-{uuid.uuid4().hex[:12]}"
        party = {"ref": ref, "kind": kind}

        def change():
            doc = self.db.parties.find_one({"_id": ref})
            history = (doc or {}).get("violations", [])
            done = next((v for v in history if v["violation_id"] == command["violation_id"]), None)
            if done is not None:
                return ok(party_id=ref, violation=done, created=False)
            now = now_ms()
            violation, events, new_timers = enforcement.record_violation(
                history, party, command, self._policy, now, eligible)
            correlation = command.get("case_id") or command.get("operation_id") or ref
            entries = [outbox.event(t, p, correlation, eid) for t, p, eid in events]
            if doc is None:
                created = storage.create(self.db.parties, {
                    "_id": ref, "kind": kind, "number": number, "name": command["party"].get("name", ""),
                    "first_seen_at": now, "violations": [violation]}, entries, timers=new_timers)
                if not created:
                    raise storage.Conflict(f"party {ref} was created meanwhile")
            else:
                storage.update(self.db.parties, ref, doc["_version"], set_fields={
                    "name": command["party"].get("name") or doc.get("name", ""),
                    "violations": history + [violation]}, events=entries,
                    timers=list(doc.get("_timers") or []) + new_timers)
            return ok(party_id=ref, violation=violation, created=True)
        return storage.retry_on_conflict(change)

    def _resolve(self, ref: str, order_id: str, corrected: bool, by: str, applied: str | None,
                 note: str = "", only_if_due: bool = False) -> dict:
        def change():
            doc = self.db.parties.find_one({"_id": ref})
            if doc is None:
                return refused(404, f"没有整改通知 {order_id}")
            if applied and storage.already_applied(doc, applied):
                return ok(party_id=ref)
            history = doc["violations"]
            index = next((i for i, v in enumerate(history) if (v.get("order") or {}).get("order_id") == order_id), None)
            timers = [t for t in (doc.get("_timers") or []) if t["id"] != order_id]
            now = now_ms()
            if index is None:                  # already checked: only the timer goes
                if applied:
                    storage.update(self.db.parties, ref, doc["_version"], timers=timers, applied=applied)
                return refused(409, f"整改通知 {order_id} 已复查或不存在 (already checked)")
            violation = history[index]
            if only_if_due and now < violation["order"]["due_at"]:
                checks = list(violation["order"].get("checks") or []) + [
                    {"at": now, "by": by, "corrected": corrected, "note": note}]
                history = list(history)
                history[index] = {**violation, "order": {**violation["order"], "checks": checks}}
                storage.update(self.db.parties, ref, doc["_version"], set_fields={"violations": history})
                return ok(party_id=ref, violation=history[index], resolved=False)
            updated, events, new_timers = enforcement.resolve_order(
                violation, {"ref": ref, "kind": doc["kind"]}, corrected, now, self._policy, by)
            history = list(history)
            history[index] = updated
            correlation = violation.get("case_id") or violation.get("operation_id") or ref
            storage.update(self.db.parties, ref, doc["_version"], set_fields={"violations": history},
                           events=[outbox.event(t, p, correlation, eid) for t, p, eid in events],
                           timers=timers + new_timers, applied=applied)
            return ok(party_id=ref, violation=updated, resolved=True)
        return storage.retry_on_conflict(change)

    @rpc
    def check_rectification(self, order_id: str, data: dict) -> dict:
        """An inspector's follow-up check. Corrected → resolved now; not corrected → recorded,
        and resolved (next step) once the deadline has passed."""
        try:
            command = schemas.load(schemas.RectificationCheck, data)
        except ValidationError as exc:
            return _invalid(exc)
        doc = self.db.parties.find_one({"violations.order.order_id": order_id}, {"_id": 1})
        if doc is None:
            return refused(404, f"没有待复查的整改通知 {order_id} (no open rectification order)")
        return self._resolve(doc["_id"], order_id, command["corrected"], command["inspector"], None,
                             command.get("note", ""), only_if_due=not command["corrected"])

    @rpc
    def rectification_order(self, order_id: str) -> dict | None:
        """Which case and operation a 限期整改 order belongs to (the gateway's access check:
        only the case's owner or the operation's lead may check it)."""
        doc = self.db.parties.find_one({"violations.order.order_id": order_id}, {"violations": 1})
        violation = next((v for v in (doc or {}).get("violations", [])
                          if (v.get("order") or {}).get("order_id") == order_id), None)
        if violation is None:
            return None
        return {"order_id": order_id, "party_id": doc["_id"], "case_id": violation.get("case_id"),
                "operation_id": violation.get("operation_id")}

    @timer_due("parties")
    def on_rectification_due(self, party_ref: str, timer: dict):
        """The deadline of a rectification order: not corrected by then → the next step."""
        try:
            self._resolve(party_ref, timer["id"], False, "system", timer["id"])
        except errors.ServiceError:        # checked meanwhile, or gone: nothing is due any more
            pass

    @consume_reliably("coordination.frontage-reports")
    def on_frontage_report(self, event: dict):
        """门前三包: a case on a shop's frontage stretch counts in the shop's violation history
        (party = its licence), once per case."""
        link = event["payload"]
        number = enforcement.normalise("licence", link["licence"])
        problem = enforcement.party_problem("licence", number)
        if problem:
            raise PermanentError(f"店铺 {link['shop_id']} 的统一社会信用代码无效: {problem}")
        ref = enforcement.party_ref("licence", number)
        entry = enforcement.frontage_entry(link)

        def change():
            doc = self.db.parties.find_one({"_id": ref})
            if doc is None:
                if not storage.create(self.db.parties, {
                        "_id": ref, "kind": "licence", "number": number, "name": link.get("shop_name", ""),
                        "first_seen_at": entry["at"], "violations": [entry]}, applied=event["event_id"]):
                    raise storage.Conflict(f"party {ref} was created meanwhile")
                return
            if storage.already_applied(doc, event["event_id"]) or any(
                    v["violation_id"] == entry["violation_id"] for v in doc.get("violations", [])):
                return
            storage.update(self.db.parties, ref, doc["_version"],
                           set_fields={"violations": doc.get("violations", []) + [entry]},
                           applied=event["event_id"])
        storage.retry_on_conflict(change)

    @rpc
    def party_history(self, kind: str, number: str) -> dict:
        ref = enforcement.party_ref(kind, enforcement.normalise(kind, number))
        doc = self.db.parties.find_one({"_id": ref})
        if doc is None:
            return ok(party_id=ref, kind=kind, violations=[])
        return ok(party_id=ref, kind=kind, name=doc.get("name", ""), violations=doc.get("violations", []))
