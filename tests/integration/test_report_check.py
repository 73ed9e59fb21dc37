"""核实 through the gateway, on the real broker and store: a hotline report becomes a case; the
command centre sends the grid's inspector to check it; the inspector finds it 不属实 from the
inspector's own key, and the centre decides 不立案; a second report is checked 属实 after its time
limit. Scoring then shows the inspector, by name (严勇), with 核实数 2 and 按期核实数 1 (按期核实率 50%)."""
import pytest
import requests

from services.dispatch.service import DispatchService
from services.gateway.auth import new_key
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from services.scoring.service import ScoringService
from tests.conftest import free_port
from tests.dispatch_support import (  # noqa: F401  (fixtures)
    DISTRICT, dispatch_config, local, log_in, operator_headers, saturday_morning, set_clock, wait_case,
)
from tests.helpers import wait_until

PLACES = [{"lon": 106.3904, "lat": 29.8338}, {"lon": 106.394165, "lat": 29.833618}]   # two grids of 天生街道


@pytest.fixture
def gateway(container_factory, config, db, saturday_morning):  # noqa: F811  (the imported fixture)
    port = free_port()
    container_factory(IntakeService, config).start()
    container_factory(DispatchService, dispatch_config(config)).start()
    container_factory(ScoringService, config).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    log_in(f"http://127.0.0.1:{port}", db)
    return f"http://127.0.0.1:{port}"


def hotline_report(base, place):
    answer = requests.post(f"{base}/api/reports", json={
        "channel": "hotline", "class_code": "E0101", "location": place, "address": "天生路18号",
        "description": "12345 来电：路口有暴露垃圾", "attributes": {"area_m2": 2},
        "reporter": {"name": "张三", "phone": "13800000000"}}, timeout=15, headers=operator_headers(base))
    assert answer.status_code == 201, answer.text
    return answer.json()["case_id"]


def act(base, headers, case_id, action, **body):
    """The action on the version dispatch shows now (GET /api/cases: dispatch's own list)."""
    for _ in range(5):                 # a timer firing meanwhile (after the clock moves) bumps the version
        listed = requests.get(f"{base}/api/cases", params={"per_page": 50}, headers=headers, timeout=15)
        assert listed.status_code == 200, listed.text
        version = next(item["version"] for item in listed.json()["items"] if item["case_id"] == case_id)
        answer = requests.post(f"{base}/api/cases/{case_id}/actions/{action}", headers=headers, timeout=15,
                               json={"expected_version": version, **body})
        if answer.status_code != 409:
            return answer
    return answer


def test_a_public_report_checked_by_the_grid_inspector_and_not_filed(gateway, db):
    centre = operator_headers(gateway)
    grid = DISTRICT.locate(PLACES[0]["lon"], PLACES[0]["lat"])["grid_code"]
    assigned = DISTRICT.grid(grid)["responsible"]["grid_inspector"]          # 严勇, the grid's inspector
    person = "insp-017"                                                       # 严勇's 工号 on his account
    inspector = {"Authorization": f"Bearer {new_key(db('gateway').accounts, assigned, 'inspector', person_id=person)}"}

    first, second = (hotline_report(gateway, place) for place in PLACES)
    for case_id in (first, second):
        wait_case(db, case_id, lambda doc: not doc["_pending"], "dispatch")

    # the inspector may not send a task, nor answer one that was never sent
    assert act(gateway, inspector, first, "request-check").status_code == 403
    assert act(gateway, inspector, first, "check-report", genuine=True).status_code == 422

    sent = act(gateway, centre, first, "request-check", note="请核实是否仍有垃圾")
    assert sent.status_code == 200, sent.text
    case = sent.json()["case"]
    assert case["check"]["inspector_id"] == assigned and case["check"]["due_at"].endswith("+08:00")
    assert "核实时限" in [entry["label"] for entry in case["supervision"]]        # a durable timer
    assert act(gateway, centre, second, "request-check").status_code == 200

    # the inspector's page lists the open tasks, with 核实 among the allowed actions
    listed = requests.get(f"{gateway}/api/cases", params={"checking": "true"}, headers=inspector, timeout=15).json()
    assert {item["case_id"] for item in listed["items"]} == {first, second}
    assert all("check_report" in [a["action"] for a in item["allowed_actions"]] for item in listed["items"])

    # 不属实 (a note is required), on time; then the centre decides 不立案
    assert act(gateway, inspector, first, "check-report", genuine=False).status_code == 400
    answered = act(gateway, inspector, first, "check-report", genuine=False, note="现场无垃圾，系误报",
                   actor="冒名者", actor_name="冒名者")          # identity from the key, not the body
    assert answered.status_code == 200, answered.text
    check = answered.json()["case"]["check"]
    assert (check["genuine"], check["on_time"], check["answered_by"], check["answered_name"]) == \
        (False, True, person, assigned)
    for_centre = requests.get(f"{gateway}/api/cases", params={"per_page": 50}, headers=centre, timeout=15).json()
    allowed = {item["case_id"]: [a["action"] for a in item["allowed_actions"]] for item in for_centre["items"]}
    assert "cancel" in allowed[first] and "cancel" not in allowed[second]       # the centre's buttons
    cancelled = act(gateway, centre, first, "cancel", reason="核实不属实，不予立案")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["case"]["state"] == "cancelled"
    assert cancelled.json()["case"]["state_label"] == "已作废（不立案）"
    assert cancelled.json()["case"]["supervision"] == []

    # intake's copy follows: Open311 shows the request closed, with why
    copy = wait_until(lambda: (lambda doc: doc if doc and doc.get("state") == "cancelled" else None)(
        db("intake").cases.find_one({"_id": first})), what="intake's copy to show 不立案")
    assert "不属实" in copy["status_notes"]

    # the second one is answered 属实 after its time limit (Monday 09:30): late; 属实 allows no 不立案
    set_clock(local(2026, 11, 30, 10, 0))
    overdue = wait_case(db, second, lambda doc: doc["check"].get("overdue_at"), "the 核实 timer to fire")
    assert [entry["type"] for entry in overdue["history"]].count("check_overdue") == 1     # 核实超时督办
    assert any(note["kind"] == "check_overdue" for note in overdue["notifications"])
    late = act(gateway, inspector, second, "check-report", genuine=True)
    assert late.status_code == 200, late.text
    assert late.json()["case"]["check"]["on_time"] is False
    assert act(gateway, centre, second, "cancel", reason="x").status_code == 422

    def scored():
        report = requests.get(f"{gateway}/api/scoring/indicators", params={"period": "2026-11"}, headers=centre,
                              timeout=20).json()
        row = next((r for r in report["roles"]["inspectors"] if r["inspector_id"] == person), None)
        return (report, row) if row and row["counts"]["verify_tasks"] == 2 else None
    report, row = wait_until(scored, timeout=30, what="scoring to count both 核实 tasks")
    assert row["name"] == assigned
    assert (row["counts"]["verify_tasks"], row["counts"]["verify_tasks_on_time"]) == (2, 1)
    rate = row["indicators"]["verify_ontime_rate"]
    assert (rate["label"], rate["numerator"], rate["denominator"], rate["value"]) == ("按期核实率", 1, 2, 0.5)
