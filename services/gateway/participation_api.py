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

from services.intake.stalls import PermitSchema
from services.participation.schemas import CitizenSchema, RedeemSchema, ReviewSchema, ShopSchema

from .auth import COMMAND, READ_ALL, Forbidden, NotFound
from .http import PUBLIC, call, endpoint, error_response, json_body, json_response, load, path_id

STAFF = READ_ALL + ("unit",)
INVALID = "输入有误，请检查标出的字段 (invalid input)"


def _answer(result: dict, created_status: int = 200):
    if result.get("ok"):
        body = {key: value for key, value in result.items() if key != "ok"}
        return json_response(body, created_status if result.get("created", True) else 200)
    extra = {key: value for key, value in result.items()
             if key not in ("ok", "status", "message", "fields")}
    return error_response(result.get("status", 400), result.get("message", "请求被拒绝"),
                          result.get("fields"), **extra)


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
    @endpoint(("community",), write=True)
    def post_community_review(self, request, principal):
        data = json_body(request)
        load(ReviewSchema(), data)
        return _answer(call(self.participation, "submit_review", principal.actor_id,
                            principal.unit_id or "", data), 201)

    @http("GET", "/api/community-reviews")
    @endpoint(READ_ALL + ("unit", "community"))
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
    @endpoint(PUBLIC)
    def get_points_catalogue(self, request, principal):
        return json_response({"items": call(self.participation, "catalogue")})

    @http("GET", "/api/points")
    @endpoint(COMMAND + ("citizen", "leader"))
    def get_points(self, request, principal):
        who = _citizen(principal, {key: request.args.get(key) for key in ("account_id", "phone")})
        return _answer(call(self.participation, "points", who))

    @http("POST", "/api/points/redemptions")
    @endpoint(COMMAND + ("citizen",), write=True)
    def post_redemption(self, request, principal):
        data = json_body(request)
        who = _citizen(principal, data)
        command = {key: data[key] for key in ("item_code", "quantity", "request_id") if key in data}
        load(RedeemSchema(), command)
        return _answer(call(self.participation, "redeem", who, command), 201)

    # ---------------------------------------------------------------- 四定 stall permits (intake's register)
    @http("GET", "/api/stall-permits")
    @endpoint(STAFF)
    def get_stall_permits(self, request, principal):
        return json_response({"items": call(self.intake, "list_stall_permits")})

    @http("POST", "/api/stall-permits")
    @endpoint(COMMAND + ("unit",), write=True)
    def post_stall_permit(self, request, principal):
        data = json_body(request)
        load(PermitSchema(), data)
        result = call(self.intake, "register_stall_permit", data)
        if result.get("status") != "registered":
            return error_response(400, INVALID, result.get("errors"))
        return json_response(result, 201)

    # ---------------------------------------------------------------- 门前三包 shops
    @http("GET", "/api/shops")
    @endpoint(STAFF)
    def get_shops(self, request, principal):
        return json_response({"items": call(self.participation, "list_shops")})

    @http("POST", "/api/shops")
    @endpoint(COMMAND + ("unit",), write=True)
    def post_shop(self, request, principal):
        data = json_body(request)
        load(ShopSchema(), data)
        return _answer(call(self.participation, "register_shop", data), 201)

    @http("GET", "/api/shops/<string:shop_id>")
    @endpoint(STAFF)
    def get_shop(self, request, principal, shop_id):
        path_id(shop_id, "店铺")
        shop = call(self.participation, "shop", shop_id)
        if shop is None:
            raise NotFound(f"没有店铺 {shop_id} (not found)")
        return json_response(shop)

    # ---------------------------------------------------------------- 一码智管
    @http("GET", "/api/components/<string:object_code>/qrcode.png")
    @endpoint(PUBLIC)
    def get_component_qrcode(self, request, principal, object_code):
        from services.participation import qrcodes
        from shared.refdata import load_district

        from .doors import public_base_url
        if object_code not in load_district().components:
            raise NotFound(f"没有部件 {object_code[:32]} (not found)")
        base = public_base_url(self.config)          # never the Host header (doors.py)
        buffer = io.BytesIO()
        qrcodes.qr_image(qrcodes.component_url(base, object_code)).save(buffer, format="PNG")
        return Response(buffer.getvalue(), mimetype="image/png")


__all__ = ["ParticipationApi", "Forbidden"]
