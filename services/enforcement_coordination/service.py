"""enforcement-coordination service (城管+N): thin nameko entrypoints over rules.py (joint
operations) and enforcement.py (graduated enforcement). All decisions are in those pure modules;
here every change is saved with its events, outgoing department messages, timers and applied
message id in ONE atomic update of one aggregate (an operation, or a party)."""
from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta

from marshmallow import ValidationError
from nameko.extensions import DependencyProvider
from pymongo.errors import DuplicateKeyError

from shared import storage
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

from . import rules, schemas
from .answers import _invalid, local, now_ms, ok, refused  # noqa: F401
from .parties import EnforcementHandlers

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


# ------------------------------------------------------------------ the service
class OperationsDatabase(storage.MongoDatabase):
    """The service database, with the index a case's operations are read by."""

    def start(self):
        try:
            self.database.operations.create_index("case_id")
        except Exception as exc:  # noqa: BLE001 - the store may still be starting; indexes only speed things up
            log.warning("could not index operations.case_id: %s", exc)


def _by_opened(operations, newest_first=False) -> list:
    """A case's operations in the order they were opened (sorted here: a sort in the query
    makes the embedded store read the whole collection, docs/performance.md)."""
    return sorted(operations, key=lambda op: op["opened_at"], reverse=newest_first)


class CoordinationService(EnforcementHandlers):
    name = "coordination"

    db = OperationsDatabase()
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
        found = _by_opened(self.db.operations.find({"case_id": case_id}), newest_first=True)
        return local(storage.public(found[0])) if found else None

    @rpc
    def operations_for_case(self, case_id: str) -> list:
        return local([rules.summary(op) for op in _by_opened(self.db.operations.find({"case_id": case_id}))])

    @rpc
    def timeline_for_case(self, case_id: str) -> list:
        """The case's joint operations as timeline entries (rules.timeline)."""
        return local([entry for op in _by_opened(self.db.operations.find({"case_id": case_id}))
                      for entry in rules.timeline(op)])

    @rpc
    def list_operations(self, state: str | None = None, limit: int = 50) -> list:
        query = {"state": state} if state else {}
        limit = max(1, min(int(limit or 50), 500))
        return local([rules.summary(op) for op in self.db.operations.find(query).sort("opened_at", -1).limit(limit)])
