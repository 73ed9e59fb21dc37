"""Input schemas of dispatch: one marshmallow schema per case action, and the case-list query.
The gateway validates HTTP bodies with them (field-level 400s); dispatch validates again
(services/dispatch/schemas.py re-exports this module).

The actor fields (``actor``, ``actor_unit`` for a unit's action, ``role`` for an approval) are
filled by the gateway from the API key (services/gateway/auth.py), never from a client's body.
"""
from __future__ import annotations

from datetime import timedelta

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from shared.calendar import parse_duration
from shared.contracts.base import Tolerant
from shared.contracts.media import media_ref
from shared.refdata import URGENCIES

# The states of a case in dispatch (part of the API: the case list filters on them); dispatch's
# rules take them from here.
STATES = ("dispatched", "accepted", "parked", "feedback_given", "closed", "cancelled")

TEXT = validate.Length(min=1, max=2000)
ID = validate.Length(min=1, max=200)


class ActionSchema(Tolerant):
    expected_version = fields.Integer(required=True, strict=False, validate=validate.Range(min=1),
                                      metadata={"description": "the case version the operator saw"})
    actor = fields.String(required=True, validate=ID)


class UnitAction(ActionSchema):
    actor_unit = fields.String(required=True, validate=ID)


class ApprovalAction(ActionSchema):
    role = fields.String(required=True, validate=ID)


class Accept(UnitAction):
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class Return(UnitAction):
    reason = fields.String(required=True, validate=TEXT)
    to_unit = fields.String(load_default=None, allow_none=True, validate=ID)


class RequestExtension(UnitAction):
    reason = fields.String(required=True, validate=TEXT)
    extra = fields.String(required=True, metadata={"description": "working time, e.g. 4h, 1d, 2d"})

    @validates("extra")
    def _duration(self, value, **_):
        try:
            days, rest = parse_duration(value)
        except ValueError as exc:
            raise ValidationError(f"延期时长格式不对，应为工作时间如 4h、1d、2d (bad duration: {exc})") from exc
        if days == 0 and rest <= timedelta(0):
            raise ValidationError("延期时长必须大于 0 (must be positive)")
        if days > 60:
            raise ValidationError("一次延期不能超过 60 个工作日 (at most 60 working days)")


class DecideExtension(ApprovalAction):
    approved = fields.Boolean(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class RequestPark(UnitAction):
    reason = fields.String(required=True, validate=TEXT)


class DecidePark(ApprovalAction):
    approved = fields.Boolean(required=True)
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class Unpark(ApprovalAction):
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class Feedback(UnitAction):
    after_photo = media_ref(required=True, metadata={"description": "处置后照片：平台照片 /media/<id>"})
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class ReportStage(UnitAction):
    """An intermediate stage done (阶段报告), e.g. 责令停工 for 违法建设."""
    stage = fields.String(required=True, validate=validate.Length(min=1, max=100),
                          metadata={"description": "阶段名称，如 责令停工 (the stage's name in the taxonomy)"})
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    photo = media_ref(load_default=None, allow_none=True,
                      metadata={"description": "现场照片：平台照片 /media/<id> (optional)"})


class Verify(ActionSchema):
    """By the inspector on site; ``actor`` is the inspector."""
    passed = fields.Boolean(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=2000))

    @validates_schema
    def _reason_when_failed(self, data, **_):
        if data.get("passed") is False and not (data.get("note") or "").strip():
            raise ValidationError("核查不通过时必须说明原因 (a failed verification needs a note)", "note")


class SetUrgency(ApprovalAction):
    urgency = fields.String(required=True, validate=validate.OneOf(URGENCIES))
    reason = fields.String(required=True, validate=TEXT)


class RequestCheck(ActionSchema):
    """发起核实: the command centre sends the grid's inspector to check that a public report is real."""
    note = fields.String(load_default="", validate=validate.Length(max=2000))


class CheckReport(ActionSchema):
    """核实 on site by an inspector: 属实 (``genuine`` true) or 不属实; ``actor`` is the inspector."""
    genuine = fields.Boolean(required=True, metadata={"description": "属实 true / 不属实 false"})
    note = fields.String(load_default="", validate=validate.Length(max=2000))
    actor_name = fields.String(load_default=None, allow_none=True, validate=ID)   # from the key

    @validates_schema
    def _reason_when_not_genuine(self, data, **_):
        if data.get("genuine") is False and not (data.get("note") or "").strip():
            raise ValidationError("核实为不属实时必须说明情况 (a 不属实 answer needs a note)", "note")


class Cancel(ActionSchema):
    """不立案（作废）: the command centre withdraws a case its 核实 found 不属实."""
    reason = fields.String(required=True, validate=TEXT)


ACTION_SCHEMAS = {
    "accept": Accept,
    "return": Return,
    "request_extension": RequestExtension,
    "decide_extension": DecideExtension,
    "request_park": RequestPark,
    "decide_park": DecidePark,
    "unpark": Unpark,
    "report_stage": ReportStage,
    "feedback": Feedback,
    "verify": Verify,
    "set_urgency": SetUrgency,
    "request_check": RequestCheck,
    "check_report": CheckReport,
    "cancel": Cancel,
}


def action_name(raw: str) -> str | None:
    """``request-extension`` or ``request_extension`` → ``request_extension``; None if unknown."""
    name = (raw or "").strip().lower().replace("-", "_")
    return name if name in ACTION_SCHEMAS else None


class CaseQuery(Tolerant):
    """GET /api/cases filters. Times: ISO 8601; without an offset they are local (Asia/Shanghai)."""
    state = fields.String(validate=validate.OneOf(STATES))
    unit = fields.String(validate=ID)
    grid = fields.String(validate=validate.Regexp(r"^\d{6,15}$", error="网格编码前缀应为 6–15 位数字"))
    class_code = fields.String(data_key="class", validate=validate.Regexp(
        r"^[CE](\d{2}(\d{2})?)?$", error="类别应为 C/E、大类如 E01 或小类如 E0101"))
    since = fields.DateTime()
    until = fields.DateTime()
    overdue = fields.Boolean()
    checking = fields.Boolean(metadata={"description": "true: cases with an open 核实 task"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
