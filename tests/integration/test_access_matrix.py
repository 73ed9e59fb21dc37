"""The access matrix, generated from the endpoints' declarations (services/gateway/access.py):
every declared endpoint × every role × an object of its own and a foreign one, with the status
the declaration implies, on one real platform (intake, dispatch, coordination, scoring,
participation and the gateway on the real broker and store). Then what users reproduced with
the demo keys, each as a test.

Expected, from the declaration alone:
- a role the endpoint does not list → 403;
- a listed role whose relation holds on every object (command centre, readers, any …), or an
  endpoint with no object → allowed (never 401/403/404);
- otherwise its own object → allowed; a foreign one → 404 on reads, 403 on writes.
"""
import itertools

import pytest

from services.gateway import access, openapi
from services.gateway.service import GatewayService
from tests.integration.gateway_auth_support import (  # noqa: F401  (fixture)
    BEIQUAN, BEIQUAN_GRID, INSIDE, TIANSHENG, place_in, platform,
)

COMMUNITY = "500190001001"                      # 天生路社区, 天生街道
LICENCE = "91500109MA5U7X1A22"
# who → (role, which side is its own: "t" 天生街道 / police / this citizen, "b" 北泉街道 / environment)
WHO = {"citizen": ("citizen", "t"), "inspector": ("inspector", None), "operator": ("operator", None),
       "unit": ("unit", "t"), "unit_b": ("unit", "b"), "partner": ("partner", "t"),
       "partner_env": ("partner", "b"), "leader": ("leader", None), "admin": ("admin", None),
       "community": ("community", "t")}
counter = itertools.count(1)


def _permit(side):
    point = [INSIDE["lon"], INSIDE["lat"]] if side == "t" else [SITES["b"]["lon"], SITES["b"]["lat"]]
    return {"permit_id": f"SP-M-{next(counter)}", "holder": "测试摊", "goods": "花卉",
            "place": {"point": point, "radius_m": 3}, "window": {"start": "19:00", "end": "21:00"},
            "valid_from": "2020-01-01", "valid_to": "2099-12-31"}


def _shop(side):
    site = INSIDE if side == "t" else SITES["b"]
    return {"shop_id": f"shop-m-{next(counter)}", "name": "测试店", "licence": LICENCE,
            "frontage": {"line": [[site["lon"], site["lat"]], [site["lon"] + 0.00005, site["lat"]]],
                         "width_m": 3}}


SITES = {}


def samples(objects, who, side):
    """(method, path, body) of each declared endpoint, on the object of ``side``."""
    o = objects[side]
    role = WHO[who][0]
    action = "verify" if role == "inspector" else "accept"
    dept = {"partner": "police", "partner_env": "environment"}.get(who, "police" if side == "t" else "environment")
    return {
        "post_case_action": ("POST", f"/api/cases/{o['case']}/actions/{action}",
                             {"expected_version": 0, "passed": True}),
        "get_case_timeline": ("GET", f"/api/cases/{o['case']}/timeline", None),
        "get_cases": ("GET", "/api/cases", None),
        "get_health": None, "get_openapi": None, "get_grids": None,
        "get_me": ("GET", "/api/me", None),
        "get_queues": ("GET", "/api/queues", None),
        "get_map": ("GET", "/api/map", None),
        "get_stream": ("GET", "/api/stream?last_event_id=x", None),   # not a number: 400 for whoever may listen
        "post_media": ("POST", "/api/media", {}),             # not a photo: 400 for whoever may upload
        "post_report": ("POST", "/api/reports", {"class_code": "E0101", "location": INSIDE,
                                                 "description": "暴露垃圾", "attributes": {"area_m2": 2}}),
        "get_case": ("GET", f"/api/cases/{o['case']}", None),
        "get_operation": ("GET", f"/api/operations/{o['operation']}", None),
        "get_summary": ("GET", "/api/scoring/summary", None),
        "post_operation": ("POST", "/api/operations", {"case_id": o["case"], "departments": ["police"],
                                                       "reason": "需要到场", "request_id": f"m{next(counter)}"}),
        "post_department_reply": ("POST", f"/api/operations/{o['operation']}/replies", {}),
        "list_operations": ("GET", "/api/operations", None),
        "case_operations": ("GET", f"/api/cases/{o['case']}/operations", None),
        "post_update": ("POST", f"/api/operations/{o['operation']}/updates", {"note": "更新"}),
        "post_cancel": ("POST", f"/api/operations/{o['operation']}/cancel",
                        {"reason": "x", "departments": ["nobody"]}),
        "post_close": ("POST", f"/api/operations/{o['operation']}/close", {"note": "x"}),
        "post_leave": ("POST", f"/api/operations/{o['operation']}/departments/{dept}/leave", {}),
        "post_violation": ("POST", "/api/enforcement/violations", {
            "party": {"kind": "plate", "number": f"渝A{10000 + next(counter)}"}, "class_code": "E0501",
            "severity": "minor", "case_id": o["case"]}),
        "get_party": ("GET", "/api/enforcement/parties/plate/渝A12345", None),
        "post_rectification_check": ("POST", f"/api/enforcement/rectifications/{o['order']}/check",
                                     {"corrected": False}),
        "get_indicators": ("GET", "/api/scoring/indicators", None),
        "get_entity_indicators": ("GET", f"/api/scoring/indicators/{o['indicators']}", None),
        "get_rankings": ("GET", "/api/scoring/rankings", None),
        "get_exposure": ("GET", "/api/scoring/exposure", None),
        "list_bulletins": ("GET", "/api/scoring/bulletins", None),
        "get_bulletin": ("GET", "/api/scoring/bulletins/2026-11.pdf", None),
        "post_community_review": ("POST", "/api/community-reviews", {"unit_id": TIANSHENG, "score": 90}),
        "get_community_reviews": ("GET", "/api/community-reviews", None),
        "get_points_catalogue": None,
        "get_points": ("GET", "/api/points?account_id=someone", None),
        "post_redemption": ("POST", "/api/points/redemptions", {"item_code": "x", "quantity": 1,
                                                                "account_id": "someone"}),
        "get_stall_permits": ("GET", "/api/stall-permits", None),
        "post_stall_permit": ("POST", "/api/stall-permits", _permit(side)),
        "get_shops": ("GET", "/api/shops", None),
        "post_shop": ("POST", "/api/shops", _shop(side)),
        "get_shop": ("GET", "/api/shops/shop-tsl-001", None),
        "get_component_qrcode": None,
        "intake_decide_dispute": ("POST", "/api/intake/disputes/D-none/decision", {}),
        "intake_get_report": ("GET", f"/api/intake/reports/{o['report']}", None),
        "intake_get_case_view": ("GET", f"/api/intake/cases/{o['case']}", None),
        "intake_list_disputes": ("GET", "/api/intake/disputes", None),
        "intake_get_dispute": ("GET", "/api/intake/disputes/D-none", None),
    }


def expected(declaration, role, own: bool):
    if role not in declaration.by_role:
        return "forbidden"
    relation = declaration.by_role[role]
    if declaration.target is None or relation in access.GLOBAL or own:
        return "allowed"
    return "hidden" if not declaration.write else "forbidden"


NOT_FOUND_ALLOWED = {"get_bulletin", "get_entity_indicators", "intake_decide_dispute", "get_shop",
                     "intake_get_dispute"}


def test_every_declared_endpoint_by_every_role_on_own_and_foreign_objects(platform):
    SITES["b"] = place_in(BEIQUAN_GRID)
    platform.keys["community"] = platform.new_key("社区代表", "community", unit_id=COMMUNITY).key
    case_t, case_b = platform.report(INSIDE), platform.report(SITES["b"])
    for case_id in (case_t, case_b):
        platform.dispatched(case_id)
        platform.known_to_coordination(case_id)
    op_t = platform.whistle("unit", case_t, ["police"], "own1")
    op_b = platform.whistle("unit_b", case_b, ["environment"], "own2")          # police: not invited
    orders = {}
    for side, case_id in (("t", case_t), ("b", case_b)):
        answer = platform.as_("operator").post("/api/enforcement/violations", json={
            "party": {"kind": "plate", "number": f"渝B1234{side == 'b':d}"}, "class_code": "E0501",
            "severity": "minor", "corrected": False, "case_id": case_id})
        assert answer.status_code == 201, answer.text
        orders[side] = answer.json()["violation"]["order"]["order_id"]
    report = {case_id: platform.db("intake").cases.find_one({"_id": case_id})["links"][0]["report_id"]
              for case_id in (case_t, case_b)}
    objects = {"t": {"case": case_t, "operation": op_t, "order": orders["t"], "report": report[case_t],
                     "indicators": f"unit/{TIANSHENG}"},
               "b": {"case": case_b, "operation": op_b, "order": orders["b"], "report": report[case_b],
                     "indicators": f"unit/{BEIQUAN}"}}

    declared = {fn.__name__: fn.access for _, _, fn in openapi.native_routes(GatewayService)
                if getattr(fn, "access", None) is not None}
    assert len(declared) >= 42
    failures, checked = [], 0
    for who, (role, own_side) in WHO.items():
        for side in ("t", "b"):
            own = own_side is None or side == own_side
            rows = samples(objects, who, side)
            if role == "partner":                      # a partner's indicators: its department's
                rows["get_entity_indicators"] = ("GET", "/api/scoring/indicators/partner/" +
                                                 ("police" if side == "t" else "environment"), None)
            for name, declaration in declared.items():
                assert name in rows, f"no sample request for {name}: add one"
                if rows[name] is None or declaration.public:
                    continue
                method, path, body = rows[name]
                answer = platform.as_(who).request(method, path, json=body) if who in platform.keys else None
                wanted = expected(declaration, role, own)
                status = answer.status_code
                ok = {"forbidden": status == 403, "hidden": status == 404,
                      "allowed": status not in (401, 403) and (status != 404 or name in NOT_FOUND_ALLOWED)}[wanted]
                checked += 1
                if not ok:
                    failures.append(f"{who:11} {side} {name:28} wanted {wanted:9} got {status} {answer.text[:120]}")
    assert checked > 500
    assert failures == [], "\n".join(failures)


# ------------------------------------------------------------------ what users reproduced
def test_whistles_only_on_visible_cases_and_the_reply_leaks_nothing(platform):
    case_t, case_b = platform.report(INSIDE), platform.report(place_in(BEIQUAN_GRID))
    for case_id in (case_t, case_b):
        platform.dispatched(case_id)
        platform.known_to_coordination(case_id)
    unit = platform.as_("unit")
    # a unit on another street's case: refused, nothing of it shown, not made its lead
    refused = unit.post("/api/operations", json={"case_id": case_b, "departments": ["police"],
                                                 "reason": "x", "request_id": "r1"})
    assert refused.status_code == 403 and case_b not in refused.text and "13800000000" not in refused.text
    assert platform.db("coordination").operations.count_documents({"case_id": case_b}) == 0
    # the street that owns it whistles; a replay of its request_id by another unit shows nothing
    own = platform.as_("unit_b").post("/api/operations", json={"case_id": case_b, "departments": ["police"],
                                                               "reason": "x", "request_id": "r1"})
    assert own.status_code == 201 and "13800000000" in own.text           # the owning unit sees the phone
    replay = unit.post("/api/operations", json={"case_id": case_b, "departments": ["police"],
                                                "reason": "x", "request_id": "r1"})
    assert replay.status_code == 403 and own.json()["operation"]["_id"] not in replay.text
    # the command centre whistles on any case, naming the street that asked (default: the case's)
    centre = platform.as_("operator").post("/api/operations", json={
        "case_id": case_t, "departments": ["police"], "reason": "街道请求", "request_id": "c1"})
    assert centre.status_code == 201, centre.text
    operation = centre.json()["operation"]
    assert operation["requested_by"] == TIANSHENG and operation["lead_unit"] == TIANSHENG
    named = platform.as_("admin").post("/api/operations", json={
        "case_id": case_b, "departments": ["environment"], "reason": "街道请求", "request_id": "c2",
        "requested_by": {"unit_id": BEIQUAN, "person": "冒名：区长本人"}})
    assert named.status_code == 201 and named.json()["operation"]["requested_by"] == BEIQUAN
    assert "冒名" not in named.text and "管理员" in str(named.json()["operation"])     # the person: the key's
    # a partner reading an operation sees no reporter phone; nor do the leader and the inspector anywhere
    police = platform.as_("partner").get(f"/api/operations/{operation['_id']}")
    assert police.status_code == 200 and "13800000000" not in police.text
    for who in ("leader", "inspector"):
        for path in (f"/api/operations/{operation['_id']}", f"/api/cases/{case_t}", f"/api/cases/{case_t}/timeline",
                     "/api/cases", f"/api/cases/{case_t}/operations", "/api/operations"):
            answer = platform.as_(who).get(path)
            assert answer.status_code == 200 and "13800000000" not in answer.text, (who, path)


def test_permits_and_shops_only_in_the_units_territory_never_replacing_anothers(platform):
    unit, unit_b = platform.as_("unit"), platform.as_("unit_b")
    beiquan = place_in(BEIQUAN_GRID)
    permit = {"permit_id": "SP-X-1", "holder": "测试摊", "goods": "花卉", "quantity": 1,
              "place": {"point": [beiquan["lon"], beiquan["lat"]], "radius_m": 200},
              "window": {"start": "00:00", "end": "23:59"}, "valid_from": "2020-01-01", "valid_to": "2099-12-31"}
    assert unit.post("/api/stall-permits", json=permit).status_code == 403          # another street
    assert not any(p["permit_id"] == "SP-X-1" for p in unit.get("/api/stall-permits").json()["items"])
    own = dict(permit, place={"point": [beiquan["lon"], beiquan["lat"]], "radius_m": 3})
    assert unit_b.post("/api/stall-permits", json=own).status_code == 201
    mine = dict(own, place={"point": [INSIDE["lon"], INSIDE["lat"]], "radius_m": 3})
    assert unit.post("/api/stall-permits", json=mine).status_code == 403          # unit_b's id: not replaced
    stored = next(p for p in unit.get("/api/stall-permits").json()["items"] if p["permit_id"] == "SP-X-1")
    assert stored["place"]["point"] == [beiquan["lon"], beiquan["lat"]]
    assert platform.as_("operator").post("/api/stall-permits", json=permit).status_code == 201   # the centre may
    shop = {"shop_id": "shop-x-1", "name": "测试店", "licence": LICENCE,
            "frontage": {"line": [[beiquan["lon"], beiquan["lat"]], [beiquan["lon"] + 0.00005, beiquan["lat"]]],
                         "width_m": 3}}
    assert unit.post("/api/shops", json=shop).status_code == 403
    assert unit_b.post("/api/shops", json=shop).status_code == 201
    inside = dict(shop, frontage={"line": [[INSIDE["lon"], INSIDE["lat"]], [INSIDE["lon"] + 0.00005,
                                                                              INSIDE["lat"]]], "width_m": 3})
    assert unit.post("/api/shops", json=inside).status_code == 403                  # unit_b's shop id
    assert unit.post("/api/shops", json=dict(inside, shop_id="shop-x-2")).status_code == 201


def test_rectification_checks_and_violations_only_by_owner_or_lead_checker_from_the_key(platform, db):
    case_t, case_b = platform.report(INSIDE), platform.report(place_in(BEIQUAN_GRID))
    for case_id in (case_t, case_b):
        platform.dispatched(case_id)
        platform.known_to_coordination(case_id)
    violation = {"party": {"kind": "plate", "number": "渝A54321"}, "class_code": "E0501", "severity": "minor",
                 "corrected": False, "officer": "冒名：区长本人"}
    assert platform.as_("unit").post("/api/enforcement/violations",
                                     json=dict(violation, case_id=case_b)).status_code == 403
    assert platform.as_("unit").post("/api/enforcement/violations", json=violation).status_code == 403
    filed = platform.as_("unit_b").post("/api/enforcement/violations", json=dict(violation, case_id=case_b))
    assert filed.status_code == 201, filed.text
    assert filed.json()["violation"]["officer"] == "北泉街道 处置员"                 # from the key
    order = filed.json()["violation"]["order"]["order_id"]
    check = {"corrected": True, "inspector": "冒名：区长本人", "checked_by": "冒名"}
    assert platform.as_("unit").post(f"/api/enforcement/rectifications/{order}/check", json=check).status_code == 403
    done = platform.as_("unit_b").post(f"/api/enforcement/rectifications/{order}/check", json=check)
    assert done.status_code == 200, done.text
    assert "冒名" not in done.text and done.json()["violation"]["orders"][-1]["checked_by"] == "北泉街道 处置员"


def test_disputes_decided_by_the_key_and_contacts_redacted_in_intake_reads(platform, db):
    case_t = platform.report(INSIDE)
    report_id = platform.db("intake").cases.find_one({"_id": case_t})["links"][0]["report_id"]
    for who in ("leader", "inspector"):
        for path in (f"/api/intake/reports/{report_id}", f"/api/intake/cases/{case_t}"):
            answer = platform.as_(who).get(path)
            assert answer.status_code == 200 and "13800000000" not in answer.text, (who, path)
    assert "13800000000" in platform.as_("operator").get(f"/api/intake/reports/{report_id}").text
    db("intake").disputes.insert_one({"_id": "D-imp", "state": "open", "level": "community", "_version": 1,
                                      "candidates": [TIANSHENG], "case_ids": []})
    answer = platform.as_("operator").post("/api/intake/disputes/D-imp/decision", json={
        "owner_unit": TIANSHENG, "decided_by": "冒名：区长本人"})
    assert answer.status_code == 200, answer.text
    assert "冒名" not in answer.text
    assert db("intake").disputes.find_one({"_id": "D-imp"})["decided_by"] == "值班员 王"


def test_the_callback_only_from_the_account_that_filed(container_factory, config, db):
    """The matrix's 回访 row (access.CALLBACK: the account that filed): another app's key may not
    record the rating of a request it did not file (it would lock the reporter out)."""
    import requests
    from tests.integration.intake_support import INSIDE as SITE, api_key, close_case, start, wait_case
    running = start(container_factory, config, gateway=True, dispatch=True)
    filer, other = api_key(db), api_key(db)
    v2 = f"{running.url}/open311/v2"
    filed = requests.post(f"{v2}/requests.json", data={"api_key": filer, "service_code": "E0101",
                                                       "lat": SITE["lat"], "long": SITE["lon"],
                                                       "description": "垃圾"}, timeout=15)
    request_id = filed.json()[0]["service_request_id"]
    case_id = db("intake").reports.find_one({"_id": request_id})["case_id"]
    wait_case(db, case_id, lambda c: c.get("state") == "dispatched", "dispatch")
    close_case(running.config, case_id)
    wait_case(db, case_id, lambda c: c["state"] == "closed", "closed")
    rating = {"responded": "true", "resolved": "true", "satisfied": "true"}
    url = f"{v2}/requests/{request_id}/satisfaction.json"
    assert access.CALLBACK.by_role == {"citizen": "filer"}
    assert requests.post(url, data={**rating, "api_key": other}, timeout=10).status_code in (403, 404)
    assert requests.post(url, data={**rating, "api_key": filer}, timeout=10).status_code == 201


def test_a_citizen_sets_neither_urgency_nor_sensor_fields(platform, db):
    """A citizen's ``urgency: urgent`` halved the time limit and its ``sensor_id`` was stored."""
    body = {"class_code": "E0101", "location": INSIDE, "description": "暴露垃圾", "attributes": {"area_m2": 2},
            "urgency": "urgent", "sensor_id": "S-NOISE-001", "device_id": "dev-1"}
    answer = platform.as_("citizen").post("/api/reports", json=body)
    assert answer.status_code == 201, answer.text
    stored = db("intake").reports.find_one({"_id": answer.json()["report_id"]})["report"]
    assert stored.get("urgency") in (None, "normal") and not stored.get("sensor_id") and not stored.get("device_id")
    staff = platform.as_("inspector").post("/api/reports", json=dict(body, location=place_in(BEIQUAN_GRID)))
    assert staff.status_code == 422, staff.text          # kept, not filed: an inspector's report needs a photo
    kept = db("intake").reports.find_one({"_id": staff.json()["error"]["report_id"]})["report"]
    assert kept["urgency"] == "urgent"
    assert kept["inspector_id"] == "insp-017" and kept["inspector_name"] == "网格员 小李"   # both from the key
