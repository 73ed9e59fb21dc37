"""Input schemas of the participation service: the API (reviews, redemptions, shops) is the
contract in shared/contracts/api/participation.py, re-exported here; the settings file's schema
is participation's own."""
from __future__ import annotations

from marshmallow import fields, validate

from shared.contracts.api.participation import (  # noqa: F401
    CODE, CitizenSchema, RedeemSchema, ReviewSchema, ShopSchema, StretchSchema)
from shared.contracts.base import Tolerant


class _Points(Tolerant):
    per_valid_case = fields.Integer(required=True, validate=validate.Range(min=0))
    urgent_bonus = fields.Integer(load_default=0, validate=validate.Range(min=0))
    by_class = fields.Dict(keys=fields.String(), values=fields.Integer(validate=validate.Range(min=0)),
                           load_default=dict)


class _Item(Tolerant):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True)
    points = fields.Integer(required=True, validate=validate.Range(min=1))


class _Reviews(Tolerant):
    open_months_back = fields.Integer(load_default=1, validate=validate.Range(min=0, max=12))
    unit_types = fields.List(fields.String(), load_default=lambda: ["street", "town", "department", "operator"])
    liaisons_only = fields.Boolean(load_default=False)   # only the 社区城管联络员 may review (Linping)


class _Frontage(Tolerant):
    classes = fields.List(fields.String(), load_default=list)
    default_width_m = fields.Float(load_default=5, validate=validate.Range(min=0.5, max=30))


class SettingsSchema(Tolerant):
    points = fields.Nested(_Points, required=True)
    catalogue = fields.List(fields.Nested(_Item), load_default=list)
    reviews = fields.Nested(_Reviews, load_default=lambda: _Reviews().load({}))
    frontage = fields.Nested(_Frontage, load_default=lambda: _Frontage().load({}))
