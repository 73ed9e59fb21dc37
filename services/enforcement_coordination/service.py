"""enforcement-coordination service: thin nameko entrypoints over its rules module."""
from __future__ import annotations

from marshmallow import ValidationError
from nameko.rpc import rpc

from shared import storage
from shared.contracts.departments import load_department_message
from shared.departments import department
from shared.health import Heartbeat
from shared.messaging import topology
from shared.messaging import outbox
from shared.messaging.consumer import PermanentError, consume_reliably
from shared.messaging.relay import OutboxRelay

from . import rules




class CoordinationService:
    name = "coordination"

    db = storage.MongoDatabase()
    relay = OutboxRelay("operations")
    heartbeat = Heartbeat()

    @consume_reliably("coordination.case-registered")
    def on_case_registered(self, event: dict):
        case = event["payload"]
        if not case.get("joint_partners"):
            return
        self._open(case, list(dict.fromkeys(case["joint_partners"])), "class_rule", event["event_id"])

    def _open(self, case: dict, departments: list[str], trigger: str, applied: str):
        now = storage.now_utc()
        op_id = rules.operation_id_for(case["case_id"], trigger)
        operation = {"_id": op_id, "case": case, "lead_unit": rules.LEAD_UNIT, "trigger": trigger,
                     "state": "open", "opened_at": now, "departments": {}, "messages": []}
        events = [outbox.event("joint_operation_opened", {
            "operation_id": op_id, "case_id": case["case_id"], "lead_unit": rules.LEAD_UNIT,
            "departments": departments, "trigger": trigger, "opened_at": now}, case["case_id"],
            f"{op_id}.opened")]
        for dept in departments:
            request = rules.build_request(operation, dept, department(dept), now)
            operation["departments"][dept] = {"state": "requested", "sent_at": now,
                                              "distribution_id": request["distribution_id"]}
            operation["messages"].append({"direction": "out", "at": now, "message": request})
            events.append(storage.outbox_entry(topology.DEPT_REQUESTS, f"{dept}.request", request))
            events.append(outbox.event("department_request_sent", {
                "operation_id": op_id, "department": dept,
                "distribution_id": request["distribution_id"], "sent_at": now},
                case["case_id"], f"{request['distribution_id']}.sent"))
        storage.create(self.db.operations, operation, events, applied=applied)

    @consume_reliably("coordination.department-replies", loader=load_department_message)
    def on_department_reply(self, reply: dict):
        storage.retry_on_conflict(lambda: self._apply_reply(reply))

    def _apply_reply(self, reply: dict):
        op = self.db.operations.find_one({"_id": reply["incident_id"]})
        if op is None:
            raise PermanentError(f"未知的联合行动 (unknown operation) {reply['incident_id']}")
        dept = reply["sender"]
        current = op["departments"].get(dept)
        if current is None:
            raise PermanentError(f"{dept} 不是联合行动 {op['_id']} 的参与部门")
        if storage.already_applied(op, reply["distribution_id"]):
            return
        new_state = rules.apply_reply(current, reply)
        now = storage.now_utc()
        event = outbox.event("department_replied", {
            "operation_id": op["_id"], "department": dept,
            "distribution_id": reply["distribution_id"], "kind": reply["kind"],
            "status": new_state["state"], "reason": new_state.get("reason", ""),
            "replied_at": reply["sent_at"]}, op["case"]["case_id"], f"{reply['distribution_id']}.applied")
        storage.update(self.db.operations, op["_id"], op["_version"],
                       set_fields={f"departments.{dept}": new_state},
                       push={"messages": [{"direction": "in", "at": now, "message": _jsonable(reply)}]},
                       events=[event], applied=reply["distribution_id"])

    @rpc
    def get_operation(self, operation_id: str):
        return storage.public(self.db.operations.find_one({"_id": operation_id}))

    @rpc
    def operation_for_case(self, case_id: str):
        return storage.public(self.db.operations.find_one({"case._id": case_id})
                              or self.db.operations.find_one({"case.case_id": case_id}))


def _jsonable(reply: dict) -> dict:
    from shared.contracts.departments import DepartmentEnvelope
    try:
        return DepartmentEnvelope().dump(reply)
    except ValidationError:
        return {key: str(value) for key, value in reply.items()}
