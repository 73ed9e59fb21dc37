"""Open311 GeoReport v2 through the gateway, backed by intake, on the real broker and store —
driven with the unchanged PyPI client ``georeport`` (GETs; it cannot POST) and with plain HTTP."""
import xml.etree.ElementTree as ET

import pytest
import requests
import xmltodict
from georeport import GeoReport

from tests.helpers import wait_until
from tests.integration.intake_support import BORDER, GAP, INSIDE, api_key, close_case, start, wait_case


@pytest.fixture
def site(container_factory, config, db):
    running = start(container_factory, config, gateway=True, dispatch=True)
    running.key = api_key(db)
    running.v2 = f"{running.url}/open311/v2"
    return running


def post(site, fmt="json", **fields):
    data = {"api_key": site.key, **fields}
    return requests.post(f"{site.v2}/requests.{fmt}", data=data, timeout=15)


def test_georeport_client_round_trip_json_and_xml(site, db):
    for fmt in ("json", "xml"):
        client = GeoReport(site.v2, output_format=fmt)
        services = client.get_service_list()
        codes = [s["service_code"] for s in services]
        assert "E0101" in codes and "C0101" in codes and len(codes) >= 40
        garbage = next(s for s in services if s["service_code"] == "E0101")
        assert garbage["service_name"] == "暴露垃圾"
        assert str(garbage["metadata"]).lower() == "true" and garbage["type"] == "realtime"

        definition = client.get_service_definition("C0101")
        assert definition["service_code"] == "C0101"
        attributes = definition["attributes"]
        if fmt == "xml":
            attributes = attributes["attribute"]
        by_code = {a["code"]: a for a in attributes}
        assert by_code["condition"]["datatype"] == "singlevaluelist"
        assert str(by_code["condition"]["required"]).lower() == "true"
        assert by_code["urgency"]["datatype"] == "singlevaluelist"
        assert by_code["object_code"]["datatype"] == "string"

    # POST (the client cannot post): a form, as the spec says
    answer = post(site, service_code="E0101", lat=INSIDE["lat"], long=INSIDE["lon"],
                  description="路边垃圾堆了三天", first_name="三", last_name="张", phone="13800000000",
                  email="zhang@example.com", account_id="acct-1", media_url="https://img.example.com/1.jpg",
                  **{"attribute[area_m2]": "2", "attribute[urgency]": "urgent"})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    request_id = created[0]["service_request_id"]
    assert "已立案" in created[0]["service_notice"] and created[0]["account_id"] == "acct-1"

    # dispatch (the real service) routes it and sets the deadline: expected_datetime appears
    def dispatched():
        one = GeoReport(site.v2).get_service_request(request_id)
        return one if one.get("expected_datetime") else None
    one = wait_until(dispatched, what="expected_datetime from the case deadline")
    assert one["service_request_id"] == request_id and one["status"] == "open"
    assert one["service_code"] == "E0101" and one["service_name"] == "暴露垃圾"
    assert one["agency_responsible"] == "天生街道"
    assert "已派遣至天生街道" in one["status_notes"]
    assert one["lat"] == INSIDE["lat"] and one["long"] == INSIDE["lon"]
    assert one["media_url"] == "https://img.example.com/1.jpg"
    assert one["requested_datetime"].endswith("+08:00") and one["updated_datetime"] >= one["requested_datetime"]

    xml_one = GeoReport(site.v2, output_format="xml").get_service_request(request_id)
    assert xml_one["service_request_id"] == request_id and xml_one["status"] == "open"
    assert xml_one["expected_datetime"] == one["expected_datetime"]

    listed = GeoReport(site.v2).get_service_requests(service_request_id=request_id)
    assert [r["service_request_id"] for r in listed] == [request_id]
    listed = GeoReport(site.v2).get_service_requests(service_code="E0101", status="open")
    assert request_id in [r["service_request_id"] for r in listed]
    assert GeoReport(site.v2).get_service_requests(service_code="E0101", status="closed") == []

    # the case closes (dispatch's event) → status closed, no expected time any more
    case_id = db("intake").reports.find_one({"_id": request_id})["case_id"]
    close_case(site.config, case_id)
    wait_case(db, case_id, lambda c: c["state"] == "closed", "the case closed")
    closed = GeoReport(site.v2, output_format="xml").get_service_requests(status="closed")
    assert closed["service_request_id"] == request_id and closed["status"] == "closed"
    assert "已结案" in closed["status_notes"]


def test_token_lookup(site, db):
    answer = post(site, service_code="E0101", lat=INSIDE["lat"], long=INSIDE["lon"], description="垃圾")
    request_id = answer.json()[0]["service_request_id"]
    token = db("intake").reports.find_one({"_id": request_id})["token"]
    for fmt in ("json", "xml"):
        found = requests.get(f"{site.v2}/tokens/{token}.{fmt}", timeout=10)
        assert found.status_code == 200
        body = found.json()[0] if fmt == "json" else xmltodict.parse(found.content)["service_requests"]["request"]
        assert body == {"service_request_id": request_id, "token": token}
    missing = requests.get(f"{site.v2}/tokens/tok-nothing.json", timeout=10)
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404


def test_errors_are_standard_arrays_in_both_formats(site):
    # 403: no key, wrong key
    for fmt in ("json", "xml"):
        for key in (None, "dcg311_wrong"):
            data = {"service_code": "E0101", "lat": INSIDE["lat"], "long": INSIDE["lon"]}
            if key:
                data["api_key"] = key
            answer = requests.post(f"{site.v2}/requests.{fmt}", data=data, timeout=10)
            assert answer.status_code == 403
            if fmt == "json":
                assert answer.headers["content-type"].startswith("application/json")
                assert answer.json()[0]["code"] == 403 and "api_key" in answer.json()[0]["description"]
            else:
                assert answer.headers["content-type"].startswith("text/xml")
                root = ET.fromstring(answer.content)
                assert root.tag == "errors" and root.find("error/code").text == "403"
    # 404: unknown service (POST and GET definition), unknown request, unknown path, jurisdiction
    assert post(site, service_code="E9999", lat=INSIDE["lat"], long=INSIDE["lon"]).status_code == 404
    assert requests.get(f"{site.v2}/services/E9999.xml", timeout=10).status_code == 404
    assert requests.get(f"{site.v2}/requests/rpt-nothing.json", timeout=10).status_code == 404
    assert requests.get(f"{site.v2}/services.json?jurisdiction_id=elsewhere.gov", timeout=10).status_code == 404
    assert requests.get(f"{site.v2}/services.json?jurisdiction_id=500190", timeout=10).status_code == 200
    nowhere = requests.get(f"{site.url}/open311/v2/nothing-here.xml", timeout=10)
    assert nowhere.status_code == 404 and ET.fromstring(nowhere.content).find("error/code").text == "404"
    assert requests.get(f"{site.v2}/services.csv", timeout=10).status_code == 404
    assert requests.put(f"{site.v2}/requests.json", timeout=10).status_code == 405
    # 400: field-level, one error per field
    answer = post(site, service_code="E0101", lat="north", long=INSIDE["lon"], email="not-an-email")
    assert answer.status_code == 400
    described = " ".join(e["description"] for e in answer.json())
    assert "lat" in described and "email" in described
    answer = post(site, service_code="E0101")                                  # no location
    assert answer.status_code == 400 and "location" in answer.json()[0]["description"]
    answer = post(site, service_code="C0101", lat=INSIDE["lat"], long=INSIDE["lon"])   # required attribute
    assert answer.status_code == 400 and "attribute[condition]" in answer.json()[0]["description"]
    answer = post(site, service_code="E0101", lat=INSIDE["lat"], long=INSIDE["lon"],
                  **{"attribute[area_m2]": "lots"})
    assert answer.status_code == 400 and "attribute[area_m2]" in answer.json()[0]["description"]
    answer = post(site, service_code="E0101", address_string="火星基地")            # cannot geocode
    assert answer.status_code == 400 and "address_string" in answer.json()[0]["description"]
    answer = requests.get(f"{site.v2}/requests.json?start_date=2026-01-01T00:00:00Z"
                          f"&end_date=2026-06-01T00:00:00Z", timeout=10)          # > 90 days
    assert answer.status_code == 400 and "90" in answer.json()[0]["description"]
    answer = requests.get(f"{site.v2}/requests.xml?status=pending", timeout=10)
    assert answer.status_code == 400 and ET.fromstring(answer.content).tag == "errors"


def test_filing_standard_rejection_is_a_closed_request_with_a_readable_reason(site):
    answer = post(site, service_code="E0101", lat=INSIDE["lat"], long=INSIDE["lon"],
                  description="一点点纸屑", **{"attribute[area_m2]": "0.2", "attribute[bags]": "1"})
    assert answer.status_code == 201
    notice = answer.json()[0]["service_notice"]
    assert notice.startswith("不予立案") and "0.2平方米，未超过 0.5平方米" in notice
    request_id = answer.json()[0]["service_request_id"]
    one = requests.get(f"{site.v2}/requests/{request_id}.json", timeout=10).json()[0]
    assert one["status"] == "closed" and one["status_notes"].startswith("不予立案")
    assert one["agency_responsible"] is None and one["expected_datetime"] is None


def test_address_string_component_address_id_multivaluelist_and_gap(site, db):
    # address_string only: located through the gazetteer (天生路 → its grid)
    answer = post(site, service_code="E0102", address_string="嘉陵区天生路18号门口", description="泥浆")
    assert answer.status_code == 201, answer.text
    report = db("intake").reports.find_one({"_id": answer.json()[0]["service_request_id"]})
    assert report["case"]["grid_code"] == "500190001001001" and report["case"]["owner_unit"] == "op.cleaning"
    # address_id = a component's object code: its position and object code are used
    answer = post(site, service_code="C0101", address_id="5001900101000001",
                  **{"attribute[condition]": "missing"})
    assert answer.status_code == 201, answer.text
    report = db("intake").reports.find_one({"_id": answer.json()[0]["service_request_id"]})
    assert report["report"]["object_code"] == "5001900101000001"
    assert report["case"]["owner_unit"] == "dept.water" and report["case"]["grid_code"] == "500190009001002"
    # a multivaluelist attribute, attribute[code][]=…
    answer = requests.post(f"{site.v2}/requests.json", timeout=10, data=[
        ("api_key", site.key), ("service_code", "E0301"), ("lat", "29.8340"), ("long", "106.3915"),
        ("attribute[missing_measures][]", "fence"), ("attribute[missing_measures][]", "cover")])
    assert answer.status_code == 201, answer.text
    report = db("intake").reports.find_one({"_id": answer.json()[0]["service_request_id"]})
    assert report["report"]["attributes"] == {"missing_measures": ["fence", "cover"]}
    assert report["status"] == "registered"
    # a point in the 盲区: 属地兜底 to the nearest street
    answer = post(site, service_code="E0506", lat=GAP["lat"], long=GAP["lon"], description="建材乱堆")
    request_id = answer.json()[0]["service_request_id"]
    one = wait_until(lambda: (lambda r: r if r.get("expected_datetime") else None)(
        requests.get(f"{site.v2}/requests/{request_id}.json", timeout=10).json()[0]), what="dispatch")
    assert one["agency_responsible"] == "东阳街道"


def test_report_at_a_grid_border_resolves_to_one_grid_end_to_end(site, db):
    answer = post(site, service_code="E0101", lat=BORDER["lat"], long=BORDER["lon"], description="边界上的垃圾")
    assert answer.status_code == 201
    report = db("intake").reports.find_one({"_id": answer.json()[0]["service_request_id"]})
    assert report["case"]["grid_code"] == "500190001001002"          # the smaller code of the two
    assert report["case"]["owner_unit"] == "street.tianshengjie"
    assert report["case"]["community_name"] == "天生路社区"
    case_id = report["case_id"]
    case = wait_case(db, case_id, lambda c: c.get("state") == "dispatched", "dispatch to the border grid's street")
    assert case["unit_id"] == "street.tianshengjie"


def test_paging_and_discovery(site):
    ids = [post(site, service_code="E0201", lat=29.8338, long=106.3904 + i * 0.0008,
                description=f"小广告 {i}").json()[0]["service_request_id"] for i in range(3)]
    first = requests.get(f"{site.v2}/requests.json?service_code=E0201&page_size=2&page=1", timeout=10)
    second = requests.get(f"{site.v2}/requests.json?service_code=E0201&page_size=2&page=2", timeout=10)
    assert first.headers["X-Total-Count"] == "3"
    got = [r["service_request_id"] for r in first.json() + second.json()]
    assert sorted(got) == sorted(ids) and len(first.json()) == 2
    ids_query = requests.get(f"{site.v2}/requests.json", params={"service_request_id": ",".join(ids[:2])},
                             timeout=10).json()
    assert sorted(r["service_request_id"] for r in ids_query) == sorted(ids[:2])
    for fmt in ("json", "xml"):
        found = requests.get(f"{site.url}/open311/discovery.{fmt}", timeout=10)
        assert found.status_code == 200
        body = found.json() if fmt == "json" else xmltodict.parse(found.content)["discovery"]
        endpoint = body["endpoints"][0] if fmt == "json" else body["endpoints"]["endpoint"]
        assert endpoint["url"].endswith("/open311/v2") and endpoint["specification"].endswith("GeoReport_v2")


def test_satisfaction_callback_after_closing(site, db):
    answer = post(site, service_code="E0101", lat=INSIDE["lat"], long=INSIDE["lon"], description="垃圾")
    request_id = answer.json()[0]["service_request_id"]
    url = f"{site.v2}/requests/{request_id}/satisfaction.json"
    rating = {"api_key": site.key, "responded": "true", "resolved": "true", "satisfied": "false",
              "comment": "处理慢"}
    early = requests.post(url, data=rating, timeout=10)
    assert early.status_code == 409 and "尚未结案" in early.json()[0]["description"]
    assert requests.post(url, data={**rating, "api_key": "dcg311_bad"}, timeout=10).status_code == 403
    case_id = db("intake").reports.find_one({"_id": request_id})["case_id"]
    wait_case(db, case_id, lambda c: c.get("state") == "dispatched", "dispatch")
    close_case(site.config, case_id)
    wait_case(db, case_id, lambda c: c["state"] == "closed", "closed")
    bad = requests.post(url, data={"api_key": site.key, "responded": "maybe"}, timeout=10)
    assert bad.status_code == 400
    done = requests.post(url, data=rating, timeout=10)
    assert done.status_code == 201, done.text
    assert done.json()[0]["satisfied"] is False and done.json()[0]["case_id"] == case_id
    again = requests.post(url, data=rating, timeout=10)
    assert again.status_code == 409
    report = wait_until(lambda: (lambda r: r if not r["_pending"] else None)(
        db("intake").reports.find_one({"_id": request_id})), what="satisfaction_recorded published")
    assert report["satisfaction"]["resolved"] is True


def test_open311_posts_are_rate_limited_per_api_key(container_factory, config, db):
    import requests as http

    from tests.integration.intake_support import api_key, start
    running = start(container_factory, dict(config, OPEN311_RATE_PER_MINUTE=1, OPEN311_BURST=2), gateway=True)
    key = api_key(db)
    form = {"api_key": key, "service_code": "E0101", "lat": "29.8338", "long": "106.3904",
            "attribute[area_m2]": "2", "description": "限流测试"}
    codes = [http.post(f"{running.url}/open311/v2/requests.json", data=form, timeout=15).status_code
             for _ in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429
    answer = http.post(f"{running.url}/open311/v2/requests.json", data=form, timeout=15)
    assert answer.status_code == 429 and answer.json()[0]["code"] == 429
