"""Open311 GeoReport v2 mapping and rendering (pure), plus property-based tests that throw
hostile input at the parsers and schemas: a clear error, never a crash."""
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest
import xmltodict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from services.intake import open311
from services.intake.schemas import ReportSchema, SensorReadingSchema, load_inbound_report
from shared.refdata import load_district

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def district():
    return load_district()


def test_form_to_dict_gathers_attributes():
    pairs = [("service_code", ["E0301"]), ("attribute[pm10]", ["180"]),
             ("attribute[missing_measures][]", ["fence", "cover"]), ("attribute[x]", ["a", "b"]),
             ("lat", ["29.8", "30"]), ("empty", [])]
    assert open311.form_to_dict(pairs) == {
        "service_code": "E0301", "lat": "29.8",
        "attribute": {"pm10": "180", "missing_measures": ["fence", "cover"], "x": ["a", "b"]}}


def test_request_schema(district):
    schema = open311.Open311RequestSchema()
    loaded = schema.load({"service_code": "E0101", "lat": "29.8338", "long": "106.3904", "email": "",
                          "description": "", "media_url": ""})
    assert loaded["lat"] == 29.8338 and loaded["email"] == "" and loaded["attribute"] == {}
    with pytest.raises(ValidationError) as info:
        schema.load({"service_code": "E0101", "lat": "29.8"})
    assert "lat" in info.value.messages
    with pytest.raises(ValidationError) as info:
        schema.load({"service_code": "E0101"})
    assert "location" in info.value.messages
    with pytest.raises(ValidationError) as info:
        schema.load({"service_code": "E 01", "lat": "99", "long": "0", "email": "x", "phone": "call me",
                     "media_url": "ftp://x", "address_id": "12"})
    assert set(info.value.messages) == {"service_code", "lat", "email", "phone", "media_url", "address_id"}
    lines = open311.errors_from_validation(info.value.messages)
    assert len(lines) == 6 and all(": " in line for line in lines)


def test_services_and_definitions(district):
    services = open311.service_list(district)
    assert len(services) == len(district.taxonomy) >= 40
    first = services[0]
    assert set(first) == {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
    assert first["type"] == "realtime" and first["metadata"] is True
    definition = open311.service_definition(district, "E0101")
    codes = [a["code"] for a in definition["attributes"]]
    assert codes == ["area_m2", "bags", "urgency"]                  # events have no object_code
    area = definition["attributes"][0]
    assert area["datatype"] == "number" and area["datatype_description"] == "单位：平方米" and area["order"] == 1
    assert [a["code"] for a in open311.service_definition(district, "C0101")["attributes"]][-1] == "object_code"
    with pytest.raises(open311.Open311Error) as info:
        open311.service_definition(district, "E9999")
    assert info.value.status == 404 and info.value.errors[0]["code"] == 404


def test_to_report(district):
    params = open311.Open311RequestSchema().load({
        "service_code": "C0101", "address_id": "5001900101000001", "first_name": "三", "last_name": "张",
        "phone": "13800000000", "attribute": {"condition": "broken", "urgency": "urgent"},
        "media_url": "https://img.example.com/a.jpg"})
    report = open311.to_report(params, district)
    assert report["location"] == district.components["5001900101000001"]["location"]
    assert report["object_code"] == "5001900101000001" and report["urgency"] == "urgent"
    assert report["reporter"]["name"] == "张 三" and report["attributes"] == {"condition": "broken"}
    assert report["media_urls"] == ["https://img.example.com/a.jpg"] and report["channel"] == "open311"
    gridded = open311.to_report(open311.Open311RequestSchema().load(
        {"service_code": "E0101", "address_id": "500190001001001"}), district)
    assert district.locate(**{"lon": gridded["location"]["lon"], "lat": gridded["location"]["lat"]})["grid_code"] \
        == "500190001001001"
    for bad, text in (({"service_code": "C0101", "lat": "29.8338", "long": "106.3904"}, "attribute[condition]"),
                      ({"service_code": "E0101", "address_string": "月球"}, "address_string"),
                      ({"service_code": "E0101", "address_id": "5001900101999999"}, "address_id"),
                      ({"service_code": "E0101", "lat": "29.8338", "long": "106.3904",
                        "attribute": {"urgency": "now"}}, "attribute[urgency]"),
                      ({"service_code": "C0101", "lat": "29.8338", "long": "106.3904",
                        "attribute": {"condition": "missing", "object_code": "5001900108000001"}},
                       "attribute[object_code]")):
        with pytest.raises(open311.Open311Error) as info:
            open311.to_report(open311.Open311RequestSchema().load(bad), district)
        assert info.value.status == 400 and text in info.value.errors[0]["description"], bad
    with pytest.raises(open311.Open311Error) as info:
        open311.to_report(open311.Open311RequestSchema().load({"service_code": "X1", "lat": "1", "long": "1"}),
                          district)
    assert info.value.status == 404


def test_service_request_view(district):
    received = NOW
    report = {"_id": "rpt-1", "status": "registered", "case_id": "C1", "received_at": received,
              "updated_at": received, "service_notice": "已立案",
              "report": {"class_code": "E0101", "location": {"lon": 106.39, "lat": 29.83},
                         "description": "垃圾", "address": "天生路18号", "media_urls": [], "photo_refs": []}}
    case = {"state": "dispatched", "unit_id": "street.tianshengjie", "deadline": received + timedelta(hours=4),
            "updated_at": received + timedelta(minutes=1), "status_notes": "已派遣至天生街道"}
    view = open311.service_request(report, case, district)
    assert view["status"] == "open" and view["agency_responsible"] == "天生街道"
    assert view["expected_datetime"] == "2026-11-23T14:00:00+08:00"
    assert view["updated_datetime"] == "2026-11-23T10:01:00+08:00"
    assert view["status_notes"] == "案件 C1：已派遣至天生街道"
    closed = open311.service_request(report, dict(case, state="closed", closed_at=received + timedelta(hours=2)),
                                     district)
    assert closed["status"] == "closed" and closed["expected_datetime"] is None
    rejected = open311.service_request(dict(report, status="rejected", reason="不符合"), None, district)
    assert rejected["status"] == "closed" and rejected["status_notes"] == "不予立案：不符合"
    duplicate = open311.service_request(dict(report, status="duplicate"), case, district)
    assert duplicate["status_notes"].startswith("重复上报，已并入案件 C1")


def test_query_filters_default_to_90_days():
    filters = open311.query_filters({"status": "open,closed", "service_code": "E0101, C0101"}, NOW)
    assert filters["start"] == NOW - timedelta(days=90) and filters["end"] == NOW
    assert filters["codes"] == ["E0101", "C0101"] and filters["statuses"] == ["closed", "open"]
    only_start = open311.query_filters({"start_date": NOW - timedelta(days=200)}, NOW)
    assert only_start["end"] == NOW - timedelta(days=110)
    with pytest.raises(ValidationError):
        open311.Open311QuerySchema().load({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-05-01T00:00:00Z"})
    with pytest.raises(ValidationError):
        open311.Open311QuerySchema().load({"status": "open,pending"})
    with pytest.raises(ValidationError):
        open311.Open311QuerySchema().load({"page_size": "5000"})


def test_xml_rendering_follows_the_spec_shapes(district):
    xml = open311.render_xml("services", open311.service_list(district)[:2])
    assert xml.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    parsed = xmltodict.parse(xml)["services"]["service"]
    assert parsed[0]["metadata"] == "true" and parsed[0]["type"] == "realtime"
    definition = ET.fromstring(open311.render_xml("service_definition", open311.service_definition(district, "C0101")))
    assert definition.find("attributes/attribute/values/value/key").text == "missing"
    errors = ET.fromstring(open311.render_xml("errors", open311.Open311Error(403, "no key\x00").errors))
    assert errors.find("error/code").text == "403" and errors.find("error/description").text == "no key\ufffd"
    empty = xmltodict.parse(open311.render_xml("service_requests", [{"a": None, "b": 1.5}]))
    assert empty["service_requests"]["request"] == {"a": None, "b": "1.5"}


# ------------------------------------------------------------------ property-based: hostile input
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
FIELDS = ["channel", "class_code", "location", "address", "description", "urgency", "reporter", "media_urls",
          "photo_refs", "inspector_id", "leader", "attributes", "object_code", "reported_at", "external_id"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=10)
       | st.fixed_dictionaries({"channel": st.sampled_from(["web", "inspector", "hotline", "road_office"]),
                                "class_code": st.sampled_from(["E0101", "C0101", "E0301", "E0306", "E9999"]),
                                "location": st.fixed_dictionaries({"lon": JSONISH, "lat": JSONISH}),
                                "attributes": st.dictionaries(st.sampled_from(
                                    ["area_m2", "bags", "condition", "pm10", "missing_measures", "observed_at"]),
                                    JSONISH, max_size=4)}))
def test_report_schema_never_crashes(body):
    try:
        report = load_inbound_report(body)
    except ValidationError as exc:
        assert exc.messages and isinstance(exc.messages, dict)
        return
    from services.intake import filing
    decision = filing.decide(report, load_district(), now=NOW)      # a valid report always gets an answer
    assert decision["accepted"] in (True, False)
    assert decision["accepted"] or decision["reason"]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["service_code", "lat", "long", "address_string", "address_id", "email",
                                        "phone", "media_url", "description", "attribute", "first_name"]),
                       st.text(max_size=30) | JSONISH, max_size=8))
def test_open311_parsing_never_crashes(params):
    district = load_district()
    try:
        loaded = open311.Open311RequestSchema().load(params)
        report = open311.to_report(loaded, district)
        ReportSchema().load(report)
    except ValidationError as exc:
        assert open311.errors_from_validation(exc.messages)
    except open311.Open311Error as exc:
        assert exc.status in (400, 404) and exc.errors


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(["sensor_id", "metric", "value", "measured_at", "reading_id", "unit"]),
                       JSONISH | st.sampled_from(["dust-tsl-001", "pm10", "2026-11-23T01:00:00Z"]), max_size=6))
def test_sensor_reading_schema_never_crashes(body):
    try:
        SensorReadingSchema().load(body)
    except ValidationError as exc:
        assert exc.messages
