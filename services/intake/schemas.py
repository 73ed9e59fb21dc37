"""What a reporting channel must send to intake (HTTP or AMQP ``intake.inbound``)."""
from __future__ import annotations

from marshmallow import fields, validate

from shared.contracts.base import Identifier, Point, Tolerant

CHANNELS = ["open311", "web", "hotline", "inspector", "sensor", "road_office"]


class Reporter(Tolerant):
    name = fields.String(load_default="", validate=validate.Length(max=100))
    phone = fields.String(load_default="", validate=validate.Regexp(r"^[0-9+\-() ]{0,32}$"))
    account_id = fields.String(load_default="", validate=validate.Length(max=128))


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
    urgency = fields.String(load_default="normal", validate=validate.OneOf(["normal", "urgent"]))
    reporter = fields.Nested(Reporter, load_default=dict)
    media_urls = fields.List(fields.Url(schemes={"http", "https"}), load_default=list,
                             validate=validate.Length(max=10))


def load_inbound_report(body: dict) -> dict:
    report = ReportSchema().load(body)
    if report["channel"] in ("hotline", "sensor") and not report.get("external_id"):
        from marshmallow import ValidationError
        raise ValidationError({"external_id": ["AMQP 渠道必须带 external_id (required on AMQP channels)"]})
    return report
