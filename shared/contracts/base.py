from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

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


def local_times(value, tz: tzinfo | str):
    """Every datetime in an answer (nested dicts and lists too) → ISO 8601 in local time with its
    offset, e.g. ``2026-11-23T14:23:16.123000+08:00``: what users are shown (naive = UTC)."""
    if isinstance(value, datetime):
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return moment.astimezone(zone).isoformat()
    if isinstance(value, dict):
        return {key: local_times(item, tz) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [local_times(item, tz) for item in value]
    return value


NonEmpty = validate.Length(min=1, max=2000)
Identifier = validate.Regexp(r"^[A-Za-z0-9_.:\-]{1,128}$", error="只允许字母、数字和 _ . : -")
