"""Case actions, lists and timelines over HTTP (issue: dispatch).

- ``POST /api/cases/<id>/actions/<action>``  accept, return, request-extension, decide-extension,
  request-park, decide-park, unpark, feedback, verify, set-urgency. The body carries
  ``expected_version`` (the case version the operator saw: a stale one gets 409) and the actor.
  Authentication and roles come later: for now the actor (``actor``, ``actor_unit``, ``role``) is
  taken from the body.
- ``GET /api/cases/<id>/timeline``  every event of the case, from the report to the close,
  with actor, time (Asia/Shanghai) and reason, in one call.
- ``GET /api/cases?state=&unit=&grid=&class=&since=&until=&overdue=&page=&per_page=``
"""
from __future__ import annotations

from datetime import datetime, timezone

from nameko.web.handlers import http

from services.dispatch.schemas import ACTION_SCHEMAS, CaseQuery, action_name
from shared.refdata import load_district

from .http import BadRequest, call, error_response, json_body, json_response, load

STATUS = {"ok": 200, "invalid": 400, "forbidden": 403, "not_found": 404, "conflict": 409, "refused": 422}
MESSAGES = {
    "invalid": "输入有误，请检查标出的字段 (invalid input)",
    "forbidden": "无权执行此操作 (not allowed for this actor)",
    "not_found": "没有找到 (not found)",
    "conflict": "案件已被他人更新，请刷新后重试 (version conflict)",
    "refused": "当前状态不允许此操作 (not allowed in the current state)",
}


def _answer(result: dict):
    status = result.get("status")
    if status == "ok":
        return json_response({key: value for key, value in result.items() if key != "status"}, 200)
    code = STATUS.get(status, 500)
    body = {"error": {"status": code, "code": status, "message": result.get("reason") or MESSAGES.get(status, status)}}
    if result.get("errors"):
        body["error"]["fields"] = result["errors"]
    for key in ("current_version", "expected_version", "state", "version"):
        if key in result:
            body["error"][key] = result[key]
    return json_response(body, code)


def _moment(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return None


def _intake_entries(registered: dict) -> list[dict]:
    """The report and the registration from intake's record (the reporter's phone is left out)."""
    report = registered.get("report") or {}
    case = registered.get("case") or {}
    reporter = (report.get("reporter") or {}).get("name") or report.get("inspector_id") \
        or report.get("channel") or "reporter"
    received = registered.get("received_at")
    entries = [{"type": "report_received", "label": "受理", "at": received, "actor": reporter,
                "reason": report.get("description", ""), "source": "intake",
                "channel": report.get("channel"), "report_id": registered.get("_id")}]
    if registered.get("case_id"):
        entries.append({"type": "case_registered", "label": "立案",
                        "at": case.get("registered_at") or received, "actor": "intake",
                        "reason": "符合立案标准", "source": "intake", "class_code": case.get("class_code"),
                        "grid_code": case.get("grid_code"), "owner_unit": case.get("owner_unit")})
    for entry in registered.get("history") or registered.get("timeline") or []:
        if isinstance(entry, dict) and entry.get("at") and entry.get("type") not in (
                "report_received", "case_registered"):
            entries.append(dict(entry, source="intake"))
    return entries


class CasesApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    @http("POST", "/api/cases/<string:case_id>/actions/<string:action>")
    def post_case_action(self, request, case_id, action):
        name = action_name(action)
        if name is None:
            return error_response(404, f"没有这个操作 {action} (unknown action); 可用: "
                                       + ", ".join(sorted(a.replace("_", "-") for a in ACTION_SCHEMAS)))
        try:
            data = json_body(request)
            load(ACTION_SCHEMAS[name](), data)
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        return _answer(call(self.dispatch, "act", case_id, name, data))

    @http("GET", "/api/cases/<string:case_id>/timeline")
    def get_case_timeline(self, request, case_id):
        district = load_district()
        dispatched = call(self.dispatch, "timeline", case_id)
        try:
            registered = call(self.intake, "get_case", case_id)
            intake_note = None
        except Exception as exc:  # noqa: BLE001 - intake away: show dispatch's copy of the registration
            registered, intake_note = None, f"intake 暂不可用 ({type(exc).__name__})，立案信息取自 dispatch 的副本"
        if registered is None and dispatched is None:
            return error_response(404, f"没有案件 {case_id}")
        entries = _intake_entries(registered) if registered else []
        if not registered and dispatched:
            entries.append(dispatched["registration"])
        if dispatched:
            entries.extend(dispatched["entries"])
        dated = [(_moment(entry.get("at")), index, entry) for index, entry in enumerate(entries)]
        dated.sort(key=lambda item: (item[0] or datetime.max.replace(tzinfo=timezone.utc), item[1]))
        timeline = []
        for moment, _, entry in dated:
            entry = dict(entry)
            if moment is not None:
                entry["at"] = district.calendar.to_local(moment).isoformat()
            timeline.append(entry)
        body = {"case_id": case_id, "state": dispatched["state"] if dispatched else None,
                "version": dispatched["version"] if dispatched else None,
                "timezone": district.calendar.timezone_name, "entries": timeline}
        if intake_note:
            body["note"] = intake_note
        return json_response(body)

    @http("GET", "/api/cases")
    def get_cases(self, request):
        filters = request.args.to_dict()
        try:
            load(CaseQuery(), filters)
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        return _answer(call(self.dispatch, "list_cases", filters))
