"""gateway service: HTTP → RPC. Validation errors are field-level JSON; nothing here holds state."""
from __future__ import annotations

import json

import eventlet
from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.rpc import RpcProxy
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from services.intake.schemas import ReportSchema
from shared import health, storage
from shared.health import Heartbeat

RPC_TIMEOUT = 10


def json_response(payload, status=200):
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                    mimetype="application/json")


def error_response(status, message, fields=None):
    body = {"error": {"status": status, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return json_response(body, status)


class GatewayService:
    name = "gateway"

    intake = RpcProxy("intake")
    dispatch = RpcProxy("dispatch")
    coordination = RpcProxy("coordination")
    scoring = RpcProxy("scoring")
    platform_db = storage.PlatformDatabase()
    heartbeat = Heartbeat()
    config = Config()

    def _call(self, proxy, method, *args):
        with eventlet.Timeout(RPC_TIMEOUT):
            return getattr(proxy, method)(*args)

    @http("GET", "/health")
    def get_health(self, request):
        config = self.config
        services = health.service_states(self.platform_db)
        body = {"services": services,
                "broker": health.broker_state(config["AMQP_URI"]),
                "store": health.store_state(self.platform_db.client)}
        healthy = (body["broker"] == "up" and body["store"] == "up"
                   and all(entry["state"] == "up" for entry in services.values()))
        body["status"] = "up" if healthy else "degraded"
        return json_response(body, 200 if healthy else 503)

    @http("POST", "/api/reports")
    def post_report(self, request):
        try:
            data = json.loads(request.get_data(as_text=True) or "null")
        except json.JSONDecodeError as exc:
            return error_response(400, f"请求体不是合法 JSON: {exc}")
        if not isinstance(data, dict):
            return error_response(400, "请求体必须是 JSON 对象")
        data.setdefault("channel", "web")
        try:
            report = ReportSchema().load(data)
        except ValidationError as exc:
            return error_response(400, "输入有误，请检查标出的字段", exc.messages)
        answer = self._call(self.intake, "submit_report", ReportSchema().dump(report))
        if answer.get("status") == "invalid":
            return error_response(400, "输入有误，请检查标出的字段", answer.get("errors"))
        return json_response(answer, 201 if answer["status"] == "registered" else 422)

    @http("GET", "/api/cases/<string:case_id>")
    def get_case(self, request, case_id):
        registered = self._call(self.intake, "get_case", case_id)
        if registered is None:
            return error_response(404, f"没有案件 {case_id}")
        return json_response({
            "case_id": case_id,
            "registration": registered,
            "dispatch": self._call(self.dispatch, "get_case", case_id),
            "joint_operation": self._call(self.coordination, "operation_for_case", case_id),
            "events": self._call(self.scoring, "events_for", case_id),
        })

    @http("GET", "/api/operations/<string:operation_id>")
    def get_operation(self, request, operation_id):
        operation = self._call(self.coordination, "get_operation", operation_id)
        if operation is None:
            return error_response(404, f"没有联合行动 {operation_id}")
        return json_response(operation)

    @http("GET", "/api/scoring/summary")
    def get_summary(self, request):
        return json_response(self._call(self.scoring, "summary"))
