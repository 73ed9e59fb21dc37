"""The department contract: an EDXL-DE / CAP style envelope over AMQP (docs/integration/departments.md).

Directions and kinds:

- platform → department (exchange ``departments.requests``, routing key ``<dept>.<kind>``, the
  department's inbox ``dept.<dept>.inbox``): ``Request`` (one per department per operation; sent
  again as a re-notification when unanswered), ``Update`` (changed facts, a check-in reminder,
  or the news that the lead closed the operation), ``Cancel`` (the department is released) and
  ``Error`` (the platform refused one of the department's messages, with the reason);
- department → platform (exchange ``departments.replies``, routing key ``<dept>.<kind>``):
  ``Ack`` (accept or reject, with a reason), ``Update`` (check-in on site 报到, actions, the
  final disposition) and ``Error`` (the department cannot process a message).

Every reply names the message it answers in ``in_reply_to`` and the operation in
``incident_id``; every platform Update, Cancel, Error and re-notified Request names the
original Request in ``references`` (CAP ``references``). Unknown fields are ignored, and any
``1.x`` version is accepted: a minor version only adds optional fields.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from .base import Identifier, NonEmpty, Point, Tolerant

CONTRACT_VERSION = "1.1"
PLATFORM_SENDER = "dcg.coordination"
KINDS = ["Request", "Update", "Cancel", "Ack", "Error"]
PLATFORM_KINDS = ["Request", "Update", "Cancel", "Error"]
REPLY_KINDS = ["Ack", "Update", "Error"]
# checkin 到场报到 · action 处置进展 · disposition 处置结果 · leave 申请退出 (always refused while the
# operation is open: 事不完，人不走)
UPDATE_STAGES = ["checkin", "action", "disposition", "leave"]
PLATFORM_UPDATE_REASONS = ["change", "reminder", "closed"]
ERROR_CODES = ["operation_closed", "cannot_leave", "not_participating", "unknown_reference",
               "released", "invalid", "dead_lettered"]      # dead_lettered: parked, see shared.messaging.department_errors
VERSION_PATTERN = r"^1\.\d+$"
VERSION_ERROR = "不支持的契约版本，只接受 1.x (unsupported schema_version: only 1.x is accepted)"


# ---------------------------------------------------------------- Request payload (platform → dept)
class What(Tolerant):
    case_id = fields.String(load_default=None, allow_none=True, metadata={"description": "案件编号 case id"})
    class_code = fields.String(load_default=None, allow_none=True,
                               metadata={"description": "案件小类代码 (GB/T 30428.2), e.g. E0302"})
    class_name = fields.String(load_default="", metadata={"description": "案件小类名称"})
    description = fields.String(load_default="", metadata={"description": "问题描述"})
    urgency = fields.String(load_default="normal", validate=validate.OneOf(["normal", "urgent"]))


class Where(Tolerant):
    address = fields.String(load_default="")
    location = fields.Nested(Point, load_default=None, allow_none=True,
                             metadata={"description": "WGS-84 point"})
    grid_code = fields.String(load_default=None, allow_none=True,
                              metadata={"description": "万米单元网格编码 (15 digits)"})
    street_id = fields.String(load_default=None, allow_none=True)


class When(Tolerant):
    reported_at = fields.AwareDateTime(load_default=None, allow_none=True)
    ack_deadline = fields.AwareDateTime(load_default=None, allow_none=True,
                                        metadata={"description": "answer Accept/Reject by then"})
    checkin_deadline = fields.AwareDateTime(load_default=None, allow_none=True,
                                            metadata={"description": "check in on site (报到) by then"})


class Lead(Tolerant):
    unit_id = fields.String(required=True, metadata={"description": "牵头单位 the lead unit"})
    name = fields.String(load_default="")
    contact = fields.String(load_default="", metadata={"description": "on-duty person and phone"})


class OperationInfo(Tolerant):
    trigger = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(["class_rule", "whistle", "escalation"]))
    departments = fields.List(fields.String(), load_default=list,
                              metadata={"description": "every department asked to join"})
    requested_by = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default="")


class RequestPayload(Tolerant):
    what = fields.Nested(What, required=True)
    where = fields.Nested(Where, required=True)
    when = fields.Nested(When, required=True)
    lead = fields.Nested(Lead, required=True)
    legal_basis = fields.String(load_default="", allow_none=True)
    operation = fields.Nested(OperationInfo, load_default=None, allow_none=True)
    renotification = fields.Integer(load_default=0, validate=validate.Range(min=0),
                                    metadata={"description": "0 = first request; n = n-th reminder"})


# ---------------------------------------------------------------- platform Update / Cancel / Error
class PlatformUpdatePayload(Tolerant):
    reason = fields.String(required=True, validate=validate.OneOf(PLATFORM_UPDATE_REASONS),
                           metadata={"description": "change: facts changed; reminder: a reply is "
                                                    "overdue; closed: the lead closed the operation"})
    note = fields.String(load_default="", validate=validate.Length(max=4000))
    operation_state = fields.String(load_default="open", validate=validate.OneOf(["open", "closed"]))
    what = fields.Nested(What, load_default=None, allow_none=True)
    where = fields.Nested(Where, load_default=None, allow_none=True)
    when = fields.Nested(When, load_default=None, allow_none=True)
    awaiting = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(["acceptance", "checkin"]),
                             metadata={"description": "for a reminder: what is overdue"})


class CancelPayload(Tolerant):
    reason = fields.String(required=True, validate=NonEmpty)
    whole_operation = fields.Boolean(load_default=False)


# ---------------------------------------------------------------- replies (department → platform)
class AckPayload(Tolerant):
    status = fields.String(required=True, validate=validate.OneOf(["accepted", "rejected"]))
    reason = fields.String(load_default="", validate=validate.Length(max=2000))

    @validates_schema
    def reject_needs_reason(self, data, **kwargs):
        if data["status"] == "rejected" and not data.get("reason", "").strip():
            raise ValidationError("拒绝必须说明理由 (a rejection needs a reason)", "reason")


class UpdatePayload(Tolerant):
    stage = fields.String(required=True, validate=validate.OneOf(UPDATE_STAGES))
    note = fields.String(load_default="", validate=validate.Length(max=4000))
    officers = fields.List(fields.String(), load_default=list)
    location = fields.Nested(Point, load_default=None, allow_none=True)


class ErrorPayload(Tolerant):
    code = fields.String(required=True, validate=NonEmpty)
    message = fields.String(required=True, validate=NonEmpty)
    refused_distribution_id = fields.String(load_default=None, allow_none=True)


PAYLOADS = {"Request": RequestPayload, "Update": UpdatePayload, "Ack": AckPayload,
            "Error": ErrorPayload, "Cancel": CancelPayload}
PLATFORM_PAYLOADS = {"Request": RequestPayload, "Update": PlatformUpdatePayload,
                     "Cancel": CancelPayload, "Error": ErrorPayload}


class DepartmentEnvelope(Tolerant):
    """The envelope of every message in either direction."""
    schema_version = fields.String(required=True, validate=validate.Regexp(VERSION_PATTERN, error=VERSION_ERROR),
                                   metadata={"description": "contract version 1.x"})
    distribution_id = fields.String(required=True, validate=Identifier,
                                    metadata={"description": "unique id of this message"})
    sender = fields.String(required=True, validate=Identifier,
                           metadata={"description": "dcg.coordination, or the department id"})
    recipients = fields.List(fields.String(validate=Identifier), required=True,
                             validate=validate.Length(min=1))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    sent_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)
    incident_id = fields.String(required=True, validate=Identifier,
                                metadata={"description": "the joint operation (联合行动) id"})
    in_reply_to = fields.String(load_default=None, allow_none=True, validate=Identifier,
                                metadata={"description": "the distribution_id answered (replies)"})
    references = fields.List(fields.String(validate=Identifier), load_default=list,
                             metadata={"description": "earlier distribution ids this message "
                                                      "refers to (CAP references)"})
    payload = fields.Dict(required=True)


class ReplyEnvelope(DepartmentEnvelope):
    """A department's message to the platform."""
    kind = fields.String(required=True, validate=validate.OneOf(REPLY_KINDS))

    @validates_schema
    def replies_reference_original(self, data, **kwargs):
        if not data.get("in_reply_to"):
            raise ValidationError("回复必须引用原消息 (in_reply_to is required on replies)",
                                  "in_reply_to")


class PlatformEnvelope(DepartmentEnvelope):
    """The platform's message to a department."""
    kind = fields.String(required=True, validate=validate.OneOf(PLATFORM_KINDS))


def _load(envelope_schema, payloads, body: dict) -> dict:
    envelope = envelope_schema.load(body)
    try:
        envelope["payload"] = payloads[envelope["kind"]]().load(envelope["payload"])
    except ValidationError as exc:
        raise ValidationError({"payload": exc.messages}) from exc
    return envelope


def load_department_message(body: dict) -> dict:
    """A department's reply (Ack / Update / Error), validated envelope and payload."""
    return _load(ReplyEnvelope(), PAYLOADS, body)


def load_platform_message(body: dict) -> dict:
    """A platform message (Request / Update / Cancel / Error), validated envelope and payload."""
    return _load(PlatformEnvelope(), PLATFORM_PAYLOADS, body)


def dump_message(message: dict) -> dict:
    """A loaded message back to JSON-ready form (dates as ISO strings)."""
    kind = message.get("kind")
    schema = PlatformEnvelope if message.get("sender") == PLATFORM_SENDER else ReplyEnvelope
    body = schema().dump(message)
    payloads = PLATFORM_PAYLOADS if schema is PlatformEnvelope else PAYLOADS
    if kind in payloads and isinstance(message.get("payload"), dict):
        body["payload"] = payloads[kind]().dump(message["payload"])
    return body


# The message catalogue: JSON Schemas (docs/integration/schemas/) and the AsyncAPI document are
# generated from these. (file stem, direction, kind, envelope schema, payload schema, summary)
MESSAGES = [
    ("request", "platform→department", "Request", PlatformEnvelope, RequestPayload,
     "联合行动协助请求 a request to join a joint operation (also re-sent as a re-notification)"),
    ("platform-update", "platform→department", "Update", PlatformEnvelope, PlatformUpdatePayload,
     "the platform's update: changed facts, a reminder, or the operation closed by the lead"),
    ("cancel", "platform→department", "Cancel", PlatformEnvelope, CancelPayload,
     "the lead releases the department (or cancels the whole operation)"),
    ("platform-error", "platform→department", "Error", PlatformEnvelope, ErrorPayload,
     "the platform refused one of your messages, with the reason"),
    ("ack", "department→platform", "Ack", ReplyEnvelope, AckPayload,
     "functional acknowledgement: accepted, or rejected with a reason"),
    ("update", "department→platform", "Update", ReplyEnvelope, UpdatePayload,
     "check-in on site (报到), action, disposition"),
    ("error", "department→platform", "Error", ReplyEnvelope, ErrorPayload,
     "the department cannot process a message"),
]
