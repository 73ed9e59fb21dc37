"""Events dispatch publishes on ``dispatch.events``: the case lifecycle after registration.
Every unit action carries actor, time and reason."""
from marshmallow import fields, validate

from ._fields import Tolerant, actor, ident, when

CASE_KINDS = ["immediate", "committed", "coordination"]


class CaseDispatched(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    case_kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    dispatched_at = when()
    deadline = when()
    sequence = fields.Integer(load_default=1)          # 2, 3 … after a return (re-dispatch)


class OwnerNotified(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    channel = fields.String(required=True)
    message = fields.String(required=True)
    notified_at = when()


class CaseAccepted(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    at = when()


class CaseReturned(Tolerant):
    """回退: counted against ``caused_by`` (the unit whose routing was wrong)."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    caused_by = fields.String(required=True)
    actor = actor()
    reason = fields.String(required=True)
    return_count = fields.Integer(required=True)
    at = when()


class ExtensionRequested(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    reason = fields.String(required=True)
    extra = fields.String(required=True)              # working time, e.g. "2d"
    sequence = fields.Integer(required=True)
    at = when()


class ExtensionDecided(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    approved = fields.Boolean(required=True)
    actor = actor()
    reason = fields.String(load_default="")
    sequence = fields.Integer(required=True)
    new_deadline = when(load_default=None, allow_none=True, required=False)
    at = when()


class CaseParked(Tolerant):
    """挂账, with approval: the clock stops."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    approver = fields.String(required=True)
    reason = fields.String(required=True)
    at = when()


class CaseUnparked(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    new_deadline = when()
    at = when()


class CaseFeedback(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    note = fields.String(load_default="")
    after_photo = fields.String(required=True)
    at = when()


class CaseVerified(Tolerant):
    """核查 on site by an inspector: passed → closed; failed → rework."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    inspector_id = fields.String(required=True)
    passed = fields.Boolean(required=True)
    note = fields.String(load_default="")
    due_at = when(load_default=None, allow_none=True, required=False)   # verification deadline
    at = when()


class CaseClosed(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    deadline = when()
    on_time = fields.Boolean(required=True)
    extended = fields.Boolean(load_default=False)
    parked = fields.Boolean(load_default=False)
    closed_at = when()


class CaseRework(Tolerant):
    """返工: sent back to the unit (failed verification, or reopened by a repeat report)."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    reason = fields.String(required=True)
    at = when()


class CaseWarned(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    share_used = fields.Float(required=True)
    deadline = when()
    at = when()


class CaseSupervised(Tolerant):
    """督办: overdue."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    deadline = when()
    at = when()


class CaseEscalated(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    escalated_to = fields.String(required=True)
    at = when()


class CaseOwnershipDisputed(Tolerant):
    """A case returned twice: its ownership is disputed."""
    case_id = ident(required=True)
    units = fields.List(fields.String(), required=True)
    at = when()


SCHEMAS = {
    "case_dispatched": CaseDispatched,
    "owner_notified": OwnerNotified,
    "case_accepted": CaseAccepted,
    "case_returned": CaseReturned,
    "extension_requested": ExtensionRequested,
    "extension_decided": ExtensionDecided,
    "case_parked": CaseParked,
    "case_unparked": CaseUnparked,
    "case_feedback_given": CaseFeedback,
    "case_verified": CaseVerified,
    "case_closed": CaseClosed,
    "case_rework_ordered": CaseRework,
    "case_warned": CaseWarned,
    "case_supervised": CaseSupervised,
    "case_escalated": CaseEscalated,
    "case_ownership_disputed": CaseOwnershipDisputed,
}
