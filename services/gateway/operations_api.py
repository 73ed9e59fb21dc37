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
unit: the ``requested_by`` / ``by`` unit of its requests is its own, whatever the body says, and a
whistle it blows is led by itself; the command centre (``operator``, ``admin``) may act for any
unit (without ``by`` / ``requested_by`` it acts as the command centre); a ``partner`` account (a
department) may only ask to leave — and is refused. A unit or partner sees only its own
operations: reading another's is 404, acting on it 403. The leader reads everything and writes
nothing. Lists are paginated (``page``, ``per_page``; ``limit`` is the older name of ``per_page``).
Bodies are validated here (field-level errors) and again by the service, which enforces the
business rules (only the lead closes …).
"""
from __future__ import annotations

from nameko.web.handlers import http

from shared.contracts.api import coordination as schemas
from shared.contracts.parties import PARTY_KINDS, party_problem
from shared.departments import coordination_settings

from .auth import COMMAND, READ_ALL, Forbidden, NotFound, sees_operation
from .http import (BadRequest, call, endpoint, error_response, json_body, json_response, load, page_args,
                   page_of, path_id)

STATES = ("open", "closed", "cancelled")
BOARD_LIMIT = 500          # the most recent operations the board is paged from


from .http import ok_response as _answer  # noqa: E402  (a success as it is; errors: http.ERRORS)


def _acting_as(principal, actor) -> dict:
    """The unit a request acts for: a unit account is always itself; the command centre acts for
    the unit it names, or as the command centre."""
    if actor is not None and not isinstance(actor, dict):
        return actor                                    # let the schema say what is wrong with it
    if principal.role == "unit":
        actor = dict(actor or {})
        actor["unit_id"] = principal.unit_id
        actor["person"] = actor.get("person") or principal.name
        return actor
    if actor is None:
        return {"unit_id": coordination_settings()["command_centre"], "person": principal.name}
    return dict(actor)


class OperationsApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    def _body(self, request, principal, schema_cls, actor_field=None, optional=False) -> dict:
        """The JSON body, the acting unit filled in from the key, validated (400 field by field)."""
        data = {} if optional and not request.get_data() else json_body(request)
        if actor_field:
            data[actor_field] = _acting_as(principal, data.get(actor_field))
        load(schema_cls(), data)
        return data

    def _operation_for_writing(self, principal, operation_id):
        """A unit or partner acts only on an operation of its own: unknown → 404, another's → 403."""
        path_id(operation_id, "联合行动")
        if principal.role in COMMAND:
            return
        operation = call(self.coordination, "get_operation", operation_id)
        if operation is None:
            raise NotFound(f"没有联合行动 {operation_id} (not found)")
        if not sees_operation(principal, operation):
            raise Forbidden("这不是本单位参与的联合行动 (not an operation of yours)")

    # ---------------------------------------------------------------- operations
    @http("POST", "/api/operations")
    @endpoint(COMMAND + ("unit",), write=True)
    def post_operation(self, request, principal):
        data = self._body(request, principal, schemas.StartOperation, "requested_by")
        if data.get("trigger", "whistle") == "escalation" and principal.role not in COMMAND:
            raise Forbidden("升级联合执法由指挥中心调度员发起 (escalation is the command centre's)")
        if principal.role == "unit":
            data["lead_unit"] = principal.unit_id        # a street's whistle is led by the street
        return _answer(call(self.coordination, "start_operation", data), 201)

    @http("POST", "/api/operations/<string:operation_id>/replies")
    @endpoint(("partner",), write=True)
    def post_department_reply(self, request, principal, operation_id):
        """A department that cannot use AMQP replies over HTTP with the same envelope
        (docs/integration/departments.md); its account's department is the sender."""
        body = json_body(request)
        if body.get("incident_id", operation_id) != operation_id:
            raise BadRequest("incident_id 与路径中的联合行动不一致", {"incident_id": ["应为 " + operation_id]})
        body["incident_id"] = operation_id
        return _answer(call(self.coordination, "reply_over_http", principal.department, body), 201)

    @http("GET", "/api/operations")
    @endpoint(READ_ALL + ("unit", "partner"))
    def list_operations(self, request, principal):
        state = request.args.get("state") or None
        if state and state not in STATES:
            raise BadRequest("输入有误，请检查标出的字段 (invalid input)",
                             {"state": ["应为 open、closed 或 cancelled (open | closed | cancelled)"]})
        paging = page_args(request, limit="per_page")
        rows = call(self.coordination, "list_operations", state, BOARD_LIMIT)
        visible = [row for row in rows if sees_operation(principal, row)]
        return json_response(page_of(visible, paging["page"], paging["per_page"], legacy_key="operations"))

    @http("GET", "/api/cases/<string:case_id>/operations")
    @endpoint(READ_ALL + ("unit", "partner"))
    def case_operations(self, request, principal, case_id):
        path_id(case_id, "案件")
        paging = page_args(request)
        rows = [row for row in call(self.coordination, "operations_for_case", case_id)
                if sees_operation(principal, row)]
        body = page_of(rows, paging["page"], paging["per_page"], legacy_key="operations")
        return json_response({"case_id": case_id, **body})

    @http("POST", "/api/operations/<string:operation_id>/updates")
    @endpoint(COMMAND + ("unit",), write=True)
    def post_update(self, request, principal, operation_id):
        data = self._body(request, principal, schemas.UpdateOperation, "by")
        self._operation_for_writing(principal, operation_id)
        return _answer(call(self.coordination, "update_operation", operation_id, data))

    @http("POST", "/api/operations/<string:operation_id>/cancel")
    @endpoint(COMMAND + ("unit",), write=True)
    def post_cancel(self, request, principal, operation_id):
        data = self._body(request, principal, schemas.CancelOperation, "by")
        self._operation_for_writing(principal, operation_id)
        return _answer(call(self.coordination, "cancel_operation", operation_id, data))

    @http("POST", "/api/operations/<string:operation_id>/close")
    @endpoint(COMMAND + ("unit",), write=True)
    def post_close(self, request, principal, operation_id):
        data = self._body(request, principal, schemas.CloseOperation, "by")
        self._operation_for_writing(principal, operation_id)
        return _answer(call(self.coordination, "close_operation", operation_id, data))

    @http("POST", "/api/operations/<string:operation_id>/departments/<string:department_id>/leave")
    @endpoint(COMMAND + ("partner",), write=True)
    def post_leave(self, request, principal, operation_id, department_id):
        if principal.role == "partner" and principal.department != department_id:
            raise Forbidden("只能为本部门申请 (only for your own department)")
        data = self._body(request, principal, schemas.LeaveOperation, optional=True)
        path_id(department_id, "部门")
        self._operation_for_writing(principal, operation_id)
        return _answer(call(self.coordination, "leave_operation", operation_id, department_id, data))

    # ---------------------------------------------------------------- graduated enforcement
    @http("POST", "/api/enforcement/violations")
    @endpoint(COMMAND + ("unit",), write=True)
    def post_violation(self, request, principal):
        data = self._body(request, principal, schemas.RecordViolation)
        return _answer(call(self.coordination, "record_violation", data), 201)

    @http("GET", "/api/enforcement/parties/<string:kind>/<string:number>")
    @endpoint(READ_ALL + ("unit",))
    def get_party(self, request, principal, kind, number):
        if kind not in PARTY_KINDS:
            raise BadRequest("输入有误，请检查标出的字段 (invalid input)",
                             {"kind": ["当事人类型应为 licence、id_card 或 plate (licence | id_card | plate)"]})
        problem = party_problem(kind, number[:100])
        if problem:
            raise BadRequest("输入有误，请检查标出的字段 (invalid input)", {"number": [problem]})
        return _answer(call(self.coordination, "party_history", kind, number))

    @http("POST", "/api/enforcement/rectifications/<string:order_id>/check")
    @endpoint(COMMAND + ("unit", "inspector"), write=True)
    def post_rectification_check(self, request, principal, order_id):
        data = self._body(request, principal, schemas.RectificationCheck)
        path_id(order_id, "整改通知")
        return _answer(call(self.coordination, "check_rectification", order_id, data))
