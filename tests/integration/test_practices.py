"""The source articles' practices through the real services (broker and store): 双街长/双路长 and
the 社区城管联络员 hear of a case in their stretch and are on the responsibility map; the closed
case counts in the 721 mix and in the chiefs' own indicators; a liaison's 社区评议 is recorded as
the liaison's (and, when the setting says so, only liaisons may review); 首问负责: the first
unit's reply deadline is supervised on a durable timer and shown in the timeline."""
from __future__ import annotations

import pytest
import requests
import yaml

from services.dispatch.service import DispatchService
from services.enforcement_coordination.service import CoordinationService
from services.gateway import auth
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from services.participation import rules as participation_rules
from services.participation.service import ParticipationService
from services.participation.settings import DEFAULT_PATH as PARTICIPATION_DEFAULTS
from services.scoring.service import ScoringService
from shared import storage
from tests.conftest import free_port
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    UNIT, dispatch_config, local, log_in, ok, operator_headers, saturday_morning, set_clock, wait_case,
)
from tests.helpers import drain, wait_until

INSIDE = {"lon": 106.3904, "lat": 29.8338}          # 天生路社区第1网格: 天生路 and 庐山路 run through it
COMMUNITY = "500190001001"                          # 天生路社区
LIAISON = "lsn-500190001001-1"                      # 金建, its 社区城管联络员 (practices.yaml)


@pytest.fixture
def gateway(container_factory, config, db, saturday_morning):
    port = free_port()
    for service in (IntakeService, ScoringService, ParticipationService, CoordinationService):
        container_factory(service, config).start()
    container_factory(DispatchService, dispatch_config(config)).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    base = f"http://127.0.0.1:{port}"
    log_in(base, db)
    return base


def test_chiefs_and_liaison_hear_of_the_case_and_it_counts_in_721_and_their_indicators(gateway, config, db):
    headers = operator_headers(gateway)
    answer = requests.post(f"{gateway}/api/reports", headers=headers, timeout=15, json={
        "class_code": "E0101", "location": INSIDE, "address": "天生路18号", "description": "暴露垃圾约2平方米",
        "attributes": {"area_m2": 2}, "reporter": {"name": "张三", "phone": "13800000000"}})
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case_id"]

    # the 双街长/双路长 and the community's liaison are told, by the SMS outbox, with the owner
    notes = []
    wait_until(lambda: notes.extend(body["payload"] for body, _ in drain(config, "notify.sms-outbox"))
               or {"dispatch", "double_chief", "liaison"} <= {n["kind"] for n in notes}, what="three notices")
    by_kind = {note["kind"]: note for note in notes if note["case_id"] == case_id}
    assert [p["name"] for p in by_kind["double_chief"]["recipients"]] == ["袁欣国", "万子豪", "万天欣", "夏欣",
                                                                         "张晓", "余建"]
    assert "天生路、庐山路街长/路长" in by_kind["double_chief"]["message"]
    assert [p["name"] for p in by_kind["liaison"]["recipients"]] == ["金建"]

    # the responsibility map carries them (for a signed-in user; anonymous sees the street only)
    grids = requests.get(f"{gateway}/api/grids", headers=headers, timeout=15).json()["grids"]["features"]
    mine = next(f for f in grids if f["properties"]["code"] == "500190001001001")["properties"]["responsible"]
    assert [c["name"] for c in mine["road_chiefs"][0]["chiefs"]] == ["万天欣", "夏欣"]
    assert mine["liaisons"] == [{"name": "金建", "role": "社区城管联络员"}]
    public = requests.get(f"{gateway}/api/grids", timeout=15).json()["grids"]["features"]
    assert "road_chiefs" not in str(public) and "金建" not in str(public)
    # the three service levels: 区级 units, 镇街级 streets and towns, 社区级 communities (no people)
    units = requests.get(f"{gateway}/api/units", timeout=15).json()["items"]
    assert {u["id"]: u["level"] for u in units}["street.tianshengjie"] == "town"
    assert {u["id"]: u["level"] for u in units}["dept.chengguan"] == "district"
    tree = requests.get(f"{gateway}/api/units", params={"view": "tree"}, timeout=15).json()
    tiansheng = next(t for t in tree["towns"] if t["id"] == "street.tianshengjie")
    assert tree["level_name"] == "区级" and tiansheng["level_name"] == "镇街级"
    assert [(c["level_name"], c["name"]) for c in tiansheng["communities"]] == [("社区级", "天生路社区"),
                                                                              ("社区级", "西师街社区")]
    assert "金建" not in str(tree) and "phone" not in str(tree)

    # closed: one disposal of 天生街道, a 服务 (cleaning), and a closed case in the chiefs' stretch
    wait_case(db, case_id, lambda doc: not doc["_pending"], "dispatch")
    case = ok(gateway, case_id, "accept", expected_version=1, **UNIT)
    case = ok(gateway, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/d204b51ff8be722056d816a56a992eba", note="已清运", **UNIT)
    assert ok(gateway, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True)["state"] == "closed"

    def practices():
        report = requests.get(f"{gateway}/api/scoring/indicators", params={"period": "2026-11"},
                              headers=headers, timeout=15).json()
        section = report["practices"]
        # events from intake, dispatch and coordination reach scoring in any order: wait until the
        # case's registration, its unit and its disposal are all folded in
        road = {row["key"]: row for row in section["chiefs"]}.get("road:天生路:chengguan", {})
        counted = (section["mode_721"]["district"]["total"] == 1 and "street.tianshengjie" in section["mode_721"]["units"]
                   and road.get("counts", {}).get("registered_cases") == 1)
        return section if counted else None
    section = wait_until(practices, what="scoring counted the case and its disposal")
    street = section["mode_721"]["units"]["street.tianshengjie"]
    assert street["modes"]["service"]["count"] == 1 and street["mix_text"] == "100/0/0"
    assert street["status"] == "偏离" and section["mode_721"]["target"] == {
        "service": 70, "management": 20, "enforcement": 10}
    chiefs = {row["key"]: row for row in section["chiefs"]}
    road = chiefs["road:天生路:chengguan"]
    assert road["name"] == "万天欣" and road["counts"]["registered_cases"] == 1
    assert chiefs["street:street.beiquan:street"]["status"] == "无案件"


def test_a_liaison_reviews_for_the_community_and_the_setting_can_admit_only_liaisons(
        gateway, db, tmp_path, monkeypatch):
    accounts = db("gateway").accounts
    liaison = auth.new_key(accounts, "金建", "community", unit_id=COMMUNITY, person_id=LIAISON)
    resident = auth.new_key(accounts, "居民代表", "community", unit_id=COMMUNITY, person_id="rep-9")

    def review(key, unit_id):
        return requests.post(f"{gateway}/api/community-reviews", headers={"Authorization": f"Bearer {key}"},
                             json={"unit_id": unit_id, "score": 88}, timeout=15)

    answer = review(liaison, "street.tianshengjie")
    assert answer.status_code == 201, answer.text
    assert answer.json()["review"]["liaison"] == {"name": "金建", "role": "社区城管联络员"}
    assert review(resident, "street.tianshengjie").json()["review"]["liaison"] is None

    settings = yaml.safe_load(PARTICIPATION_DEFAULTS.read_text(encoding="utf-8"))
    settings["reviews"]["liaisons_only"] = True
    path = tmp_path / "participation.yaml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("PARTICIPATION_CONFIG", str(path))       # the services run in this process
    refused = review(resident, "dept.chengguan")
    assert refused.status_code == 403 and "城管联络员" in refused.json()["error"]["message"]
    assert review(liaison, "dept.chengguan").status_code == 201
    period = participation_rules.current_period(storage.now_utc(), "Asia/Shanghai")
    assert period == "2026-11"


def test_the_first_units_reply_deadline_is_supervised_and_shown_in_the_timeline(gateway, config, db):
    headers = operator_headers(gateway)
    answer = requests.post(f"{gateway}/api/reports", headers=headers, timeout=15, json={
        "class_code": "E0101", "location": INSIDE, "address": "天生路20号", "description": "暴露垃圾约3平方米",
        "attributes": {"area_m2": 3}, "reporter": {"name": "李四", "phone": "13800000001"}})
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case_id"]
    doc = wait_case(db, case_id, lambda d: not d["_pending"], "dispatch")
    # reported Saturday 10:00: the clock starts Monday 08:30, the reply is due 2 working hours later
    assert doc["first_contact"]["unit_id"] == "street.tianshengjie"
    assert [t["kind"] for t in doc["_timers"]].count("first_reply") == 1

    set_clock(local(2026, 11, 30, 10, 31))              # nobody signed for it by 10:30
    doc = wait_case(db, case_id, lambda d: (d.get("first_contact") or {}).get("supervised_at"), "the 督办")
    timeline = requests.get(f"{gateway}/api/cases/{case_id}/timeline", headers=headers, timeout=15).json()
    steps = {entry["type"]: entry for entry in timeline["entries"]}
    assert steps["first_contact"]["label"] == "首问负责（限时回复）"
    assert "须于 2026-11-30 10:30 前答复市民" in steps["first_contact"]["reason"]
    assert steps["first_reply_overdue"]["label"] == "首问回复超时督办"
    assert steps["first_reply_overdue"]["at"].startswith("2026-11-30T10:3")
    notes = []
    wait_until(lambda: notes.extend(body["payload"] for body, _ in drain(config, "notify.sms-outbox"))
               or any(n["kind"] == "first_reply_overdue" for n in notes), what="the 督办 notice")
    overdue = next(n for n in notes if n["kind"] == "first_reply_overdue")
    assert overdue["unit_id"] == "street.tianshengjie" and "请立即答复市民" in overdue["message"]

    # the owner signs: answered late, and the 督办 counts against the first unit like any other
    ok(gateway, case_id, "accept", expected_version=doc["_version"], **UNIT)
    doc = db("dispatch").cases.find_one({"_id": case_id})
    assert doc["first_contact"]["on_time"] is False

    def supervised():
        report = requests.get(f"{gateway}/api/scoring/indicators", params={"period": "2026-11"},
                              headers=headers, timeout=15).json()
        row = report["units"].get("street.tianshengjie")
        return row if row and row["counts"]["supervised"] == 1 else None
    assert wait_until(supervised, what="scoring counted the 督办")


def test_the_enforcement_ladder_classes_a_disposal_in_the_721_mix(gateway, config, db):
    """A case whose party was penalised (处罚) is an 执法 disposal of the unit that closed it; a
    decision found on patrol (no case) is 城管's, here 教育 (首违不罚): a 服务."""
    headers = operator_headers(gateway)
    answer = requests.post(f"{gateway}/api/reports", headers=headers, timeout=15, json={
        "class_code": "E0101", "location": {"lon": 106.394165, "lat": 29.833618}, "address": "天生路30号",
        "description": "商户倾倒垃圾", "attributes": {"area_m2": 2}})
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case_id"]
    penalised = requests.post(f"{gateway}/api/enforcement/violations", headers=headers, timeout=15, json={
        "party": {"kind": "licence", "number": "91350100M000100Y43", "name": "天生路某烧烤店"},
        "class_code": "E0101", "severity": "serious", "corrected": False, "officer": "执法队员 张伟",
        "case_id": case_id, "violation_id": "v-721-1"})
    assert penalised.status_code == 201 and penalised.json()["violation"]["step"] == "penalise", penalised.text
    patrol = requests.post(f"{gateway}/api/enforcement/violations", headers=headers, timeout=15, json={
        "party": {"kind": "plate", "number": "渝A12345"}, "class_code": "E0501", "severity": "minor",
        "corrected": True, "officer": "执法队员 张伟", "violation_id": "v-721-2"})
    assert patrol.status_code == 201 and patrol.json()["violation"]["step"] == "educate", patrol.text

    wait_case(db, case_id, lambda doc: not doc["_pending"], "dispatch")
    case = ok(gateway, case_id, "accept", expected_version=db("dispatch").cases.find_one({"_id": case_id})["_version"],
              **UNIT)
    case = ok(gateway, case_id, "feedback", expected_version=case["version"],
              after_photo="/media/d204b51ff8be722056d816a56a992eba", note="已清运，已立案处罚", **UNIT)
    assert ok(gateway, case_id, "verify", expected_version=case["version"], actor="严勇", passed=True)["state"] == "closed"

    def mix():
        report = requests.get(f"{gateway}/api/scoring/indicators", params={"period": "2026-11"},
                              headers=headers, timeout=15).json()
        section = report["practices"]["mode_721"]
        units = section["units"]
        both = section["district"]["total"] == 2 and "street.tianshengjie" in units and "dept.chengguan" in units
        return section if both else None
    section = wait_until(mix, what="scoring counted both disposals")
    street = section["units"]["street.tianshengjie"]["modes"]
    assert (street["enforcement"]["count"], street["service"]["count"]) == (1, 0)
    chengguan = section["units"]["dept.chengguan"]
    assert chengguan["modes"]["service"]["count"] == 1 and chengguan["mix_text"] == "100/0/0"
    assert section["district"]["mix_text"] == "50/0/50"
