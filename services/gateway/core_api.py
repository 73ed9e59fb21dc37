"""Health, the OpenAPI document, reports, a case and an operation as every service sees them,
the scoring summary, and JSON 404/405 for any other /api/ path.

    GET  /health                      public: each service, the broker, the store (200 / 503)
    GET  /api/openapi.json            public: the OpenAPI 3 document of the native API
    POST /api/reports                 any role but the leader; citizens are rate-limited (429)
    GET  /api/cases/<case_id>         command centre, leader, inspector; a unit: its own cases
    GET  /api/operations/<id>         command centre, leader, inspector; a unit or partner: its own
    GET  /api/scoring/summary         command centre, leader, inspector
"""
from __future__ import annotations

import re

from nameko.web.handlers import http

from shared.contracts.api.intake import ReportSchema
from shared import health
from shared.contracts.errors import Refused, raise_failure

from . import openapi
from .access import Access, may_see_contacts, public, readers_and, roles_with
from .allowed import with_allowed, with_operation_actions
from .auth import COMMAND, ROLES, NotFound, redact_contacts, report_as
from .http import (call, endpoint, error_response, json_body, json_response,
                   load, path_id, rate_limit)


REPORT = Access(None, roles_with("any", [role for role in ROLES if role != "leader"]), write=True,
                identity=("inspector_id", "inspector_name", "reporter.account_id", "sensor_id", "device_id"),
                named_by_command=("inspector_id", "inspector_name"))
CASE = Access("case", readers_and(unit="owning_unit"), label="案件")
OPERATION = Access("operation", readers_and(unit="participant", partner="participant"), label="联合行动")
SUMMARY = Access(None, readers_and())


class CoreApi:
    @http("GET", "/health")
    @endpoint(public())
    def get_health(self, request, principal):
        body = health.platform_status(self.config, self.platform_db)     # services, broker, store, queues
        return json_response(body, 200 if body["status"] == "up" else 503)

    @http("GET", "/api/openapi.json")
    @endpoint(public())
    def get_openapi(self, request, principal):
        return json_response(openapi.document(), headers={"Cache-Control": "no-cache"})

    @http("POST", "/api/reports")
    @endpoint(REPORT)
    def post_report(self, request, principal):
        if principal.role == "citizen":
            rate_limit(self.config, f"key:{principal.key_id}", "citizen", store=self.db.rate_limits)
        data = report_as(principal, json_body(request))
        report = load(ReportSchema(), data)
        answer = raise_failure(call(self.intake, "submit_report", ReportSchema().dump(report),
                                    f"key:{principal.key_id}"))
        if answer["status"] == "rejected":        # 不予立案: kept (report_id, reason), but not filed
            raise Refused(answer.get("reason") or "不予立案 (not filed)",
                          **{key: value for key, value in answer.items() if key != "reason"})
        return json_response(answer, 201)         # registered, duplicate or reopened: filed

    @http("GET", "/api/cases/<string:case_id>")
    @endpoint(CASE)
    def get_case(self, request, principal, case_id):
        path_id(case_id, "案件")
        dispatched = call(self.dispatch, "get_case", case_id)
        if not principal.sees_all:
            principal.check(dispatched, case_id)
        registered = call(self.intake, "get_case", case_id)
        if registered is None and dispatched is None:
            raise NotFound(f"没有案件 {case_id} (not found)")
        body = {
            "case_id": case_id,
            "registration": registered,
            "dispatch": with_allowed(principal.principal, dispatched),
            "joint_operation": call(self.coordination, "operation_for_case", case_id),
            "events": call(self.scoring, "events_for", case_id),
        }
        return json_response(redact_contacts(body, principal, may_see_contacts(principal, dispatched)))

    @http("GET", "/api/operations/<string:operation_id>")
    @endpoint(OPERATION)
    def get_operation(self, request, principal, operation_id):
        path_id(operation_id, "联合行动")
        operation = principal.check(call(self.coordination, "get_operation", operation_id), operation_id)
        return json_response(with_operation_actions(principal.principal, self.redacted_operation(principal, operation)))

    def redacted_operation(self, principal, operation):
        """An operation as the caller may see it: the reporter's contacts only for the command
        centre and the unit the case is assigned to now (dispatch's view)."""
        if principal.role in COMMAND or not operation:
            return operation
        case_id = operation.get("case_id")
        case = call(self.dispatch, "get_case", case_id) if case_id and principal.role == "unit" else None
        return redact_contacts(operation, principal, may_see_contacts(principal, case))

    @http("GET", "/api/scoring/summary")
    @endpoint(SUMMARY)
    def get_summary(self, request, principal):
        return json_response(call(self.scoring, "summary"))

    @http("GET,POST,PUT,PATCH,DELETE", "/api/<path:rest>")
    def api_not_found(self, request, rest):
        """Any other /api/ path: a JSON 404 — or 405 when the path exists for other methods."""
        path = f"/api/{rest}"
        allowed = sorted({method for method, pattern in _api_routes(type(self)) if pattern.fullmatch(path)})
        if allowed:
            return error_response(405, f"{request.method} 不适用于 {path[:200]} (method not allowed)",
                                  headers={"Allow": ", ".join(allowed)})
        return error_response(404, f"没有这个接口 {path[:200]} (no such endpoint)")


_ROUTES: dict = {}


def _api_routes(cls):
    """(method, compiled path pattern) of every /api/ route of the service, the catch-all excepted."""
    if cls not in _ROUTES:
        _ROUTES[cls] = [(method, _pattern(url)) for method, url, _ in openapi.routes(cls)
                        if url.startswith("/api/") and "<path:" not in url]
    return _ROUTES[cls]


def _pattern(rule: str):
    parts = re.split(r"(<[^>]+>)", rule)
    return re.compile("".join("[^/]+" if part.startswith("<") else re.escape(part) for part in parts))
