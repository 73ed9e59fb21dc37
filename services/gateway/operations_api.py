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

from .access import Access, command_and, holds, readers_and
from .allowed import with_operation_actions
from .auth import COMMAND, Forbidden, NotFound
from .http import (BadRequest, call, endpoint, json_body, json_response, load, page_args,
                   page_of, path_id)

STATES = ("open", "closed", "cancelled")
BOARD_LIMIT = 500          # the most recent operations the board is paged from


from .http import ok_response as _answer  # noqa: E402  (a success as it is; errors: http.ERRORS)


def _acting_as(principal, actor) -> dict:
    """The unit a request acts for: a unit account is always itself; the command centre acts for
    the unit it names, or as the command centre. The person is always the key's account."""
    if actor is not None and not isinstance(actor, dict):
        return actor                                    # let the schema say what is wrong with it
    if principal.role == "unit":
        return {"unit_id": principal.unit_id, "person": principal.name}
    unit_id = (actor or {}).get("unit_id") or coordination_settings()["command_centre"]
    return {"unit_id": unit_id, "person": principal.name}


# what each endpoint acts on, and the relation each role needs (services/gateway/access.py)
WHISTLE = Access("case", command_and(unit="owning_unit"), write=True,
                 identity=("requested_by.person", "requested_by.unit_id", "lead_unit"),
                 named_by_command=("requested_by.unit_id", "lead_unit"), label="案件")
OPERATION_WRITE = Access("operation", command_and(unit="lead"), write=True,
                         identity=("by.person", "by.unit_id"), named_by_command=("by.unit_id",),
                         label="联合行动")
LEAVE = Access("operation", command_and(partner="participant"), write=True, label="联合行动")
REPLY = Access("operation", {"partner": "participant"}, write=True, label="联合行动")
BOARD = Access(None, readers_and(unit="participant", partner="participant"))      # filtered
VIOLATION = Access("case_or_operation", command_and(unit="owner_or_lead"), write=True,
                   identity=("officer",), label="案件或联合行动")
PARTY = Access(None, readers_and(unit="any"))
CHECK = Access("order", command_and(unit="owner_or_lead"), write=True, identity=("inspector",),
               label="整改通知")


class OperationsApi:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    def _body(self, request, principal, schema_cls, actor_field=None, optional=False) -> dict:
        """The JSON body, the acting unit filled in from the key, validated (400 field by field)."""
        data = {} if optional and not request.get_data() else json_body(request)
        return self._body_of(principal, data, schema_cls, actor_field)

    def _body_of(self, principal, data, schema_cls, actor_field=None) -> dict:
        if actor_field:
            data[actor_field] = _acting_as(principal, data.get(actor_field))
        load(schema_cls(), data)
        return data

    def _operation_for_writing(self, principal, operation_id):
        """A unit or partner acts only on an operation of its own: unknown → 404, another's → 403."""
        path_id(operation_id, "联合行动")
        if principal.sees_all:
            return
        principal.check(call(self.coordination, "get_operation", operation_id), operation_id)

    def _whistle_case(self, principal, data) -> None:
        """吹哨: a unit only on a case it may see (assigned to it now: else 403), led by itself; the
        command centre on any case, naming the street that asked (``requested_by.unit_id``; by
        default the street or town the case is assigned to), or escalates as the command centre.
        The person is always the key's account."""
        named = data.get("requested_by")
        data["requested_by"] = _acting_as(principal, named)
        case_id = data.get("case_id")
        if not isinstance(case_id, str) or not case_id:
            return                                      # the schema says what is missing
        path_id(case_id, "案件")
        case = principal.check(call(self.dispatch, "get_case", case_id), case_id)
        trigger = data.get("trigger", "whistle")
        if principal.role == "unit":
            if trigger == "escalation":
                raise Forbidden("升级联合执法由指挥中心调度员发起 (escalation is the command centre's)")
            data["lead_unit"] = principal.unit_id        # a street's whistle is led by the street
        elif trigger == "whistle" and isinstance(data["requested_by"], dict):
            named = named.get("unit_id") if isinstance(named, dict) else None
            street = named or (case or {}).get("unit_id") or ""
            if not street.startswith(("street.", "town.")):
                raise BadRequest("输入有误，请检查标出的字段 (invalid input)", {"requested_by": {"unit_id": [
                    "指挥中心代为吹哨时须写明提出的街道或镇 street.* / town.* (name the street that asked)"]}})
            data["requested_by"]["unit_id"] = street

    def _visible(self, principal, answer: dict) -> dict:
        """The service's answer as the caller may see it: an existing operation (a replayed
        request_id) it may not see is 403; the reporter's contacts only for whom may see them."""
        operation = answer.get("operation") if answer.get("ok") else None
        if operation is None or principal.role in COMMAND:
            return answer
        if not holds("participant", principal, operation):
            raise Forbidden("这不是本单位可查看的联合行动 (not an operation of yours)")
        return {**answer, "operation": self.redacted_operation(principal, operation)}

    # ---------------------------------------------------------------- operations
    @http("POST", "/api/operations")
    @endpoint(WHISTLE)
    def post_operation(self, request, principal):
        data = json_body(request)
        self._whistle_case(principal, data)
        load(schemas.StartOperation(), data)
        return _answer(self._visible(principal, call(self.coordination, "start_operation", data)), 201)

    @http("POST", "/api/operations/<string:operation_id>/replies")
    @endpoint(REPLY)
    def post_department_reply(self, request, principal, operation_id):
        """A department that cannot use AMQP replies over HTTP with the same envelope
        (docs/integration/departments.md); its account's department is the sender."""
        self._operation_for_writing(principal, operation_id)
        body = json_body(request)
        if body.get("incident_id", operation_id) != operation_id:
            raise BadRequest("incident_id 与路径中的联合行动不一致", {"incident_id": ["应为 " + operation_id]})
        body["incident_id"] = operation_id
        return _answer(call(self.coordination, "reply_over_http", principal.department, body), 201)

    @http("GET", "/api/operations")
    @endpoint(BOARD)
    def list_operations(self, request, principal):
        state = request.args.get("state") or None
        if state and state not in STATES:
            raise BadRequest("输入有误，请检查标出的字段 (invalid input)",
                             {"state": ["应为 open、closed 或 cancelled (open | closed | cancelled)"]})
        paging = page_args(request, limit="per_page")
        rows = call(self.coordination, "list_operations", state, BOARD_LIMIT)
        visible = [with_operation_actions(principal.principal, row) for row in rows if principal.allows(row)]
        return json_response(page_of(visible, paging["page"], paging["per_page"], legacy_key="operations"))

    @http("GET", "/api/cases/<string:case_id>/operations")
    @endpoint(BOARD)
    def case_operations(self, request, principal, case_id):
        path_id(case_id, "案件")
        paging = page_args(request)
        rows = [row for row in call(self.coordination, "operations_for_case", case_id)
                if principal.allows(row)]
        body = page_of(rows, paging["page"], paging["per_page"], legacy_key="operations")
        return json_response({"case_id": case_id, **body})

    @http("POST", "/api/operations/<string:operation_id>/updates")
    @endpoint(OPERATION_WRITE)
    def post_update(self, request, principal, operation_id):
        self._operation_for_writing(principal, operation_id)
        data = self._body(request, principal, schemas.UpdateOperation, "by")
        return _answer(call(self.coordination, "update_operation", operation_id, data))

    @http("POST", "/api/operations/<string:operation_id>/cancel")
    @endpoint(OPERATION_WRITE)
    def post_cancel(self, request, principal, operation_id):
        self._operation_for_writing(principal, operation_id)
        data = self._body(request, principal, schemas.CancelOperation, "by")
        return _answer(call(self.coordination, "cancel_operation", operation_id, data))

    @http("POST", "/api/operations/<string:operation_id>/close")
    @endpoint(OPERATION_WRITE)
    def post_close(self, request, principal, operation_id):
        self._operation_for_writing(principal, operation_id)
        data = json_body(request)
        named = data.get("by") if isinstance(data.get("by"), dict) else {}
        if principal.role in COMMAND and not named.get("unit_id"):     # 代办: closes for the lead
            operation = call(self.coordination, "get_operation", operation_id) or {}
            data["by"] = {"unit_id": operation.get("lead_unit")} if operation.get("lead_unit") else None
        data = self._body_of(principal, data, schemas.CloseOperation, "by")
        return _answer(call(self.coordination, "close_operation", operation_id, data))

    @http("POST", "/api/operations/<string:operation_id>/departments/<string:department_id>/leave")
    @endpoint(LEAVE)
    def post_leave(self, request, principal, operation_id, department_id):
        if principal.role == "partner" and not holds("own_department", principal, department_id):
            raise Forbidden("只能为本部门申请 (only for your own department)")
        path_id(department_id, "部门")
        self._operation_for_writing(principal, operation_id)
        data = self._body(request, principal, schemas.LeaveOperation, optional=True)
        return _answer(call(self.coordination, "leave_operation", operation_id, department_id, data))

    # ---------------------------------------------------------------- graduated enforcement
    @http("POST", "/api/enforcement/violations")
    @endpoint(VIOLATION)
    def post_violation(self, request, principal):
        data = principal.fill(json_body(request), officer=principal.name)
        if not principal.sees_all:
            self._check_case_or_operation(principal, data.get("case_id"), data.get("operation_id"))
        load(schemas.RecordViolation(), data)
        return _answer(call(self.coordination, "record_violation", data), 201)

    def _check_case_or_operation(self, principal, case_id, operation_id):
        """A unit acts on a violation or order only as the owner of its case or the lead of its
        operation (neither named: 403)."""
        ids = [value for value in (case_id, operation_id) if isinstance(value, str) and value]
        for value in ids:
            path_id(value, "案件或联合行动")
        case = call(self.dispatch, "get_case", case_id) if isinstance(case_id, str) and case_id else None
        operation = (call(self.coordination, "get_operation", operation_id)
                     if isinstance(operation_id, str) and operation_id else None)
        principal.check({"case": case, "operation": operation}, found=True)

    @http("GET", "/api/enforcement/parties/<string:kind>/<string:number>")
    @endpoint(PARTY)
    def get_party(self, request, principal, kind, number):
        if kind not in PARTY_KINDS:
            raise BadRequest("输入有误，请检查标出的字段 (invalid input)",
                             {"kind": ["当事人类型应为 licence、id_card 或 plate (licence | id_card | plate)"]})
        problem = party_problem(kind, number[:100])
        if problem:
            raise BadRequest("输入有误，请检查标出的字段 (invalid input)", {"number": [problem]})
        return _answer(call(self.coordination, "party_history", kind, number))

    @http("POST", "/api/enforcement/rectifications/<string:order_id>/check")
    @endpoint(CHECK)
    def post_rectification_check(self, request, principal, order_id):
        path_id(order_id, "整改通知")
        if not principal.sees_all:
            order = call(self.coordination, "rectification_order", order_id)
            if order is None:
                raise NotFound(f"没有待复查的整改通知 {order_id} (no open rectification order)")
            self._check_case_or_operation(principal, order.get("case_id"), order.get("operation_id"))
        data = principal.fill(json_body(request), inspector=principal.name)
        load(schemas.RectificationCheck(), data)
        return _answer(call(self.coordination, "check_rectification", order_id, data))
