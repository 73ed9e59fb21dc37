"""Inputs of the coordination service (RPC and the gateway's HTTP), validated with marshmallow:
joint operations (吹哨, escalation, update, cancel, close, leave) and graduated enforcement
(violations, rectification checks). Field errors come back field by field; unknown fields are
ignored. The contract: coordination and the gateway both validate with these."""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..base import Identifier, NonEmpty, Point, Tolerant

from ..parties import PARTY_KINDS, SEVERITIES, party_problem


class Actor(Tolerant):
    unit_id = fields.String(required=True, validate=validate.Length(min=1, max=100),
                            metadata={"description": "the acting unit, e.g. street.tianshengjie"})
    person = fields.String(load_default="", validate=validate.Length(max=100))


class PlaceInput(Tolerant):
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    location = fields.Nested(Point, load_default=None, allow_none=True)


class StartOperation(Tolerant):
    """吹哨 (a street whistles on any case) or a dispatcher's escalation."""
    case_id = fields.String(required=True, validate=Identifier)
    trigger = fields.String(load_default="whistle", validate=validate.OneOf(["whistle", "escalation"]))
    departments = fields.List(fields.String(validate=Identifier), required=True,
                              validate=validate.Length(min=1, max=10))
    requested_by = fields.Nested(Actor, required=True)
    reason = fields.String(required=True, validate=NonEmpty)
    urgency = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(["normal", "urgent"]))
    lead_unit = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    legal_basis = fields.String(load_default="", validate=validate.Length(max=1000))
    place = fields.Nested(PlaceInput, load_default=None, allow_none=True)
    request_id = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_\-]{1,32}$", error="只允许字母、数字、_ 和 -，最长32位"),
        metadata={"description": "idempotency key: the same key opens the same operation once"})

    @validates_schema
    def whistle_comes_from_a_street(self, data, **kwargs):
        unit = data["requested_by"]["unit_id"]
        if data["trigger"] == "whistle" and not unit.startswith(("street.", "town.")):
            raise ValidationError({"unit_id": ["吹哨由街道或镇发起（街乡吹哨、部门报到）: street.* / town.*"]},
                                  "requested_by")


class UpdateOperation(Tolerant):
    by = fields.Nested(Actor, required=True)
    note = fields.String(required=True, validate=NonEmpty)
    departments = fields.List(fields.String(validate=Identifier), load_default=None, allow_none=True)
    where = fields.Nested(PlaceInput, load_default=None, allow_none=True)
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    legal_basis = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class CancelOperation(Tolerant):
    by = fields.Nested(Actor, required=True)
    reason = fields.String(required=True, validate=NonEmpty)
    departments = fields.List(fields.String(validate=Identifier), load_default=None, allow_none=True)


class CloseOperation(Tolerant):
    by = fields.Nested(Actor, required=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    force = fields.Boolean(load_default=False)


class LeaveOperation(Tolerant):
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class Party(Tolerant):
    kind = fields.String(required=True, validate=validate.OneOf(list(PARTY_KINDS)))
    number = fields.String(required=True, validate=validate.Length(min=5, max=40))
    name = fields.String(load_default="", validate=validate.Length(max=200))

    @validates_schema
    def number_is_well_formed(self, data, **kwargs):
        problem = party_problem(data["kind"], data["number"])
        if problem:
            raise ValidationError(problem, "number")


class RecordViolation(Tolerant):
    party = fields.Nested(Party, required=True)
    class_code = fields.String(required=True, validate=validate.Regexp(r"^[CE]\d{4}$"))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES),
                             metadata={"description": "minor 轻微 | general 一般 | serious 严重"})
    corrected = fields.Boolean(load_default=False, metadata={"description": "corrected on the spot"})
    officer = fields.String(required=True, validate=validate.Length(min=1, max=100))
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    operation_id = fields.String(load_default=None, allow_none=True, validate=Identifier)
    case_id = fields.String(load_default=None, allow_none=True, validate=Identifier)
    rectify_hours = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.5, max=24 * 90))
    violation_id = fields.String(load_default=None, allow_none=True, validate=validate.Regexp(
        r"^[A-Za-z0-9_\-]{1,40}$", error="只允许字母、数字、_ 和 -"),
        metadata={"description": "idempotency key"})


class RectificationCheck(Tolerant):
    corrected = fields.Boolean(required=True)
    inspector = fields.String(required=True, validate=validate.Length(min=1, max=100))
    note = fields.String(load_default="", validate=validate.Length(max=2000))


def load(schema_cls, data: dict) -> dict:
    return schema_cls().load(data or {})
