"""What every reporting channel must send to intake: the contract is
shared/contracts/api/intake.py (the gateway validates with it); intake's ReportSchema adds the
class's rules, which need the taxonomy: typed attributes (normalised) and registered component
codes. Sensor readings (``SensorReadingSchema``, routing key ``reading.<metric>``) and the 回访
answer are intake's own.
"""
from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from shared.contracts.api import intake as contract
from shared.contracts.api.intake import (  # noqa: F401
    AMQP_CHANNELS_NEEDING_ID, ATTRIBUTE_CODE, CHANNELS, PHOTO_REF, DecisionSchema, Leader, Reporter)
from shared.contracts.base import Identifier, Tolerant
from shared.refdata import load_district

from . import rules


class ReportSchema(contract.ReportSchema):
    """The contract's report, and the class's rules (run after the field checks)."""

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

