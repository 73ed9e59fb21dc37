"""enforcement-coordination service (城管+N): thin nameko entrypoints over rules.py (joint
operations) and enforcement.py (graduated enforcement). All decisions are in those pure modules;
here every change is saved with its events, outgoing department messages, timers and applied
message id in ONE atomic update of one aggregate (an operation, or a party)."""
from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta
from functools import lru_cache

import yaml
from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from pymongo.errors import DuplicateKeyError

from shared import storage
from shared.contracts import errors
from shared.contracts.base import local_times
from shared.contracts.departments import dump_message, load_department_message
from shared.departments import coordination_settings, department
from shared.health import Heartbeat
from shared.messaging import outbox, topology
from shared.messaging.consumer import (PermanentError, ReliableConsumer, consume_reliably, decode_body,
                                      first_delivery)
from shared.messaging.relay import OutboxRelay
from shared.messaging.rpc import rpc
from shared.refdata import load_district
from shared.timers import timer_due

from . import enforcement, rules, schemas

log = logging.getLogger(__name__)
RULES_FILE = os.path.join(os.path.dirname(__file__), "enforcement.yaml")


# ------------------------------------------------------------------ extensions
class DepartmentReplyConsumer(ReliableConsumer):
    """The reliable consumer, plus what the broker vouches for: the routing key the reply was
    published with and the AMQP ``user_id`` property (RabbitMQ checks it equals the publishing
    connection's user). Both reach the handler under ``transport``; whatever the sender put in
    the body under that name is overwritten."""

    def handle_message(self, body, message):
        transport = first_delivery(message, self.queue_name, self.failures.platform_user)     # also for a retried or replayed copy
        try:
            decoded = decode_body(body)
        except ValidationError:                        # not JSON, or not UTF-8 (decode_body says which)
            return super().handle_message(body, message)      # dead-lettered as undecodable
        return super().handle_message({**decoded, "_transport": transport}, message)


def load_reply(body: dict) -> dict:
    loaded = load_department_message(body)
    loaded["transport"] = body.get("_transport") or {}
    return loaded


consume_department_replies = DepartmentReplyConsumer.decorator


class Settings(DependencyProvider):
    """Coordination settings: config keys, else environment, else defaults.

    DEPT_USER_PREFIX     RabbitMQ user of a department = prefix + id (default ``dept.``)
    DEPT_TRUSTED_USERS   comma-separated users allowed to publish for any department
                         (default ``guest``, for a development broker; set it empty in production)
    ENFORCEMENT_RULES_FILE  the graduated-enforcement policy (default: enforcement.yaml here)
    """

    def setup(self):
        config = self.container.config

        def value(key, default):
            found = config.get(key)
            if found is None:
                found = os.environ.get(key, default)
            return "" if found is None else str(found)

        self.user_prefix = value("DEPT_USER_PREFIX", "dept.")
        self.trusted_users = [u.strip() for u in value("DEPT_TRUSTED_USERS", "").split(",") if u.strip()]
        self.rules_file = value("ENFORCEMENT_RULES_FILE", RULES_FILE) or RULES_FILE
        if self.trusted_users:
            log.warning("department replies published by %s are accepted for any department "
                        "(DEPT_TRUSTED_USERS); set it empty in production", ", ".join(self.trusted_users))

    def get_dependency(self, worker_ctx):
        return self


@lru_cache(maxsize=4)
def _policy(path: str) -> enforcement.Policy:
    with open(path, encoding="utf-8") as handle:
        return enforcement.Policy.from_mapping(yaml.safe_load(handle) or {})


def now_ms():
    """The platform clock to the millisecond — what the store keeps — so an answer built in
    memory says exactly what a later read of the stored document says."""
    now = storage.now_utc()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def ok(**body) -> dict:
    return {"ok": True, **local(body)}


def local(answer):
    """Times in an answer: local time with offset, ISO 8601 (the district's timezone)."""
    return local_times(answer, load_district().calendar.tz)


def refused(status: int, message: str, fields=None) -> dict:
    """Raised as the error kind of ``status`` (shared/contracts/errors.py): the RPC caller gets it."""
    raise errors.for_status(status)(message, fields or None)


def _invalid(exc: ValidationError) -> dict:
    return refused(400, "输入有误，请检查标出的字段 (invalid input)", exc.messages)


# ------------------------------------------------------------------ the service
class CoordinationService:
    name = "coordination"

    db = storage.MongoDatabase()
    relay = OutboxRelay("operations", "parties")
    heartbeat = Heartbeat()
    settings = Settings()

    # ---------------------------------------------------------------- saving
    def _outbox(self, operation: dict, effects: rules.Effects) -> list:
        correlation = operation.get("case_id") or operation["_id"]
        entries = [outbox.event(kind, payload, correlation, event_id) for kind, payload, event_id in effects.events]
        entries += [storage.outbox_entry(topology.DEPT_REQUESTS, routing_key, body)
                    for routing_key, body in effects.outgoing]
        return entries

    def _save(self, operation: dict, effects: rules.Effects, applied: str | None = None) -> bool:
        return storage.update(
            self.db.operations, operation["_id"], operation["_version"], set_fields=effects.set_fields,
            push={"messages": effects.messages} if effects.messages else None,
            events=self._outbox(operation, effects), applied=applied, timers=effects.timers)

    def _open(self, operation: dict, effects: rules.Effects, applied: str | None = None) -> bool:
        return storage.create(self.db.operations, operation, self._outbox(operation, effects),
                              applied=applied, timers=effects.timers)

    def _dept_infos(self, names) -> dict:
        return {name: info for name in names if (info := department(name)) is not None}

    def _lead(self, unit_id: str) -> dict:
        try:
            unit = load_district().unit(unit_id)
        except KeyError:
            unit = None
        return rules.lead_info(unit, unit_id)

    # ---------------------------------------------------------------- start 1: the class rule
    @consume_reliably("coordination.case-registered")
    def on_case_registered(self, event: dict):
        case = event["payload"]
        try:                                  # every case is kept: a street may whistle on any case
            self.db.cases.insert_one({"_id": case["case_id"], **case, "seen_at": now_ms()})
        except DuplicateKeyError:
            pass                              # a redelivery
        partners = list(dict.fromkeys(case.get("joint_partners") or []))
        if not partners:
            return
        settings = coordination_settings()
        infos = self._dept_infos(partners)
        missing = [p for p in partners if p not in infos]
        if missing:
            log.error("case %s names partners with no department entry: %s", case["case_id"], missing)
        if not infos:
            raise PermanentError(f"案件 {case['case_id']} 的联合执法部门均未配置: {partners}")
        op_id = rules.operation_id_for(case["case_id"], "class_rule")
        operation, effects = rules.open_operation(
            op_id, case, list(infos), "class_rule", now_ms(), dept_infos=infos,
            lead=self._lead(rules.choose_lead("class_rule", "", None, settings["lead_unit"])), requested_by="class_rule",
            reason=f"案件类别 {case.get('class_code')} {case.get('class_name', '')} 需要城管+N联合执法",
            ttl=timedelta(hours=float(settings["request_ttl_hours"])))
        self._open(operation, effects, applied=event["event_id"])

    # ---------------------------------------------------------------- starts 2 and 3: whistle, escalation
    @rpc
    def start_operation(self, data: dict) -> dict:
        """吹哨 (trigger whistle, by a street) or a dispatcher's escalation (trigger escalation)."""
        try:
            command = schemas.load(schemas.StartOperation, data)
        except ValidationError as exc:
            return _invalid(exc)
        case = self.db.cases.find_one({"_id": command["case_id"]})
        if case is None:
            return refused(404, f"协调服务没有案件 {command['case_id']} (unknown case)",
                           {"case_id": ["没有这个案件"]})
        case.pop("_id", None)
        case.pop("seen_at", None)
        settings = coordination_settings()
        trigger = command["trigger"]
        key = command.get("request_id") or uuid.uuid4().hex[:10]
        op_id = rules.operation_id_for(command["case_id"], trigger, key)
        existing = self.db.operations.find_one({"_id": op_id})
        if existing is not None:
            return ok(operation=storage.public(existing), created=False)
        requester = command["requested_by"]["unit_id"]
        lead_unit = rules.choose_lead(trigger, requester, command.get("lead_unit"), settings["lead_unit"])
        try:
            load_district().unit(lead_unit)
        except KeyError:
            return refused(400, f"未知的牵头单位 {lead_unit}", {"lead_unit": ["未知的单位"]})
        who = f"{requester} {command['requested_by'].get('person', '')}".strip()
        try:
            operation, effects = rules.open_operation(
                op_id, case, command["departments"], trigger, now_ms(),
                dept_infos=self._dept_infos(command["departments"]), lead=self._lead(lead_unit),
                requested_by=requester, reason=f"{command['reason']}（{who}）", urgency=command.get("urgency"),
                place=command.get("place"), legal_basis=command.get("legal_basis", ""),
                ttl=timedelta(hours=float(settings["request_ttl_hours"])))
        except rules.Refused as exc:
            return refused(exc.status, exc.message, exc.fields)
        self._open(operation, effects)
        return ok(operation=storage.public(self.db.operations.find_one({"_id": op_id})), created=True)

    @rpc
    def escalate_case(self, case_id: str, departments: list, by: dict, reason: str,
                      request_id: str | None = None) -> dict:
        """A dispatcher escalates a case to joint enforcement (also callable by other services)."""
        return self.start_operation({"case_id": case_id, "trigger": "escalation", "departments": departments,
                                     "requested_by": by, "reason": reason, "request_id": request_id})

    # ---------------------------------------------------------------- department replies
    @consume_department_replies("coordination.department-replies", loader=load_reply)
    def on_department_reply(self, reply: dict):
        transport = reply.pop("transport", {}) or {}
        problem = rules.sender_problem(reply, transport.get("routing_key"), transport.get("user_id"),
                                       user_prefix=self.settings.user_prefix,
                                       trusted_users=self.settings.trusted_users)
        if problem:
            raise PermanentError(problem)
        storage.retry_on_conflict(lambda: self._apply_reply(reply))

    def _apply_reply(self, reply: dict):
        operation = self.db.operations.find_one({"_id": reply["incident_id"]})
        if operation is None:
            raise PermanentError(f"未知的联合行动 (unknown operation) {reply['incident_id']}")
        if reply["sender"] not in operation["departments"]:
            raise PermanentError(f"{reply['sender']} 不是联合行动 {operation['_id']} 的参与部门 "
                                 f"(not a department of this operation)")
        if storage.already_applied(operation, reply["distribution_id"]):
            return
        effects = rules.receive_reply(operation, reply, dump_message(reply), now_ms())
        if effects.refused:
            log.warning("refused %s %s from %s: %s", reply["kind"], reply["distribution_id"], reply["sender"],
                        effects.refused["reason"], extra={"reason": effects.refused["code"]})
        self._save(operation, effects, applied=reply["distribution_id"])

    @rpc
    def reply_over_http(self, department: str, body: dict) -> dict:
        """A department without an AMQP client replies through the gateway, which has already
        authenticated it as ``department``: the same envelope, the same rules as over AMQP, and
        the sender is always the authenticated department (no impersonation)."""
        try:
            reply = load_department_message({**(body or {}), "sender": department})
        except ValidationError as exc:
            return refused(400, "回复不符合部门协议 (invalid reply)", exc.messages)
        if reply["kind"] not in ("Ack", "Update", "Error"):
            return refused(400, "部门只能发送 Ack、Update、Error", {"kind": ["Ack | Update | Error"]})
        try:
            storage.retry_on_conflict(lambda: self._apply_reply(reply))
        except PermanentError as exc:
            return refused(404 if "未知的联合行动" in str(exc) else 403, str(exc))
        operation = self.db.operations.find_one({"_id": reply["incident_id"]})
        return ok(created=True, operation=rules.summary(operation))

    # ---------------------------------------------------------------- missing replies: durable timers
    @timer_due("operations")
    def on_operation_timer(self, operation_id: str, timer: dict):
        def change():
            operation = self.db.operations.find_one({"_id": operation_id})
            if operation is None or storage.already_applied(operation, timer["id"]):
                return
            dept = (timer.get("data") or {}).get("department")
            effects = rules.on_timer(operation, timer, now_ms(), department(dept),
                                     command_centre=coordination_settings()["command_centre"])
            self._save(operation, effects, applied=timer["id"])
        storage.retry_on_conflict(change)

    # ---------------------------------------------------------------- the coordinator's commands
    def _command(self, operation_id: str, schema, data: dict, apply) -> dict:
        try:
            command = schemas.load(schema, data)
        except ValidationError as exc:
            return _invalid(exc)

        def change():
            operation = self.db.operations.find_one({"_id": operation_id})
            if operation is None:
                return refused(404, f"没有联合行动 {operation_id} (unknown operation)")
            try:
                effects = apply(operation, command)
            except rules.Refused as exc:
                return refused(exc.status, exc.message, exc.fields)
            self._save(operation, effects)
            return ok(operation=storage.public(self.db.operations.find_one({"_id": operation_id})))
        return storage.retry_on_conflict(change)

    @rpc
    def update_operation(self, operation_id: str, data: dict) -> dict:
        centre = coordination_settings()["command_centre"]
        return self._command(operation_id, schemas.UpdateOperation, data, lambda op, c: rules.coordinator_update(
            op, c["by"], c["note"], {"where": c.get("where"), "description": c.get("description"),
                                     "legal_basis": c.get("legal_basis")},
            c.get("departments"), now_ms(), command_centre=centre))

    @rpc
    def cancel_operation(self, operation_id: str, data: dict) -> dict:
        centre = coordination_settings()["command_centre"]
        return self._command(operation_id, schemas.CancelOperation, data, lambda op, c: rules.cancel(
            op, c["by"], c["reason"], c.get("departments"), now_ms(), command_centre=centre))

    @rpc
    def close_operation(self, operation_id: str, data: dict) -> dict:
        return self._command(operation_id, schemas.CloseOperation, data, lambda op, c: rules.close(
            op, c["by"], c.get("note", ""), c.get("force", False), now_ms()))

    @rpc
    def leave_operation(self, operation_id: str, department_id: str, data: dict | None = None) -> dict:
        """A department asks to leave: recorded, and refused (事不完，人不走)."""
        try:
            command = schemas.load(schemas.LeaveOperation, data or {})
        except ValidationError as exc:
            return _invalid(exc)

        def change():
            operation = self.db.operations.find_one({"_id": operation_id})
            if operation is None:
                return refused(404, f"没有联合行动 {operation_id} (unknown operation)")
            try:
                effects = rules.leave_request(operation, department_id, command.get("reason", ""),
                                              now_ms())
            except rules.Refused as exc:
                return refused(exc.status, exc.message, exc.fields)
            self._save(operation, effects)
            return refused(409, effects.refused["reason"], {"code": effects.refused["code"]})
        return storage.retry_on_conflict(change)

    # ---------------------------------------------------------------- queries
    @rpc
    def get_operation(self, operation_id: str):
        return local(storage.public(self.db.operations.find_one({"_id": operation_id})))

    @rpc
    def operation_for_case(self, case_id: str):
        """The case's most recent joint operation (None when it has none)."""
        found = list(self.db.operations.find({"case_id": case_id}).sort("opened_at", -1).limit(1))
        if not found:
            found = list(self.db.operations.find({"case.case_id": case_id}).sort("opened_at", -1).limit(1))
        return local(storage.public(found[0])) if found else None

    @rpc
    def operations_for_case(self, case_id: str) -> list:
        return local([rules.summary(op) for op in self.db.operations.find({"case_id": case_id}).sort("opened_at", 1)])

    @rpc
    def timeline_for_case(self, case_id: str) -> list:
        """The case's joint operations as timeline entries (rules.timeline)."""
        return local([entry for op in self.db.operations.find({"case_id": case_id}).sort("opened_at", 1)
                      for entry in rules.timeline(op)])

    @rpc
    def list_operations(self, state: str | None = None, limit: int = 50) -> list:
        query = {"state": state} if state else {}
        limit = max(1, min(int(limit or 50), 500))
        return local([rules.summary(op) for op in self.db.operations.find(query).sort("opened_at", -1).limit(limit)])

    # ---------------------------------------------------------------- graduated enforcement
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
