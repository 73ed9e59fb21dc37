"""HTTP helpers shared by the gateway's API modules: JSON answers, consistent errors, RPC calls
with a timeout, request bodies validated by marshmallow."""
from __future__ import annotations

import json

import eventlet
from marshmallow import ValidationError
from werkzeug.wrappers import Response

RPC_TIMEOUT = 10


def json_response(payload, status=200, headers=None):
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status,
                    mimetype="application/json", headers=headers)


def error_response(status, message, fields=None):
    """Every error: {"error": {"status", "message", "fields"?}} with field-level detail."""
    body = {"error": {"status": status, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return json_response(body, status)


class BadRequest(Exception):
    def __init__(self, message, fields=None):
        super().__init__(message)
        self.message, self.fields = message, fields


def json_body(request) -> dict:
    try:
        data = json.loads(request.get_data(as_text=True) or "null")
    except json.JSONDecodeError as exc:
        raise BadRequest(f"请求体不是合法 JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("请求体必须是 JSON 对象")
    return data


def load(schema, data):
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise BadRequest("输入有误，请检查标出的字段", exc.messages) from exc


def call(proxy, method, *args, **kwargs):
    """An RPC to another service, with a timeout (nameko 2's RpcProxy has none)."""
    with eventlet.Timeout(RPC_TIMEOUT):
        return getattr(proxy, method)(*args, **kwargs)
