"""Inputs of the participation service: 社区评议 reviews, 积分 redemptions, 门前三包 shops. HTTP
bodies arrive through the gateway, which validates them with these; the service validates again
(services/participation/schemas.py re-exports this module)."""
from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates, validates_schema

from ..base import Tolerant
from ..parties import party_problem

CODE = validate.Regexp(r"^[A-Za-z0-9_.\-]{1,64}$", error="只允许字母、数字和 _ . -")


class ReviewSchema(Tolerant):
    """社区评议: a representative rates one unit for one month (0–100)."""
    unit_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    period = fields.String(load_default=None, allow_none=True,
                           metadata={"description": "YYYY-MM；缺省为本月 (default: this month)"})
    score = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=100))
    comment = fields.String(load_default="", validate=validate.Length(max=500))


class RedeemSchema(Tolerant):
    item_code = fields.String(required=True, validate=CODE)
    quantity = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=100))
    request_id = fields.String(load_default=None, allow_none=True, validate=CODE,
                               metadata={"description": "幂等键：同一兑换重发不会重复扣分"})


class CitizenSchema(Tolerant):
    account_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))
    phone = fields.String(load_default=None, allow_none=True,
                          validate=validate.Regexp(r"^[0-9+\- ]{5,20}$", error="电话号码格式不正确"))

    @validates_schema
    def one_of(self, data, **kwargs):
        if not data.get("account_id") and not data.get("phone"):
            raise ValidationError("需要 account_id 或 phone (account_id or phone is required)", "account_id")


def _position(value):
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise ValidationError("坐标应为 [经度, 纬度] (a position is [lon, lat])")
    lon, lat = value
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationError("经纬度超出范围 (lon/lat out of range)")


class StretchSchema(Tolerant):
    """门前三包 stretch: a line along the street (buffered by width_m) or a polygon."""
    line = fields.List(fields.Raw(validate=_position), load_default=None, allow_none=True,
                       validate=validate.Length(min=2, max=50))
    width_m = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0.5, max=30))
    polygon = fields.List(fields.Raw(validate=_position), load_default=None, allow_none=True,
                          validate=validate.Length(min=4, max=200))

    @validates_schema
    def exactly_one(self, data, **kwargs):
        if bool(data.get("line")) == bool(data.get("polygon")):
            raise ValidationError("需要 line 或 polygon 之一 (give a line or a polygon)", "line")
        if data.get("polygon") and list(data["polygon"][0]) != list(data["polygon"][-1]):
            raise ValidationError("多边形首尾坐标应相同 (a polygon ring must be closed)", "polygon")


class ShopSchema(Tolerant):
    shop_id = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    licence = fields.String(required=True, metadata={"description": "统一社会信用代码 (18 位)"})
    address = fields.String(load_default="", validate=validate.Length(max=200))
    frontage = fields.Nested(StretchSchema, required=True)
    contact = fields.String(load_default="", validate=validate.Length(max=100))

    @validates("licence")
    def good_licence(self, value, **kwargs):
        problem = party_problem("licence", value)
        if problem:
            raise ValidationError(problem)
