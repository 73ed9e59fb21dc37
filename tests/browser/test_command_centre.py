"""The command-centre page in a real browser (Debian's chromium, driven by Playwright, see
scenarios.py) against the real platform: log in, see a new report appear on the map, open a whistle operation, and
watch a department's state change live. Screenshots go to artifacts/browser/."""
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from services.dispatch.service import DispatchService
from services.enforcement_coordination.service import CoordinationService
from services.gateway import auth
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from services.participation.service import ParticipationService
from services.scoring.service import ScoringService
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="make system-packages installs chromium")


@pytest.fixture
def platform(container_factory, config):
    port = free_port()
    for cls in (IntakeService, DispatchService, CoordinationService, ScoringService, ParticipationService):
        container_factory(cls, config).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def departments(vhost, tmp_path):
    """Department programs slow enough that the page sees each step."""
    url = f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    procs = [subprocess.Popen([sys.executable, "-m", f"departments.{dept}"], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "DEPT_AMQP_URL": url,
                                   "DEPT_CHECKIN_SECONDS": "4", "DEPT_ACTION_SECONDS": "4",
                                   "DEPT_DISPOSE_SECONDS": "4", "DEPT_HISTORY_DIR": str(tmp_path)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for dept in ("police", "environment")]
    yield
    for proc in procs:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def keys(db):
    accounts = db("gateway").accounts
    return {"community": auth.new_key(accounts, "天生路社区 评议代表", "community", unit_id="500190001001"),
            "operator": auth.new_key(accounts, "指挥中心值班员", "operator"),
            "street": auth.new_key(accounts, "天生街道 处置员", "unit", unit_id="street.tianshengjie"),
            "inspector": auth.new_key(accounts, "网格员 小李", "inspector", person_id="insp-017"),
            "partner": auth.new_key(accounts, "公安联络员", "partner", department="police"),
            "leader": auth.new_key(accounts, "区领导", "leader")}


def run(scenario, platform, keys):
    """Run one browser scenario in its own (unpatched) process; its JSON result."""
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "browser" / "scenarios.py"), scenario, platform,
                           json.dumps(keys)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_log_in_is_required_and_a_wrong_key_is_refused(platform, keys):
    result = run("login_refused", platform, keys)
    assert result["form_visible"] and result["app_hidden"]
    assert "登录失败" in result["error"] and "无效" in result["error"]


def test_a_new_report_appears_on_the_map(platform, keys):
    result = run("report_on_map", platform, keys)
    assert not result["on_map_before"]                   # it appeared while the page was open
    assert "指挥中心值班员" in result["me"]
    assert "立案" in result["timeline"] and "派遣" in result["timeline"]


def test_a_street_blows_the_whistle_and_watches_departments_answer(platform, keys, departments):
    result = run("whistle", platform, keys)
    assert "已吹哨" in result["result"]
    first, later = result["police_states"]
    assert first != later
    assert later in ("accepted", "on_site", "acting", "disposed")


def test_a_community_representative_rates_a_department_once_a_month(platform, keys):
    result = run("community_review", platform, keys)
    assert "已提交" in result["first"]
    assert "提交失败" in result["second"]                 # one vote per unit per month
