"""Helpers for the gateway's authentication tests: the whole platform in nameko containers on the
real broker and store (as tests/integration/test_thin_path.py), one account per role, an HTTP
client that logs in with a key, and cases/operations to look at."""
from __future__ import annotations

import pytest
import requests

import importlib

from nameko.rpc import RpcProxy

from services.gateway import auth
from services.gateway.service import GatewayService
from shared.refdata import load_district
from tests.conftest import free_port
from tests.helpers import wait_until

TIANSHENG = "street.tianshengjie"
BEIQUAN = "street.beiquan"
INSIDE = {"lon": 106.3904, "lat": 29.8338}             # 天生路社区第1网格, 天生街道
# three grids of 天生街道, far enough apart not to be linked as duplicates of one case
TIANSHENG_PLACES = [INSIDE, {"lon": 106.394165, "lat": 29.833618}, {"lon": 106.3902, "lat": 29.830084}]
# every role, and a second unit and a second partner for the object-level checks
ROLES = ["citizen", "inspector", "operator", "unit", "unit_b", "partner", "partner_env", "leader", "admin"]
ROLE_OF = {"unit_b": "unit", "partner_env": "partner"}


def place_in(grid_code: str) -> dict:
    grid = next(grid for grid in load_district().grids if grid["code"] == grid_code)
    point = grid["geometry"].representative_point()
    return {"lon": round(point.x, 6), "lat": round(point.y, 6)}


BEIQUAN_GRID = "500190002002001"      # 碚峡路社区 (温泉路社区 goes to the park, see config/routing.yaml)


class Client:
    """The gateway over HTTP as one account (or anonymous with ``key=None``)."""

    def __init__(self, base, key=None, name=None):
        self.base, self.key, self.name = base, key, name

    def headers(self):
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def request(self, method, path, json=None, headers=None, **kwargs):
        return requests.request(method, f"{self.base}{path}", json=json, headers={**self.headers(), **(headers or {})},
                                timeout=20, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)


class Platform:
    def __init__(self, base, db, config):
        self.base, self.db, self.config = base, db, config
        accounts = db("gateway").accounts
        self.keys = {
            "citizen": auth.new_key(accounts, "市民 张三", "citizen"),
            "inspector": auth.new_key(accounts, "网格员 小李", "inspector", person_id="insp-017"),
            "operator": auth.new_key(accounts, "值班员 王", "operator"),
            "unit": auth.new_key(accounts, "天生街道 处置员", "unit", unit_id=TIANSHENG),
            "unit_b": auth.new_key(accounts, "北泉街道 处置员", "unit", unit_id=BEIQUAN),
            "partner": auth.new_key(accounts, "区公安分局 联络员", "partner", department="police"),
            "partner_env": auth.new_key(accounts, "区生态环境局 联络员", "partner", department="environment"),
            "leader": auth.new_key(accounts, "区领导", "leader"),
            "admin": auth.new_key(accounts, "管理员", "admin"),
        }
        self.anonymous = Client(base)

    def as_(self, role) -> Client:
        return Client(self.base, self.keys[role], role)

    def new_key(self, name, role, **scope) -> Client:
        return Client(self.base, auth.new_key(self.db("gateway").accounts, name, role, **scope), role)

    # ------------------------------------------------------------ things to look at
    def report(self, location, class_code="E0101", role="operator", **extra) -> str:
        answer = self.as_(role).post("/api/reports", json={
            "class_code": class_code, "location": location, "address": "测试地址", "description": "路口暴露垃圾约2平方米",
            "attributes": {"area_m2": 2}, "reporter": {"name": "张三", "phone": "13800000000"}, **extra})
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "registered", answer.text
        return answer.json()["case_id"]

    def dispatched(self, case_id) -> dict:
        cases = self.db("dispatch").cases
        return wait_until(lambda: (lambda doc: doc if doc and not doc.get("_pending") else None)(
            cases.find_one({"_id": case_id})), what=f"dispatch of {case_id}")

    def known_to_coordination(self, case_id):
        wait_until(lambda: self.db("coordination").cases.find_one({"_id": case_id}),
                   what=f"coordination to keep {case_id}")

    def version(self, case_id) -> int:
        return self.db("dispatch").cases.find_one({"_id": case_id})["_version"]

    def whistle(self, role, case_id, departments, request_id, **extra) -> str:
        answer = self.as_(role).post("/api/operations", json={
            "case_id": case_id, "departments": departments, "request_id": request_id,
            "reason": "需要相关部门到场", **extra})
        assert answer.status_code == 201, answer.text
        return answer.json()["operation"]["_id"]


PACKAGES = {"coordination": "enforcement_coordination"}      # service name → package, where they differ


def backing_services():
    """Every service the gateway calls over RPC (its RpcProxy dependencies), as service classes."""
    found = []
    for attribute in vars(GatewayService).values():
        if isinstance(attribute, RpcProxy):
            name = attribute.target_service
            module = importlib.import_module(f"services.{PACKAGES.get(name, name)}.service")
            found.append(next(cls for cls in vars(module).values()
                              if isinstance(cls, type) and getattr(cls, "name", None) == name))
    return found


@pytest.fixture
def platform(container_factory, config, db):
    """Every service the gateway calls (intake, dispatch, coordination, scoring …) and the gateway;
    citizens limited to bursts of 3."""
    port = free_port()
    for cls in backing_services():
        container_factory(cls, dict(config, TIMER_POLL_SECONDS=0.2)).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}",
                                           CITIZEN_BURST=3, CITIZEN_RATE_PER_MINUTE=0.1,
                                           AUTH_FAIL_BURST=10000)).start()     # matrices send many bad keys
    return Platform(f"http://127.0.0.1:{port}", db, config)
