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
from .auth import READ_ALL, NotFound, may_see_case, redact_contacts, report_as, sees_operation
from .http import (ANY, PUBLIC, BadRequest, call, endpoint, error_response, json_body, json_response,
                   load, path_id, rate_limit)


class CoreApi:
    @http("GET", "/health")
    @endpoint(PUBLIC)
    def get_health(self, request, principal):
        services = health.service_states(self.platform_db)
        body = {"services": services,
                "broker": health.broker_state(self.config["AMQP_URI"]),
                "store": health.store_state(self.platform_db.client)}
        healthy = (body["broker"] == "up" and body["store"] == "up"
                   and all(entry["state"] == "up" for entry in services.values()))
        body["status"] = "up" if healthy else "degraded"
        return json_response(body, 200 if healthy else 503)

    @http("GET", "/api/openapi.json")
    @endpoint(PUBLIC)
    def get_openapi(self, request, principal):
        return json_response(openapi.document(), headers={"Cache-Control": "no-cache"})

    @http("POST", "/api/reports")
    @endpoint(ANY, write=True)
    def post_report(self, request, principal):
        if principal.role == "citizen":
            rate_limit(self.config, f"key:{principal.key_id}", "citizen", store=self.db.rate_limits)
        data = report_as(principal, json_body(request))
        report = load(ReportSchema(), data)
        answer = raise_failure(call(self.intake, "submit_report", ReportSchema().dump(report)))
        if answer["status"] == "rejected":        # 不予立案: kept (report_id, reason), but not filed
            raise Refused(answer.get("reason") or "不予立案 (not filed)",
                          **{key: value for key, value in answer.items() if key != "reason"})
        return json_response(answer, 201)         # registered, duplicate or reopened: filed

    @http("GET", "/api/cases/<string:case_id>")
    @endpoint(READ_ALL + ("unit",))
    def get_case(self, request, principal, case_id):
        path_id(case_id, "案件")
        dispatched = call(self.dispatch, "get_case", case_id)
        if principal.role not in READ_ALL and not (dispatched and may_see_case(principal, dispatched)):
            raise NotFound(f"没有案件 {case_id} (not found)")
        registered = call(self.intake, "get_case", case_id)
        if registered is None and dispatched is None:
            raise NotFound(f"没有案件 {case_id} (not found)")
        body = {
            "case_id": case_id,
            "registration": registered,
            "dispatch": dispatched,
            "joint_operation": call(self.coordination, "operation_for_case", case_id),
            "events": call(self.scoring, "events_for", case_id),
        }
        return json_response(redact_contacts(body, principal))

    @http("GET", "/api/operations/<string:operation_id>")
    @endpoint(READ_ALL + ("unit", "partner"))
    def get_operation(self, request, principal, operation_id):
        path_id(operation_id, "联合行动")
        operation = call(self.coordination, "get_operation", operation_id)
        if operation is None or not sees_operation(principal, operation):
            raise NotFound(f"没有联合行动 {operation_id} (not found)")
        return json_response(operation)

    @http("GET", "/api/scoring/summary")
    @endpoint(READ_ALL)
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
