"""marshmallow schemas for the scoring queries (RPC and HTTP share them; services/scoring/schemas.py
re-exports this module)."""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..base import Identifier, Tolerant
from ..periods import PERIOD_HELP, PeriodError, parse_period

LEVELS = ["unit", "grid", "inspector", "partner"]
UNIT_TYPES = ["street", "town", "park", "department", "operator"]
FORMATS = ["pdf", "html"]
MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="月份格式为 YYYY-MM，例如 2026-11 (month: YYYY-MM)")


def _check_period(value):
    try:
        parse_period(value)
    except PeriodError as exc:
        raise ValidationError(str(exc)) from exc


class IndicatorsQuery(Tolerant):
    period = fields.String(required=True, validate=_check_period,
                           metadata={"description": PERIOD_HELP})
    level = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(LEVELS))
    key = fields.String(load_default=None, allow_none=True, validate=Identifier)

    @validates_schema
    def both_or_neither(self, data, **kwargs):
        if bool(data.get("level")) != bool(data.get("key")):
            raise ValidationError("level 与 key 需同时给出 (give both level and key)", "key")


class RankingQuery(Tolerant):
    month = fields.String(required=True, validate=MONTH)
    unit_type = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(UNIT_TYPES))


class ExposureQuery(Tolerant):
    period = fields.String(required=True, validate=_check_period)


class BulletinQuery(Tolerant):
    month = fields.String(required=True, validate=MONTH)
    fmt = fields.String(load_default="pdf", validate=validate.OneOf(FORMATS))


QUERIES = {"indicators": IndicatorsQuery, "ranking": RankingQuery, "exposure": ExposureQuery,
           "bulletin": BulletinQuery}


def load_query(name: str, data: dict) -> dict:
    """Validated query; raises ValidationError with field-level messages."""
    return QUERIES[name]().load({key: value for key, value in data.items() if value is not None})
