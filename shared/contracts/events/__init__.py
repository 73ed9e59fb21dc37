"""Internal lifecycle events: one envelope, one payload schema per event type.

Events are past-tense snake_case and published on the topic exchange ``<producer>.events``
with the event type as routing key. Each producer's payload schemas live in its own module
(``intake.py``, ``dispatch.py``, ``coordination.py``, ``scoring.py``, ``participation.py``); this module holds the
envelope and the registry. The catalogue with every event is docs/events.md.
"""
from __future__ import annotations

import uuid

from marshmallow import ValidationError, fields, validate

from ..base import Identifier, Tolerant, isoformat, utcnow

SCHEMA_VERSION = 1


class EventEnvelope(Tolerant):
    event_id = fields.String(required=True, validate=Identifier)
    type = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{2,63}$"))
    schema_version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=None)
    producer = fields.String(required=True, validate=Identifier)
    correlation_id = fields.String(required=True, validate=Identifier)
    causation_id = fields.String(load_default=None, allow_none=True)
    # the producing aggregate and its position, stamped by shared.storage when the event is saved
    # with its aggregate: copies elsewhere apply events in this order (shared/projection.py)
    aggregate_id = fields.String(load_default=None, allow_none=True)
    aggregate_version = fields.Integer(load_default=None, allow_none=True, strict=True)
    aggregate_seq = fields.Integer(load_default=None, allow_none=True, strict=True)
    payload = fields.Dict(required=True)


from . import coordination, dispatch, intake, participation, scoring  # noqa: E402  (per-producer schemas)

_MODULES = {"intake": intake, "dispatch": dispatch, "coordination": coordination, "scoring": scoring,
            "participation": participation}

# event type → payload schema, and event type → the service that produces it (its exchange).
EVENT_SCHEMAS: dict[str, type[Tolerant]] = {}
PRODUCERS: dict[str, str] = {}
for _producer, _module in _MODULES.items():
    for _type, _schema in _module.SCHEMAS.items():
        if _type in EVENT_SCHEMAS:
            raise RuntimeError(f"event type {_type} is defined twice")
        EVENT_SCHEMAS[_type] = _schema
        PRODUCERS[_type] = _producer


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
