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
    inspector_name = fields.String(load_default=None, allow_none=True)  # their name, when known
    received_at = when()
    external_id = fields.String(load_default=None, allow_none=True)   # the channel's own ticket id
    urgency = fields.String(load_default="normal")
    photo_refs = fields.List(fields.String(), load_default=list)     # inspector photo references


class ReportRejected(Tolerant):
    report_id = ident(required=True)
    channel = fields.String(required=True)
    reason = fields.String(required=True, validate=NonEmpty)
    inspector_id = fields.String(load_default=None, allow_none=True)
    reason_code = fields.String(load_default=None, allow_none=True)   # unknown_class, outside_district …
    class_code = fields.String(load_default=None, allow_none=True)
    rejected_at = when(load_default=None, allow_none=True, required=False)


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
    # deadline inputs and how the owner was found (added; optional for older consumers)
    case_kind = fields.String(load_default=None, allow_none=True)   # immediate | committed | coordination
    time_limit = fields.String(load_default=None, allow_none=True)  # the class's 处置时限 for the urgency, e.g. "4h"
    stages = fields.List(fields.Dict(), load_default=list)          # intermediate deadlines (违法建设 …)
    owner_source = fields.String(load_default=None, allow_none=True)  # class | grid_street | gap_nearest_street | ownership_decided
    gap = fields.Boolean(load_default=False)                        # the point lies in no grid (属地兜底)
    dispute_id = fields.String(load_default=None, allow_none=True)  # the ownership dispute it raised or joined
    community_code = fields.String(load_default=None, allow_none=True)
    community_name = fields.String(load_default=None, allow_none=True)
    object_code = fields.String(load_default=None, allow_none=True)  # 部件编码 when given
    attributes = fields.Dict(load_default=dict)                     # Open311 attribute answers
    reporter_id = fields.String(load_default=None, allow_none=True)
    leader = fields.Dict(load_default=None, allow_none=True)        # road-office notes: {name, title}
    sensor_id = fields.String(load_default=None, allow_none=True)


class ReportLinkedAsDuplicate(Tolerant):
    report_id = ident(required=True)
    case_id = ident(required=True)
    distance_m = fields.Float(load_default=None, allow_none=True)
    linked_at = when()
    channel = fields.String(load_default=None, allow_none=True)
    class_code = fields.String(load_default=None, allow_none=True)
    reporter_id = fields.String(load_default=None, allow_none=True)   # subscribed to the case
    duplicate_count = fields.Integer(load_default=None, allow_none=True)


class CaseReopened(Tolerant):
    """A repeat report soon after closing: the case goes back to its unit as rework."""
    case_id = ident(required=True)
    report_id = ident(required=True)
    reason = fields.String(required=True)
    reopened_at = when()
    unit_id = fields.String(load_default=None, allow_none=True)       # the unit that closed it
    closed_at = when(load_default=None, allow_none=True, required=False)
    reopen_count = fields.Integer(load_default=1)
    class_code = fields.String(load_default=None, allow_none=True)
    distance_m = fields.Float(load_default=None, allow_none=True)


class OwnershipDisputeOpened(Tolerant):
    dispute_id = ident(required=True)
    case_id = ident(load_default=None, allow_none=True)
    location = fields.Nested(Point, required=True)
    interim_owner = fields.String(required=True)        # 属地兜底
    level = fields.String(required=True, validate=validate.OneOf(["community", "street", "department", "leadership"]))
    deadline = when()
    opened_at = when()
    trigger = fields.String(load_default="gap")          # gap (真空/盲区) | returned (case returned twice)
    place_id = fields.String(load_default=None, allow_none=True)
    scope = fields.String(load_default="area")           # area: the place's 属地 owner; class: one class only
    class_code = fields.String(load_default=None, allow_none=True)
    units = fields.List(fields.String(), load_default=list)   # the units that disputed it
    arbiter = fields.String(load_default=None, allow_none=True)


class OwnershipDisputeEscalated(Tolerant):
    dispute_id = ident(required=True)
    from_level = fields.String(required=True)
    to_level = fields.String(required=True)
    deadline = when()
    escalated_at = when()
    case_ids = fields.List(fields.String(), load_default=list)
    arbiter = fields.String(load_default=None, allow_none=True)


class OwnershipDecided(Tolerant):
    dispute_id = ident(required=True)
    owner_unit = fields.String(required=True)
    level = fields.String(required=True)
    decided_by = fields.String(required=True)
    decided_at = when()
    # what dispatch needs to re-route (added): the open cases handled by the interim owner
    case_id = fields.String(load_default=None, allow_none=True)      # the case that raised it
    case_ids = fields.List(fields.String(), load_default=list)       # every case attached to it
    interim_owner = fields.String(load_default=None, allow_none=True)
    place_id = fields.String(load_default=None, allow_none=True)
    scope = fields.String(load_default="area")
    class_code = fields.String(load_default=None, allow_none=True)
    note = fields.String(load_default="")


class SatisfactionRecorded(Tolerant):
    """The citizen's callback after closing (响应 / 解决 / 满意)."""
    case_id = ident(required=True)
    report_id = ident(load_default=None, allow_none=True)
    unit_id = fields.String(load_default=None, allow_none=True)
    responded = fields.Boolean(required=True)
    resolved = fields.Boolean(required=True)
    satisfied = fields.Boolean(required=True)
    recorded_at = when()
    channel = fields.String(load_default=None, allow_none=True)
    comment = fields.String(load_default="")


class ReporterNotified(Tolerant):
    """A notice to a citizen who reported (or repeated) the problem: the case was dispatched, or
    it is closed. Routed to ``notify.reporter-outbox``, which stands in for the SMS gateway / app
    push; ``reporter_id`` says how to reach them (``phone:…``, ``account_id:…``, ``email:…``)."""
    case_id = ident(required=True)
    report_id = ident(required=True)
    reporter_id = fields.String(required=True, validate=NonEmpty)
    channel = fields.String(required=True, validate=validate.OneOf(["sms", "app", "email"]))
    kind = fields.String(required=True, validate=validate.OneOf(["dispatched", "closed", "reopened"]))
    message = fields.String(required=True, validate=NonEmpty)
    notified_at = when()


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
    "reporter_notified": ReporterNotified,
}
