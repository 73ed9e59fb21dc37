"""What every reporting channel must send to intake (HTTP or AMQP ``intake.inbound``).

One report schema for every channel, with the channel's own rules on top:

* ``web`` / ``open311`` — citizens (Open311 requests are mapped onto it, see open311.py);
* ``hotline`` — the 12345 bridge over AMQP (routing key ``report.hotline``): ``external_id``
  (the hotline ticket number) is required, so a re-sent ticket is one report;
* ``inspector`` — 信息采集员/网格员: ``inspector_id`` required; photo references in
  ``photo_refs`` (their absence is a filing-standard rejection, not a format error);
* ``sensor`` — reports filed by the IoT rule (or by a sensor platform directly, with external_id);
* ``road_office`` — 领导马路办公 notes: ``leader {name, title}`` required; urgent by default.

Sensor readings have their own schema (``SensorReadingSchema``, routing key ``reading.<metric>``).
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from shared.contracts.base import Identifier, Point, Tolerant
from shared.refdata import load_district

from . import rules

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

    @validates_schema
    def _class_rules(self, data, **kwargs):
        errors = {}
        district = load_district()
        code = data.get("class_code")
        minor = district.taxonomy.get(code) if code else None
        if minor is not None and data.get("attributes"):
            _, attribute_errors = rules.normalise_attributes(minor, data["attributes"],
                                                             district.calendar.tz)
            if attribute_errors:
                errors["attributes"] = attribute_errors
        object_code = data.get("object_code")
        if object_code:
            component = district.components.get(object_code)
            if component is None:
                errors["object_code"] = [f"未登记的部件编码 {object_code}"]
            elif minor is not None and component["class_code"] != code:
                errors["object_code"] = [f"部件 {object_code} 属于类别 {component['class_code']}，不是 {code}"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def _normalise(self, data, **kwargs):
        district = load_district()
        minor = district.taxonomy.get(data["class_code"])
        if minor is not None:
            data["attributes"], _ = rules.normalise_attributes(minor, data.get("attributes") or {},
                                                               district.calendar.tz)
        else:
            data["attributes"] = {}
        return data


def load_inbound_report(body: dict) -> dict:
    report = ReportSchema().load(body)
    if report["channel"] in AMQP_CHANNELS_NEEDING_ID and not report.get("external_id"):
        raise ValidationError({"external_id": ["AMQP 渠道必须带 external_id (required on AMQP channels)"]})
    return report


class SensorReadingSchema(Tolerant):
    """One reading from an IoT sensor (AMQP ``intake.inbound`` / ``reading.<metric>``)."""

    reading_id = fields.String(load_default=None, allow_none=True, validate=Identifier)
    sensor_id = fields.String(required=True, validate=Identifier)
    metric = fields.String(required=True, validate=validate.Regexp(ATTRIBUTE_CODE))
    value = fields.Float(required=True, validate=validate.Range(-1e6, 1e6))
    unit = fields.String(load_default="", validate=validate.Length(max=16))
    measured_at = fields.AwareDateTime(required=True)

    @validates_schema
    def _registered(self, data, **kwargs):
        sensor = load_district().sensors.get(data.get("sensor_id"))
        if sensor is None:
            raise ValidationError({"sensor_id": [f"未登记的传感器 {data.get('sensor_id')} (unknown sensor)"]})
        if data.get("metric") != sensor["metric"]:
            raise ValidationError({"metric": [f"传感器 {sensor['id']} 测量 {sensor['metric']}，"
                                              f"不是 {data.get('metric')}"]})

    @post_load
    def _reading_id(self, data, **kwargs):
        if not data.get("reading_id"):
            data["reading_id"] = f"{data['sensor_id']}:{data['measured_at']:%Y%m%dT%H%M%S%z}"
        return data


def load_sensor_reading(body: dict) -> dict:
    return SensorReadingSchema().load(body)


class SatisfactionSchema(Tolerant):
    """回访: the citizen's answer after closing (响应 / 解决 / 满意). A citizen who did not answer
    (``responded`` false) is recorded as such: resolved and satisfied are then not asked (None)."""

    responded = fields.Boolean(required=True)
    resolved = fields.Boolean(load_default=None, allow_none=True)
    satisfied = fields.Boolean(load_default=None, allow_none=True)
    comment = fields.String(load_default="", validate=validate.Length(max=500))
    channel = fields.String(load_default="open311", validate=validate.OneOf(["open311", "hotline", "web"]))

    @validates_schema
    def _answered(self, data, **kwargs):
        if data.get("responded"):
            missing = {name: ["市民已应答时必填 (required when responded is true)"]
                       for name in ("resolved", "satisfied") if data.get(name) is None}
            if missing:
                raise ValidationError(missing)

    @post_load
    def _not_asked(self, data, **kwargs):
        if not data["responded"]:
            data["resolved"] = data["satisfied"] = None
        return data


class DecisionSchema(Tolerant):
    """A decision on an ownership dispute (确权)."""

    owner_unit = fields.String(required=True, validate=validate.Regexp(
        r"^(street|town|park|dept|op)\.[a-z0-9_]{1,40}$", error="责任单位应为单位编号，如 street.dongyang"))
    decided_by = fields.String(required=True, validate=validate.Length(min=1, max=100))
    note = fields.String(load_default="", validate=validate.Length(max=1000))
