"""The department contract: an EDXL-DE / CAP style envelope over AMQP.

The platform sends ``Request``, ``Update`` and ``Cancel`` to a department's inbox; the
department answers with ``Ack`` (accept or reject, with a reason), ``Update`` (check-in on
site, actions, disposition) and ``Error``. Every reply names the message it answers in
``in_reply_to`` and the operation in ``incident_id``. See docs/integration/departments.md.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from .base import Identifier, NonEmpty, Point, Tolerant

CONTRACT_VERSION = "1.0"
KINDS = ["Request", "Update", "Cancel", "Ack", "Error"]
REPLY_KINDS = ["Ack", "Update", "Error"]
UPDATE_STAGES = ["checkin", "action", "disposition"]


class What(Tolerant):
    case_id = fields.String(load_default=None, allow_none=True)
    class_code = fields.String(load_default=None, allow_none=True)
    class_name = fields.String(load_default="")
    description = fields.String(load_default="")


class Where(Tolerant):
    address = fields.String(load_default="")
    location = fields.Nested(Point, load_default=None, allow_none=True)
    grid_code = fields.String(load_default=None, allow_none=True)


class When(Tolerant):
    reported_at = fields.AwareDateTime(load_default=None, allow_none=True)
    checkin_deadline = fields.AwareDateTime(load_default=None, allow_none=True)


class Lead(Tolerant):
    unit_id = fields.String(required=True)
    name = fields.String(load_default="")
    contact = fields.String(load_default="")


class RequestPayload(Tolerant):
    what = fields.Nested(What, required=True)
    where = fields.Nested(Where, required=True)
    when = fields.Nested(When, required=True)
    lead = fields.Nested(Lead, required=True)
    legal_basis = fields.String(load_default="", allow_none=True)


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


PAYLOADS = {"Request": RequestPayload, "Update": UpdatePayload, "Ack": AckPayload,
            "Error": ErrorPayload, "Cancel": Tolerant}


class DepartmentEnvelope(Tolerant):
    schema_version = fields.String(required=True, validate=validate.Regexp(r"^1\.\d+$"))
    distribution_id = fields.String(required=True, validate=Identifier)
    sender = fields.String(required=True, validate=Identifier)
    recipients = fields.List(fields.String(validate=Identifier), required=True,
                             validate=validate.Length(min=1))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    sent_at = fields.AwareDateTime(required=True)
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)
    incident_id = fields.String(required=True, validate=Identifier)
    in_reply_to = fields.String(load_default=None, allow_none=True, validate=Identifier)
    payload = fields.Dict(required=True)

    @validates_schema
    def replies_reference_original(self, data, **kwargs):
        if data["kind"] in REPLY_KINDS and not data.get("in_reply_to"):
            raise ValidationError("回复必须引用原消息 (in_reply_to is required on replies)",
                                  "in_reply_to")


def load_department_message(body: dict) -> dict:
    envelope = DepartmentEnvelope().load(body)
    try:
        envelope["payload"] = PAYLOADS[envelope["kind"]]().load(envelope["payload"])
    except ValidationError as exc:
        raise ValidationError({"payload": exc.messages}) from exc
    return envelope
