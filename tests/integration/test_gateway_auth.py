"""Authentication, roles and object-level authorisation of every native endpoint, against the real
platform (intake, dispatch, coordination, scoring and the gateway in containers, real broker and
store).

- the role matrix of every endpoint in the OpenAPI document: no key → 401, a role not listed in
  the endpoint's ``x-roles`` → 403 (the list the gateway enforces), the leader → 403 on every write;
- reads by every role, with hand-written expectations: 200 for who may, a unit reading another
  unit's case → 404, a partner (police) reading an environment-only operation → 404;
- every case action by each role that may do it (200), the identity taken from the key;
- joint-operation and enforcement writes by each role that may do them; a unit acting on another
  unit's case or operation → 403;
- reports: the reporter's identity from the key, the leader refused, citizens rate-limited (429).
"""
import re

import pytest

from tests.helpers import wait_until
from tests.integration.gateway_auth_support import (  # noqa: F401  (fixture)
    BEIQUAN, BEIQUAN_GRID, INSIDE, ROLE_OF, ROLES, TIANSHENG, TIANSHENG_PLACES, place_in, platform,
)

SAMPLE = {"case_id": "C20261123-00000000", "operation_id": "OP-C20261123-00000000", "department_id": "police",
          "kind": "plate", "number": "渝A12345", "order_id": "v1-R1", "level": "unit", "key": TIANSHENG,
          "name": "2026-11.pdf", "report_id": "rpt-x", "dispute_id": "D-x"}


def concrete(path: str, **values) -> str:
    return re.sub(r"\{([a-z_]+)\}", lambda m: str(values.get(m.group(1), SAMPLE.get(m.group(1), "x1"))), path)


def operations(platform):
    document = platform.anonymous.get("/api/openapi.json")
    assert document.status_code == 200
    for path, methods in document.json()["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


# ------------------------------------------------------------------ the matrix of every endpoint
def test_every_endpoint_refuses_no_key_and_every_role_it_does_not_list(platform):
    checked = 0
    for method, path, operation in operations(platform):
        url = concrete(path)
        body = {} if method == "POST" else None
        if operation.get("security") == []:
            continue                                          # public: /health, the document, the map data
        anonymous = platform.anonymous.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["error"]["code"] == "unauthorized"
        if operation["tags"] != ["web"]:                       # the web pages' own endpoints: no header
            assert anonymous.headers["WWW-Authenticate"].startswith("Bearer"), (method, path)
        bad_key = platform.anonymous.request(method, url, json=body,
                                             headers={"X-API-Key": "dcg_nobody_secret"})
        assert bad_key.status_code == 401, (method, path)
        for who in ROLES:
            role = ROLE_OF.get(who, who)
            if role in operation["x-roles"]:
                continue
            answer = platform.as_(who).request(method, url, json=body)
            assert answer.status_code == 403, (method, path, who, answer.status_code, answer.text)
            assert answer.json()["error"]["code"] == "forbidden" and answer.json()["error"]["message"]
            checked += 1
        if method != "GET":
            assert "leader" not in operation["x-roles"], (method, path)       # read-only
    assert checked > 100


def test_the_leader_is_refused_every_write_with_a_read_only_message(platform):
    leader = platform.as_("leader")
    writes = [(method, path) for method, path, operation in operations(platform)
              if method != "GET" and operation.get("security") != []]
    assert len(writes) >= 18
    for method, path in writes:
        answer = leader.request(method, concrete(path), json={})
        assert answer.status_code == 403, (method, path)
        assert "只读" in answer.json()["error"]["message"]
        if not path.startswith("/api/media"):                  # the web page's upload: Chinese only
            assert "read-only" in answer.json()["error"]["message"]


# ------------------------------------------------------------------ reads, and what each role sees
def test_reads_by_every_role_and_object_level_visibility(platform):
    case_t = platform.report(INSIDE)                           # → 天生街道
    case_b = platform.report(place_in(BEIQUAN_GRID))                # → 北泉街道
    for case_id in (case_t, case_b):
        platform.dispatched(case_id)
        platform.known_to_coordination(case_id)
    assert platform.dispatched(case_t)["unit_id"] == TIANSHENG and platform.dispatched(case_b)["unit_id"] == BEIQUAN
    op_env = platform.whistle("unit", case_t, ["environment"], "env1")          # environment only
    op_police = platform.whistle("unit_b", case_b, ["police"], "pol1")

    def expect(path, statuses, default=200):
        for who in ROLES:
            answer = platform.as_(who).get(path)
            wanted = statuses.get(who, default)
            assert answer.status_code == wanted, (path, who, answer.status_code, answer.text[:300])
            if wanted >= 400:
                assert list(answer.json()) == ["error"]                        # never the content
                assert set(answer.json()["error"]) >= {"status", "code", "message"}

    no_cases = {"citizen": 403, "partner": 403, "partner_env": 403}
    expect("/api/cases", no_cases)
    expect(f"/api/cases/{case_t}", {**no_cases, "unit_b": 404})
    expect(f"/api/cases/{case_t}/timeline", {**no_cases, "unit_b": 404})
    expect(f"/api/cases/{case_b}", {**no_cases, "unit": 404})
    expect(f"/api/cases/{case_t}/operations", {"citizen": 403})
    expect("/api/operations", {"citizen": 403})
    expect(f"/api/operations/{op_env}", {"citizen": 403, "partner": 404, "unit_b": 404})
    expect(f"/api/operations/{op_police}", {"citizen": 403, "partner_env": 404, "unit": 404})
    expect("/api/scoring/summary", {"citizen": 403, "unit": 403, "unit_b": 403, "partner": 403, "partner_env": 403})
    expect("/api/scoring/indicators", {"citizen": 403, "unit": 403, "unit_b": 403, "partner": 403,
                                       "partner_env": 403})
    expect(f"/api/scoring/indicators/unit/{TIANSHENG}", {"citizen": 403, "unit_b": 404, "partner": 404,
                                                          "partner_env": 404})      # another's: not shown
    expect("/api/scoring/rankings", {})
    expect("/api/scoring/exposure", {})
    expect("/api/scoring/bulletins", {})
    expect("/api/scoring/bulletins/2026-11.pdf", {}, default=404)              # not rendered: 404 for all
    expect("/api/enforcement/parties/plate/渝A12345", {"citizen": 403, "partner": 403, "partner_env": 403})
    expect("/api/me", {})

    # what each one sees in the lists
    def ids(who, path, key="case_id"):
        return sorted(item[key] for item in platform.as_(who).get(path).json()["items"])
    assert ids("operator", "/api/cases") == sorted([case_t, case_b])
    assert ids("unit", "/api/cases") == [case_t]
    assert ids("unit", f"/api/cases?unit={BEIQUAN}") == [case_t]                 # the unit filter is its own
    assert ids("unit_b", "/api/cases") == [case_b]
    assert ids("operator", "/api/operations", "operation_id") == sorted([op_env, op_police])
    assert ids("unit", "/api/operations", "operation_id") == [op_env]
    assert ids("partner", "/api/operations", "operation_id") == [op_police]      # police: not the environment one
    assert ids("partner_env", "/api/operations", "operation_id") == [op_env]
    assert ids("partner", f"/api/cases/{case_t}/operations", "operation_id") == []
    assert ids("unit_b", f"/api/cases/{case_t}/operations", "operation_id") == []
    # the reporter's phone: the command centre's and the owning unit's only
    assert "13800000000" in platform.as_("operator").get(f"/api/cases/{case_t}").text
    assert "13800000000" in platform.as_("unit").get(f"/api/cases/{case_t}").text
    for who in ("inspector", "leader"):
        assert "13800000000" not in platform.as_(who).get(f"/api/cases/{case_t}").text
    for who in ("partner_env", "leader", "inspector"):                      # in operations: redacted too
        assert "13800000000" not in platform.as_(who).get(f"/api/operations/{op_env}").text
    assert "13800000000" in platform.as_("unit").get(f"/api/operations/{op_env}").text   # its own case
    # entity indicators: a partner its own department only
    assert platform.as_("partner").get("/api/scoring/indicators/partner/environment").status_code == 404
    assert platform.as_("partner_env").get("/api/scoring/indicators/partner/environment").status_code in (200, 404)


# ------------------------------------------------------------------ case actions, by each role
def test_every_case_action_by_each_role_that_may_do_it(platform, db):
    cases = [platform.report(place) for place in TIANSHENG_PLACES]
    other = platform.report(place_in(BEIQUAN_GRID))
    for case_id in cases + [other]:
        platform.dispatched(case_id)
    a, b, c = cases

    def act(who, case_id, action, expected=200, **body):
        answer = platform.as_(who).post(f"/api/cases/{case_id}/actions/{action}",
                                        json={"expected_version": platform.version(case_id), **body})
        assert answer.status_code == expected, (who, action, answer.text)
        return answer.json()

    # object level: another unit's case is not the unit's to act on — and shows nothing of it
    refused = act("unit", other, "accept", 403)
    assert refused["error"]["code"] == "forbidden" and BEIQUAN not in str(refused)
    assert platform.as_("unit").post(f"/api/cases/{other}/actions/accept", json={}).status_code == 403  # object first
    unknown = platform.as_("unit").post("/api/cases/C20991231-NOPE/actions/accept", json={"expected_version": 1})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    # who acts comes from the key: the body's actor, actor_unit and role are ignored
    case = act("unit", a, "accept", actor="冒充者", actor_unit=BEIQUAN, role="leader", note="收到")["case"]
    assert case["state"] == "accepted"
    # the answer lists what the caller may do now (services/gateway/allowed.py), and so do the reads
    assert [item["action"] for item in case["allowed_actions"]] == [
        "return", "request_extension", "request_park", "report_stage", "feedback"]
    assert platform.as_("leader").get(f"/api/cases/{a}").json()["dispatch"]["allowed_actions"] == []
    listed = platform.as_("operator").get("/api/cases", params={"state": "accepted"}).json()["items"]
    assert "set_urgency" in [item["action"] for item in listed[0]["allowed_actions"]]
    entry = db("dispatch").cases.find_one({"_id": a})["history"][-1]
    assert entry["actor"] == "天生街道 处置员"
    act("operator", b, "accept")                                # 代办: for the unit the case is assigned to
    act("admin", c, "accept")

    # extensions: a refused request uses nothing up; approvers rank operator → centre, admin → leader
    act("unit", a, "request-extension", reason="需调运机械", extra="1d")
    act("operator", a, "decide-extension", approved=False, reason="请先处置")
    act("operator", a, "request-extension", reason="需调运机械", extra="1d")
    act("admin", a, "decide-extension", approved=False)
    act("admin", a, "request-extension", reason="需调运机械", extra="4h")
    decided = act("operator", a, "decide-extension", approved=True)["case"]
    assert decided["extended"] is True
    extension = db("dispatch").cases.find_one({"_id": a})["extensions"][-1]
    assert extension["decided_role"] == "centre"

    # parking: refused, then approved and unparked by each approver
    act("unit", a, "request-park", reason="需财政立项")
    act("operator", a, "decide-park", approved=False)
    act("operator", a, "request-park", reason="需财政立项")
    assert act("admin", a, "decide-park", approved=True)["case"]["state"] == "parked"
    act("operator", a, "unpark", reason="资金已落实")
    act("admin", a, "request-park", reason="需财政立项")
    act("operator", a, "decide-park", approved=True)
    act("admin", a, "unpark")

    act("operator", b, "set-urgency", urgency="urgent", reason="影响通行")
    act("admin", b, "set-urgency", urgency="normal", reason="已围挡")

    # feedback and verification: the inspector verifies under its person id
    act("unit", a, "feedback", after_photo="/media/60cb2d271dfca4428c6125eec7c3e273")
    assert act("inspector", a, "verify", passed=False, note="仍有残留")["case"]["state"] == "accepted"
    act("operator", a, "feedback", after_photo="/media/e81a03cfe084e2519220b6045150c2f9")
    act("admin", a, "verify", passed=False, note="仍有残留")
    act("admin", a, "feedback", after_photo="/media/fb57ee39cd67e1307d20c9b981c2ab31")
    assert act("inspector", a, "verify", passed=True, note="已清理")["case"]["state"] == "closed"
    verified = [e for e in db("dispatch").cases.find_one({"_id": a})["history"] if e["type"] == "case_verified"]
    assert verified[0]["actor"] == "insp-017"
    timeline = platform.as_("operator").get(f"/api/cases/{a}/timeline").json()["entries"]
    shown = [e for e in timeline if e["type"] == "case_verified"][0]
    assert shown["actor"] == "网格员 小李" and shown["actor_id"] == "insp-017"      # shown by name

    # returns (回退): by the unit, by the command centre, by the admin
    act("unit", b, "return", reason="属环卫作业范围", to_unit="dept.sanitation")
    assert act("unit", b, "accept", 403)["error"]["code"] == "forbidden"        # no longer the unit's
    assert platform.as_("unit").get(f"/api/cases/{b}").status_code == 404       # nor to read
    act("operator", b, "return", reason="仍有争议")
    act("admin", c, "return", reason="属环卫作业范围", to_unit="dept.sanitation")

    # the unknown action is a 404 for whoever may act at all
    assert platform.as_("operator").post(f"/api/cases/{a}/actions/teleport", json={}).status_code == 404


# ------------------------------------------------------------------ operations and enforcement
def test_operation_and_enforcement_writes_by_each_role_that_may_do_them(platform):
    case_t = platform.report(INSIDE)
    case_b = platform.report(place_in(BEIQUAN_GRID))
    for case_id in (case_t, case_b):
        platform.dispatched(case_id)
        platform.known_to_coordination(case_id)

    # start: a street whistles (led by itself, whatever the body says); the command centre escalates
    whistle = platform.as_("unit").post("/api/operations", json={
        "case_id": case_t, "departments": ["police", "environment", "construction", "transport"],
        "request_id": "w1", "reason": "工地夜间偷倒建筑垃圾", "lead_unit": BEIQUAN,
        "requested_by": {"unit_id": BEIQUAN}})
    assert whistle.status_code == 201, whistle.text
    multi = whistle.json()["operation"]
    assert multi["lead_unit"] == TIANSHENG and multi["requested_by"] == TIANSHENG
    escalations = []
    for n, who in enumerate(("operator", "admin")):
        answer = platform.as_(who).post("/api/operations", json={
            "case_id": case_b, "departments": ["police"], "trigger": "escalation", "request_id": f"e{n}",
            "reason": "多次劝离无效"})
        assert answer.status_code == 201, answer.text
        assert answer.json()["operation"]["requested_by"] == "center.command"   # acting as the centre
        escalations.append(answer.json()["operation"]["_id"])
    own_b = platform.whistle("unit_b", case_b, ["police"], "b1")

    # updates and cancels: the lead unit, the command centre, the admin
    for who in ("unit", "operator", "admin"):
        answer = platform.as_(who).post(f"/api/operations/{multi['_id']}/updates", json={"note": f"更新 {who}"})
        assert answer.status_code == 200, (who, answer.text)
    for who, dept in (("operator", "transport"), ("admin", "construction"), ("unit", "environment")):
        answer = platform.as_(who).post(f"/api/operations/{multi['_id']}/cancel",
                                        json={"reason": "已自行处置", "departments": [dept]})
        assert answer.status_code == 200, (who, answer.text)

    # object level: another unit's operation → 403 on writes, 404 on reads
    assert platform.as_("unit_b").post(f"/api/operations/{multi['_id']}/updates",
                                       json={"note": "x"}).status_code == 403
    assert platform.as_("unit").post(f"/api/operations/{own_b}/close", json={"force": True,
                                                                            "note": "x"}).status_code == 403
    assert platform.as_("unit").post("/api/operations/OP-NOPE/close", json={}).status_code == 404
    assert platform.as_("unit_b").get(f"/api/operations/{multi['_id']}").status_code == 404

    # leave: only for the partner's own department, and refused while the operation is open
    police = platform.as_("partner")
    answer = police.post(f"/api/operations/{multi['_id']}/departments/police/leave", json={"reason": "另有任务"})
    assert answer.status_code == 409 and "事不完，人不走" in answer.json()["error"]["message"]
    assert police.post(f"/api/operations/{multi['_id']}/departments/environment/leave").status_code == 403
    assert platform.as_("operator").post(
        f"/api/operations/{multi['_id']}/departments/police/leave").status_code == 409
    env_only = platform.whistle("unit", case_t, ["environment"], "env1")
    assert police.post(f"/api/operations/{env_only}/departments/police/leave").status_code == 403

    # close: the lead (a unit closing its own whistle), or the command centre acting for the lead
    assert platform.as_("unit_b").post(f"/api/operations/{own_b}/close",
                                       json={"force": True, "note": "当事人已离开"}).status_code == 200
    for who, op_id in zip(("operator", "admin"), escalations):
        answer = platform.as_(who).post(f"/api/operations/{op_id}/close", json={
            "by": {"unit_id": "dept.chengguan"}, "force": True, "note": "现场已恢复"})
        assert answer.status_code == 200, (who, answer.text)

    # graduated enforcement: violations by the command centre, the admin and the case's unit; checks by
    # the case's unit and the command centre (the officer and the checker are the key's account)
    orders = []
    for n, who in enumerate(("operator", "admin", "unit")):
        answer = platform.as_(who).post("/api/enforcement/violations", json={
            "party": {"kind": "plate", "number": f"渝A1234{n}"}, "class_code": "E0501", "severity": "minor",
            "corrected": False, "officer": "执法队员 张伟", "violation_id": f"v{n}", "case_id": case_t})
        assert answer.status_code == 201, (who, answer.text)
        assert answer.json()["violation"]["officer"] != "执法队员 张伟"
        orders.append(answer.json()["violation"]["order"]["order_id"])
    for who in ("unit", "operator", "admin"):
        answer = platform.as_(who).post(f"/api/enforcement/rectifications/{orders[0]}/check",
                                        json={"corrected": False, "inspector": "核查员 李"})
        assert answer.status_code == 200, (who, answer.text)
    assert platform.as_("inspector").post(f"/api/enforcement/rectifications/{orders[0]}/check",
                                          json={"corrected": False}).status_code == 403
    assert platform.as_("unit").get("/api/enforcement/parties/plate/渝A12340").json()["violations"]


# ------------------------------------------------------------------ reports and rate limits
def test_reports_take_identity_from_the_key_and_citizens_are_rate_limited(platform, db):
    reports = db("intake").reports
    body = {"class_code": "E0101", "location": INSIDE, "description": "暴露垃圾", "attributes": {"area_m2": 2},
            "reporter": {"name": "李四", "phone": "13900000000", "account_id": "someone-else"},
            "inspector_id": "insp-999", "channel": "hotline"}
    for who in ("citizen", "inspector", "operator", "unit", "partner", "admin"):
        answer = platform.as_(who).post("/api/reports", json={**body, "media_urls": ["https://media.example/p.jpg"]})
        assert answer.status_code == 201, (who, answer.text)
    assert platform.as_("leader").post("/api/reports", json=body).status_code == 403
    by_channel = {}
    for doc in reports.find({}):
        by_channel.setdefault(doc["channel"], []).append(doc)
    inspector = by_channel["inspector"][0]
    assert inspector["report"]["inspector_id"] == "insp-017"                   # its person id, not the body's
    web = by_channel["web"]                                                     # citizen, unit, partner
    assert len(web) == 3 and "someone-else" not in str(web)
    assert all(doc["report"]["reporter"]["account_id"] for doc in web)
    assert len(by_channel["hotline"]) == 2                                      # the command centre enters calls

    bad = platform.as_("operator").post("/api/reports", json={**body, "channel": "sensor"})
    assert bad.status_code == 400 and "channel" in bad.json()["error"]["fields"]
    invalid = platform.as_("citizen").post("/api/reports", json={"class_code": "垃圾", "location": {"lon": 500}})
    assert invalid.status_code == 400 and {"class_code", "location"} <= set(invalid.json()["error"]["fields"])

    # a citizen: bursts of 3 (two used above, the invalid one counts too), then 429 with Retry-After
    citizen = platform.as_("citizen")
    assert citizen.post("/api/reports", json=body).status_code == 201
    limited = citizen.post("/api/reports", json=body)
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited" and limited.json()["error"]["retry_after"] >= 1
    other = platform.new_key("市民 王五", "citizen")                             # per client
    assert other.post("/api/reports", json=body).status_code == 201
    for _ in range(4):                                                          # staff are not limited
        assert platform.as_("operator").post("/api/reports", json=body).status_code == 201
    wait_until(lambda: reports.count_documents({}) >= 12, what="every report stored")



def test_gateway_instances_share_one_bucket_per_citizen(platform, container_factory, config, db):
    """Behind a load balancer a citizen's requests land on different gateway instances: together
    they grant one burst (3 here), not one per instance."""
    from services.gateway.service import GatewayService
    from tests.conftest import free_port
    from tests.integration.gateway_auth_support import Client
    port = free_port()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
                                           CITIZEN_BURST=3, CITIZEN_RATE_PER_MINUTE=0.1)).start()
    first = platform.as_("citizen")
    second = Client(f"http://127.0.0.1:{port}", platform.keys["citizen"], "citizen")
    body = {"class_code": "E0101", "location": INSIDE, "description": "暴露垃圾", "attributes": {"area_m2": 2}}
    answers = [client.post("/api/reports", json=body).status_code for client in (first, second, first, second)]
    assert answers == [201, 201, 201, 429]
    assert second.post("/api/reports", json=body).status_code == 429
    assert first.post("/api/reports", json=body).status_code == 429
    bucket = db("gateway").rate_limits.find_one({"_id": {"$regex": "^citizen:key:"}})
    assert bucket is not None and bucket["tokens"] < 1


@pytest.mark.parametrize("path,method,status", [
    ("/api/no-such-thing", "GET", 404), ("/api/cases", "DELETE", 405), ("/api/reports", "GET", 405)])
def test_unknown_paths_and_methods_are_json_errors(platform, path, method, status):
    answer = platform.as_("operator").request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"]["status"] == status


# ------------------------------------------------------------------ the accounts command
def test_the_accounts_command_makes_lists_and_revokes_keys(config, db, capsys):
    from services.gateway import accounts, auth
    assert accounts.main(["create-admin", "--name", "管理员"], config=config) == 0
    admin_key = capsys.readouterr().out.strip()
    assert accounts.main(["create", "--role", "inspector", "--name", "网格员 小李", "--person-id", "insp-017"],
                         config=config) == 0
    inspector_key = capsys.readouterr().out.strip()
    assert accounts.main(["create", "--role", "operator", "--name", "值班员 赵", "--approver", "operator"],
                         config=config) == 0
    capsys.readouterr()
    assert accounts.main(["create", "--role", "unit", "--unit", "street.nowhere", "--name", "x"], config=config) == 2
    assert "unknown unit" in capsys.readouterr().err
    collection = db("gateway").accounts
    inspector = auth.authenticate(collection, inspector_key)
    assert inspector.actor_id == "insp-017" and auth.authenticate(collection, admin_key).role == "admin"
    assert accounts.main(["list"], config=config) == 0
    listing = capsys.readouterr().out
    assert "person=insp-017" in listing and "approver=operator" in listing and "dcg_" not in listing
    assert accounts.main(["revoke", inspector.key_id], config=config) == 0
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(collection, inspector_key)
