"""What every reporting channel must send to intake (HTTP or AMQP ``intake.inbound``): the
contract the gateway validates a report with before it calls intake. Intake's own ReportSchema
(services/intake/schemas.py) adds the class's rules (typed attributes, registered components),
which need the taxonomy; it answers those as field errors too.

One report schema for every channel, with the channel's own rules on top:

* ``web`` / ``open311`` — citizens (Open311 requests are mapped onto it, see open311.py);
* ``hotline`` — the 12345 bridge over AMQP (routing key ``report.hotline``): ``external_id``
  (the hotline ticket number) is required, so a re-sent ticket is one report;
* ``inspector`` — 信息采集员/网格员: ``inspector_id`` required; photo references in
  ``photo_refs`` (their absence is a filing-standard rejection, not a format error);
* ``sensor`` — reports filed by the IoT rule (or by a sensor platform directly, with external_id);
* ``road_office`` — 领导马路办公 notes: ``leader {name, title}`` required; urgent by default.

Also here: the decision on an ownership dispute (确权) and the 四定 stall permit — bodies the
gateway takes and intake keeps. Sensor readings have intake's own schema
(``SensorReadingSchema``, routing key ``reading.<metric>``).
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..base import Identifier, Point, Tolerant

CHANNELS = ["open311", "web", "hotline", "inspector", "sensor", "road_office"]
AMQP_CHANNELS_NEEDING_ID = ("hotline", "sensor")
PHOTO_REF = r"^(https?://|photo://|s3://|oss://|minio://)[^\s<>\"]{1,500}$"
ATTRIBUTE_CODE = r"^[a-z][a-z0-9_]{0,31}$"


class Reporter(Tolerant):
    name = fields.String(load_default="", validate=validate.Length(max=100))
    phone = fields.String(load_default="", validate=validate.Regexp(r"^[0-9+\-() ]{0,32}$",
                                                                    error="电话号码格式不正确"))
    account_id = fields.String(load_default="", validate=validate.Length(max=128))
    email = fields.String(load_default="", validate=validate.Regexp(
        r"^$|^[^@\s]{1,64}@[^@\s]{1,190}$", error="电子邮箱格式不正确"))


class Leader(Tolerant):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    title = fields.String(required=True, validate=validate.Length(min=1, max=100))


class ReportSchema(Tolerant):
    """A report from any channel. ``external_id`` (the channel's own ticket id) makes a
    re-sent report idempotent: the same channel + external_id is one report."""

    external_id = fields.String(load_default=None, allow_none=True, validate=Identifier)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    class_code = fields.String(required=True, validate=validate.Regexp(r"^[CE]\d{4}$",
                               error="类别编码应为 C/E 加四位数字，如 E0301"))
    location = fields.Nested(Point, required=True)
    address = fields.String(load_default="", validate=validate.Length(max=300))
    description = fields.String(load_default="", validate=validate.Length(max=4000))
    urgency = fields.String(load_default=None, allow_none=True,
                            validate=validate.OneOf(["normal", "urgent"]))
    reporter = fields.Nested(Reporter, load_default=dict)
    media_urls = fields.List(fields.Url(schemes={"http", "https"}, require_tld=False),
                             load_default=list, validate=validate.Length(max=10))
    photo_refs = fields.List(fields.String(validate=validate.Regexp(
        PHOTO_REF, error="照片引用应为 http(s)://、photo://、s3:// 等地址")),
        load_default=list, validate=validate.Length(max=20))
    inspector_id = fields.String(load_default=None, allow_none=True, validate=Identifier)
    leader = fields.Nested(Leader, load_default=None, allow_none=True)
    # the inspector's name, from the account that reported (scoring shows inspectors by name)
    inspector_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=50))
    attributes = fields.Dict(keys=fields.String(validate=validate.Regexp(ATTRIBUTE_CODE)),
                             values=fields.Raw(allow_none=True), load_default=dict,
                             validate=validate.Length(max=30))
    object_code = fields.String(load_default=None, allow_none=True,
                                validate=validate.Regexp(r"^\d{16}$", error="部件编码应为 16 位数字"))
    reported_at = fields.AwareDateTime(load_default=None, allow_none=True)
    sensor_id = fields.String(load_default=None, allow_none=True, validate=Identifier)
    device_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=128))
    address_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))

    @validates_schema(skip_on_field_errors=False)
    def _channel_rules(self, data, **kwargs):
        """Reported together with the field errors, so the sender sees everything at once."""
        channel = data.get("channel")
        errors = {}
        if channel == "inspector" and not data.get("inspector_id"):
            errors["inspector_id"] = ["信息采集员上报必须带 inspector_id (required for inspector reports)"]
        if channel == "road_office" and not data.get("leader"):
            errors["leader"] = ["马路办公交办必须写明领导 {name, title} (required for road-office notes)"]
        if errors:
            raise ValidationError(errors)


class DecisionSchema(Tolerant):
    """A decision on an ownership dispute (确权)."""

    owner_unit = fields.String(required=True, validate=validate.Regexp(
        r"^(street|town|park|dept|op)\.[a-z0-9_]{1,40}$", error="责任单位应为单位编号，如 street.dongyang"))
    decided_by = fields.String(required=True, validate=validate.Length(min=1, max=100))
    note = fields.String(load_default="", validate=validate.Length(max=1000))


# ===================================================================== 四定 stall permits
STREET_TRADING = ("E0501", "E0502")            # 占道经营, 无照经营游商
HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="时间格式为 HH:MM")


def _position(value):
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ValidationError("坐标应为 [经度, 纬度] (a position is [lon, lat])")
    if not (-180 <= value[0] <= 180 and -90 <= value[1] <= 90):
        raise ValidationError("经纬度超出范围 (lon/lat out of range)")


class PlaceSchema(Tolerant):
    point = fields.Raw(load_default=None, allow_none=True, validate=_position)
    radius_m = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.5, max=200))
    polygon = fields.List(fields.Raw(validate=_position), load_default=None, allow_none=True,
                          validate=validate.Length(min=4, max=200))

    @validates_schema
    def one_shape(self, data, **kwargs):
        if bool(data.get("point")) == bool(data.get("polygon")):
            raise ValidationError("需要 point+radius_m 或 polygon 之一 (a point with a radius, or a polygon)", "point")
        if data.get("point") and not data.get("radius_m"):
            raise ValidationError("定点为点时需要半径 radius_m (a point needs radius_m)", "radius_m")
        if data.get("polygon") and list(data["polygon"][0]) != list(data["polygon"][-1]):
            raise ValidationError("多边形首尾坐标应相同 (a polygon ring must be closed)", "polygon")


class WindowSchema(Tolerant):
    start = fields.String(required=True, validate=HHMM)
    end = fields.String(required=True, validate=HHMM)

    @validates_schema
    def not_empty(self, data, **kwargs):
        if data.get("start") == data.get("end"):
            raise ValidationError("开始与结束时间不能相同 (an empty window)", "end")


class PermitSchema(Tolerant):
    permit_id = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_.\-]{1,64}$"))
    holder = fields.String(required=True, validate=validate.Length(min=1, max=100))
    goods = fields.String(required=True, validate=validate.Length(min=1, max=50))     # 定类
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=100))  # 定量
    place = fields.Nested(PlaceSchema, required=True)                                  # 定点
    window = fields.Nested(WindowSchema, required=True)                                # 定时
    valid_from = fields.Date(required=True)
    valid_to = fields.Date(required=True)
    days = fields.List(fields.Integer(validate=validate.Range(min=1, max=7)), load_default=lambda: [1, 2, 3, 4, 5, 6, 7])
    classes = fields.List(fields.String(validate=validate.OneOf(STREET_TRADING)),
                          load_default=lambda: list(STREET_TRADING))
    revoked = fields.Boolean(load_default=False)

    @validates_schema
    def dates(self, data, **kwargs):
        if data.get("valid_from") and data.get("valid_to") and data["valid_to"] < data["valid_from"]:
            raise ValidationError("有效期结束早于开始 (valid_to before valid_from)", "valid_to")
