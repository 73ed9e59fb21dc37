"""Events dispatch publishes on ``dispatch.events``: the case lifecycle after registration.
Every unit action carries actor, time and reason. See docs/dispatch.md for the semantics
(notably what ``case_closed.on_time`` means)."""
from marshmallow import fields, validate

from ._fields import Tolerant, actor, ident, when

CASE_KINDS = ["immediate", "committed", "coordination"]


def _optional_when():
    return when(load_default=None, allow_none=True, required=False)


class CaseDispatched(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    case_kind = fields.String(required=True, validate=validate.OneOf(CASE_KINDS))
    dispatched_at = when()
    deadline = when()
    sequence = fields.Integer(load_default=1)          # 2, 3 … after a return (re-dispatch)
    time_limit = fields.String(load_default=None, allow_none=True)     # e.g. "4h" working time
    urgency = fields.String(load_default="normal")
    routed_by = fields.String(load_default=None, allow_none=True)      # who made this assignment
    rule = fields.String(load_default=None, allow_none=True)           # the routing rule applied
    previous_unit = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default="")


class OwnerNotified(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    channel = fields.String(required=True)
    message = fields.String(required=True)
    notified_at = when()
    kind = fields.String(load_default="dispatch")      # dispatch, warning, supervision, escalation, rework …
    recipients = fields.List(fields.Dict(), load_default=list)     # [{name, role, phone}]


class CaseAccepted(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    at = when()
    sequence = fields.Integer(load_default=1)
    note = fields.String(load_default="")


class CaseReturned(Tolerant):
    """回退: counted against ``caused_by`` — whoever made the assignment that was wrong: the
    command centre (routing), or the unit whose suggestion sent the case there."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    caused_by = fields.String(required=True)
    actor = actor()
    reason = fields.String(required=True)
    return_count = fields.Integer(required=True)
    at = when()
    to_unit = fields.String(load_default=None, allow_none=True)        # re-dispatched to
    sequence = fields.Integer(load_default=1)                          # the assignment returned


class ExtensionRequested(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    reason = fields.String(required=True)
    extra = fields.String(required=True)              # working time, e.g. "2d"
    sequence = fields.Integer(required=True)          # 1st, 2nd extension of this assignment
    at = when()
    required_role = fields.String(load_default=None, allow_none=True)


class ExtensionDecided(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    approved = fields.Boolean(required=True)
    actor = actor()
    reason = fields.String(load_default="")
    sequence = fields.Integer(required=True)
    new_deadline = _optional_when()
    at = when()
    role = fields.String(load_default=None, allow_none=True)
    old_deadline = _optional_when()


class ParkRequested(Tolerant):
    """挂账 asked for by the unit; the clock keeps running until it is approved."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    reason = fields.String(required=True)
    at = when()


class ParkRefused(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    reason = fields.String(load_default="")
    at = when()


class CaseParked(Tolerant):
    """挂账, with approval: the clock stops."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()                                   # who asked (the unit's person)
    approver = fields.String(required=True)
    reason = fields.String(required=True)
    at = when()
    remaining_seconds = fields.Integer(load_default=None, allow_none=True)   # working time left


class CaseUnparked(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    new_deadline = when()
    at = when()
    reason = fields.String(load_default="")


class CaseFeedback(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    note = fields.String(load_default="")
    after_photo = fields.String(required=True)
    at = when()
    verify_due_at = _optional_when()                  # the inspector's verification deadline


class CaseStageReported(Tolerant):
    """The unit reports an intermediate stage done (阶段报告, e.g. 责令停工)."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    stage = fields.String(required=True)
    note = fields.String(load_default="")
    photo = fields.String(load_default=None, allow_none=True)
    at = when()
    due_at = _optional_when()
    on_time = fields.Boolean(load_default=None, allow_none=True)


class CaseStageOverdue(Tolerant):
    """An intermediate stage was not reported by its due time: 阶段督办 to the unit."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    stage = fields.String(required=True)
    due_at = when()
    at = when()


class CaseVerified(Tolerant):
    """核查 on site by an inspector: passed → closed; failed → rework."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    inspector_id = fields.String(required=True)
    passed = fields.Boolean(required=True)
    note = fields.String(load_default="")
    due_at = _optional_when()                         # verification deadline
    at = when()


class CaseClosed(Tolerant):
    """结案. ``on_time`` is true only when the unit's passing feedback came at or before
    ``original_deadline`` AND the assignment was never extended AND never parked
    (so extensions and parking never inflate the on-time rate)."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    deadline = when()                                 # the deadline in force when it closed
    on_time = fields.Boolean(required=True)
    extended = fields.Boolean(load_default=False)
    parked = fields.Boolean(load_default=False)
    closed_at = when()
    original_deadline = _optional_when()              # without extensions / parking
    handled_at = _optional_when()                     # the passing feedback
    closure = fields.Integer(load_default=1)          # 2, 3 … after a reopening
    rework_count = fields.Integer(load_default=0)
    return_count = fields.Integer(load_default=0)
    inspector_id = fields.String(load_default=None, allow_none=True)


class CaseRework(Tolerant):
    """返工: sent back to the unit (failed verification, or reopened by a repeat report)."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    reason = fields.String(required=True)
    at = when()
    source = fields.String(load_default="verification")   # verification | reopened
    actor = fields.String(load_default="system")
    sequence = fields.Integer(load_default=1)              # 1st, 2nd rework
    new_deadline = _optional_when()


class CaseWarned(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    share_used = fields.Float(required=True)
    deadline = when()
    at = when()


class CaseSupervised(Tolerant):
    """督办: overdue (reason "first_reply": the first unit's reply deadline, 首问负责)."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    deadline = when()
    at = when()
    reason = fields.String(load_default="")


class CaseEscalated(Tolerant):
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    escalated_to = fields.String(required=True)
    at = when()
    deadline = _optional_when()


class CaseOwnershipDisputed(Tolerant):
    """A case returned twice: its ownership is disputed. Intake opens the dispute (four-level
    arbitration); meanwhile the case is with ``interim_owner`` (属地兜底)."""
    case_id = ident(required=True)
    units = fields.List(fields.String(), required=True)
    at = when()
    interim_owner = fields.String(load_default=None, allow_none=True)
    location = fields.Dict(load_default=None, allow_none=True)         # {lon, lat}
    grid_code = fields.String(load_default=None, allow_none=True)
    class_code = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default="")


class CaseUrgencyChanged(Tolerant):
    """The command centre changed the urgency; the deadline follows."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    urgency = fields.String(required=True)
    actor = actor()
    reason = fields.String(load_default="")
    new_deadline = when()
    at = when()


class CaseCheckRequested(Tolerant):
    """发起核实: the centre sent an inspector to check on site that a public report is real."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    sequence = fields.Integer(required=True)          # the case's n-th 核实 task
    inspector_id = fields.String(load_default=None, allow_none=True)   # the grid's inspector
    channel = fields.String(load_default=None, allow_none=True)        # the report's channel
    actor = actor()
    due_at = when()
    at = when()


class CaseChecked(Tolerant):
    """核实 answered by an inspector: 属实 (genuine) or 不属实; ``on_time``: by ``due_at``."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    sequence = fields.Integer(required=True)
    inspector_id = fields.String(required=True)        # who answered (from the key)
    inspector_name = fields.String(load_default=None, allow_none=True)
    genuine = fields.Boolean(required=True)
    note = fields.String(load_default="")
    due_at = when()
    on_time = fields.Boolean(required=True)
    at = when()


class CaseCancelled(Tolerant):
    """不立案（作废）: the centre withdrew a case its 核实 found 不属实; no unit handles it."""
    case_id = ident(required=True)
    unit_id = fields.String(required=True)
    actor = actor()
    reason = fields.String(required=True)
    at = when()


SCHEMAS = {
    "case_dispatched": CaseDispatched,
    "owner_notified": OwnerNotified,
    "case_accepted": CaseAccepted,
    "case_returned": CaseReturned,
    "extension_requested": ExtensionRequested,
    "extension_decided": ExtensionDecided,
    "park_requested": ParkRequested,
    "park_refused": ParkRefused,
    "case_parked": CaseParked,
    "case_unparked": CaseUnparked,
    "case_feedback_given": CaseFeedback,
    "case_stage_reported": CaseStageReported,
    "case_stage_overdue": CaseStageOverdue,
    "case_verified": CaseVerified,
    "case_closed": CaseClosed,
    "case_rework_ordered": CaseRework,
    "case_warned": CaseWarned,
    "case_supervised": CaseSupervised,
    "case_escalated": CaseEscalated,
    "case_ownership_disputed": CaseOwnershipDisputed,
    "case_urgency_changed": CaseUrgencyChanged,
    "case_check_requested": CaseCheckRequested,
    "case_checked": CaseChecked,
    "case_cancelled": CaseCancelled,
}
