"""Joint operations (城管+N), whistles (吹哨), escalations and graduated enforcement over HTTP.

  POST /api/operations                              吹哨 (a street) / escalation (command centre)
  GET  /api/operations?state=open&limit=50          the joint-operation board
  GET  /api/operations/<id>                         (core_api) the whole operation, every message
  GET  /api/cases/<case_id>/operations              every operation of a case
  POST /api/operations/<id>/updates                 Update to the departments (references the original)
  POST /api/operations/<id>/cancel                  Cancel: release departments, or the whole operation
  POST /api/operations/<id>/close                   close — by the lead unit only (事不完，人不走)
  POST /api/operations/<id>/departments/<dept>/leave   a department asking to leave: refused (409)
  POST /api/enforcement/violations                  a violation: ladder step, 首违不罚, 限期整改
  GET  /api/enforcement/parties/<kind>/<number>     a party's violation history
  POST /api/enforcement/rectifications/<order_id>/check   the follow-up check of a 限期整改 order

Every call needs an API key (services/gateway/auth.py). A ``unit`` account acts only as its own
unit: the ``requested_by`` / ``by`` unit of its requests is its own, whatever the body says; the
command centre (``operator``, ``admin``) may act for any unit; a ``partner`` account (a
department) may only ask to leave — and is refused. Bodies are validated here (field-level
errors) and again by the service, which enforces the business rules (only the lead closes …).
"""
from __future__ import annotations

from nameko.web.handlers import http

from services.enforcement_coordination import schemas

from .auth import READ_ALL, Forbidden, Unauthorized, may_see_operation
from .http import BadRequest, call, error_response, json_body, json_response, load

COMMAND = ("operator", "admin")


def _answer(result: dict, created_status: int = 200):
    """The service's {"ok": …} answer as an HTTP response."""
    if result.get("ok"):
        body = {key: value for key, value in result.items() if key != "ok"}
        return json_response(body, created_status if result.get("created", True) else 200)
    return error_response(result.get("status", 400), result.get("message", "请求被拒绝"), result.get("fields"))


def _acting_as(principal, actor: dict | None) -> dict:
    """The unit a request acts for: a unit account is always itself."""
    actor = dict(actor or {})
    if principal.role == "unit":
        actor["unit_id"] = principal.unit_id
        actor["person"] = actor.get("person") or principal.name
    return actor


def _visible(principal, summary: dict) -> bool:
    return may_see_operation(principal, summary.get("departments", {}).keys(),
                             [summary.get("lead_unit"), summary.get("requested_by"), summary.get("owner_unit")])


class OperationsApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    def _guarded(self, request, roles, schema_cls=None, actor_field=None, handler=None):
        """Authenticate, check the role, parse and validate the body, then run ``handler``."""
        try:
            principal = self.principal(request)
            if principal.role not in roles:
                raise Forbidden("此角色无权执行此操作 (this role may not do this)")
            data = None
            if schema_cls is not None:
                optional = schema_cls is schemas.LeaveOperation          # leave: the body may be empty
                data = {} if optional and not request.get_data() else json_body(request)
                if actor_field:
                    data[actor_field] = _acting_as(principal, data.get(actor_field))
                load(schema_cls(), data)
            return handler(principal, data)
        except Unauthorized as exc:
            return error_response(401, str(exc))
        except Forbidden as exc:
            return error_response(403, str(exc))
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)

    # ---------------------------------------------------------------- operations
    @http("POST", "/api/operations")
    def post_operation(self, request):
        def start(principal, data):
            if data.get("trigger", "whistle") == "escalation" and principal.role not in COMMAND:
                raise Forbidden("升级联合执法由指挥中心调度员发起 (escalation is the command centre's)")
            return _answer(call(self.coordination, "start_operation", data), 201)
        return self._guarded(request, COMMAND + ("unit",), schemas.StartOperation, "requested_by", start)

    @http("GET", "/api/operations")
    def list_operations(self, request):
        def board(principal, _):
            state = request.args.get("state") or None
            if state and state not in ("open", "closed", "cancelled"):
                raise BadRequest("state 应为 open、closed 或 cancelled", {"state": ["取值无效"]})
            try:
                limit = int(request.args.get("limit", 50))
            except ValueError:
                raise BadRequest("limit 应为整数", {"limit": ["应为整数"]}) from None
            rows = call(self.coordination, "list_operations", state, limit)
            return json_response({"operations": [row for row in rows if _visible(principal, row)]})
        return self._guarded(request, READ_ALL + ("unit", "partner"), handler=board)

    @http("GET", "/api/cases/<string:case_id>/operations")
    def case_operations(self, request, case_id):
        def listing(principal, _):
            rows = call(self.coordination, "operations_for_case", case_id)
            return json_response({"case_id": case_id, "operations": [r for r in rows if _visible(principal, r)]})
        return self._guarded(request, READ_ALL + ("unit", "partner"), handler=listing)

    @http("POST", "/api/operations/<string:operation_id>/updates")
    def post_update(self, request, operation_id):
        return self._guarded(request, COMMAND + ("unit",), schemas.UpdateOperation, "by", lambda p, data: _answer(
            call(self.coordination, "update_operation", operation_id, data)))

    @http("POST", "/api/operations/<string:operation_id>/cancel")
    def post_cancel(self, request, operation_id):
        return self._guarded(request, COMMAND + ("unit",), schemas.CancelOperation, "by", lambda p, data: _answer(
            call(self.coordination, "cancel_operation", operation_id, data)))

    @http("POST", "/api/operations/<string:operation_id>/close")
    def post_close(self, request, operation_id):
        return self._guarded(request, COMMAND + ("unit",), schemas.CloseOperation, "by", lambda p, data: _answer(
            call(self.coordination, "close_operation", operation_id, data)))

    @http("POST", "/api/operations/<string:operation_id>/departments/<string:department_id>/leave")
    def post_leave(self, request, operation_id, department_id):
        def leave(principal, data):
            if principal.role == "partner" and principal.department != department_id:
                raise Forbidden("只能为本部门申请 (only for your own department)")
            return _answer(call(self.coordination, "leave_operation", operation_id, department_id, data))
        return self._guarded(request, COMMAND + ("partner",), schemas.LeaveOperation, handler=leave)

    # ---------------------------------------------------------------- graduated enforcement
    @http("POST", "/api/enforcement/violations")
    def post_violation(self, request):
        return self._guarded(request, COMMAND + ("unit",), schemas.RecordViolation, handler=lambda p, data: _answer(
            call(self.coordination, "record_violation", data), 201))

    @http("GET", "/api/enforcement/parties/<string:kind>/<string:number>")
    def get_party(self, request, kind, number):
        def history(principal, _):
            if kind not in ("licence", "id_card", "plate"):
                raise BadRequest("当事人类型应为 licence、id_card 或 plate", {"kind": ["取值无效"]})
            return _answer(call(self.coordination, "party_history", kind, number))
        return self._guarded(request, READ_ALL + ("unit",), handler=history)

    @http("POST", "/api/enforcement/rectifications/<string:order_id>/check")
    def post_rectification_check(self, request, order_id):
        return self._guarded(request, COMMAND + ("unit", "inspector"), schemas.RectificationCheck,
                             handler=lambda p, data: _answer(call(self.coordination, "check_rectification",
                                                                  order_id, data)))
