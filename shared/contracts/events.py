"""Internal lifecycle events: one envelope, one payload schema per event type.

Events are past-tense snake_case and published on the topic exchange ``<producer>.events``
with the event type as routing key.
"""
from __future__ import annotations

import uuid

from marshmallow import ValidationError, fields, validate

from .base import Identifier, NonEmpty, Point, Tolerant, isoformat, utcnow

SCHEMA_VERSION = 1


class EventEnvelope(Tolerant):
    event_id = fields.String(required=True, validate=Identifier)
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{2,63}$"))
    schema_version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=None)
    producer = fields.String(required=True, validate=Identifier)
    correlation_id = fields.String(required=True, validate=Identifier)
    causation_id = fields.String(load_default=None, allow_none=True)
    payload = fields.Dict(required=True)


# ---------------------------------------------------------------- intake.events
class ReportReceived(Tolerant):
    report_id = fields.String(required=True, validate=Identifier)
    channel = fields.String(required=True)
    class_code = fields.String(load_default=None, allow_none=True)
    location = fields.Nested(Point, load_default=None, allow_none=True)
    description = fields.String(load_default="")
    received_at = fields.AwareDateTime(required=True)


class ReportRejected(Tolerant):
    report_id = fields.String(required=True, validate=Identifier)
    channel = fields.String(required=True)
    reason = fields.String(required=True, validate=NonEmpty)


class CaseRegistered(Tolerant):
    case_id = fields.String(required=True, validate=Identifier)
    report_id = fields.String(required=True, validate=Identifier)
    channel = fields.String(required=True)
    class_code = fields.String(required=True)
    class_name = fields.String(required=True)
    class_kind = fields.String(required=True, validate=validate.OneOf(["component", "event"]))
    urgency = fields.String(required=True, validate=validate.OneOf(["normal", "urgent"]))
    location = fields.Nested(Point, required=True)
    address = fields.String(load_default="")
    grid_code = fields.String(load_default=None, allow_none=True)
    street_id = fields.String(load_default=None, allow_none=True)
    owner_unit = fields.String(required=True)
    joint_partners = fields.List(fields.String(), load_default=list)
    description = fields.String(load_default="")
    registered_at = fields.AwareDateTime(required=True)


# -------------------------------------------------------------- dispatch.events
class CaseDispatched(Tolerant):
    case_id = fields.String(required=True, validate=Identifier)
    unit_id = fields.String(required=True)
    case_kind = fields.String(required=True, validate=validate.OneOf(["immediate", "committed", "coordination"]))
    dispatched_at = fields.AwareDateTime(required=True)
    deadline = fields.AwareDateTime(required=True)


class OwnerNotified(Tolerant):
    case_id = fields.String(required=True, validate=Identifier)
    unit_id = fields.String(required=True)
    channel = fields.String(required=True)
    message = fields.String(required=True)
    notified_at = fields.AwareDateTime(required=True)


# ---------------------------------------------------------- coordination.events
class JointOperationOpened(Tolerant):
    operation_id = fields.String(required=True, validate=Identifier)
    case_id = fields.String(load_default=None, allow_none=True)
    lead_unit = fields.String(required=True)
    departments = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    trigger = fields.String(required=True, validate=validate.OneOf(["class_rule", "whistle", "escalation"]))
    opened_at = fields.AwareDateTime(required=True)


class DepartmentRequestSent(Tolerant):
    operation_id = fields.String(required=True, validate=Identifier)
    department = fields.String(required=True)
    distribution_id = fields.String(required=True, validate=Identifier)
    sent_at = fields.AwareDateTime(required=True)


class DepartmentReplied(Tolerant):
    operation_id = fields.String(required=True, validate=Identifier)
    department = fields.String(required=True)
    distribution_id = fields.String(required=True, validate=Identifier)
    kind = fields.String(required=True)
    status = fields.String(required=True)
    reason = fields.String(load_default="", allow_none=True)
    replied_at = fields.AwareDateTime(required=True)


EVENT_SCHEMAS: dict[str, type[Tolerant]] = {
    "report_received": ReportReceived,
    "report_rejected": ReportRejected,
    "case_registered": CaseRegistered,
    "case_dispatched": CaseDispatched,
    "owner_notified": OwnerNotified,
    "joint_operation_opened": JointOperationOpened,
    "department_request_sent": DepartmentRequestSent,
    "department_replied": DepartmentReplied,
}

# Which service produces each event type: the exchange it is published on.
PRODUCERS: dict[str, str] = {
    "report_received": "intake",
    "report_rejected": "intake",
    "case_registered": "intake",
    "case_dispatched": "dispatch",
    "owner_notified": "dispatch",
    "joint_operation_opened": "coordination",
    "department_request_sent": "coordination",
    "department_replied": "coordination",
}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def make_event(event_type: str, payload: dict, *, producer: str, correlation_id: str,
               causation_id: str | None = None, event_id: str | None = None) -> dict:
    """Build a JSON-ready envelope, validated against the event's own schema.

    ``event_id`` may be given to make the event deterministic (a retried handler then
    produces the same id, and consumers drop the second copy).
    """
    schema = EVENT_SCHEMAS[event_type]()
    body = schema.dump(payload)
    errors = schema.validate(body)
    if errors:
        raise ValidationError({"payload": errors})
    envelope = {
        "event_id": event_id or new_id("evt"),
        "type": event_type,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": isoformat(utcnow()),
        "producer": producer,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "payload": body,
    }
    return envelope


def load_event(body: dict) -> dict:
    """Validate an incoming envelope and its payload; raise ValidationError with field detail."""
    envelope = EventEnvelope().load(body)
    schema_cls = EVENT_SCHEMAS.get(envelope["type"])
    if schema_cls is None:
        raise ValidationError({"type": [f"unknown event type {envelope['type']!r}"]})
    try:
        envelope["payload"] = schema_cls().load(envelope["payload"])
    except ValidationError as exc:
        raise ValidationError({"payload": exc.messages}) from exc
    return envelope
