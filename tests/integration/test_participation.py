"""Participation end to end on the real broker and store: citizen points (积分), community
reviews (社区评议) into scoring, stall permits (四定) at filing time, frontage duties (门前三包)
into graduated enforcement, and the QR code endpoint (一码智管)."""
from __future__ import annotations

import concurrent.futures
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from services.enforcement_coordination.service import CoordinationService
from services.gateway import auth
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from services.participation import rules
from services.participation.service import ParticipationService
from services.scoring.service import ScoringService
from shared import clock, storage
from tests.conftest import free_port
from tests.helpers import wait_until

TZ = ZoneInfo("Asia/Shanghai")
PLACES = [{"lon": 106.3904, "lat": 29.8338}, {"lon": 106.394165, "lat": 29.833618},
          {"lon": 106.3902, "lat": 29.830084}]
OUTSIDE = {"lon": 106.0, "lat": 29.0}
SHOP1_LICENCE = "91500109MA5U7X1A22"
COMMUNITY = "500190001001"                      # 天生路社区, 天生街道


@pytest.fixture(autouse=True)
def reset_clock():
    clock.reset()
    yield
    clock.reset()


class Client:
    def __init__(self, url, key=None):
        self.url, self.key = url, key

    def _headers(self):
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def get(self, path, **kw):
        return requests.get(self.url + path, headers=self._headers(), timeout=30, **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, headers=self._headers(), timeout=30, **kw)

    def as_(self, key):
        return Client(self.url, key)


@pytest.fixture
def platform(container_factory, config, db):
    cfg = dict(config, TIMER_POLL_SECONDS=0.1)
    for service in (IntakeService, CoordinationService, ScoringService, ParticipationService):
        container_factory(service, cfg).start()
    port = free_port()
    container_factory(GatewayService, dict(cfg, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    accounts = db("gateway").accounts
    keys = {"operator": auth.new_key(accounts, "值班员", "operator"),
            "unit": auth.new_key(accounts, "城管", "unit", unit_id="dept.chengguan"),
            "rep1": auth.new_key(accounts, "社区代表 甲", "community", unit_id=COMMUNITY, person_id="rep-1"),
            "rep2": auth.new_key(accounts, "社区代表 乙", "community", unit_id=COMMUNITY, person_id="rep-2")}
    client = Client(f"http://127.0.0.1:{port}", keys["operator"])
    client.keys, client.config = keys, cfg
    return client


def report(api, class_code, place, phone, **extra):
    body = {"class_code": class_code, "location": place, "address": "天生路", "description": "测试上报",
            "reporter": {"name": "市民", "phone": phone}, "channel": "web", **extra}
    return api.post("/api/reports", json=body)


def balance(api, phone):
    return api.get("/api/points", params={"phone": phone}).json()


def test_points_for_valid_cases_only_and_redemption_never_below_zero(platform):
    first = report(platform, "E0101", PLACES[0], "13900000001")
    assert first.status_code == 201 and first.json()["status"] == "registered", first.text
    dup = report(platform, "E0101", PLACES[0], "13900000002")          # same place and class
    assert dup.json()["status"] == "duplicate"
    rejected = report(platform, "E0101", OUTSIDE, "13900000002")       # outside the district
    assert rejected.status_code == 422 and rejected.json()["error"]["code"] == "refused"     # 不予立案
    valid = report(platform, "E0102", PLACES[1], "13900000002")
    assert valid.json()["status"] == "registered"
    for place in PLACES[1:]:
        assert report(platform, "E0105", place, "13900000001").json()["status"] == "registered"

    a = wait_until(lambda: (b := balance(platform, "13900000001"))["balance"] == 30 and b, what="30 points")
    assert [e["case_id"] for e in a["entries"]] and all(e["points"] == 10 for e in a["entries"])
    b = wait_until(lambda: (x := balance(platform, "13900000002"))["balance"] == 10 and x, what="10 points")
    # the duplicate and the rejected report earned nothing: one entry only, for the valid case
    assert [e["case_id"] for e in b["entries"]] == [valid.json()["case_id"]]

    catalogue = platform.get("/api/points/catalogue").json()["items"]
    assert {"code": "tissue", "name": "环保纸巾一提", "points": 30} in catalogue
    spent = platform.post("/api/points/redemptions", json={"phone": "13900000001", "item_code": "tissue",
                                                           "request_id": "rq-1"})
    assert spent.status_code == 201 and spent.json()["balance"] == 0, spent.text
    again = platform.post("/api/points/redemptions", json={"phone": "13900000001", "item_code": "tissue",
                                                           "request_id": "rq-1"})
    assert again.status_code == 200 and again.json()["balance"] == 0           # idempotent
    broke = platform.post("/api/points/redemptions", json={"phone": "13900000001", "item_code": "tissue"})
    assert broke.status_code == 409 and broke.json()["error"]["balance"] == 0
    bad = platform.post("/api/points/redemptions", json={"phone": "13900000001", "item_code": "yacht"})
    assert bad.status_code == 400 and "item_code" in bad.json()["error"]["fields"]
    ledger = balance(platform, "13900000001")
    assert [e["points"] for e in ledger["entries"]] == [10, 10, 10, -30] and ledger["balance"] == 0


def test_concurrent_redemptions_over_http_never_overdraw(platform, db):
    citizens = db("participation").citizens
    from services.participation import ledger
    case = {"case_id": "C-concurrent", "report_id": "rpt-concurrent", "class_code": "E0101"}
    ledger.earn(citizens, "phone:13911112222", 100, case, storage.now_utc())

    def redeem(n):
        return platform.post("/api/points/redemptions", json={
            "phone": "13911112222", "item_code": "tissue", "request_id": f"c-{n}"}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(redeem, range(8)))
    assert sorted(codes) == [201, 201, 201, 409, 409, 409, 409, 409]       # 100 // 30 = 3
    doc = citizens.find_one({"_id": "phone:13911112222"})
    assert doc["balance"] == 10 and sum(e["points"] for e in doc["entries"]) == 10


def test_community_reviews_one_vote_and_scoring(platform):
    rep1, rep2 = platform.as_(platform.keys["rep1"]), platform.as_(platform.keys["rep2"])
    period = rules.current_period(storage.now_utc(), "Asia/Shanghai")
    ok = rep1.post("/api/community-reviews", json={"unit_id": "street.tianshengjie", "score": 90, "comment": "响应快"})
    assert ok.status_code == 201, ok.text
    assert ok.json()["review"]["period"] == period
    twice = rep1.post("/api/community-reviews", json={"unit_id": "street.tianshengjie", "score": 10})
    assert twice.status_code == 409
    other_street = rep1.post("/api/community-reviews", json={"unit_id": "street.beiquan", "score": 50})
    assert other_street.status_code == 400 and "unit_id" in other_street.json()["error"]["fields"]
    bad = rep1.post("/api/community-reviews", json={"unit_id": "dept.chengguan", "score": 101})
    assert bad.status_code == 400 and "score" in bad.json()["error"]["fields"]
    assert rep2.post("/api/community-reviews", json={"unit_id": "street.tianshengjie", "score": 80}).status_code == 201
    assert platform.post("/api/community-reviews", json={"unit_id": "dept.chengguan", "score": 80}).status_code == 403

    # concurrent double vote by one representative: exactly one is saved
    def vote(score):
        return rep2.post("/api/community-reviews", json={"unit_id": "dept.chengguan", "score": score}).status_code
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(vote, [60, 61, 62, 63])) == [201, 409, 409, 409]

    listed = platform.get("/api/community-reviews", params={"period": period}).json()
    street = next(u for u in listed["units"] if u["unit_id"] == "street.tianshengjie")
    assert street["reviews"] == 2 and street["average"] == 85.0

    with ClusterRpcProxy(platform.config) as rpc:
        def street_entry():
            answer = rpc.scoring.indicators(period, "unit", "street.tianshengjie")
            entry = answer["entry"]
            return entry if entry and entry["counts"]["reviews"] == 2 else None
        entry = wait_until(street_entry, what="scoring counted the reviews")
    indicator = entry["indicators"]["community_review_rate"]
    assert (indicator["numerator"], indicator["denominator"], indicator["value"]) == (170, 200, 0.85)
    assert entry["composite"]["parts"]["community_review_rate"] == {"weight": 10.0, "score": 0.85}
    assert entry["composite"]["value"] == 85.0            # the only indicator with data this period


def _advance_to_local(hour, minute=0):
    now = storage.now_utc().astimezone(TZ)
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    clock.advance(seconds=(target - now).total_seconds())


def test_stall_permit_closes_a_report_at_a_permitted_stall(platform):
    _advance_to_local(20)                                   # SP-2026-001: 18:00–23:00, radius 10 m
    at_stall = {"lon": 106.39200, "lat": 29.83505}          # about 5.6 m from the permitted point
    closed = report(platform, "E0501", at_stall, "13900000009")
    refusal = closed.json()["error"]
    assert closed.status_code == 422 and refusal["reason_code"] == "permitted_stall", closed.text
    assert "SP-2026-001" in refusal["message"] and "许可" in refusal["service_notice"]
    away = report(platform, "E0501", {"lon": 106.39200, "lat": 29.83530}, "13900000009")    # ~33 m
    assert away.json()["status"] == "registered"
    crowded = report(platform, "E0501", at_stall, "13900000007", attributes={"stall_count": 4})   # 定量 1
    assert crowded.status_code == 201 and crowded.json()["status"] in ("registered", "duplicate"), crowded.text
    # a new permit through the API, then a report at it inside its window
    permit = {"permit_id": "SP-T-1", "holder": "测试摊", "goods": "花卉", "quantity": 1,
              "place": {"point": [106.3930, 29.8340], "radius_m": 5}, "window": {"start": "19:00", "end": "21:00"},
              "valid_from": "2020-01-01", "valid_to": "2099-12-31"}
    assert platform.post("/api/stall-permits", json=dict(permit, place={"point": [106.3930, 29.8340]})).status_code == 400
    assert platform.post("/api/stall-permits", json=permit).status_code == 201
    assert any(p["permit_id"] == "SP-T-1" for p in platform.get("/api/stall-permits").json()["items"])
    hawker = report(platform, "E0502", {"lon": 106.3930, "lat": 29.8340}, "13900000009")
    assert hawker.status_code == 422 and hawker.json()["error"]["reason_code"] == "permitted_stall"
    clock.advance(hours=1)                                  # 21:00: the window has ended
    late = report(platform, "E0502", {"lon": 106.3930, "lat": 29.8340}, "13900000008")
    assert late.json()["status"] == "registered"


def test_frontage_report_counts_in_the_shops_history(platform):
    on_stretch = {"lon": 106.39015, "lat": 29.83403}       # about 3.3 m off shop-tsl-001's frontage line
    filed = report(platform, "E0503", on_stretch, "13900000007")
    assert filed.json()["status"] == "registered", filed.text
    case_id = filed.json()["case_id"]
    unit = platform.as_(platform.keys["unit"])
    history = wait_until(lambda: (h := unit.get(f"/api/enforcement/parties/licence/{SHOP1_LICENCE}").json())
                         .get("violations") and h, what="the shop's history")
    assert [(v["violation_id"], v["source"]) for v in history["violations"]] == [(f"FR-{case_id}", "frontage_report")]
    shop = platform.get("/api/shops/shop-tsl-001").json()
    assert [r["case_id"] for r in shop["reports"]] == [case_id]
    # graduated enforcement now sees a prior violation of E0503: not a first one any more
    decided = platform.post("/api/enforcement/violations", json={      # found on patrol: no case, the centre files
        "party": {"kind": "licence", "number": SHOP1_LICENCE, "name": "天生路老火锅店"},
        "class_code": "E0503", "severity": "minor", "corrected": True, "officer": "执法队员 张伟",
        "violation_id": "fv-1"})
    assert decided.status_code == 201, decided.text
    assert decided.json()["violation"]["prior"] == 1 and decided.json()["violation"]["exempt"] is False
    # a report off every stretch is linked to no shop
    elsewhere = report(platform, "E0503", PLACES[2], "13900000007")
    assert elsewhere.json()["status"] == "registered"
    registered = platform.post("/api/shops", json={
        "shop_id": "shop-new", "name": "新店", "licence": "123", "frontage": {"line": [[106.39, 29.83]]}})
    assert registered.status_code == 400 and {"licence", "frontage"} <= set(registered.json()["error"]["fields"])


def test_component_qr_code_endpoint_decodes_to_its_component(platform):
    zxingcpp = pytest.importorskip("zxingcpp")
    from io import BytesIO

    from PIL import Image
    png = platform.get("/api/components/5001900101000001/qrcode.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    texts = [r.text for r in zxingcpp.read_barcodes(Image.open(BytesIO(png.content)))]
    assert texts == [f"{platform.url}/inspector?component=5001900101000001"]
    assert platform.get("/api/components/0000/qrcode.png").status_code == 404
