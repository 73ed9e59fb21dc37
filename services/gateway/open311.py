"""Open311 GeoReport v2 under /open311/v2/ (and intake's native endpoints under /api/intake/).

Every answer of /open311/ is in the format its suffix asks for (``.json`` or ``.xml``); every
error is the standard error array (``[{"code", "description"}]`` / ``<errors><error>…``) with
400, 403, 404 (405, 409, 503 where those apply). The parsing, mapping and rendering are pure
(services/intake/open311.py); the state is intake's, reached over RPC.

    GET  /open311/discovery.{fmt}  and  /open311/v2/discovery.{fmt}
    GET  /open311/v2/services.{fmt}
    GET  /open311/v2/services/{service_code}.{fmt}
    POST /open311/v2/requests.{fmt}                     api_key required
    GET  /open311/v2/requests.{fmt}                     filters + page/page_size
    GET  /open311/v2/requests/{service_request_id}.{fmt}
    GET  /open311/v2/tokens/{token}.{fmt}
    POST /open311/v2/requests/{id}/satisfaction.{fmt}   回访 (extension; api_key required)
"""
from __future__ import annotations

import functools
import json
import logging
import re
import secrets

import eventlet
from marshmallow import ValidationError
from nameko.web.handlers import http
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from shared.contracts import open311 as o311
from shared.contracts.errors import raise_failure
from shared import storage
from shared.refdata import load_district

from .access import DECIDE, INTAKE_READ
from .auth import Unauthorized, authenticate, redact_contacts
from .doors import public_base_url
from .http import (BadRequest, RateLimited, call, count_key_failure, endpoint, error_response, json_body,
                   json_response, key_failures_exhausted, parse_json, rate_limit, retry_after_seconds)

log = logging.getLogger(__name__)

FMT = "<any(json,xml):fmt>"
MAX_BODY = 64 * 1024
CHANGESET = "2026-11-23T00:00:00+08:00"
_KNOWN = re.compile(r"^(discovery\.|v2/(discovery|services|requests)\.|v2/(services|requests|tokens)/[^/]+\."
                    r"|v2/requests/[^/]+/satisfaction\.)(json|xml)$")
_MULTI = ("service_request_id", "service_code", "status")


def open311_response(payload, fmt: str, root: str, status: int = 200, headers=None) -> Response:
    if fmt == "xml":
        body = o311.render_xml(root, payload)
    else:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Response(body, status=status, content_type=o311.FORMATS.get(fmt, o311.FORMATS["json"]),
                    headers=headers)


def open311_errors(error: o311.Open311Error, fmt: str) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if getattr(error, "retry_after", None) else None
    return open311_response(error.errors, fmt, "errors", error.status, headers)


def too_many(exc: RateLimited) -> o311.Open311Error:
    """A 429 in the Open311 error array, with Retry-After."""
    seconds = retry_after_seconds(exc)
    error = o311.Open311Error(429, f"请求过于频繁，请 {seconds} 秒后再试 (too many requests)")
    error.retry_after = seconds
    return error


def _fmt_of(path: str) -> str:
    return "xml" if path.endswith(".xml") else "json"


def _limit(request):
    request.max_content_length = MAX_BODY
    request.max_form_memory_size = MAX_BODY


def _body_fields(request) -> dict:
    """Form fields (urlencoded or multipart, as the spec says) or a JSON object; the query
    string's fields count too; the body wins. An api_key in the query string is refused (400):
    URLs end up in logs, proxies and browser histories."""
    if "api_key" in request.args:
        raise o311.Open311Error(400, "api_key 不能放在网址中，请放在请求体或 X-Api-Key 请求头中 "
                                     "(api_key in the query string is refused: send it in the body or the "
                                     "X-Api-Key header)")
    _limit(request)
    try:
        if request.mimetype == "application/json":
            try:
                data = parse_json(request.get_data() or b"{}")
            except BadRequest as exc:
                raise o311.Open311Error(400, exc.message) from None
            if not isinstance(data, dict):
                raise o311.Open311Error(400, "请求体必须是 JSON 对象或表单 (a form or a JSON object)")
            pairs = [(key, [value] if not isinstance(value, list) else value)
                     for key, value in data.items() if key != "attribute"]
            fields = o311.form_to_dict([(k, [v for v in vs if isinstance(v, str)]) for k, vs in pairs])
            for key, value in data.items():          # JSON keeps numbers as numbers
                if key != "attribute" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    fields[key] = value
            if isinstance(data.get("attribute"), dict):
                fields["attribute"] = data["attribute"]
            elif "attribute" in data:
                raise o311.Open311Error(400, "attribute: 应为对象 {code: value}")
        else:
            fields = o311.form_to_dict(list(request.form.lists()))
    except HTTPException as exc:   # sizes are refused at the door (doors.py): here, a malformed body
        raise o311.Open311Error(400, f"请求无法解析 (bad request body): {exc.description}") from None
    query = o311.form_to_dict(list(request.args.lists()))
    for key, value in query.items():
        fields.setdefault(key, value)
    return fields


def never_plain_500(fn):
    """Whatever fails inside an Open311 entrypoint is a 500 in the error array, without internals
    (nameko's own answer is a plain-text 500 carrying the exception text)."""
    @functools.wraps(fn)
    def handler(self, request, *args, **kwargs):
        try:
            return fn(self, request, *args, **kwargs)
        except Exception:  # noqa: BLE001
            log.exception("unexpected error in %s", fn.__name__)
            return open311_errors(o311.Open311Error(500, "服务内部错误 (internal error)"),
                                  kwargs.get("fmt") or _fmt_of(request.path))
    return handler


class Open311Api:
    """HTTP entrypoints mixed into GatewayService (services/gateway/service.py)."""

    def _intake_rpc(self, method, *args):
        try:
            return call(self.intake, method, *args)
        except eventlet.Timeout:
            raise o311.Open311Error(503, "受理服务暂时无法响应，请稍后重试 (intake did not answer)") from None
        except Exception as exc:  # noqa: BLE001 - a remote error: say so, never a bare 500
            log.exception("intake RPC %s failed", method)
            raise o311.Open311Error(503, f"受理服务出错，请稍后重试 (intake error: {type(exc).__name__})") from None

    def _verified_app(self, request, fields) -> dict:
        """The app behind the request's api_key (body or X-Api-Key header): a gateway account
        (an app is a ``citizen`` account; any role but the read-only leader may post), verified
        here — the one key store. Returns ``{"key_id", "name", "role"}``, what intake is told.
        403 for a missing or wrong key; failed keys are counted per client address and, once its
        bucket is empty, every key from there gets 429 before it is looked at."""
        api_key = fields.get("api_key") or request.headers.get("X-Api-Key")
        address = request.remote_addr or "unknown"
        try:
            wait = key_failures_exhausted(self.config, address, self.db.rate_limits)
            if wait is not None:
                raise RateLimited(wait)
            try:
                app = authenticate(self.db.accounts, api_key if isinstance(api_key, str) else None)
            except Unauthorized:
                count_key_failure(self.config, address, self.db.rate_limits)
                raise o311.Open311Error(403, "api_key 无效或缺失 (invalid or missing api_key)") from None
        except RateLimited as exc:
            raise too_many(exc) from None
        if app.read_only:
            raise o311.Open311Error(403, "领导账号为只读，不能提交 (leader accounts are read-only)")
        return {"key_id": app.key_id, "name": app.name, "role": app.role}

    def _jurisdiction(self, request):
        o311.check_jurisdiction(request.args.get("jurisdiction_id") or None, load_district())

    # ------------------------------------------------------------------ discovery, services
    @http("GET", f"/open311/discovery.{FMT}")
    @never_plain_500
    def open311_discovery_root(self, request, fmt):
        return self.open311_discovery(request, fmt)

    @http("GET", f"/open311/v2/discovery.{FMT}")
    @never_plain_500
    def open311_discovery(self, request, fmt):
        payload = o311.discovery(public_base_url(self.config) + "/", load_district(), CHANGESET)
        return open311_response(payload, fmt, "discovery")

    @http("GET", f"/open311/v2/services.{FMT}")
    @never_plain_500
    def open311_services(self, request, fmt):
        try:
            self._jurisdiction(request)
            return open311_response(self._intake_rpc("open311_services"), fmt, "services")
        except o311.Open311Error as exc:
            return open311_errors(exc, fmt)

    @http("GET", f"/open311/v2/services/<string:code>.{FMT}")
    @never_plain_500
    def open311_service_definition(self, request, code, fmt):
        try:
            self._jurisdiction(request)
            answer = self._intake_rpc("open311_service_definition", code[:64])
            if answer["status"] != 200:
                raise o311.Open311Error(answer["status"], *[e["description"] for e in answer["errors"]])
            return open311_response(answer["body"], fmt, "service_definition")
        except o311.Open311Error as exc:
            return open311_errors(exc, fmt)

    # ------------------------------------------------------------------ requests
    @http("POST", f"/open311/v2/requests.{FMT}")
    @never_plain_500
    def open311_post_request(self, request, fmt):
        token = f"tok-{secrets.token_hex(12)}"
        try:
            fields = _body_fields(request)
            app = self._verified_app(request, fields)
            fields.pop("api_key", None)
            try:   # a bucket per verified account, never per claimed key
                rate_limit(self.config, f"app:{app['key_id']}", "open311", store=self.db.rate_limits)
            except RateLimited as exc:
                raise too_many(exc) from None
            try:
                o311.Open311RequestSchema().load(dict(fields, api_key=None))   # field-level 400s here
            except ValidationError as exc:
                raise o311.Open311Error(400, *o311.errors_from_validation(exc.messages)) from None
            try:
                answer = call(self.intake, "open311_submit", app, fields, token)
            except eventlet.Timeout:
                # Not lost: the request waits in intake's queue. Answer with a token (batch mode).
                return open311_response([{"token": token, "service_notice":
                                          "已收到，正在受理；请稍后用 tokens/{token} 查询编号"}],
                                        fmt, "service_requests", 202)
            except Exception as exc:  # noqa: BLE001
                log.exception("intake RPC open311_submit failed")
                raise o311.Open311Error(503, f"受理服务出错，请稍后重试 ({type(exc).__name__})") from None
            if answer["status"] != 201:
                raise o311.Open311Error(answer["status"], *[e["description"] for e in answer["errors"]])
            return open311_response(answer["body"], fmt, "service_requests", 201)
        except o311.Open311Error as exc:
            return open311_errors(exc, fmt)

    @http("GET", f"/open311/v2/requests.{FMT}")
    @never_plain_500
    def open311_get_requests(self, request, fmt):
        try:
            self._jurisdiction(request)
            query = {}
            for key, values in request.args.lists():
                query[key] = ",".join(values) if key in _MULTI else values[0]
            try:
                loaded = o311.Open311QuerySchema().load(query)
            except ValidationError as exc:
                raise o311.Open311Error(400, *o311.errors_from_validation(exc.messages)) from None
            filters = o311.query_filters(loaded, storage.now_utc())
            filters["start"], filters["end"] = filters["start"].isoformat(), filters["end"].isoformat()
            result = self._intake_rpc("open311_requests", filters)
            headers = {"X-Total-Count": str(result["total"]), "X-Page": str(filters["page"]),
                       "X-Page-Size": str(filters["page_size"])}
            return open311_response(result["items"], fmt, "service_requests", 200, headers)
        except o311.Open311Error as exc:
            return open311_errors(exc, fmt)

    @http("GET", f"/open311/v2/requests/<string:request_id>.{FMT}")
    @never_plain_500
    def open311_get_request(self, request, request_id, fmt):
        try:
            self._jurisdiction(request)
            view = self._intake_rpc("open311_request", request_id[:200])
            if view is None:
                raise o311.Open311Error(404, f"service_request_id {request_id[:200]} 不存在 (not found)")
            return open311_response([view], fmt, "service_requests")
        except o311.Open311Error as exc:
            return open311_errors(exc, fmt)

    @http("GET", f"/open311/v2/tokens/<string:token>.{FMT}")
    @never_plain_500
    def open311_get_token(self, request, token, fmt):
        try:
            self._jurisdiction(request)
            found = self._intake_rpc("open311_token", token[:100])
            if found is None:
                raise o311.Open311Error(404, f"token {token[:100]} 不存在或尚未处理 (not found yet)")
            return open311_response([found], fmt, "service_requests")
        except o311.Open311Error as exc:
            return open311_errors(exc, fmt)

    @http("POST", f"/open311/v2/requests/<string:request_id>/satisfaction.{FMT}")
    @never_plain_500
    def open311_post_satisfaction(self, request, request_id, fmt):
        """回访 (extension): responded / resolved / satisfied (true/false), comment."""
        try:
            fields = _body_fields(request)
            app = self._verified_app(request, fields)
            fields.pop("api_key", None)
            answer = self._intake_rpc("record_satisfaction", request_id[:200], fields, app)
            status = answer["status"]
            if status == "forbidden":                 # only the key that filed the request
                raise o311.Open311Error(403, answer["reason"])
            if status == "invalid":
                raise o311.Open311Error(400, *o311.errors_from_validation(answer["errors"]))
            if status == "not_found":
                raise o311.Open311Error(404, f"service_request_id {request_id[:200]} 不存在 (not found)")
            if status == "conflict":
                raise o311.Open311Error(409, answer["reason"])
            record = answer["satisfaction"]
            return open311_response([{
                "service_request_id": request_id, "case_id": answer["case_id"],
                "responded": record["responded"], "resolved": record["resolved"],
                "satisfied": record["satisfied"], "recorded_datetime": o311.w3(record["recorded_at"]),
            }], fmt, "satisfactions", 201)
        except o311.Open311Error as exc:
            return open311_errors(exc, fmt)

    @http("GET,POST,PUT,PATCH,DELETE", "/open311/<path:rest>")
    @never_plain_500
    def open311_not_found(self, request, rest):
        fmt = _fmt_of(rest)
        if _KNOWN.match(rest):
            return open311_errors(o311.Open311Error(405, f"{request.method} 不适用于 /open311/{rest[:200]} "
                                                         f"(method not allowed)"), fmt)
        return open311_errors(o311.Open311Error(
            404, f"/open311/{rest[:200]} 不存在；格式后缀须为 .json 或 .xml (not found)"), fmt)

    # ------------------------------------------------------------------ intake's native endpoints
    @http("GET", "/api/intake/reports/<string:report_id>")
    @endpoint(INTAKE_READ)
    def intake_get_report(self, request, principal, report_id):
        report = call(self.intake, "get_report", report_id[:200])
        if report is None:
            return error_response(404, f"没有上报 {report_id[:200]}")
        return json_response(redact_contacts(report, principal))

    @http("GET", "/api/intake/cases/<string:case_id>")
    @endpoint(INTAKE_READ)
    def intake_get_case_view(self, request, principal, case_id):
        case = call(self.intake, "case_view", case_id[:200])
        if case is None:
            return error_response(404, f"没有案件 {case_id[:200]}")
        return json_response(redact_contacts(case, principal))

    @http("GET", "/api/intake/disputes")
    @endpoint(INTAKE_READ)
    def intake_list_disputes(self, request, principal):
        return json_response(call(self.intake, "list_disputes", request.args.get("state")))

    @http("GET", "/api/intake/disputes/<string:dispute_id>")
    @endpoint(INTAKE_READ)
    def intake_get_dispute(self, request, principal, dispute_id):
        dispute = call(self.intake, "get_dispute", dispute_id[:200])
        if dispute is None:
            return error_response(404, f"没有权属争议 {dispute_id[:200]}")
        return json_response(dispute)

    @http("POST", "/api/intake/disputes/<string:dispute_id>/decision")
    @endpoint(DECIDE)
    def intake_decide_dispute(self, request, principal, dispute_id):
        try:
            data = json_body(request)
        except BadRequest as exc:
            return error_response(400, exc.message, exc.fields)
        data["decided_by"] = principal.name            # identity from the key, never the body
        answer = call(self.intake, "decide_ownership", dispute_id[:200], data)
        return json_response(raise_failure(answer)["dispute"])      # a failure → http.ERRORS
