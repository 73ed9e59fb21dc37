"""HTTP helpers shared by the gateway's API modules: JSON answers, consistent errors, RPC calls
with a timeout, request bodies validated by marshmallow, pagination, and ``endpoint``: the
decorator that authenticates the caller, checks its role and turns every failure into the one
JSON error shape.

Every error, everywhere in the native API::

    {"error": {"status": 404, "code": "not_found", "message": "…中文 (English)", "fields": {…}?}}

``fields`` is marshmallow's field-level detail (nested like the input). Some answers add
context (``current_version`` on a 409, ``outstanding`` departments …).

Services raise the error kinds of shared/contracts/errors.py; nameko's remote-error registry
(shared/contracts/remote.py) makes the RPC proxy raise the same class here, and ``ERRORS`` — the
one table — gives each its HTTP status. The gateway's own checks raise the same kinds (or
auth's, listed in the table too).
"""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import time

import amqp.exceptions
import eventlet
from kombu.exceptions import OperationalError
from marshmallow import ValidationError, fields, validate
from nameko.exceptions import RemoteError, UnknownService
from werkzeug.wrappers import Response

from shared.contracts import errors, remote  # noqa: F401  (remote: the RPC error registry)
from shared.contracts.base import Tolerant

from .access import Access, Caller
from .auth import (ROLES, Forbidden, Invalid, NotFound, RateLimiter, SharedRateLimiter,
                   Unauthorized, forbidden_role, take_token)

log = logging.getLogger(__name__)

RPC_TIMEOUT = 10
# the broker closed the connection under a call, or refuses new ones
BROKER_ERRORS = (OperationalError, OSError, amqp.exceptions.ConnectionError,
                 amqp.exceptions.RecoverableConnectionError)
PUBLIC = ()                      # endpoint(PUBLIC): no key needed
ANY = ROLES                      # every authenticated role
CODES = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "refused",
         429: "rate_limited", 500: "internal_error", 503: "unavailable"}
MAX_PER_PAGE = 100


def json_response(payload, status=200, headers=None):
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                    mimetype="application/json", headers=headers)


def error_response(status, message, fields=None, code=None, headers=None, **extra):
    """Every error: {"error": {"status", "code", "message", "fields"?}} with field-level detail."""
    body = {"error": {"status": status, "code": code or CODES.get(status, "error"), "message": message}}
    if fields:
        body["error"]["fields"] = fields
    body["error"].update(extra)
    return json_response(body, status, headers)


class BadRequest(errors.Invalid):
    """The gateway's own 400 (bad JSON, bad query): the same kind as a service's Invalid."""


class RateLimited(Exception):
    def __init__(self, retry_after: float):
        super().__init__("请求过于频繁，请稍后再试 (too many requests)")
        self.retry_after = retry_after


MAX_DEPTH = 32                   # nesting of objects and arrays in a request body
MAX_STRING = 20000               # characters in one string (key or value)


def parse_json(raw) -> object:
    """A request body as JSON, bounded: valid UTF-8, at most MAX_DEPTH levels of nesting and
    MAX_STRING characters a string (the size itself is bounded at the door, doors.py).
    Raises BadRequest (field ``_body``) for anything else."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        data = json.loads(text or "null")
    except UnicodeDecodeError:
        raise BadRequest("请求体不是 UTF-8 编码 (the body is not UTF-8)", {"_body": ["应为 UTF-8 编码的 JSON"]}) from None
    except RecursionError:
        raise BadRequest(f"请求体嵌套过深 (the body is nested too deeply: at most {MAX_DEPTH} levels)",
                         {"_body": [f"嵌套不能超过 {MAX_DEPTH} 层"]}) from None
    except ValueError as exc:
        raise BadRequest(f"请求体不是合法 JSON (the body is not valid JSON): {str(exc)[:200]}",
                         {"_body": ["应为合法 JSON"]}) from None
    stack = [(data, 1)]
    while stack:                                     # iterative: no recursion on hostile input
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise BadRequest(f"请求体嵌套过深 (the body is nested too deeply: at most {MAX_DEPTH} levels)",
                                 {"_body": [f"嵌套不能超过 {MAX_DEPTH} 层"]})
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and len(key) > MAX_STRING:
                    raise BadRequest("请求体中的字段名太长 (a key is too long)", {"_body": ["字段名太长"]})
                stack.append((item, depth + 1))
        elif isinstance(value, str) and len(value) > MAX_STRING:
            raise BadRequest(f"请求体中的文字太长 (a string is longer than {MAX_STRING} characters)",
                             {"_body": [f"单个文字字段不能超过 {MAX_STRING} 字"]})
    return data


def json_body(request) -> dict:
    data = parse_json(request.get_data())
    if not isinstance(data, dict):
        raise BadRequest("请求体必须是 JSON 对象 (the body must be a JSON object)", {"_body": ["应为 JSON 对象"]})
    return data


def load(schema, data):
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise BadRequest("输入有误，请检查标出的字段 (invalid input)", exc.messages) from exc


# The one table: every error kind (a service's, raised again by the RPC proxy, or the gateway's
# own) → its HTTP status; the body is always error_response's shape, ``code`` the kind's code.
ERRORS = {**errors.HTTP_STATUS, Forbidden: 403, NotFound: 404, Invalid: 400}


def status_of(exc) -> int:
    return next(status for kind, status in ERRORS.items() if isinstance(exc, kind))


def error_answer(exc):
    """Any error in ERRORS as the one JSON error shape."""
    status = status_of(exc)
    details = getattr(exc, "details", None) or {}
    return error_response(status, getattr(exc, "message", None) or str(exc), getattr(exc, "fields", None),
                          code=getattr(exc, "code", None), **{k: v for k, v in details.items()
                                                              if k not in ("status", "code", "message")})


def ok_response(result: dict, status: int = 200):
    """A service's success answer as JSON, without its success marker (``ok``, ``status: ok``);
    ``created: false`` (an idempotent repeat) answers 200 instead of ``status``."""
    body = {key: value for key, value in result.items()
            if key != "ok" and not (key == "status" and value == "ok")}
    return json_response(body, status if result.get("created", True) else 200)


def call(proxy, method, *args, **kwargs):
    """An RPC to another service, with a timeout (nameko 2's RpcProxy has none)."""
    with eventlet.Timeout(RPC_TIMEOUT):
        return getattr(proxy, method)(*args, **kwargs)


PATH_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")


def path_id(value: str, label: str) -> str:
    """An id from the URL (case, operation, order …): anything that cannot be an id is a 404."""
    if not PATH_ID.match(value or ""):
        raise NotFound(f"没有{label} {str(value)[:64]} (not found)")
    return value


# ------------------------------------------------------------------ pagination
class PageQuery(Tolerant):
    """``page`` (from 1) and ``per_page`` (1–100, default 20) on every list."""
    page = fields.Integer(load_default=1, strict=False, validate=validate.Range(min=1, max=100000),
                          metadata={"description": "页码，从 1 开始 (page number, from 1)"})
    per_page = fields.Integer(load_default=20, strict=False, validate=validate.Range(min=1, max=MAX_PER_PAGE),
                              metadata={"description": "每页条数，1–100 (items per page)"})


def page_args(request, **aliases) -> dict:
    """page / per_page from the query string, validated (400 with field detail)."""
    data = {key: request.args.get(key) for key in ("page", "per_page") if request.args.get(key) not in (None, "")}
    for alias, target in aliases.items():          # e.g. limit → per_page (older clients)
        if target not in data and request.args.get(alias) not in (None, ""):
            data[target] = request.args.get(alias)
    return load(PageQuery(), data)


def page_of(items: list, page: int, per_page: int, legacy_key: str | None = None) -> dict:
    """One page of a list held in full: {items, total, page, per_page, pages}."""
    total = len(items)
    chunk = items[(page - 1) * per_page: page * per_page]
    body = {"items": chunk, "total": total, "page": page, "per_page": per_page,
            "pages": math.ceil(total / per_page) if per_page else 0}
    if legacy_key:                                  # the name older clients read (same list)
        body[legacy_key] = chunk
    return body


# ------------------------------------------------------------------ rate limits
_limiters: dict[tuple, RateLimiter] = {}


def _setting(config, name, default):
    value = config.get(name) if hasattr(config, "get") else None
    if value in (None, ""):
        value = os.environ.get(name, default)
    return float(value)


def rate_limit(config, client: str, kind: str = "citizen", store=None) -> None:
    """Raise RateLimited when ``client`` has used up its bucket (``<KIND>_RATE_PER_MINUTE``,
    ``<KIND>_BURST`` from the config or the environment; citizens: 6 a minute, bursts of 5).
    ``store``: the collection that keeps the buckets, shared by every gateway instance (without
    it the bucket lives in this process only)."""
    per_minute = _setting(config, f"{kind.upper()}_RATE_PER_MINUTE", 6)
    burst = _setting(config, f"{kind.upper()}_BURST", 5)
    if store is not None:
        limiter = SharedRateLimiter(store, per_minute / 60.0, int(burst))
    else:
        limiter = _limiters.setdefault((kind, per_minute, burst), RateLimiter(per_minute / 60.0, int(burst)))
    allowed, retry_after = limiter.allow(f"{kind}:{client}")
    if not allowed:
        raise RateLimited(retry_after)


def _fail_bucket(config):
    per_minute = _setting(config, "AUTH_FAIL_RATE_PER_MINUTE", 10)
    burst = _setting(config, "AUTH_FAIL_BURST", 20)
    return per_minute / 60.0, int(burst)


_failed_from: dict[str, float] = {}      # addresses this process saw fail lately (skip the look-up otherwise)


def key_failures_exhausted(config, address: str, store) -> float | None:
    """Seconds to wait when ``address`` has used up its failed-key attempts (``AUTH_FAIL_RATE_PER_MINUTE``,
    ``AUTH_FAIL_BURST``: 10 a minute, bursts of 20), else None. Only looks: nothing is spent."""
    rate, burst = _fail_bucket(config)
    if time.time() - _failed_from.get(address, 0.0) > burst / rate + 60:
        _failed_from.pop(address, None)
        return None
    doc = store.find_one({"_id": f"authfail:{address}"}) if store is not None else None
    if doc is None:
        return None
    allowed, _, retry_after = take_token(doc["tokens"], doc["at"], time.time(), rate, burst)
    return None if allowed else retry_after


def count_key_failure(config, address: str, store) -> None:
    """One failed key attempt from ``address``; RateLimited once its bucket is empty."""
    rate, burst = _fail_bucket(config)
    if len(_failed_from) > 100000:
        _failed_from.clear()
    _failed_from[address] = time.time()
    limiter = SharedRateLimiter(store, rate, burst) if store is not None else \
        _limiters.setdefault(("authfail", rate, burst), RateLimiter(rate, burst))
    allowed, retry_after = limiter.allow(f"authfail:{address}")
    if not allowed:
        raise RateLimited(retry_after)


def retry_after_seconds(exc: RateLimited) -> int:
    return max(1, math.ceil(exc.retry_after))


# ------------------------------------------------------------------ the endpoint decorator
def endpoint(roles=ANY, *, write=False):
    """Wrap an HTTP entrypoint: authenticate (401), check the role (403), then call
    ``fn(self, request, principal, **path_values)``; every exception becomes the JSON error.

    ``roles``: an :class:`~services.gateway.access.Access` declaration (what the endpoint acts
    on, the relation each role needs, whether it writes): the handler then gets a ``Caller``
    whose ``check(obj)`` applies the relation (services/gateway/access.py). Or, for routes
    without an object, a tuple of roles (``PUBLIC`` = no key needed; the principal is then None).
    ``write``: the endpoint changes something — the leader's read-only accounts get 403.
    The roles are kept on the function (``.roles``, ``.access``) for the OpenAPI document."""
    declared = roles if isinstance(roles, Access) else None
    if declared is not None:
        roles, write = (PUBLIC if declared.public else declared.roles), declared.write
    roles = tuple(roles)
    if write:
        roles = tuple(role for role in roles if role != "leader")

    def decorate(fn):
        @functools.wraps(fn)
        def handler(self, request, **path_values):
            try:
                principal = None
                if roles != PUBLIC:
                    principal = self.principal(request)
                    if principal.role not in roles:
                        raise forbidden_role(principal)
                    if declared is not None:
                        principal = Caller(principal, declared)
                return fn(self, request, principal, **path_values)
            except Unauthorized as exc:
                return error_response(401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="dcg"'})
            except tuple(ERRORS) as exc:
                return error_answer(exc)
            except RateLimited as exc:
                seconds = max(1, math.ceil(exc.retry_after))
                return error_response(429, str(exc), headers={"Retry-After": str(seconds)},
                                      retry_after=seconds)
            except eventlet.Timeout:
                return error_response(503, "服务暂时无法响应，请稍后重试 (a service did not answer in time)")
            except BROKER_ERRORS as exc:
                log.warning("broker unreachable in %s: %s", fn.__name__, exc)
                return error_response(503, "消息服务暂时不可用，请稍后重试 (the message broker is unreachable)")
            except UnknownService as exc:
                return error_response(503, f"服务未运行，请稍后重试 (service not running: {exc})")
            except RemoteError as exc:
                log.error("RPC failed in %s: %s", fn.__name__, exc)
                return error_response(500, f"服务内部错误 (internal error in a service: {exc.exc_type})")
            except Exception:  # noqa: BLE001 - never nameko's plain-text 500 with internals
                log.exception("unexpected error in %s", fn.__name__)
                return error_response(500, "网关内部错误 (internal error)")

        handler.roles = roles
        handler.write = write
        handler.access = declared
        return handler
    return decorate
