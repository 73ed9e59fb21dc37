from __future__ import annotations

from datetime import datetime, timezone

from marshmallow import EXCLUDE, Schema, fields, validate


class Tolerant(Schema):
    """Base schema: unknown fields from newer producers are ignored, never an error."""

    class Meta:
        unknown = EXCLUDE


class Point(Tolerant):
    lon = fields.Float(required=True, validate=validate.Range(-180, 180))
    lat = fields.Float(required=True, validate=validate.Range(-90, 90))


def utcnow() -> datetime:
    from .. import clock          # the platform's (controllable) clock
    return clock.now()


def isoformat(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


NonEmpty = validate.Length(min=1, max=2000)
Identifier = validate.Regexp(r"^[A-Za-z0-9_.:\-]{1,128}$", error="只允许字母、数字和 _ . : -")
