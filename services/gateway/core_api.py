"""Health and the first native endpoints (reports, cases, operations, summary)."""
from __future__ import annotations

from nameko.web.handlers import http

from services.intake.schemas import ReportSchema
from shared import health

from .http import BadRequest, call, error_response, json_body, json_response, load


class CoreApi:
    @http("GET", "/health")
    def get_health(self, request):
        services = health.service_states(self.platform_db)
        body = {"services": services,
                "broker": health.broker_state(self.config["AMQP_URI"]),
                "store": health.store_state(self.platform_db.client)}
        healthy = (body["broker"] == "up" and body["store"] == "up"
                   and all(entry["state"] == "up" for entry in services.values()))
        body["status"] = "up" if healthy else "degraded"
        return json_response(body, 200 if healthy else 503)

    @http("POST", "/api/reports")
    def post_report(self, request):
        try:
            data = json_body(request)
            data.setdefault("channel", "web")
            report = load(ReportSchema(), data)
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        answer = call(self.intake, "submit_report", ReportSchema().dump(report))
        if answer.get("status") == "invalid":
            return error_response(400, "输入有误，请检查标出的字段", answer.get("errors"))
        return json_response(answer, 201 if answer["status"] in ("registered", "duplicate") else 422)

    @http("GET", "/api/cases/<string:case_id>")
    def get_case(self, request, case_id):
        registered = call(self.intake, "get_case", case_id)
        if registered is None:
            return error_response(404, f"没有案件 {case_id}")
        return json_response({
            "case_id": case_id,
            "registration": registered,
            "dispatch": call(self.dispatch, "get_case", case_id),
            "joint_operation": call(self.coordination, "operation_for_case", case_id),
            "events": call(self.scoring, "events_for", case_id),
        })

    @http("GET", "/api/operations/<string:operation_id>")
    def get_operation(self, request, operation_id):
        operation = call(self.coordination, "get_operation", operation_id)
        if operation is None:
            return error_response(404, f"没有联合行动 {operation_id}")
        return json_response(operation)

    @http("GET", "/api/scoring/summary")
    def get_summary(self, request):
        return json_response(call(self.scoring, "summary"))
