"""participation service: thin nameko entrypoints over services.participation.rules / ledger.

Aggregates (state + outbox in one document, shared/storage.py):
* ``reviews``   — one document per (representative, unit, month): its ``_id`` is the vote, so a
  second vote is a duplicate key, refused atomically;
* ``citizens``  — the point ledger of one citizen (ledger.py);
* ``shops``     — shops registered over the API (the default register is shops.yaml);
* ``frontage_links`` — one per case on a shop's frontage stretch (→ coordination's history).
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

from marshmallow import ValidationError

from shared import storage
from shared.contracts import errors
from shared.health import Heartbeat
from shared.messaging import outbox
from shared.messaging.consumer import consume_reliably
from shared.messaging.relay import OutboxRelay
from shared.messaging.rpc import rpc
from shared.refdata import load_district

from . import ledger, rules
from .schemas import CitizenSchema, RedeemSchema, ReviewSchema, ShopSchema
from .settings import default_shops, load_settings

log = logging.getLogger(__name__)
HIDDEN = {"_outbox": 0, "_applied": 0, "_timers": 0, "_pending": 0, "_lease": 0, "_version": 0,
          "_next_due": 0, "_timer_lease": 0, "_due_ms": 0, "_timer_set": 0, "_timer_holder": 0}


def ok(**body) -> dict:
    return {"ok": True, **body}


def refused(status: int, message: str, fields=None, **details) -> dict:
    """Raised as the error kind of ``status`` (shared/contracts/errors.py): the RPC caller gets it."""
    raise errors.for_status(status)(message, fields, **details)


def _invalid(exc: ValidationError) -> dict:
    return refused(400, "输入有误，请检查标出的字段 (invalid input)", exc.messages)


def _jsonable(value):
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items() if key not in HIDDEN}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    return value


class ParticipationService:
    name = "participation"

    db = storage.MongoDatabase()
    relay = OutboxRelay("reviews", "citizens", "frontage_links")
    heartbeat = Heartbeat()

    # ---------------------------------------------------------------- new cases: points, frontage
    @consume_reliably("participation.case-registered")
    def on_case_registered(self, event: dict):
        case = event["payload"]
        settings = load_settings()
        now = storage.now_utc()
        citizen = rules.citizen_id(case.get("reporter_id"))
        if citizen and case.get("channel") not in ("inspector", "sensor", "road_office"):
            points = rules.points_for(case, settings)
            if points > 0:
                ledger.earn(self.db.citizens, citizen, points, case, case.get("registered_at") or now)
        if rules.frontage_counts(case["class_code"], settings):
            point = case["location"]
            shop = rules.shop_at(self._shops(), point["lon"], point["lat"],
                                 settings["frontage"]["default_width_m"])
            if shop is not None:
                self._link_frontage(shop, case, now)

    def _link_frontage(self, shop: dict, case: dict, now):
        link_id = f"FL-{case['case_id']}"
        doc = {"_id": link_id, "shop_id": shop["shop_id"], "shop_name": shop["name"],
               "licence": shop["licence"], "case_id": case["case_id"], "report_id": case.get("report_id"),
               "class_code": case["class_code"], "location": case["location"],
               "address": case.get("address", ""), "at": case.get("registered_at") or now}
        event = outbox.event("frontage_report_linked", {
            "link_id": link_id, "shop_id": shop["shop_id"], "shop_name": shop["name"],
            "licence": shop["licence"], "case_id": case["case_id"], "report_id": case.get("report_id"),
            "class_code": case["class_code"], "location": case["location"], "at": doc["at"]},
            case["case_id"], f"{link_id}.linked")
        storage.create(self.db.frontage_links, doc, [event])     # False on a redelivery: nothing twice

    # ---------------------------------------------------------------- 社区评议
    @rpc
    def submit_review(self, representative: str, community_code: str, data: dict) -> dict:
        try:
            review = ReviewSchema().load(data)
        except ValidationError as exc:
            return _invalid(exc)
        district = load_district()
        settings = load_settings()
        tz = district.calendar.tz
        now = storage.now_utc()
        period = review["period"] or rules.current_period(now, tz)
        problem = rules.period_problem(period, now, tz, settings["reviews"]["open_months_back"])
        if problem:
            return refused(400, "输入有误，请检查标出的字段 (invalid input)", {"period": [problem]})
        community = rules.community_of(_grids(district), community_code)
        if community is None:
            return refused(403, f"账号未绑定有效社区（{community_code}），不能评议 "
                                "(the account is not bound to a community)")
        unit = district.units.get(review["unit_id"])
        unit = dict(unit, id=review["unit_id"]) if unit else None
        problem = rules.review_problem(community, unit, settings["reviews"]["unit_types"])
        if problem:
            return refused(400, "输入有误，请检查标出的字段 (invalid input)", {"unit_id": [problem]})
        liaison = district.liaison(community_code, representative)          # 社区城管联络员 (Linping)
        if liaison is None and settings["reviews"]["liaisons_only"]:
            return refused(403, "只有本社区的城管联络员可以评议 (only the community's liaison officers "
                                "may review)")
        review_id = rules.review_id(period, representative, review["unit_id"])
        doc = {"_id": review_id, "period": period, "period_start": rules.month_start(period, tz),
               "community_code": community_code, "community_name": community["community_name"],
               "representative": representative, "unit_id": review["unit_id"], "unit_name": unit.get("name", ""),
               "score": review["score"], "comment": review["comment"], "submitted_at": now,
               "liaison": {"name": liaison["name"], "role": liaison["role"]} if liaison else None}
        event = outbox.event("community_review_submitted", {
            key: doc[key] for key in ("period", "period_start", "community_code", "community_name",
                                      "representative", "unit_id", "score", "submitted_at", "comment")}
            | {"review_id": review_id}, review_id, f"{review_id}.submitted")
        if not storage.create(self.db.reviews, doc, [event]):
            existing = self.db.reviews.find_one({"_id": review_id}, HIDDEN)
            return refused(409, f"本周期已评议过该单位（{period}），每位社区代表每个单位每期一票 "
                                "(one vote per representative per unit per period)",
                           {"unit_id": ["本期已评议"]}, review=_jsonable(existing))
        return ok(review=_jsonable(storage.public(doc)))

    @rpc
    def list_reviews(self, period: str | None = None, unit_id: str | None = None,
                     community_code: str | None = None) -> dict:
        query = {key: value for key, value in (("period", period), ("unit_id", unit_id),
                                               ("community_code", community_code)) if value}
        rows = [_jsonable(doc) for doc in self.db.reviews.find(query, HIDDEN).sort("_id", 1).limit(2000)]
        summary: dict = {}
        for row in rows:
            item = summary.setdefault((row["period"], row["unit_id"]), {
                "period": row["period"], "unit_id": row["unit_id"], "unit_name": row.get("unit_name", ""),
                "reviews": 0, "total": 0})
            item["reviews"] += 1
            item["total"] += row["score"]
        units = [dict(item, average=round(item["total"] / item["reviews"], 2)) for item in summary.values()]
        return ok(items=rows, units=sorted(units, key=lambda u: (u["period"], -u["average"], u["unit_id"])))

    # ---------------------------------------------------------------- 积分
    @rpc
    def catalogue(self) -> list:
        return list(load_settings()["catalogue"])

    @rpc
    def points(self, citizen: dict) -> dict:
        try:
            who = rules.citizen_from_query(**CitizenSchema().load(citizen))
        except ValidationError as exc:
            return _invalid(exc)
        doc = self.db.citizens.find_one({"_id": who}, HIDDEN)
        if doc is None:
            return ok(citizen_id=who, balance=0, earned=0, redeemed=0, entries=[])
        return ok(citizen_id=who, balance=doc["balance"], earned=doc["earned"], redeemed=doc["redeemed"],
                  entries=_jsonable(doc["entries"]))

    @rpc
    def redeem(self, citizen: dict, data: dict) -> dict:
        try:
            who = rules.citizen_from_query(**CitizenSchema().load(citizen))
            command = RedeemSchema().load(data)
        except ValidationError as exc:
            return _invalid(exc)
        item = rules.catalogue_item(load_settings(), command["item_code"])
        if item is None:
            return refused(400, "输入有误，请检查标出的字段 (invalid input)",
                           {"item_code": ["兑换目录中没有该项目 (not in the catalogue)"]})
        request_id = command["request_id"] or uuid.uuid4().hex[:16]
        result = ledger.redeem(self.db.citizens, who, item, command["quantity"], request_id, storage.now_utc())
        if result["status"] == "insufficient":
            return refused(409, result["reason"], {"item_code": [result["reason"]]}, balance=result["balance"])
        return ok(citizen_id=who, balance=result["balance"], entry=_jsonable(result["entry"]),
                  created=result["status"] == "redeemed")

    # ---------------------------------------------------------------- 门前三包
    def _shops(self) -> list[dict]:
        shops = {shop["shop_id"]: shop for shop in default_shops()}
        for doc in self.db.shops.find({}, HIDDEN):
            shops[doc["_id"]] = {key: value for key, value in doc.items() if key != "_id"}
        return list(shops.values())

    @rpc
    def register_shop(self, data: dict, registered_by: str | None = None) -> dict:
        """Add or replace a shop. ``registered_by``: the unit registering it (None: the command
        centre); a unit never replaces another unit's shop."""
        try:
            shop = ShopSchema().load(data)
        except ValidationError as exc:
            return _invalid(exc)
        existing = self.db.shops.find_one({"_id": shop["shop_id"]})
        if not (existing is None or registered_by is None or existing.get("registered_by") == registered_by):
            return {"ok": False, "status": 403, "message": "此店铺已由其他单位登记，不能替换 (not yours to replace)",
                    "fields": None}
        shop["registered_by"] = registered_by
        shop["registered_at"] = storage.now_utc()
        self.db.shops.replace_one({"_id": shop["shop_id"]}, {"_id": shop["shop_id"], **shop}, upsert=True)
        return ok(shop=_jsonable(shop))

    @rpc
    def list_shops(self) -> list:
        return _jsonable(sorted(self._shops(), key=lambda shop: shop["shop_id"]))

    @rpc
    def shop(self, shop_id: str) -> dict | None:
        found = next((shop for shop in self._shops() if shop["shop_id"] == shop_id), None)
        if found is None:
            return None
        links = list(self.db.frontage_links.find({"shop_id": shop_id}, HIDDEN).sort("at", 1).limit(500))
        return _jsonable(dict(found, reports=links))


def _grids(district):
    grids = district.grids
    return list(grids.values()) if isinstance(grids, dict) else list(grids)
