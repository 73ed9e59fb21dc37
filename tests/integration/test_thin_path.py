"""End to end, on the real broker and store: a report enters through the gateway → intake
registers a case → dispatch assigns it → coordination fans one request out to each of the
three department programs (plain pika processes) → each acknowledges → scoring counts it all."""
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from services.dispatch.service import DispatchService
from services.enforcement_coordination.service import CoordinationService
from services.gateway.auth import new_key
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from services.participation.service import ParticipationService
from services.scoring.service import ScoringService
from shared.refdata import load_district
from tests.conftest import free_port
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
MUCK_TRUCK = "E0302"            # 渣土车抛洒滴漏: 城管 + transport + police + environment
DEPARTMENTS = ["police", "environment", "transport"]


def grid_point(index=0):
    grid = load_district().grids[index]
    point = grid["geometry"].representative_point()
    return {"lon": point.x, "lat": point.y}, grid


class Base(str):
    """The gateway's base URL; ``.headers`` logs in as the command centre (services/gateway/auth.py)."""
    headers: dict = {}


@pytest.fixture
def platform(container_factory, config, db):
    port = free_port()
    gateway_config = dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    for cls in (IntakeService, DispatchService, CoordinationService, ScoringService, ParticipationService):
        container_factory(cls, config).start()
    container_factory(GatewayService, gateway_config).start()
    base = Base(f"http://127.0.0.1:{port}")
    base.headers = {"Authorization": f"Bearer {new_key(db('gateway').accounts, '指挥中心值班员', 'operator')}"}
    return base


@pytest.fixture
def department_programs(vhost, tmp_path):
    url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    procs = [subprocess.Popen(
        [sys.executable, "-m", f"departments.{dept}"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DEPT_AMQP_URL": url,
             "DEPT_CHECKIN_SECONDS": "0.3", "DEPT_ACTION_SECONDS": "0.3", "DEPT_DISPOSE_SECONDS": "0.3",
             "DEPT_HISTORY_DIR": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for dept in DEPARTMENTS]
    yield tmp_path
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_report_to_case_to_dispatch_to_joint_operation_to_scoring(platform, department_programs):
    location, grid = grid_point(0)
    answer = requests.post(f"{platform}/api/reports", json={
        "class_code": MUCK_TRUCK, "location": location, "address": "天生路 18 号",
        "description": "渣土车沿路抛洒，路面大面积污染", "reporter": {"name": "张三", "phone": "13800000000"},
    }, timeout=15, headers=platform.headers)
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case_id"]
    assert answer.json()["grid_code"] == grid["code"]

    def full_case():
        body = requests.get(f"{platform}/api/cases/{case_id}", timeout=15, headers=platform.headers).json()
        operation = body.get("joint_operation") or {}
        departments = operation.get("departments", {})
        if body.get("dispatch") and len(departments) == 3 and all(
                d["state"] in ("accepted", "on_site", "acting", "disposed") for d in departments.values()):
            return body
        return None

    case = wait_until(full_case, timeout=30, what="dispatch and three department acks")
    assert case["dispatch"]["unit_id"] == "dept.chengguan"
    assert case["dispatch"]["deadline"] > case["dispatch"]["dispatched_at"]
    operation = case["joint_operation"]
    assert sorted(operation["departments"]) == sorted(DEPARTMENTS)
    requests_out = [m["message"] for m in operation["messages"] if m["direction"] == "out"]
    assert sorted(m["recipients"][0] for m in requests_out) == sorted(DEPARTMENTS)   # one each
    acks = [m["message"] for m in operation["messages"] if m["direction"] == "in" and m["message"]["kind"] == "Ack"]
    assert sorted(a["sender"] for a in acks) == sorted(DEPARTMENTS)
    for dept in DEPARTMENTS:                         # each program kept its own history
        history = (department_programs / f"{dept}.jsonl").read_text(encoding="utf-8")
        assert operation["_id"] in history

    def counted():
        events = requests.get(f"{platform}/api/cases/{case_id}", timeout=15, headers=platform.headers).json()["events"]
        types = [e["type"] for e in events]
        if types.count("department_replied") >= 3:
            return types
    types = wait_until(counted, timeout=20, what="scoring to count the replies")
    for expected in ("case_registered", "case_dispatched", "owner_notified",
                     "joint_operation_opened", "department_request_sent"):
        assert expected in types
    assert types.count("department_request_sent") == 3
    assert types.count("case_dispatched") == 1


def test_bad_report_gets_field_level_errors_and_nothing_is_filed(platform):
    answer = requests.post(f"{platform}/api/reports", json={
        "class_code": "垃圾", "location": {"lon": 500, "lat": 29.8}, "urgency": "now"}, timeout=15,
        headers=platform.headers)
    assert answer.status_code == 400
    fields = answer.json()["error"]["fields"]
    assert set(fields) == {"class_code", "location", "urgency"}
    assert "lon" in fields["location"]


def test_health_reports_every_service(platform):
    def healthy():
        answer = requests.get(f"{platform}/health", timeout=15)
        return answer if answer.status_code == 200 else None
    body = wait_until(healthy, timeout=15, what="health 200").json()
    assert body["broker"] == "up" and body["store"] == "up"
    assert {name for name, entry in body["services"].items() if entry["state"] == "up"} == \
        {"intake", "dispatch", "coordination", "scoring", "participation", "gateway"}
