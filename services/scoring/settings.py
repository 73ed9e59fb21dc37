"""config/scoring.yaml: weights, deductions, minimum volume, groups, periods — validated.

``load_settings()`` reads ``SCORING_CONFIG`` (environment or platform config) or
config/scoring.yaml; a bad file raises ``ValueError`` naming the fields.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import yaml
from marshmallow import ValidationError, fields, validate, validates_schema

from shared import on_time
from shared.config import ROOT, load_config
from shared.contracts.base import Tolerant

from .practices_settings import PracticesSettings

DEFAULT_PATH = ROOT / "config" / "scoring.yaml"

WEIGHTED = ("closure_rate", "ontime_rate", "rework_rate", "extension_rate", "satisfaction_rate",
            "community_review_rate")
DEDUCTIONS = ("exposed_case", "return_caused", "supervised")
UNIT_TYPES = ("street", "town", "park", "department", "operator")

_non_negative = validate.Range(min=0)


class _Weights(Tolerant):
    closure_rate = fields.Float(load_default=25, validate=_non_negative)
    ontime_rate = fields.Float(load_default=35, validate=_non_negative)
    rework_rate = fields.Float(load_default=15, validate=_non_negative)
    extension_rate = fields.Float(load_default=10, validate=_non_negative)
    satisfaction_rate = fields.Float(load_default=15, validate=_non_negative)
    community_review_rate = fields.Float(load_default=10, validate=_non_negative)   # 社区评议

    @validates_schema
    def some_weight(self, data, **kwargs):
        if sum(data.values()) <= 0:
            raise ValidationError("至少一个权重大于 0 (at least one weight must be positive)")


class _Deductions(Tolerant):
    exposed_case = fields.Float(load_default=3, validate=_non_negative)
    return_caused = fields.Float(load_default=1, validate=_non_negative)
    supervised = fields.Float(load_default=0.5, validate=_non_negative)


class _Composite(Tolerant):
    weights = fields.Nested(_Weights, load_default=lambda: _Weights().load({}))
    deductions = fields.Nested(_Deductions, load_default=lambda: _Deductions().load({}))


class _Group(Tolerant):
    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,30}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    types = fields.List(fields.String(validate=validate.OneOf(UNIT_TYPES)), required=True,
                        validate=validate.Length(min=1))


DEFAULT_GROUPS = [
    {"key": "street", "name": "街镇", "types": ["street", "town"]},
    {"key": "park", "name": "园区", "types": ["park"]},
    {"key": "department", "name": "区级部门", "types": ["department"]},
    {"key": "operator", "name": "作业单位", "types": ["operator"]},
]


class _Ranking(Tolerant):
    minimum_cases = fields.Integer(load_default=5, validate=_non_negative)
    groups = fields.List(fields.Nested(_Group), load_default=lambda: [dict(g) for g in DEFAULT_GROUPS],
                         validate=validate.Length(min=1))

    @validates_schema
    def types_once(self, data, **kwargs):
        seen = [t for group in data.get("groups", []) for t in group["types"]]
        if len(seen) != len(set(seen)):
            raise ValidationError("一个单位类型只能属于一个排名组 (a unit type may be in one group only)",
                                  "groups")


class _Exposure(Tolerant):
    size = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))
    min_overdue_hours = fields.Float(load_default=0, validate=_non_negative)


class _Partners(Tolerant):
    accept_minutes = fields.Float(load_default=10, validate=validate.Range(min=0, min_inclusive=False))
    checkin_minutes = fields.Float(load_default=30, validate=validate.Range(min=0, min_inclusive=False))


class _Verification(Tolerant):
    fallback_working_hours = fields.Float(load_default=4, validate=validate.Range(min=0, min_inclusive=False))


class _Periods(Tolerant):
    trend_months = fields.Integer(load_default=6, validate=validate.Range(min=1, max=24))
    # the weight of each month (1–12) in the quarterly and yearly score; a month not listed weighs 1
    month_weights = fields.Dict(keys=fields.Integer(validate=validate.Range(min=1, max=12)),
                                values=fields.Float(validate=_non_negative), load_default=dict)


class _Bulletin(Tolerant):
    output_dir = fields.String(load_default="var/bulletins")
    title = fields.String(load_default="城市综合管理考核月度通报")
    issuer = fields.String(load_default="区大城管工作领导小组办公室")
    trend_units = fields.Integer(load_default=10, validate=validate.Range(min=1, max=30))
    # front matter of the 通报 (文号 takes {year} and {month})
    doc_number = fields.String(load_default="嘉城管考〔{year}〕{month}号")
    main_to = fields.List(fields.String(), load_default=lambda: ["各街道办事处、镇人民政府", "区级各相关部门"])
    copy_to = fields.List(fields.String(), load_default=lambda: ["区委办公室", "区政府办公室"])
    signature = fields.String(load_default="区大城管工作领导小组办公室")
    issue_date = fields.Date(load_default=None, allow_none=True)     # none: the day it is generated
    red_black_size = fields.Integer(load_default=3, validate=validate.Range(min=1, max=10))
    top_classes = fields.Integer(load_default=5, validate=validate.Range(min=1, max=20))
    fall_places = fields.Integer(load_default=3, validate=validate.Range(min=1, max=20))
    growth_factor = fields.Float(load_default=2.0, validate=validate.Range(min=1, min_inclusive=False))


class _Standard(Tolerant):
    """Where local practice varies from CJ/T 292 / GB/T 30428.4 (docs/scoring.md §标准对照)."""
    # carried here, but set only from the platform-wide EXTENSION_MOVES_DEADLINE (load_settings)
    extension_moves_deadline = fields.Boolean(load_default=False)
    rework_denominator = fields.String(load_default="due", validate=validate.OneOf(["due", "closed"]))
    verify_report_working_hours = fields.Float(load_default=2, validate=validate.Range(min=0, min_inclusive=False))
    inspector_names = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)  # 工号 → 姓名


class ScoringSettings(Tolerant):
    composite = fields.Nested(_Composite, load_default=lambda: _Composite().load({}))
    ranking = fields.Nested(_Ranking, load_default=lambda: _Ranking().load({}))
    exposure = fields.Nested(_Exposure, load_default=lambda: _Exposure().load({}))
    partners = fields.Nested(_Partners, load_default=lambda: _Partners().load({}))
    verification = fields.Nested(_Verification, load_default=lambda: _Verification().load({}))
    periods = fields.Nested(_Periods, load_default=lambda: _Periods().load({}))
    bulletin = fields.Nested(_Bulletin, load_default=lambda: _Bulletin().load({}))
    standard = fields.Nested(_Standard, load_default=lambda: _Standard().load({}))
    practices = fields.Nested(PracticesSettings, load_default=lambda: PracticesSettings().load({}))  # 721


def settings_path(config: dict | None = None) -> Path:
    path = os.environ.get("SCORING_CONFIG") or (config or {}).get("SCORING_CONFIG") or DEFAULT_PATH
    return Path(path)


def parse_settings(raw: dict | None) -> dict:
    try:
        return ScoringSettings().load(raw or {})
    except ValidationError as exc:
        raise ValueError(f"scoring configuration is invalid: {exc.messages}") from exc


@lru_cache(maxsize=8)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle) or {}
    if "extension_moves_deadline" in (raw.get("standard") or {}):
        raise ValueError(f"{path}: standard.extension_moves_deadline is a platform-wide setting now — "
                         f"set {on_time.SETTING} in config/platform.yaml (or the environment), which "
                         "dispatch reads too")
    return parse_settings(raw)


def load_settings(config: dict | None = None) -> dict:
    """The validated scoring settings (cached per file; treat as read-only), with
    ``standard.extension_moves_deadline`` from the platform-wide ``EXTENSION_MOVES_DEADLINE`` of
    ``config`` (the service's platform config; without one, config/platform.yaml and the
    environment) — the value dispatch judges 按期 by (shared/on_time.py)."""
    settings = _load(str(settings_path(config)))
    platform = config if config and on_time.SETTING in config else load_config()
    moves = on_time.extension_moves_deadline(platform)
    if moves == settings["standard"]["extension_moves_deadline"]:
        return settings
    return {**settings, "standard": {**settings["standard"], "extension_moves_deadline": moves}}
