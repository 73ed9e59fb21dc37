"""The coordinator's commands — pure: an Update to the departments, a Cancel (release some,
or the whole operation: the lead only), the close (the lead only, when every department has
reported its disposition — or forced with a note: 事不完，人不走), a department asking to leave
(always refused while the operation is open).
"""
from __future__ import annotations

from datetime import datetime

from .deadlines import _timers_without
from .operation import PARTICIPATING, Effects, Refused, _envelope, _log, _place, distribution_id
from .replies import _refuse


# ------------------------------------------------------------------ the coordinator's Update, Cancel, close
def _require_open(operation: dict):
    if operation.get("state") != "open":
        raise Refused(409, f"联合行动 {operation['_id']} 已结束（{operation.get('state')}），不能再修改 "
                           f"(the operation is {operation.get('state')})")


def _targets(operation: dict, departments: list[str] | None) -> list[str]:
    participating = [dept for dept, st in operation["departments"].items() if st["state"] in PARTICIPATING]
    if not departments:
        return participating
    unknown = [d for d in departments if d not in operation["departments"]]
    if unknown:
        raise Refused(400, f"不是本次联合行动的部门 (not in this operation): {', '.join(unknown)}",
                      {"departments": [f"{d} 不在本次行动中" for d in unknown]})
    inactive = [d for d in departments if d not in participating]
    if inactive:
        raise Refused(409, f"这些部门已拒绝或已解除 (rejected or released): {', '.join(inactive)}")
    return list(departments)


def _authorise(operation: dict, by_unit: str, allowed: tuple, what: str):
    if by_unit not in allowed:
        raise Refused(403, f"只有牵头单位 {operation['lead_unit']} 可以{what} (only the lead unit may do this)",
                      {"by": {"unit_id": [f"应为 {', '.join(a for a in allowed if a)}"]}})


def coordinator_update(operation: dict, by: dict, note: str, changes: dict, departments: list[str] | None,
                       now: datetime, *, command_centre: str) -> Effects:
    """An Update to the participating departments, referencing each one's original Request."""
    _require_open(operation)
    _authorise(operation, by["unit_id"], (operation["lead_unit"], command_centre), "更新联合行动")
    targets = _targets(operation, departments)
    seq = int(operation.get("seq", 0))
    effects = Effects(set_fields={})
    place = dict(_place(operation))
    where = changes.get("where") or {}
    for key in ("address", "location", "grid_code", "street_id"):
        if where.get(key) not in (None, ""):
            place[key] = where[key]
    if where:
        effects.set_fields["place"] = place
    if changes.get("legal_basis"):
        effects.set_fields["legal_basis"] = changes["legal_basis"]
    ids = []
    for dept in targets:
        seq += 1
        payload = {"reason": "change", "note": note, "operation_state": "open"}
        if where:
            payload["where"] = {k: place.get(k) for k in ("address", "location", "grid_code", "street_id")}
        if changes.get("description"):
            payload["what"] = {"description": changes["description"]}
        message = _envelope(operation["_id"], dept, "Update", distribution_id(operation["_id"], dept, "Update", seq),
                            now, payload, references=[operation["departments"][dept]["distribution_id"]])
        ids.append(message["distribution_id"])
        effects.outgoing.append((f"{dept}.update", message))
        effects.messages.append(_log("out", dept, message, now, by=by))
    effects.set_fields["seq"] = seq
    effects.events.append(("joint_operation_updated", {
        "operation_id": operation["_id"], "kind": "Update", "note": note, "at": now, "departments": targets,
        "by": by["unit_id"], "distribution_ids": ids}, f"{operation['_id']}.update.{seq}"))
    return effects


def cancel(operation: dict, by: dict, reason: str, departments: list[str] | None, now: datetime, *,
           command_centre: str) -> Effects:
    """Release some departments (lead or command centre), or cancel the whole operation (lead
    only): a Cancel to each, referencing its original Request; their timers stop."""
    _require_open(operation)
    whole = not departments
    if whole:
        _authorise(operation, by["unit_id"], (operation["lead_unit"],), "撤销整个联合行动")
    else:
        _authorise(operation, by["unit_id"], (operation["lead_unit"], command_centre), "解除部门任务")
    targets = _targets(operation, departments)
    seq = int(operation.get("seq", 0))
    effects = Effects(set_fields={})
    timers = list(operation.get("_timers") or [])
    ids = []
    for dept in targets:
        seq += 1
        message = _envelope(operation["_id"], dept, "Cancel", distribution_id(operation["_id"], dept, "Cancel", seq),
                            now, {"reason": reason, "whole_operation": whole},
                            references=[operation["departments"][dept]["distribution_id"]])
        ids.append(message["distribution_id"])
        effects.outgoing.append((f"{dept}.cancel", message))
        effects.messages.append(_log("out", dept, message, now, by=by))
        state = dict(operation["departments"][dept])
        state.update({"state": "cancelled", "cancelled_at": now, "cancel_reason": reason,
                      "state_before_cancel": operation["departments"][dept]["state"]})
        effects.set_fields[f"departments.{dept}"] = state
        timers = _timers_without(timers, dept, "acceptance", "checkin")
    effects.set_fields["seq"] = seq
    effects.events.append(("joint_operation_updated", {
        "operation_id": operation["_id"], "kind": "Cancel", "note": reason, "at": now, "departments": targets,
        "by": by["unit_id"], "distribution_ids": ids}, f"{operation['_id']}.cancel.{seq}"))
    if whole:
        timers = []
        effects.set_fields.update({"state": "cancelled", "closed_at": now, "closed_by": by,
                                   "close_note": reason})
        effects.events.append(("joint_operation_closed", {
            "operation_id": operation["_id"], "closed_by": by["unit_id"], "note": reason, "closed_at": now,
            "outcome": "cancelled", "forced": False, "outstanding": [], "case_id": operation.get("case_id")},
            f"{operation['_id']}.closed"))
    effects.timers = timers
    return effects


def outstanding(operation: dict) -> list[str]:
    """Participating departments that have not reported their disposition yet."""
    return [dept for dept, st in operation["departments"].items()
            if st["state"] in PARTICIPATING and st["state"] != "disposed"]


def close(operation: dict, by: dict, note: str, force: bool, now: datetime) -> Effects:
    """Only the lead closes, and only when the work is done (事不完，人不走) — or with ``force``
    and a note saying why. Every participating department is told with an Update ``closed``."""
    _require_open(operation)
    _authorise(operation, by["unit_id"], (operation["lead_unit"],), "结束联合行动")
    missing = outstanding(operation)
    if missing and not force:
        names = "、".join(operation["departments"][d].get("name", d) for d in missing)
        raise Refused(409, f"事不完，人不走：{names} 尚未报告处置结果，不能结束联合行动；如确需结束请 force=true 并说明理由 "
                           f"(departments still working: {', '.join(missing)})", {"outstanding": missing})
    if force and missing and not (note or "").strip():
        raise Refused(400, "强制结束必须说明理由 (a forced close needs a note)", {"note": ["强制结束必须说明理由"]})
    seq = int(operation.get("seq", 0))
    effects = Effects(set_fields={}, timers=[])
    for dept, st in operation["departments"].items():
        if st["state"] not in PARTICIPATING:
            continue
        seq += 1
        message = _envelope(operation["_id"], dept, "Update", distribution_id(operation["_id"], dept, "Update", seq),
                            now, {"reason": "closed", "operation_state": "closed",
                                  "note": note or "牵头单位已结束本次联合行动，感谢配合"},
                            references=[st["distribution_id"]])
        effects.outgoing.append((f"{dept}.update", message))
        effects.messages.append(_log("out", dept, message, now, by=by))
    effects.set_fields.update({"seq": seq, "state": "closed", "closed_at": now, "closed_by": by,
                               "close_note": note, "forced": bool(force and missing),
                               "outstanding_at_close": missing})
    effects.events.append(("joint_operation_closed", {
        "operation_id": operation["_id"], "closed_by": by["unit_id"], "note": note or "", "closed_at": now,
        "outcome": "completed", "forced": bool(force and missing), "outstanding": missing,
        "case_id": operation.get("case_id")}, f"{operation['_id']}.closed"))
    return effects


def leave_request(operation: dict, department: str, reason: str, now: datetime) -> Effects:
    """A department asking (over HTTP) to leave: always refused while the operation is open."""
    if department not in operation["departments"]:
        raise Refused(404, f"{department} 不是联合行动 {operation['_id']} 的参与部门")
    text = ("事不完，人不走：联合行动由牵头单位结束前，参与部门不能退出 (a department cannot leave an open operation)"
            if operation.get("state") == "open" else
            f"联合行动已结束（{operation.get('state')}），无需退出 (the operation is already {operation.get('state')})")
    request = {"distribution_id": f"{operation['_id']}.{department}.leave.{int(operation.get('seq', 0)) + 1}",
               "kind": "Update", "sender": department, "payload": {"stage": "leave", "note": reason}, "via": "http"}
    effects = _refuse(operation, department, request, "cannot_leave", text, now)
    effects.outgoing = []                       # answered over HTTP, not in the inbox
    effects.messages = effects.messages[:1]
    return effects
