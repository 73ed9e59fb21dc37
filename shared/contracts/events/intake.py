"""Events intake publishes on ``intake.events``."""
from marshmallow import fields, validate

from ._fields import NonEmpty, Point, Tolerant, ident, when


class ReportReceived(Tolerant):
    report_id = ident(required=True)
    channel = fields.String(required=True)
    class_code = fields.String(load_default=None, allow_none=True)
    location = fields.Nested(Point, load_default=None, allow_none=True)
    description = fields.String(load_default="")
    reporter_id = fields.String(load_default=None, allow_none=True)   # account_id or phone
    inspector_id = fields.String(load_default=None, allow_none=True)  # for inspector reports
    received_at = when()


class ReportRejected(Tolerant):
    report_id = ident(required=True)
    channel = fields.String(required=True)
    reason = fields.String(required=True, validate=NonEmpty)
    inspector_id = fields.String(load_default=None, allow_none=True)


class CaseRegistered(Tolerant):
    case_id = ident(required=True)
    report_id = ident(required=True)
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
    inspector_id = fields.String(load_default=None, allow_none=True)
    media_urls = fields.List(fields.String(), load_default=list)   # "problem" photos
    registered_at = when()


class ReportLinkedAsDuplicate(Tolerant):
    report_id = ident(required=True)
    case_id = ident(required=True)
    distance_m = fields.Float(load_default=None, allow_none=True)
    linked_at = when()


class CaseReopened(Tolerant):
    """A repeat report soon after closing: the case goes back to its unit as rework."""
    case_id = ident(required=True)
    report_id = ident(required=True)
    reason = fields.String(required=True)
    reopened_at = when()


class OwnershipDisputeOpened(Tolerant):
    dispute_id = ident(required=True)
    case_id = ident(load_default=None, allow_none=True)
    location = fields.Nested(Point, required=True)
    interim_owner = fields.String(required=True)        # 属地兜底
    level = fields.String(required=True, validate=validate.OneOf(["community", "street", "department", "leadership"]))
    deadline = when()
    opened_at = when()


class OwnershipDisputeEscalated(Tolerant):
    dispute_id = ident(required=True)
    from_level = fields.String(required=True)
    to_level = fields.String(required=True)
    deadline = when()
    escalated_at = when()


class OwnershipDecided(Tolerant):
    dispute_id = ident(required=True)
    owner_unit = fields.String(required=True)
    level = fields.String(required=True)
    decided_by = fields.String(required=True)
    decided_at = when()


class SatisfactionRecorded(Tolerant):
    """The citizen's callback after closing (响应 / 解决 / 满意)."""
    case_id = ident(required=True)
    report_id = ident(load_default=None, allow_none=True)
    unit_id = fields.String(load_default=None, allow_none=True)
    responded = fields.Boolean(required=True)
    resolved = fields.Boolean(required=True)
    satisfied = fields.Boolean(required=True)
    recorded_at = when()


SCHEMAS = {
    "report_received": ReportReceived,
    "report_rejected": ReportRejected,
    "case_registered": CaseRegistered,
    "report_linked_as_duplicate": ReportLinkedAsDuplicate,
    "case_reopened": CaseReopened,
    "ownership_dispute_opened": OwnershipDisputeOpened,
    "ownership_dispute_escalated": OwnershipDisputeEscalated,
    "ownership_decided": OwnershipDecided,
    "satisfaction_recorded": SatisfactionRecorded,
}
