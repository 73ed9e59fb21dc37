"""Events enforcement-coordination publishes on ``coordination.events``.

Every department message and every deadline is an event with its timestamps, so scoring can
compute partners' on-time acceptance and check-in (报到) rates from ``department_replied``
(``on_time`` is set for the acceptance and for the check-in, judged on the time the platform
received the reply against the deadline in force).
"""
from marshmallow import fields, validate

from ._fields import Point, Tolerant, ident, when

TRIGGERS = ["class_rule", "whistle", "escalation"]
LADDER = ["persuade", "educate", "guide", "warn", "penalise"]   # 说服 教育 引导 警告 处罚
PARTY_KINDS = ["licence", "id_card", "plate"]
SEVERITIES = ["minor", "general", "serious"]


class Place(Tolerant):
    address = fields.String(load_default="")
    location = fields.Nested(Point, load_default=None, allow_none=True)
    grid_code = fields.String(load_default=None, allow_none=True)
    street_id = fields.String(load_default=None, allow_none=True)


class JointOperationOpened(Tolerant):
    operation_id = ident(required=True)
    case_id = ident(load_default=None, allow_none=True)
    lead_unit = fields.String(required=True)
    departments = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    trigger = fields.String(required=True, validate=validate.OneOf(TRIGGERS))
    opened_at = when()
    requested_by = fields.String(load_default=None, allow_none=True)   # unit that blew the whistle / escalated
    reason = fields.String(load_default="")
    urgency = fields.String(load_default="normal")
    class_code = fields.String(load_default=None, allow_none=True)
    place = fields.Nested(Place, load_default=None, allow_none=True)


class DepartmentRequestSent(Tolerant):
    operation_id = ident(required=True)
    department = fields.String(required=True)
    distribution_id = ident(required=True)
    sent_at = when()
    checkin_deadline = when(load_default=None, allow_none=True, required=False)
    ack_deadline = when(load_default=None, allow_none=True, required=False)
    case_id = fields.String(load_default=None, allow_none=True)


class DepartmentReplied(Tolerant):
    """Every Ack / Update / Error from a department, with its timing for scoring."""
    operation_id = ident(required=True)
    department = fields.String(required=True)
    distribution_id = ident(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True)     # accepted | rejected | on_site | acting | disposed | error
    reason = fields.String(load_default="", allow_none=True)
    on_time = fields.Boolean(load_default=None, allow_none=True)   # for acceptance and check-in
    replied_at = when()                        # sent_at as the department stamped it
    received_at = when(load_default=None, allow_none=True, required=False)   # platform clock
    stage = fields.String(load_default=None, allow_none=True)      # for an Update
    deadline = when(load_default=None, allow_none=True, required=False)      # the one judged
    in_reply_to = fields.String(load_default=None, allow_none=True)
    measure = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(["acceptance", "checkin"]))


class DepartmentReplyRefused(Tolerant):
    """A department message the platform did not apply (the operation is closed, a department
    tried to leave an open operation, …): the department got an Error with this reason."""
    operation_id = ident(required=True)
    department = fields.String(required=True)
    distribution_id = ident(required=True)
    kind = fields.String(required=True)
    code = fields.String(required=True)
    reason = fields.String(required=True)
    at = when()


class DepartmentRenotified(Tolerant):
    operation_id = ident(required=True)
    department = fields.String(required=True)
    attempt = fields.Integer(required=True)
    at = when()
    awaiting = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(["acceptance", "checkin"]))
    distribution_id = fields.String(load_default=None, allow_none=True)
    deadline = when(load_default=None, allow_none=True, required=False)


class DepartmentEscalated(Tolerant):
    operation_id = ident(required=True)
    department = fields.String(required=True)
    escalated_to = fields.List(fields.String(), required=True)
    at = when()
    awaiting = fields.String(load_default=None, allow_none=True,
                             validate=validate.OneOf(["acceptance", "checkin"]))
    attempts = fields.Integer(load_default=0)
    message = fields.String(load_default="")
    case_id = fields.String(load_default=None, allow_none=True)


class JointOperationUpdated(Tolerant):
    operation_id = ident(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["Update", "Cancel"]))
    note = fields.String(load_default="")
    at = when()
    departments = fields.List(fields.String(), load_default=list)
    by = fields.String(load_default=None, allow_none=True)
    distribution_ids = fields.List(fields.String(), load_default=list)


class JointOperationClosed(Tolerant):
    operation_id = ident(required=True)
    closed_by = fields.String(required=True)
    note = fields.String(load_default="")
    closed_at = when()
    outcome = fields.String(load_default="completed", validate=validate.OneOf(["completed", "cancelled"]))
    forced = fields.Boolean(load_default=False)
    outstanding = fields.List(fields.String(), load_default=list)   # departments not yet disposed
    case_id = fields.String(load_default=None, allow_none=True)


class EnforcementDecided(Tolerant):
    """A step on the ladder for one party (首违不罚 → educate instead of penalise).
    ``party_id`` is a pseudonymous reference (P-<hash>), never the licence/ID/plate number."""
    decision_id = ident(required=True)
    party_id = fields.String(required=True)
    party_kind = fields.String(required=True, validate=validate.OneOf(PARTY_KINDS))
    step = fields.String(required=True, validate=validate.OneOf(LADDER))
    first_violation_exempt = fields.Boolean(required=True)
    reason = fields.String(required=True)
    operation_id = fields.String(load_default=None, allow_none=True)
    case_id = fields.String(load_default=None, allow_none=True)
    at = when()
    violation_id = fields.String(load_default=None, allow_none=True)
    class_code = fields.String(load_default=None, allow_none=True)
    severity = fields.String(load_default=None, allow_none=True)
    prior_violations = fields.Integer(load_default=0)
    order_id = fields.String(load_default=None, allow_none=True)
    basis = fields.String(load_default="")


class RectificationOrdered(Tolerant):
    order_id = ident(required=True)
    party_id = fields.String(required=True)
    due_at = when()
    at = when()
    violation_id = fields.String(load_default=None, allow_none=True)
    step = fields.String(load_default=None, allow_none=True)
    class_code = fields.String(load_default=None, allow_none=True)


class RectificationChecked(Tolerant):
    order_id = ident(required=True)
    party_id = fields.String(required=True)
    corrected = fields.Boolean(required=True)
    next_step = fields.String(load_default=None, allow_none=True)
    at = when()
    checked_by = fields.String(load_default=None, allow_none=True)   # inspector, or "system" at the due time
    violation_id = fields.String(load_default=None, allow_none=True)


SCHEMAS = {
    "joint_operation_opened": JointOperationOpened,
    "department_request_sent": DepartmentRequestSent,
    "department_replied": DepartmentReplied,
    "department_reply_refused": DepartmentReplyRefused,
    "department_renotified": DepartmentRenotified,
    "department_escalated": DepartmentEscalated,
    "joint_operation_updated": JointOperationUpdated,
    "joint_operation_closed": JointOperationClosed,
    "enforcement_decided": EnforcementDecided,
    "rectification_ordered": RectificationOrdered,
    "rectification_checked": RectificationChecked,
}
