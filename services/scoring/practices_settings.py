"""The settings of the practices' indicators (config/scoring.yaml, key ``practices``): the 721
target and how a disposal without an enforcement decision is classed. See services/scoring/practices.py."""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.contracts.base import Tolerant

MODES = ("service", "management", "enforcement")
_share = validate.Range(min=0, max=100)


class _Target(Tolerant):
    service = fields.Float(load_default=70, validate=_share)
    management = fields.Float(load_default=20, validate=_share)
    enforcement = fields.Float(load_default=10, validate=_share)

    @validates_schema
    def sums_to_100(self, data, **kwargs):
        if abs(sum(data.values()) - 100) > 1e-6:
            raise ValidationError("721 目标之和须为 100 (the 721 target must add up to 100)")


class _Mode721(Tolerant):
    target = fields.Nested(_Target, load_default=lambda: _Target().load({}))
    # a closed case with no enforcement decision: classed by its class, event majors listed here
    # (宣传广告 02, 施工管理 03, 街面秩序 05) are 管理 (management), everything else 服务 (service)
    management_event_majors = fields.List(fields.String(validate=validate.Regexp(r"^\d{2}$")),
                                          load_default=lambda: ["02", "03", "05"])
    tolerance_points = fields.Float(load_default=10, validate=validate.Range(min=0, max=100))


class PracticesSettings(Tolerant):
    mode_721 = fields.Nested(_Mode721, load_default=lambda: _Mode721().load({}))
