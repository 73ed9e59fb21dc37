"""Participation over HTTP: 社区评议, 积分, 四定 stall permits, 门前三包 shops, 一码智管 QR codes.

  POST /api/community-reviews                 a community representative rates a unit for a month
  GET  /api/community-reviews?period=&unit_id=   reviews and per-unit averages
  GET  /api/points/catalogue                  what points buy (public)
  GET  /api/points?account_id=…|phone=…       a citizen's balance and append-only ledger
  POST /api/points/redemptions                redeem against the catalogue (never below zero)
  GET  /api/stall-permits                     the 四定 register (intake's)
  POST /api/stall-permits                     register / replace a permit
  GET  /api/shops   POST /api/shops   GET /api/shops/<shop_id>   门前三包 shops and their reports
  GET  /api/components/<object_code>/qrcode.png   the component's QR code (一码智管)

Who may: a ``community`` account (its ``unit_id`` is its 12-digit community code) reviews; the
command centre (operator, admin) reads and redeems for any citizen, a ``citizen`` account only
for itself (its person id is its Open311 account_id); permits and shops are written by the
command centre and units, read by every staff role.
"""
from __future__ import annotations

import io

from nameko.web.handlers import http
from werkzeug.wrappers import Response

from shared import geo
from shared.contracts.api.intake import PermitSchema
from shared.contracts.api.participation import CitizenSchema, RedeemSchema, ReviewSchema, ShopSchema

from .access import Access, command_and, public, readers_and
from .auth import Forbidden, NotFound
from .http import call, endpoint, json_body, json_response, load, path_id

INVALID = "输入有误，请检查标出的字段 (invalid input)"

# what each endpoint acts on, and the relation each role needs (services/gateway/access.py)
REVIEW = Access(None, {"community": "any"}, write=True)
REVIEWS = Access(None, readers_and(unit="any", community="any"))          # filtered to its own
POINTS = Access(None, command_and(citizen="self", leader="reader"))
REDEEM = Access(None, command_and(citizen="self"), write=True)
STAFF_LIST = Access(None, readers_and(unit="any"))
PERMIT = Access("permit", command_and(unit="territory"), write=True, label="四定摊点许可")
SHOP = Access("shop", command_and(unit="territory"), write=True, label="门前三包店铺")
SHOP_READ = Access("shop", readers_and(unit="any"), label="店铺")


def territory_units(shape) -> list:
    """The streets and towns whose grids the shape touches (a shape in a gap: the nearest one)."""
    from shared.refdata import load_district
    district = load_district()
    if shape is None or shape.is_empty:
        return []
    units = sorted({grid["street_id"] for grid in district.grids if grid["geometry"].intersects(shape)})
    if not units:
        point = shape.representative_point()
        units = [district.nearest_street(point.x, point.y)]
    return units


def _permit_shape(place: dict):
    from shapely.geometry import Polygon
    if place.get("polygon"):
        return Polygon(place["polygon"])
    lon, lat = place["point"]
    return geo.disc(lon, lat, float(place["radius_m"]))


def _shop_shape(frontage: dict):
    from shapely.geometry import LineString, Polygon
    if frontage.get("polygon"):
        return Polygon(frontage["polygon"])
    return LineString(frontage["line"]).buffer(float(frontage.get("width_m") or 5.0) / geo.METRES_PER_DEGREE)


from .http import ok_response as _answer  # noqa: E402  (a success as it is; errors: http.ERRORS)


def _citizen(principal, data: dict) -> dict:
    """The citizen a points request is about: a citizen account is always itself."""
    if principal.role == "citizen":
        return {"account_id": principal.actor_id}
    wanted = {key: data.get(key) for key in ("account_id", "phone") if data.get(key)}
    load(CitizenSchema(), wanted)
    return wanted


def _docs() -> dict:
    from .openapi import Doc
    shop_path = {"shop_id": {"type": "string", "description": "店铺编号，如 shop-tsl-001"}}
    return {
        ("POST", "/api/community-reviews"): Doc(
            "社区评议 A community representative rates a unit (0–100) for a month", "participation",
            "一人一单位一期一票（重复为 409）。period = YYYY-MM，缺省本月。", body=ReviewSchema(), ok=201,
            errors=(400, 409)),
        ("GET", "/api/community-reviews"): Doc(
            "社区评议结果 Reviews and per-unit averages (?period=&unit_id=)", "participation"),
        ("GET", "/api/points/catalogue"): Doc("积分兑换目录 The redemption catalogue", "participation"),
        ("GET", "/api/points"): Doc(
            "市民积分 A citizen's balance and ledger (?account_id= | ?phone=)", "participation",
            query=CitizenSchema(), errors=(400,)),
        ("POST", "/api/points/redemptions"): Doc(
            "积分兑换 Redeem points (never below zero; request_id makes it idempotent)", "participation",
            body=RedeemSchema(), ok=201, errors=(400, 409)),
        ("GET", "/api/stall-permits"): Doc("四定摊点登记 The stall-permit register", "participation"),
        ("POST", "/api/stall-permits"): Doc(
            "登记四定摊点 Register or replace a stall permit", "participation", body=PermitSchema(), ok=201,
            errors=(400,)),
        ("GET", "/api/shops"): Doc("门前三包店铺 Shops with frontage duties", "participation"),
        ("POST", "/api/shops"): Doc(
            "登记门前三包店铺 Register or replace a shop and its frontage stretch", "participation",
            body=ShopSchema(), ok=201, errors=(400,)),
        ("GET", "/api/shops/<string:shop_id>"): Doc(
            "店铺及其责任区上报 A shop and the cases on its frontage", "participation", path=shop_path,
            errors=(404,)),
        ("GET", "/api/components/<string:object_code>/qrcode.png"): Doc(
            "部件二维码 A component's QR code (PNG)", "participation",
            path={"object_code": {"type": "string", "description": "部件编码 (16 digits)"}},
            errors=(404,), content_type="image/png"),
    }


class ParticipationApi:
    """HTTP entrypoints mixed into GatewayService (needs ``self.participation`` and ``self.intake``)."""

    OPENAPI_DOCS = _docs()

    # ---------------------------------------------------------------- 社区评议
    @http("POST", "/api/community-reviews")
    @endpoint(REVIEW)
    def post_community_review(self, request, principal):
        data = json_body(request)
        load(ReviewSchema(), data)
        return _answer(call(self.participation, "submit_review", principal.actor_id,
                            principal.unit_id or "", data), 201)

    @http("GET", "/api/community-reviews")
    @endpoint(REVIEWS)
    def get_community_reviews(self, request, principal):
        period = request.args.get("period") or None
        unit_id = request.args.get("unit_id") or None
        community = None
        if principal.role == "community":
            community = principal.unit_id or "-"
        elif principal.role == "unit":
            unit_id = principal.unit_id
        return _answer(call(self.participation, "list_reviews", period, unit_id, community))

    # ---------------------------------------------------------------- 积分
    @http("GET", "/api/points/catalogue")
    @endpoint(public())
    def get_points_catalogue(self, request, principal):
        return json_response({"items": call(self.participation, "catalogue")})

    @http("GET", "/api/points")
    @endpoint(POINTS)
    def get_points(self, request, principal):
        who = _citizen(principal, {key: request.args.get(key) for key in ("account_id", "phone")})
        return _answer(call(self.participation, "points", who))

    @http("POST", "/api/points/redemptions")
    @endpoint(REDEEM)
    def post_redemption(self, request, principal):
        data = json_body(request)
        who = _citizen(principal, data)
        command = {key: data[key] for key in ("item_code", "quantity", "request_id") if key in data}
        load(RedeemSchema(), command)
        return _answer(call(self.participation, "redeem", who, command), 201)

    # ---------------------------------------------------------------- 四定 stall permits (intake's register)
    @http("GET", "/api/stall-permits")
    @endpoint(STAFF_LIST)
    def get_stall_permits(self, request, principal):
        return json_response({"items": call(self.intake, "list_stall_permits")})

    @http("POST", "/api/stall-permits")
    @endpoint(PERMIT)
    def post_stall_permit(self, request, principal):
        data = json_body(request)
        permit = load(PermitSchema(), data)
        unit = None if principal.sees_all else principal.unit_id
        if unit:                  # inside its own territory, never replacing another's permit
            existing = next((p for p in call(self.intake, "list_stall_permits")
                             if p.get("permit_id") == permit["permit_id"]), None)
            principal.check({"units": territory_units(_permit_shape(permit["place"])),
                             "exists": existing is not None,
                             "registered_by": (existing or {}).get("registered_by")}, found=True)
        return json_response(call(self.intake, "register_stall_permit", data, unit), 201)  # failures: http.ERRORS

    # ---------------------------------------------------------------- 门前三包 shops
    @http("GET", "/api/shops")
    @endpoint(STAFF_LIST)
    def get_shops(self, request, principal):
        return json_response({"items": call(self.participation, "list_shops")})

    @http("POST", "/api/shops")
    @endpoint(SHOP)
    def post_shop(self, request, principal):
        data = json_body(request)
        shop = load(ShopSchema(), data)
        unit = None if principal.sees_all else principal.unit_id
        if unit:                  # inside its own territory, never replacing another's shop
            path_id(shop["shop_id"], "店铺")
            existing = call(self.participation, "shop", shop["shop_id"])
            principal.check({"units": territory_units(_shop_shape(shop["frontage"])),
                             "exists": existing is not None,
                             "registered_by": (existing or {}).get("registered_by")}, found=True)
        return _answer(call(self.participation, "register_shop", data, unit), 201)

    @http("GET", "/api/shops/<string:shop_id>")
    @endpoint(SHOP_READ)
    def get_shop(self, request, principal, shop_id):
        path_id(shop_id, "店铺")
        shop = call(self.participation, "shop", shop_id)
        if shop is None:
            raise NotFound(f"没有店铺 {shop_id} (not found)")
        return json_response(shop)

    # ---------------------------------------------------------------- 一码智管
    @http("GET", "/api/components/<string:object_code>/qrcode.png")
    @endpoint(public())
    def get_component_qrcode(self, request, principal, object_code):
        from shared import qrcodes
        from shared.refdata import load_district

        from .doors import public_base_url
        if object_code not in load_district().components:
            raise NotFound(f"没有部件 {object_code[:32]} (not found)")
        base = public_base_url(self.config)          # never the Host header (doors.py)
        buffer = io.BytesIO()
        qrcodes.qr_image(qrcodes.component_url(base, object_code)).save(buffer, format="PNG")
        return Response(buffer.getvalue(), mimetype="image/png")


__all__ = ["ParticipationApi", "Forbidden"]
