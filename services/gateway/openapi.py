"""The OpenAPI 3 document of the native REST API, served at ``GET /api/openapi.json``.

Derived, not copied:

- the **routes** are read from the gateway service class (every nameko ``@http`` entrypoint under
  ``/api/``, plus ``/health``); a route with no entry in ``DOCS`` fails ``tests/integration/
  test_openapi.py``, so the document cannot fall behind the code;
- **who may call** comes from each entrypoint's ``@endpoint(roles)`` (services/gateway/http.py)
  and, for the case actions, from ``auth.CASE_ACTION_ROLES`` — the same tuples that are enforced;
- an API mixin may describe its own routes in a class attribute ``OPENAPI_DOCS = {(method, url):
  Doc(...)}`` (merged with ``DOCS`` below), so a new area documents itself in its own module;
- **request bodies and query parameters** are the services' own marshmallow schemas
  (intake's ``ReportSchema``, dispatch's action schemas and ``CaseQuery``, coordination's
  inputs, scoring's queries, the gateway's ``PageQuery``), converted by apispec's marshmallow
  plugin; the identity fields the gateway fills from the API key are left out of the bodies.

``python -m services.gateway.openapi [--out FILE]`` writes the document (default: stdout).
"""
from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from dataclasses import dataclass, field

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from marshmallow import Schema, fields

from shared.contracts.api import coordination
from shared.contracts.api.dispatch import ACTION_SCHEMAS, CaseQuery
from shared.contracts.api.intake import DecisionSchema, ReportSchema
from shared.contracts.api.scoring import (LEVELS, BulletinQuery, ExposureQuery, IndicatorsQuery,
                                          RankingQuery)
from shared.contracts.parties import PARTY_KINDS

from . import auth
from .http import PUBLIC, PageQuery

VERSION = "1.0.0"
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"
ERROR_CODES = {400: "输入有误，字段级说明见 error.fields (invalid input, field by field)",
               401: "未登录或 API key 无效 (no or invalid API key)",
               403: "角色无权执行，或不是自己的对象 (role not allowed, or not your object)",
               404: "不存在，或无权查看 (not found, or not yours to see)",
               409: "冲突：版本已变化或业务规则不允许 (conflict: stale version or a business rule)",
               422: "当前状态不允许 / 未受理 (refused in the current state)",
               429: "请求过于频繁，见 Retry-After (rate limited; see Retry-After)",
               503: "某个服务暂时无法响应 (a service did not answer in time)"}


# ------------------------------------------------------------------ response schemas
class ErrorDetail(Schema):
    status = fields.Integer(required=True, metadata={"example": 404})
    code = fields.String(required=True, metadata={"description": "invalid | unauthorized | forbidden | "
                                                                 "not_found | conflict | refused | rate_limited …"})
    message = fields.String(required=True, metadata={"description": "中文说明（括号内为英文）"})
    fields_ = fields.Dict(data_key="fields", metadata={"description": "field-level detail, nested like the input"})


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class Page(Schema):
    items = fields.List(fields.Dict(), required=True)
    total = fields.Integer(required=True, metadata={"description": "matching items in all pages"})
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    pages = fields.Integer()


class ReportAnswer(Schema):
    report_id = fields.String()
    status = fields.String(metadata={"description": "registered | duplicate | rejected | …"})
    case_id = fields.String(allow_none=True)
    owner_unit = fields.String(allow_none=True)
    grid_code = fields.String(allow_none=True)
    reason = fields.String()


class CaseAnswer(Schema):
    events = fields.List(fields.String())
    case = fields.Dict(metadata={"description": "dispatch's view of the case, with its new version"})


class Principal(Schema):
    key_id = fields.String()
    name = fields.String()
    role = fields.String(metadata={"enum": list(auth.ROLES)})
    role_name = fields.String()
    unit_id = fields.String(allow_none=True)
    department = fields.String(allow_none=True)


# ------------------------------------------------------------------ what each route is
@dataclass
class Doc:
    summary: str
    tag: str
    description: str = ""
    query: Schema | None = None
    body: Schema | None = None
    body_required: bool = True
    ok: int = 200
    answer: type | None = None               # response schema class; None: a JSON object
    paged: bool = False
    errors: tuple = ()                        # besides 401/403 (from the roles) and 503
    path: dict = field(default_factory=dict)  # path parameter → JSON schema
    content_type: str = "application/json"    # of the answer; another type: a binary body
    upload: bool = False                      # the request body is an image (JPEG, PNG, WebP)
    roles: tuple | None = None                # for routes not guarded by @endpoint: what they check


def id_param(description):
    """The JSON schema of an id in a path (what ``http.path_id`` accepts)."""
    return {"type": "string", "pattern": ID_PATTERN, "description": description}


_id = id_param
CODE_PATH = id_param("编号 (id)")
CASE_ID = _id("案件编号 (case id), e.g. C20261123-1A2B3C4D")
OPERATION_ID = _id("联合行动编号 (operation id), e.g. OP-C20261123-1A2B3C4D")
PAGE = PageQuery()


def _operations_query():
    class OperationsQuery(PageQuery):
        state = fields.String(metadata={"enum": ["open", "closed", "cancelled"], "description": "状态 (state)"})
        limit = fields.Integer(metadata={"description": "旧名，同 per_page (older name of per_page)",
                                         "deprecated": True, "minimum": 1, "maximum": 100})
    return OperationsQuery()


DOCS: dict[tuple[str, str], Doc] = {
    ("GET", "/health"): Doc(
        "健康检查 Health", "system", "每个服务、消息总线、存储和需要处理的队列；全部正常 200，否则 503 "
        "degraded，reasons 列出原因 (each service, the broker, the store and any queue that needs an "
        "operator: dead letters, an inbox/outbox nobody reads, a backlog; 200 only when all is well, "
        "else 503 with the reasons).",
        errors=(503,)),
    ("GET", "/api/openapi.json"): Doc("本文档 This OpenAPI document", "system"),
    ("POST", "/api/reports"): Doc(
        "上报问题 Report a problem", "reports",
        "上报人身份取自 API key：信息采集员以 inspector 渠道上报、inspector_id 为其工号；市民、处置单位、"
        "联动部门以 web 渠道上报；指挥中心（operator/admin）可代录 web、hotline、inspector、road_office 渠道。"
        "市民账号限流（默认每分钟 6 次，突发 5 次），超出返回 429 与 Retry-After。"
        "立案（registered）、并入在办案件（duplicate）、重新打开已结案件（reopened）均为 201；"
        "不予立案为 422 refused，错误中带 report_id 与原因。"
        " (The reporter's identity comes from the key; citizens are rate-limited. Filed, linked or"
        " reopened: 201; kept but not filed: 422 with the report_id in the error.)",
        body=ReportSchema(), ok=201, answer=ReportAnswer, errors=(400, 422, 429)),
    ("GET", "/api/cases"): Doc(
        "案件列表 Cases", "cases", "按状态、单位、网格、类别、派遣时间、是否超期、是否待核实筛选；分页。处置单位账号只看到本单位案件。"
        " (Filter by state, unit, grid prefix, class, dispatch time, overdue, open 核实 task; a unit sees its own"
        " cases only.)",
        query=CaseQuery(), paged=True, errors=(400,)),
    ("GET", "/api/cases/<string:case_id>"): Doc(
        "案件全貌 A case as every service sees it", "cases",
        "立案（intake）、派遣（dispatch）、联合行动（coordination）与考核事件（scoring）。其他单位的案件返回 404。"
        " 报告人电话仅指挥中心可见。", path={"case_id": CASE_ID}, errors=(404,)),
    ("GET", "/api/cases/<string:case_id>/timeline"): Doc(
        "案件时间轴 The case timeline", "cases", "从上报到结案的每一步（本地时间 Asia/Shanghai）。",
        path={"case_id": CASE_ID}, errors=(404,)),
    ("GET", "/api/cases/<string:case_id>/operations"): Doc(
        "案件的联合行动 A case's joint operations", "operations", "只列出调用者可见的联合行动。",
        query=PAGE, path={"case_id": CASE_ID}, paged=True, errors=(400, 404)),
    ("POST", "/api/operations"): Doc(
        "吹哨 / 升级联合执法 Whistle or escalate", "operations",
        "街道、镇账号吹哨（牵头单位为其本身，requested_by 取自 key）；指挥中心可升级（trigger=escalation）。"
        " requested_by 缺省时，指挥中心以自身名义发起。request_id 使请求幂等。",
        body=coordination.StartOperation(partial=("requested_by",)), ok=201, errors=(400, 404)),
    ("GET", "/api/operations"): Doc(
        "联合行动看板 The joint-operation board", "operations",
        "最近的联合行动（最多 500 条中分页）；联动部门只看到邀请其参加的，处置单位只看到其牵头、吹哨或所属案件的。",
        query=_operations_query(), paged=True, errors=(400,)),
    ("GET", "/api/operations/<string:operation_id>"): Doc(
        "联合行动全貌 A whole operation, every message", "operations",
        "不可见的联合行动返回 404 (an operation you may not see is 404).",
        path={"operation_id": OPERATION_ID}, errors=(404,)),
    ("POST", "/api/operations/<string:operation_id>/updates"): Doc(
        "更新通知各部门 Update to the departments", "operations", "牵头单位或指挥中心。",
        body=coordination.UpdateOperation(partial=("by",)), path={"operation_id": OPERATION_ID},
        errors=(400, 404, 409)),
    ("POST", "/api/operations/<string:operation_id>/cancel"): Doc(
        "撤销部门任务或整个行动 Cancel", "operations", "给出 departments 则解除这些部门；否则撤销整个行动（仅牵头单位）。",
        body=coordination.CancelOperation(partial=("by",)), path={"operation_id": OPERATION_ID},
        errors=(400, 404, 409)),
    ("POST", "/api/operations/<string:operation_id>/close"): Doc(
        "结束联合行动 Close (lead only; 事不完，人不走)", "operations",
        "仅牵头单位；仍有部门未报告处置结果时 409（error.fields.outstanding），除非 force=true 并说明理由。",
        body=coordination.CloseOperation(partial=("by",)), path={"operation_id": OPERATION_ID},
        errors=(400, 404, 409)),
    ("POST", "/api/operations/<string:operation_id>/departments/<string:department_id>/leave"): Doc(
        "部门申请退出 A department asks to leave (always refused, 409)", "operations",
        "联动部门只能为本部门申请；开放中的行动一律拒绝（事不完，人不走）。",
        body=coordination.LeaveOperation(), body_required=False,
        path={"operation_id": OPERATION_ID, "department_id": _id("部门 (department), e.g. police")},
        errors=(400, 404, 409)),
    ("POST", "/api/enforcement/violations"): Doc(
        "记录违法行为 Record a violation (ladder, 首违不罚)", "enforcement",
        body=coordination.RecordViolation(), ok=201, errors=(400,)),
    ("GET", "/api/enforcement/parties/<string:kind>/<string:number>"): Doc(
        "当事人违法记录 A party's violation history", "enforcement",
        path={"kind": {"type": "string", "enum": list(PARTY_KINDS)},
              "number": {"type": "string", "minLength": 5, "maxLength": 40,
                         "description": "统一社会信用代码 / 身份证号 / 车牌，如 渝A12345"}},
        errors=(400,)),
    ("POST", "/api/enforcement/rectifications/<string:order_id>/check"): Doc(
        "整改复查 Follow-up check of a 限期整改 order", "enforcement",
        body=coordination.RectificationCheck(), path={"order_id": _id("整改通知编号 (order id)")},
        errors=(400, 404)),
    ("GET", "/api/scoring/summary"): Doc("事件计数 Event counts", "scoring"),
    ("GET", "/api/scoring/indicators"): Doc(
        "全部考核指标 Every indicator of a period", "scoring",
        "period：日 2026-11-23、周 2026-W48、月 2026-11、季 2026-Q4、年 2026 或区间 2026-11-01..2026-11-15；缺省为本月。",
        query=IndicatorsQuery(only=("period",), partial=True), errors=(400,)),
    ("GET", "/api/scoring/indicators/<string:level>/<string:key>"): Doc(
        "一个单位/网格/网格员/部门的指标 One entity's indicators", "scoring",
        "处置单位只能查看本单位（unit/<本单位>），联动部门只能查看本部门（partner/<本部门>）。",
        query=IndicatorsQuery(only=("period",), partial=True),
        path={"level": {"type": "string", "enum": list(LEVELS)}, "key": _id("单位、网格、网格员或部门编号")},
        errors=(400, 404)),
    ("GET", "/api/scoring/rankings"): Doc(
        "月度排名 Monthly ranking", "scoring", "公开 (public to every role).",
        query=RankingQuery(partial=True), errors=(400,)),
    ("GET", "/api/scoring/exposure"): Doc(
        "曝光台 The exposure list", "scoring", "最严重的超期案件，分页 (the worst overdue cases, paged).",
        query=ExposureQuery(partial=True), paged=True, errors=(400,)),
    ("GET", "/api/scoring/bulletins"): Doc("已生成的月度通报 Bulletins rendered so far", "scoring",
                                           query=PAGE, paged=True, errors=(400,)),
    ("GET", "/api/scoring/bulletins/<string:name>"): Doc(
        "下载通报 Download a bulletin (PDF or HTML)", "scoring",
        f"name = 月份[.pdf|.html]，如 2026-11.pdf（{BulletinQuery.__name__}）。",
        path={"name": {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])(\.(pdf|html))?$"}},
        errors=(400, 404), content_type="application/pdf"),
    # the web pages' data (services/gateway/web_api.py)
    ("GET", "/api/me"): Doc("当前账号 Who am I", "web", answer=Principal, roles=auth.ROLES),
    ("GET", "/api/grids"): Doc("网格地图 GeoJSON of the unit grids", "web"),
    ("GET", "/api/components/<string:object_code>"): Doc(
        "部件 A component object by its code (what its QR code opens)", "web",
        path={"object_code": {"type": "string", "description": "部件编码 (16 digits), e.g. 5001900101000001"}},
        errors=(404,)),
    ("GET", "/api/classes"): Doc("案件类别 The 部件/事件 taxonomy", "web"),
    ("POST", "/api/operations/<string:operation_id>/replies"): Doc(
        "部门回复 A department's Ack / Update / Error over HTTP (for departments without AMQP)", "coordination",
        "与 AMQP 相同的信封（docs/integration/departments.md）；发送方为账号所属部门。",
        path={"operation_id": OPERATION_ID}, ok=201, errors=(400, 403, 404), roles=("partner",)),
    ("GET", "/api/units"): Doc("单位 Streets, towns, parks, departments and operators (?type=; ?view=tree: 区—镇街—社区)", "web"),
    ("POST", "/api/media"): Doc(
        "上传照片 Upload a photo (JPEG, PNG, WebP ≤ 5 MB)", "web", ok=201, errors=(400,),
        upload=True, roles=auth.WRITERS),
    # intake's own endpoints (services/gateway/open311.py)
    ("GET", "/api/intake/reports/<string:report_id>"): Doc(
        "上报记录 A report as intake keeps it", "intake", path={"report_id": _id("上报编号")}, errors=(404,)),
    ("GET", "/api/intake/cases/<string:case_id>"): Doc(
        "受理侧案件 A case as intake keeps it", "intake", path={"case_id": CASE_ID}, errors=(404,)),
    ("GET", "/api/intake/disputes"): Doc("权属争议 Ownership disputes", "intake"),
    ("GET", "/api/intake/disputes/<string:dispute_id>"): Doc(
        "一个权属争议 A dispute", "intake", path={"dispute_id": _id("争议编号")}, errors=(404,)),
    ("POST", "/api/intake/disputes/<string:dispute_id>/decision"): Doc(
        "确权 Decide a dispute", "intake", body=DecisionSchema(), path={"dispute_id": _id("争议编号")},
        errors=(400, 404, 409)),
}
ACTIONS_ROUTE = ("POST", "/api/cases/<string:case_id>/actions/<string:action>")
ACTION_LABELS = {"accept": "签收 Accept", "return": "回退 Return", "request_extension": "申请延期 Ask for an extension",
                 "decide_extension": "延期审批 Decide an extension", "request_park": "申请挂账 Ask to park",
                 "decide_park": "挂账审批 Decide parking", "unpark": "解除挂账 Unpark",
                 "report_stage": "阶段报告 Report a stage done (e.g. 责令停工)",
                 "feedback": "处置反馈 Report the result", "verify": "核查 Verify on site",
                 "set_urgency": "调整紧急程度 Change urgency",
                 "request_check": "发起核实 Send an inspector to check a public report",
                 "check_report": "核实 Answer a check: 属实 / 不属实",
                 "cancel": "不立案（作废） Withdraw a case found 不属实"}
UNDOCUMENTED = {("GET,POST,PUT,PATCH,DELETE", "/api/<path:rest>")}      # the JSON 404/405 catch-all


# ------------------------------------------------------------------ routes from the code
def routes(service_cls):
    """(method, werkzeug url, function) of every nameko HTTP entrypoint of the service."""
    found = []
    for name in dir(service_cls):
        fn = getattr(service_cls, name, None)
        for entrypoint in getattr(fn, "nameko_entrypoints", ()) or ():
            if hasattr(entrypoint, "url") and hasattr(entrypoint, "method"):
                found.append((entrypoint.method, entrypoint.url, fn))
    return sorted(found, key=lambda item: (item[1], item[0]))


def native_routes(service_cls):
    """The routes this document covers: /health and every /api/ route but the catch-all."""
    return [(method, url, fn) for method, url, fn in routes(service_cls)
            if (url == "/health" or url.startswith("/api/")) and (method, url) not in UNDOCUMENTED]


def openapi_path(url: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", url)


def _roles_text(roles) -> str:
    if roles == PUBLIC:
        return "公开，无需登录 (public, no key)."
    if set(roles) >= set(auth.ROLES):
        return "所有已登录角色 (every authenticated role)."
    return "角色 Roles: " + ", ".join(f"{role}（{auth.ROLE_NAMES[role]}）" for role in roles) + "."


def _resolver(schema) -> str:
    cls = resolve_schema_cls(schema)
    name = cls.__name__
    return name[:-6] if name.endswith("Schema") and len(name) > 6 else name


def _operation(spec, plugin, doc: Doc, roles, *, action: str | None = None, body_name: str | None = None):
    parameters = [{"in": "path", "name": name, "required": True, "schema": schema,
                   **({"description": schema["description"]} if "description" in schema else {})}
                  for name, schema in doc.path.items()]
    if doc.query is not None:
        parameters += plugin.converter.schema2parameters(doc.query, location="query")
    if doc.paged:                             # the gateway's page bounds on every list
        parameters = [p for p in parameters if p["name"] not in ("page", "per_page")]
        parameters += plugin.converter.schema2parameters(PAGE, location="query")
    operation = {"summary": doc.summary, "tags": [doc.tag], "operationId": None,
                 "description": (doc.description + "\n\n" if doc.description else "") + _roles_text(roles),
                 "x-roles": list(roles), "parameters": parameters}
    if doc.body is not None:
        operation["requestBody"] = {"required": doc.body_required, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body_name}"}}}}
    elif doc.upload:
        operation["requestBody"] = {"required": True, "content": {
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}}}}
    if doc.paged:
        answer = {"$ref": "#/components/schemas/Page"}
    elif doc.answer is not None:
        answer = {"$ref": f"#/components/schemas/{doc.answer.__name__}"}
    else:
        answer = {"type": "object"}
    if doc.content_type == "application/json":
        content = {"application/json": {"schema": answer}}
    elif doc.content_type == "application/pdf":             # a bulletin: .pdf or .html
        content = {"application/pdf": {"schema": {"type": "string", "format": "binary"}},
                   "text/html": {"schema": {"type": "string"}}}
    else:
        content = {doc.content_type: {"schema": {"type": "string", "format": "binary"}}}
    responses = {str(doc.ok): {"description": "成功 (success)", "content": content}}
    codes = set(doc.errors) | {503}
    if roles != PUBLIC:
        codes.add(401)
        if not set(roles) >= set(auth.ROLES):
            codes.add(403)
    if doc.path or doc.body is not None or doc.upload:
        codes.add(400)
    for code in sorted(codes):
        if str(code) not in responses:
            responses[str(code)] = {"$ref": f"#/components/responses/E{code}"}
    responses["default"] = {"$ref": "#/components/responses/Error"}
    operation["responses"] = responses
    if roles == PUBLIC:
        operation["security"] = []
    return operation


def build(service_cls) -> dict:
    plugin = MarshmallowPlugin(schema_name_resolver=_resolver)
    spec = APISpec(
        title="大城管联合指挥平台 native REST API", version=VERSION, openapi_version="3.0.3", plugins=[plugin],
        info={"description": "认证：Authorization: Bearer <API key>（或 X-API-Key）。每个错误都是 "
                             "{\"error\": {status, code, message, fields?}}。列表分页：page、per_page（≤100），"
                             "答复含 items、total、page、per_page、pages。见 docs/api.md。"},
        servers=[{"url": "/"}],
        security=[{"bearerAuth": []}, {"apiKey": []}])
    spec.components.security_scheme("bearerAuth", {
        "type": "http", "scheme": "bearer", "bearerFormat": "dcg_<key id>_<secret>",
        "description": "python -m services.gateway.accounts create-admin --name 管理员"})
    spec.components.security_scheme("apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"})
    for schema_cls in (Error, Page, ReportAnswer, CaseAnswer, Principal):
        spec.components.schema(schema_cls.__name__, schema=schema_cls)
    spec.components.response("Error", {"description": "错误 (error)", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    for code, text in ERROR_CODES.items():
        spec.components.response(f"E{code}", {"description": text, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})

    paths: dict[str, dict] = {}
    registered: set[str] = set()

    def body_name(schema, suggestion):
        name = suggestion
        if name not in registered:
            spec.components.schema(name, schema=schema)
            registered.add(name)
        return name

    docs = all_docs(service_cls)
    for method, url, fn in native_routes(service_cls):
        roles = getattr(fn, "roles", None)
        if (method, url) == ACTIONS_ROUTE:
            from .cases_api import action_body_schema
            for name in ACTION_SCHEMAS:
                action = name.replace("_", "-")
                doc = Doc(ACTION_LABELS[name], "case actions",
                          "谁执行取自 API key（正文中的 actor、actor_unit、role 被忽略）；expected_version "
                          "为调用者看到的案件版本，过期返回 409。 (Who acts comes from the key.)",
                          body=action_body_schema(name), answer=CaseAnswer, errors=(400, 404, 409, 422),
                          path={"case_id": CASE_ID})
                operation = _operation(spec, plugin, doc, auth.CASE_ACTION_ROLES[name], action=name,
                                       body_name=body_name(doc.body, f"{ACTION_SCHEMAS[name].__name__}Body"))
                operation["operationId"] = f"case_{name}"
                paths.setdefault(f"/api/cases/{{case_id}}/actions/{action}", {})["post"] = operation
            continue
        doc = docs.get((method, url)) or _undocumented(url)
        access = getattr(fn, "access", None)
        if access is not None:
            doc = _without_identity(doc, set(access.identity) - set(access.named_by_command))
        if roles is None:
            roles = doc.roles if doc.roles is not None else PUBLIC
        name = None
        if doc.body is not None:
            name = body_name(doc.body, _resolver(doc.body) + ("Body" if _modified(doc.body) else ""))
        operation = _operation(spec, plugin, doc, roles, body_name=name)
        operation["operationId"] = fn.__name__
        if getattr(getattr(fn, "access", None), "identity", None):   # filled from the key (access.py)
            operation["x-identity"] = list(fn.access.identity)
        paths.setdefault(openapi_path(url), {})[method.lower()] = operation
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def all_docs(service_cls) -> dict:
    """``DOCS`` plus what the service's API mixins say about their own routes (``OPENAPI_DOCS``)."""
    docs = dict(DOCS)
    for klass in reversed(service_cls.__mro__):
        docs.update(klass.__dict__.get("OPENAPI_DOCS") or {})
    return docs


def _undocumented(url: str) -> Doc:
    """A route added without a ``DOCS`` / ``OPENAPI_DOCS`` entry is still listed (the document never
    fails to build); tests/integration/test_openapi.py fails until it is described."""
    names = re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", url)
    return Doc("（未编写说明 undocumented）", "undocumented", path={name: {"type": "string"} for name in names},
               errors=(404,))


def _without_identity(doc: Doc, identity) -> Doc:
    """The body without the top-level fields the gateway fills from the key (services/gateway/access.py)."""
    top = [name for name in identity if doc.body is not None and name in doc.body.fields]
    if not top:
        return doc
    body = type(doc.body)(exclude=tuple(doc.body.exclude or ()) + tuple(top), partial=doc.body.partial)
    return Doc(**{**doc.__dict__, "body": body})


def _modified(schema) -> bool:
    return bool(getattr(schema, "partial", None) or getattr(schema, "exclude", None) or getattr(schema, "only", None))


@functools.lru_cache(maxsize=1)
def document() -> dict:
    from .service import GatewayService
    return build(GatewayService)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.gateway.openapi", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write to this file (default: stdout)")
    args = parser.parse_args(argv)
    text = json.dumps(document(), ensure_ascii=False, indent=2) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
