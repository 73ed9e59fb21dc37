"""Every reporting channel on the real broker and store: the 12345 hotline bridge (a real pika
subprocess), inspectors with photo references, leaders' road-office notes, IoT readings that
become reports by themselves, and the dead-letter queue for what cannot be read."""
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import requests

from bridges.sensor_feed import series
from shared import storage
from shared.refdata import load_district
from tests.helpers import drain, observer, publish, queue_depth, wait_until
from tests.integration.intake_support import INSIDE, start

ROOT = Path(__file__).resolve().parents[2]



def operator(db):
    """The command centre's login (services/gateway/auth.py): it enters inspector and road-office reports."""
    from services.gateway.auth import new_key
    return {"Authorization": f"Bearer {new_key(db('gateway').accounts, '指挥中心值班员', 'operator')}"}

def events_of(config, queue, types=None):
    return [body for body, _ in drain(config, queue) if types is None or body["type"] in types]


def test_hotline_bridge_publishes_tickets_once_each(container_factory, config, db, vhost, tmp_path):
    start(container_factory, config)
    seen = observer(config, "intake.events")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOTLINE_HISTORY_DIR": str(tmp_path),
           "HOTLINE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"}
    for _ in range(2):                                   # the same tickets twice: one report each
        done = subprocess.run([sys.executable, "-m", "bridges.hotline", "--demo", "3"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    reports = db("intake").reports
    wait_until(lambda: reports.count_documents({"channel": "hotline"}) == 3, what="three hotline reports")
    garbage = reports.find_one({"_id": "hotline-12345-DEMO-0001"})
    assert garbage["status"] == "registered" and garbage["case"]["owner_unit"] == "street.tianshengjie"
    assert garbage["report"]["reporter"]["phone"] == "13900000001"
    cover = reports.find_one({"_id": "hotline-12345-DEMO-0002"})     # no lon/lat: the address was placed
    assert cover["report"]["class_code"] == "C0101" and cover["report"]["urgency"] == "urgent"
    assert cover["case"]["owner_unit"] == "dept.water" and cover["case"]["grid_code"] == "500190002002001"
    assert len((tmp_path / "hotline.jsonl").read_text(encoding="utf-8").splitlines()) == 6
    events = []

    def three():
        events.extend(b for b, _ in drain(config, seen) if b["type"] == "case_registered")
        return len(events) >= 3
    wait_until(three, what="case_registered x3")
    assert sorted(e["payload"]["report_id"] for e in events) == [
        "hotline-12345-DEMO-0001", "hotline-12345-DEMO-0002", "hotline-12345-DEMO-0003"]
    assert all(e["payload"]["channel"] == "hotline" for e in events)
    assert queue_depth(config, "intake.inbound-reports.dlq") == 0


def test_bad_amqp_reports_land_in_the_dead_letter_queue_with_their_reason(container_factory, config, db):
    start(container_factory, config)
    publish(config, "intake.inbound", "report.hotline", {"channel": "hotline", "class_code": "E0101",
                                                         "location": {"lon": 106.39, "lat": 29.83}})
    publish(config, "intake.inbound", "report.hotline", b"\xff\xfe not json", content_type="application/json")
    publish(config, "intake.inbound", "report.inspector", {"channel": "inspector", "class_code": "E0101",
                                                           "location": {"lon": "east", "lat": 29.83}})
    publish(config, "intake.inbound", "reading.pm10", {"sensor_id": "nobody", "metric": "pm10",
                                                       "value": 999, "measured_at": "2026-11-23T01:00:00Z"})
    wait_until(lambda: queue_depth(config, "intake.inbound-reports.dlq") == 3, what="three dead letters")
    wait_until(lambda: queue_depth(config, "intake.sensor-readings.dlq") == 1, what="the bad reading")
    reasons = [headers["x-dead-letter-reason"] for _, headers in drain(config, "intake.inbound-reports.dlq")]
    assert any("external_id" in reason for reason in reasons)
    assert any("JSON" in reason or "decode" in reason for reason in reasons)
    assert any("inspector_id" in reason and "lon" in reason for reason in reasons)
    reading = drain(config, "intake.sensor-readings.dlq")[0][1]["x-dead-letter-reason"]
    assert "未登记的传感器" in reading
    assert db("intake").reports.count_documents({}) == 0


def test_inspector_reports_need_photo_references(container_factory, config, db):
    running = start(container_factory, config, gateway=True)
    seen = observer(config, "intake.events")
    base = {"channel": "inspector", "inspector_id": "insp-017", "class_code": "E0506",
            "location": INSIDE, "description": "人行道上堆放建材"}
    publish(config, "intake.inbound", "report.inspector",
            {**base, "external_id": "insp-017-0001", "photo_refs": ["photo://inspector/insp-017/0001.jpg"]})
    publish(config, "intake.inbound", "report.inspector", {**base, "external_id": "insp-017-0002",
                                                           "location": {"lon": 106.4100, "lat": 29.8262}})
    reports = db("intake").reports
    wait_until(lambda: reports.count_documents({"channel": "inspector"}) == 2, what="two inspector reports")
    good = reports.find_one({"_id": "inspector-insp-017-0001"})
    assert good["status"] == "registered"
    bad = reports.find_one({"_id": "inspector-insp-017-0002"})
    assert bad["status"] == "rejected" and bad["reason_code"] == "no_photo" and "照片" in bad["reason"]

    events = []

    def registered():
        events.extend(b for b, _ in drain(config, seen))
        types = {e["type"] for e in events}
        return {"report_rejected", "case_registered"} <= types
    wait_until(registered, what="events")
    case = next(e for e in events if e["type"] == "case_registered")["payload"]
    assert case["inspector_id"] == "insp-017"
    assert case["media_urls"] == ["photo://inspector/insp-017/0001.jpg"]
    rejected = next(e for e in events if e["type"] == "report_rejected")["payload"]
    assert rejected["inspector_id"] == "insp-017" and rejected["reason_code"] == "no_photo"
    # over HTTP: an inspector report without inspector_id is a field-level 400
    answer = requests.post(f"{running.url}/api/reports", json={**base, "inspector_id": None}, timeout=10,
                           headers=operator(db))
    assert answer.status_code == 400 and "inspector_id" in answer.json()["error"]["fields"]


def test_road_office_notes_are_filed_urgent_by_the_leader(container_factory, config, db):
    running = start(container_factory, config, gateway=True)
    note = {"channel": "road_office", "class_code": "E0101", "location": {"lon": 106.4064, "lat": 29.83364},
            "description": "马路办公发现碚峡路垃圾清运不及时", "attributes": {"area_m2": 0.3},
            "leader": {"name": "周区长", "title": "副区长"}}
    answer = requests.post(f"{running.url}/api/reports", json=note, timeout=10, headers=operator(db))
    assert answer.status_code == 201, answer.text
    report = db("intake").reports.find_one({"_id": answer.json()["report_id"]})
    # the leader's note is filed although 0.3 m² is under the citizen filing standard
    assert report["status"] == "registered" and report["case"]["urgency"] == "urgent"
    case = db("intake").cases.find_one({"_id": report["case_id"]})
    assert case["leader"] == {"name": "周区长", "title": "副区长"} and case["reporter_id"] == "leader:周区长"
    assert case["time_limit"] == load_district().deadline("E0101", "urgent")
    missing = requests.post(f"{running.url}/api/reports", json={**note, "leader": None}, timeout=10,
                            headers=operator(db))
    assert missing.status_code == 400 and "leader" in missing.json()["error"]["fields"]


def test_pm10_over_threshold_for_30_minutes_becomes_one_report(container_factory, config, db):
    start(container_factory, config)
    district = load_district()
    sensor = district.sensor("dust-tsl-001")
    now = storage.now_utc().replace(second=0, microsecond=0)
    # 20 minutes high, then below, then 35 minutes high: only the second episode lasts 30 minutes
    readings = (series(sensor, 180, 20, now - timedelta(minutes=60), "µg/m³")
                + series(sensor, 60, 3, now - timedelta(minutes=37), "µg/m³")
                + series(sensor, 190, 35, now, "µg/m³", jitter=5))
    for item in readings:
        publish(config, "intake.inbound", "reading.pm10", item)
    sensors = db("intake").sensors
    wait_until(lambda: (sensors.find_one({"_id": "dust-tsl-001"}) or {}).get("readings") == len(readings),
               what="every reading applied")
    doc = sensors.find_one({"_id": "dust-tsl-001"})
    assert len(doc["reports"]) == 1
    report = db("intake").reports.find_one({"_id": doc["reports"][0]["report_id"]})
    assert report["channel"] == "sensor" and report["status"] == "registered"
    assert report["report"]["class_code"] == "E0301" and report["report"]["sensor_id"] == "dust-tsl-001"
    assert report["report"]["attributes"]["pm10"] > 150
    assert "连续 30 分钟超过 150µg/m³" in report["report"]["description"]
    assert report["case"]["joint_partners"] == ["environment", "construction"]
    # the same readings again (redelivered), then one more: still one report
    for item in readings[-5:]:
        publish(config, "intake.inbound", "reading.pm10", item)
    last = series(sensor, 200, 1, now + timedelta(minutes=1), "µg/m³")[-1]
    publish(config, "intake.inbound", "reading.pm10", last)
    wait_until(lambda: sensors.find_one({"_id": "dust-tsl-001"})["last_reading"]["reading_id"] == last["reading_id"],
               what="the last reading")
    wait_until(lambda: queue_depth(config, "intake.sensor-readings") == 0, what="the queue drained")
    assert db("intake").reports.count_documents({"channel": "sensor"}) == 1
    assert len(sensors.find_one({"_id": "dust-tsl-001"})["reports"]) == 1
