"""Events enforcement-coordination publishes on ``coordination.events``."""
from marshmallow import fields, validate

from ._fields import Tolerant, ident, when

TRIGGERS = ["class_rule", "whistle", "escalation"]
LADDER = ["persuade", "educate", "guide", "warn", "penalise"]   # 说服 教育 引导 警告 处罚


class JointOperationOpened(Tolerant):
    operation_id = ident(required=True)
    case_id = ident(load_default=None, allow_none=True)
    lead_unit = fields.String(required=True)
    departments = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    trigger = fields.String(required=True, validate=validate.OneOf(TRIGGERS))
    opened_at = when()


class DepartmentRequestSent(Tolerant):
    operation_id = ident(required=True)
    department = fields.String(required=True)
    distribution_id = ident(required=True)
    sent_at = when()
    checkin_deadline = when(load_default=None, allow_none=True, required=False)


class DepartmentReplied(Tolerant):
    """Every Ack / Update / Error from a department, with its timing for scoring."""
    operation_id = ident(required=True)
    department = fields.String(required=True)
    distribution_id = ident(required=True)
    kind = fields.String(required=True)
    status = fields.String(required=True)     # accepted | rejected | on_site | acting | disposed | error
    reason = fields.String(load_default="", allow_none=True)
    on_time = fields.Boolean(load_default=None, allow_none=True)   # for acceptance and check-in
    replied_at = when()


class DepartmentRenotified(Tolerant):
    operation_id = ident(required=True)
    department = fields.String(required=True)
    attempt = fields.Integer(required=True)
    at = when()


class DepartmentEscalated(Tolerant):
    operation_id = ident(required=True)
    department = fields.String(required=True)
    escalated_to = fields.List(fields.String(), required=True)
    at = when()


class JointOperationUpdated(Tolerant):
    operation_id = ident(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["Update", "Cancel"]))
    note = fields.String(load_default="")
    at = when()


class JointOperationClosed(Tolerant):
    operation_id = ident(required=True)
    closed_by = fields.String(required=True)
    note = fields.String(load_default="")
    closed_at = when()


class EnforcementDecided(Tolerant):
    """A step on the ladder for one party (首违不罚 → educate instead of penalise)."""
    decision_id = ident(required=True)
    party_id = fields.String(required=True)
    party_kind = fields.String(required=True, validate=validate.OneOf(["licence", "id_card", "plate"]))
    step = fields.String(required=True, validate=validate.OneOf(LADDER))
    first_violation_exempt = fields.Boolean(required=True)
    reason = fields.String(required=True)
    operation_id = fields.String(load_default=None, allow_none=True)
    case_id = fields.String(load_default=None, allow_none=True)
    at = when()


class RectificationOrdered(Tolerant):
    order_id = ident(required=True)
    party_id = fields.String(required=True)
    due_at = when()
    at = when()


class RectificationChecked(Tolerant):
    order_id = ident(required=True)
    party_id = fields.String(required=True)
    corrected = fields.Boolean(required=True)
    next_step = fields.String(load_default=None, allow_none=True)
    at = when()


SCHEMAS = {
    "joint_operation_opened": JointOperationOpened,
    "department_request_sent": DepartmentRequestSent,
    "department_replied": DepartmentReplied,
    "department_renotified": DepartmentRenotified,
    "department_escalated": DepartmentEscalated,
    "joint_operation_updated": JointOperationUpdated,
    "joint_operation_closed": JointOperationClosed,
    "enforcement_decided": EnforcementDecided,
    "rectification_ordered": RectificationOrdered,
    "rectification_checked": RectificationChecked,
}
