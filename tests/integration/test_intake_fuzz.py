"""Property-based tests (hypothesis) that throw malformed and hostile input at every channel, on
the real broker and store: Open311 (POST and GET, both formats), the native POST /api/reports,
and AMQP ``intake.inbound`` (reports and sensor readings).

For every input: no crash (never a 500 or 503), a clear error (a standard error array / a
field-level error / a dead letter with its reason), and nothing lost (every accepted request is in
the store; every AMQP message is either applied or in its dead-letter queue — and none of them
dead-lettered because a handler broke)."""
import json
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kombu import Connection

from tests.helpers import publish, queue_depth, wait_until
from tests.integration.intake_support import api_key, start

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)
NASTY_TEXT = st.text(max_size=60) | st.sampled_from([
    "<script>alert(1)</script>", "'; DROP TABLE reports; --", "{\"$ne\": null}", "../../etc/passwd",
    "\x00\x01\x02", "𠜎𠜱𠝹", "1e400", "-0", "NaN", "29.8338", "106.3904", "E0101", "C0101", "open,closed",
    "2026-11-23T10:00:00+08:00", "5001900101000001", "500190001001001", "天生路18号", "x" * 5000])
PLACES = st.sampled_from([("29.8338", "106.3904"), ("29.8302", "106.3960"), ("95", "0"), ("29.8", "east")])


@pytest.fixture
def site(container_factory, config, db):
    # hostile bodies, not request volume, are tested here (rate limits: test_open311.py)
    running = start(container_factory, dict(config, OPEN311_RATE_PER_MINUTE=100000, OPEN311_BURST=100000,
                                            AUTH_FAIL_BURST=100000), gateway=True)
    running.key = api_key(db)
    from services.gateway.auth import new_key          # the native API needs a login (docs/api.md)
    running.login = {"Authorization": f"Bearer {new_key(db('gateway').accounts, '指挥中心值班员', 'operator')}"}
    running.reports = db("intake").reports
    return running


def assert_error_array(answer, fmt):
    if fmt == "xml":
        root = ET.fromstring(answer.content)
        assert root.tag == "errors" and root.find("error/code").text == str(answer.status_code)
        assert root.find("error/description").text
    else:
        body = answer.json()
        assert isinstance(body, list) and body[0]["code"] == answer.status_code and body[0]["description"]


@FUZZ
@given(fmt=st.sampled_from(["json", "xml"]),
       fields=st.dictionaries(st.sampled_from(["service_code", "lat", "long", "address_string", "address_id",
                                               "email", "phone", "media_url", "description", "first_name",
                                               "account_id", "jurisdiction_id", "attribute[area_m2]",
                                               "attribute[condition]", "attribute[urgency]",
                                               "attribute[missing_measures][]", "attribute[x"]),
                              NASTY_TEXT, max_size=8),
       code=st.sampled_from(["E0101", "C0101", "E0301", "E0306", "E9999", None]),
       place=st.one_of(st.none(), PLACES), key=st.sampled_from(["valid", "bad", None]))
def test_open311_post_never_crashes(site, fmt, fields, code, place, key):
    data = dict(fields)
    if code:
        data.setdefault("service_code", code)
    if place:
        data.setdefault("lat", place[0])
        data.setdefault("long", place[1])
    if key:
        data["api_key"] = site.key if key == "valid" else "dcg311_" + "x" * 10
    answer = requests.post(f"{site.url}/open311/v2/requests.{fmt}", data=data, timeout=20)
    assert answer.status_code in (201, 400, 403, 404), (answer.status_code, answer.text[:500])
    if answer.status_code == 201:
        body = answer.json()[0] if fmt == "json" else ET.fromstring(answer.content).find("request")
        request_id = body["service_request_id"] if fmt == "json" else body.find("service_request_id").text
        assert site.reports.find_one({"_id": request_id}) is not None         # nothing lost
    else:
        assert_error_array(answer, fmt)
        if key != "valid":
            assert answer.status_code in (400, 403)


@FUZZ
@given(content_type=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain",
                                     "multipart/form-data; boundary=zzz", "application/xml"]),
       body=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
def test_open311_post_with_a_raw_hostile_body(site, content_type, body):
    answer = requests.post(f"{site.url}/open311/v2/requests.json", data=body,
                           headers={"Content-Type": content_type, "X-Api-Key": site.key}, timeout=20)
    assert answer.status_code in (201, 400, 404), (answer.status_code, answer.text[:500])
    if answer.status_code != 201:
        assert_error_array(answer, "json")


@FUZZ
@given(fmt=st.sampled_from(["json", "xml"]),
       path=st.sampled_from(["requests", "services", "requests/{x}", "services/{x}", "tokens/{x}", "discovery",
                             "{x}"]),
       x=NASTY_TEXT.filter(lambda t: t.strip() != ""),
       query=st.dictionaries(st.sampled_from(["service_request_id", "service_code", "start_date", "end_date",
                                              "status", "page", "page_size", "jurisdiction_id"]),
                             NASTY_TEXT, max_size=5))
def test_open311_get_never_crashes(site, fmt, path, x, query):
    url = f"{site.url}/open311/v2/{path.format(x=quote(x[:200], safe=''))}.{fmt}"
    answer = requests.get(url, params=query, timeout=20)
    # 414: the web server's own limit on the request line (several 5000-character parameters)
    assert answer.status_code in (200, 400, 404, 414), (answer.status_code, answer.text[:500])
    if answer.status_code == 200:
        if fmt == "json":
            answer.json()
        else:
            ET.fromstring(answer.content)
    elif answer.status_code != 414:
        assert_error_array(answer, fmt)


@FUZZ
@given(body=st.dictionaries(st.sampled_from(["channel", "class_code", "location", "address", "description",
                                             "urgency", "reporter", "media_urls", "photo_refs", "inspector_id",
                                             "leader", "attributes", "object_code", "reported_at"]),
                            JSONISH, max_size=8)
       | st.fixed_dictionaries({"class_code": st.sampled_from(["E0101", "C0101", "E0301"]),
                                "location": st.fixed_dictionaries({"lon": JSONISH, "lat": JSONISH}),
                                "channel": st.sampled_from(["web", "inspector", "road_office", "sensor"]),
                                "attributes": st.dictionaries(st.sampled_from(["area_m2", "condition", "pm10"]),
                                                              JSONISH, max_size=3)})
       | JSONISH)
def test_native_post_reports_never_crashes(site, body):
    answer = requests.post(f"{site.url}/api/reports", data=json.dumps(body),
                           headers={"Content-Type": "application/json", **site.login}, timeout=20)
    assert answer.status_code in (201, 400, 422), (answer.status_code, answer.text[:500])
    payload = answer.json()
    if answer.status_code == 400:
        assert payload["error"]["message"]
    else:                                  # filed (201), or kept but not filed (422, in the error shape)
        report_id = payload["report_id"] if answer.status_code == 201 else payload["error"]["report_id"]
        assert site.reports.find_one({"_id": report_id}) is not None


AMQP_MESSAGE = st.one_of(
    st.tuples(st.just("report"), st.sampled_from(["report.hotline", "report.inspector", "report.sensor",
                                                   "report.road_office", "report.anything"]),
              st.fixed_dictionaries({
                  "channel": st.sampled_from(["hotline", "inspector", "sensor", "road_office", "web", "fax"]),
                  "class_code": st.sampled_from(["E0101", "C0101", "E0301", "X", None]),
                  "location": st.fixed_dictionaries({"lon": st.sampled_from([106.3904, 106.396, 200, "e"]),
                                                     "lat": st.sampled_from([29.8338, 29.8302, None])}),
                  "inspector_id": st.sampled_from(["insp-1", None, "bad id!"]),
                  "photo_refs": st.sampled_from([[], ["photo://a/1.jpg"], ["javascript:x"]]),
                  "leader": st.sampled_from([None, {"name": "周区长", "title": "副区长"}, "boss"]),
                  "attributes": st.dictionaries(st.sampled_from(["area_m2", "condition", "pm10"]), JSONISH,
                                                max_size=2),
              }, optional={"description": NASTY_TEXT, "urgency": NASTY_TEXT, "reported_at": NASTY_TEXT})),
    st.tuples(st.just("report"), st.just("report.hotline"), JSONISH),
    st.tuples(st.just("reading"), st.sampled_from(["reading.pm10", "reading.noise_db", "reading.x"]),
              st.fixed_dictionaries({
                  "sensor_id": st.sampled_from(["dust-tsl-001", "noise-dy-001", "nobody", None]),
                  "metric": st.sampled_from(["pm10", "noise_db", "x"]),
                  "value": st.sampled_from([180, 20.5, -1e9, "high", None]),
                  "measured_at": st.sampled_from(["2026-11-23T01:00:00Z", "2026-11-23T01:05:00+08:00",
                                                  "yesterday", None]),
              })),
    st.tuples(st.sampled_from(["report", "reading"]), st.sampled_from(["report.hotline", "reading.pm10"]),
              st.binary(max_size=64)),
)


@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(AMQP_MESSAGE, min_size=15, max_size=25))
def test_amqp_inbound_nothing_lost(container_factory, config, db, batch):
    if not getattr(test_amqp_inbound_nothing_lost, "_started", {}).get(config["DB_PREFIX"]):
        start(container_factory, config)
        test_amqp_inbound_nothing_lost._started = {config["DB_PREFIX"]: {"reports": [], "readings": [], "raw": 0}}
    sent = test_amqp_inbound_nothing_lost._started[config["DB_PREFIX"]]
    for kind, key, body in batch:
        number = len(sent["reports"]) + len(sent["readings"]) + sent["raw"]
        if isinstance(body, dict) and kind == "report":
            body = dict(body, external_id=f"fz{number}")
            sent["reports"].append(f"fz{number}")
        elif isinstance(body, dict):
            body = dict(body, reading_id=f"fzr{number}")
            sent["readings"].append(f"fzr{number}")
        else:
            sent["raw"] += 1
            sent.setdefault("raw_keys", []).append(key)
        publish(config, "intake.inbound", key, body if not isinstance(body, (list, str, int, float, bool, type(None)))
                else json.dumps(body).encode(), content_type="application/json")
    reports, sensors = db("intake").reports, db("intake").sensors
    raw_reports = sum(1 for key in sent.get("raw_keys", []) if key.startswith("report"))
    raw_readings = sent["raw"] - raw_reports

    def accounted():
        filed = reports.count_documents({"report.external_id": {"$in": sent["reports"]}})
        applied = sum(doc.get("readings", 0) for doc in sensors.find({}, {"readings": 1}))
        dead_reports = queue_depth(config, "intake.inbound-reports.dlq")
        dead_readings = queue_depth(config, "intake.sensor-readings.dlq")
        return (filed + dead_reports == len(sent["reports"]) + raw_reports
                and applied + dead_readings == len(sent["readings"]) + raw_readings)
    wait_until(accounted, timeout=60, what="every message applied or dead-lettered")
    for queue in ("intake.inbound-reports.dlq", "intake.sensor-readings.dlq"):
        for headers in peek_headers(config, queue):
            assert headers["x-dead-letter-reason"]
            assert headers["x-error-type"] in ("validation", "decode_error"), headers   # never a broken handler


def peek_headers(config, queue_name):
    """The headers of every message in a queue, leaving them there (unacked, then requeued)."""
    out = []
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        while True:
            message = channel.basic_get(queue_name, no_ack=False)
            if message is None:
                break
            out.append(dict(message.properties.get("application_headers") or {}))
        channel.close()                       # unacked → back in the queue
    return out
