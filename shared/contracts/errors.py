"""The one error model: what a service raises when it cannot do what it was asked.

Five kinds, each with its code (the ``code`` of the HTTP error shape, docs/api.md):

============  ======  ==============================================================
kind          HTTP    meaning
============  ======  ==============================================================
Invalid       400     bad input; ``fields`` says which field and why (marshmallow's
                      nested messages)
Forbidden     403     this actor may not do this
NotFound      404     no such case, operation, order, dispute …
Conflict      409     the thing changed since the caller read it, or the same key
                      was used for something else (``current_version`` …)
Refused       422     understood and allowed, but not in the current state
============  ======  ==============================================================

A service raises them from its RPC entrypoints; nameko sends ``exc.args`` to the caller, and
``shared.contracts.remote`` registers these classes so the caller's RPC proxy raises the same
class again (not a ``RemoteError``). The arguments travel as (message, JSON of the details), so
numbers stay numbers. Pure: no nameko, no I/O (rules modules may raise them too).
"""
from __future__ import annotations

import functools
import json


class ServiceError(Exception):
    """Base of the five kinds: ``message`` (Chinese, English in brackets), ``fields``
    (field-level detail) and ``details`` (context such as ``current_version``)."""

    code = "error"
    default_message = "请求失败 (request failed)"

    def __init__(self, message: str | None = None, fields: dict | str | None = None, **details):
        if isinstance(fields, str):                 # the wire form: nameko hands back exc.args
            try:
                payload = json.loads(fields)
            except ValueError:
                payload = {"fields": {"_": [fields]}}
            fields = payload.pop("fields", None)
            details = {**payload, **details}
        self.message = message or self.default_message
        self.fields = fields or None
        self.details = details
        super().__init__(self.message, json.dumps({"fields": self.fields, **details},
                                                  ensure_ascii=False, default=str))

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict:
        """The error's content (without the HTTP status, which the gateway's table gives)."""
        body = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        body.update(self.details)
        return body


class Invalid(ServiceError):
    code = "invalid"
    default_message = "输入有误，请检查标出的字段 (invalid input)"


class Forbidden(ServiceError):
    code = "forbidden"
    default_message = "无权执行此操作 (not allowed for this actor)"


class NotFound(ServiceError):
    code = "not_found"
    default_message = "没有找到 (not found)"


class Conflict(ServiceError):
    code = "conflict"
    default_message = "已被他人更新，请刷新后重试 (conflict)"


class Refused(ServiceError):
    code = "refused"
    default_message = "当前状态不允许此操作 (not allowed in the current state)"


KINDS = {cls.code: cls for cls in (Invalid, Forbidden, NotFound, Conflict, Refused)}

# How each kind is answered over HTTP: the table the gateway's error handler uses
# (services/gateway/http.py), and docs/api.md shows.
HTTP_STATUS = {Invalid: 400, Forbidden: 403, NotFound: 404, Conflict: 409, Refused: 422}


def for_status(status: int) -> type[ServiceError]:
    """The kind a service that wrote its refusals with HTTP numbers means (coordination and
    participation's ``refused(409, …)``): the same table read backwards."""
    for kind, number in HTTP_STATUS.items():
        if number == status:
            return kind
    return Refused if 400 <= int(status) < 500 else ServiceError


def raise_failure(answer):
    """An answer written as ``{"status": "<kind>", "reason"?, "errors"?, …}`` (``invalid``,
    ``forbidden``, ``not_found``, ``conflict``, ``refused``) is raised as that kind, the rest of
    the answer as its details; any other answer is returned as it is."""
    if isinstance(answer, dict) and answer.get("status") in KINDS:
        details = {key: value for key, value in answer.items() if key not in ("status", "reason", "errors")}
        raise KINDS[answer["status"]](answer.get("reason"), answer.get("errors"), **details)
    return answer


def raise_failures(method):
    """Decorate an RPC entrypoint (above ``@rpc``) whose body answers failures as dicts (see
    :func:`raise_failure`): the caller gets the raised kind, never a failure dict."""
    @functools.wraps(method)
    def entrypoint(*args, **kwargs):
        return raise_failure(method(*args, **kwargs))
    return entrypoint


def invalid(messages, message: str | None = None) -> Invalid:
    """From marshmallow's ``ValidationError.messages``."""
    return Invalid(message, messages if isinstance(messages, dict) else {"_schema": messages})
