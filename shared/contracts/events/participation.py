"""Events participation publishes on ``participation.events`` (community reviews, citizen
points, stall permits, frontage duties)."""
from marshmallow import fields, validate

from ._fields import Point, Tolerant, ident, when


class CommunityReviewSubmitted(Tolerant):
    """社区评议: one representative's rating of one unit for one period (scoring counts it)."""
    review_id = ident(required=True)
    period = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-\d{2}$"))   # YYYY-MM
    period_start = when()             # the period's first local midnight (scoring files it there)
    community_code = fields.String(required=True)     # 12 digits: district + street + community
    community_name = fields.String(load_default="")
    representative = fields.String(required=True)     # the account's staff number or key id
    unit_id = fields.String(required=True)
    score = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    submitted_at = when()
    comment = fields.String(load_default="")


class PointsEarned(Tolerant):
    """积分: a citizen's report became a valid case."""
    entry_id = ident(required=True)
    citizen_id = fields.String(required=True)         # account_id:<id> | phone:<number>
    points = fields.Integer(required=True, validate=validate.Range(min=1))
    balance = fields.Integer(required=True, validate=validate.Range(min=0))
    case_id = ident(required=True)
    report_id = ident(required=True)
    class_code = fields.String(load_default=None, allow_none=True)
    at = when()


class PointsRedeemed(Tolerant):
    entry_id = ident(required=True)
    citizen_id = fields.String(required=True)
    points = fields.Integer(required=True, validate=validate.Range(min=1))
    balance = fields.Integer(required=True, validate=validate.Range(min=0))
    item_code = fields.String(required=True)
    quantity = fields.Integer(load_default=1)
    at = when()


class FrontageReportLinked(Tolerant):
    """门前三包: a case on a shop's frontage stretch, for the shop's violation history."""
    link_id = ident(required=True)
    shop_id = ident(required=True)
    shop_name = fields.String(load_default="")
    licence = fields.String(required=True)            # 统一社会信用代码 (graduated enforcement's party)
    case_id = ident(required=True)
    report_id = ident(load_default=None, allow_none=True)
    class_code = fields.String(required=True)
    location = fields.Nested(Point, required=True)
    at = when()


SCHEMAS = {
    "community_review_submitted": CommunityReviewSubmitted,
    "points_earned": PointsEarned,
    "points_redeemed": PointsRedeemed,
    "frontage_report_linked": FrontageReportLinked,
}
