"""intake's pure rules: filing standards with readable reasons, location and owner, duplicates
and reopening, and the ownership-dispute ladder (the case-status copy: test_intake_case_status.py)."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import mapping

from services.intake import disputes, filing, rules
from shared.refdata import load_district
from shared.refdata.intake_data import disc, distance_m

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)           # Monday 10:00 in Chongqing
INSIDE = {"lon": 106.3904, "lat": 29.8338}
GAP = {"lon": 106.3960, "lat": 29.8302}
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def district():
    return load_district()


def report(class_code="E0101", location=INSIDE, **extra):
    return {"channel": "web", "class_code": class_code, "location": location, "description": "",
            "urgency": None, "attributes": {}, **extra}


def decide(district, rep, **kwargs):
    return filing.decide(rep, district, now=NOW, **kwargs)


# ------------------------------------------------------------------ filing standards
def test_number_standard_any_mode_with_readable_reason(district):
    minor = district.minor_class("E0101")        # 面积超过0.5平方米或垃圾袋超过3袋
    assert rules.check_filing_standard(minor, {}, TZ) is None               # nothing measurable given
    assert rules.check_filing_standard(minor, {"area_m2": 0.6}, TZ) is None
    assert rules.check_filing_standard(minor, {"area_m2": 0.2, "bags": 4}, TZ) is None   # any one suffices
    reason = rules.check_filing_standard(minor, {"area_m2": 0.5, "bags": 3}, TZ)
    assert reason == ("不符合“暴露垃圾”立案标准：暴露垃圾面积（平方米）为 0.5平方米，未超过 0.5平方米；"
                      "垃圾袋数量为 3袋，未超过 3袋。立案标准：道路、公共场所暴露垃圾面积超过0.5平方米或垃圾袋超过3袋。")
    decision = decide(district, report(attributes={"area_m2": 0.3}))
    assert decision["accepted"] is False and decision["reason_code"] == "filing_standard"
    assert "0.3平方米，未超过 0.5平方米" in decision["reason"]


def test_list_and_datetime_standards(district):
    cover = district.minor_class("C0101")
    assert rules.check_filing_standard(cover, {"condition": "missing"}, TZ) is None
    reason = rules.check_filing_standard(cover, {"condition": "worn"}, TZ)
    assert "井盖状况为“轻微磨损、高差不超过2厘米（未达立案标准）”" in reason
    dust = district.minor_class("E0301")
    assert rules.check_filing_standard(dust, {"missing_measures": ["cover"]}, TZ) is None
    noise = district.minor_class("E0306")                            # 22:00–06:00 local
    assert rules.check_filing_standard(noise, {"observed_at": "2026-11-23T23:30:00+08:00"}, TZ) is None
    assert rules.check_filing_standard(noise, {"observed_at": "2026-11-23T05:59:00+08:00"}, TZ) is None
    assert rules.check_filing_standard(noise, {"observed_at": "2026-11-23T14:00:00Z"}, TZ) is None  # 22:00 local
    reason = rules.check_filing_standard(noise, {"observed_at": "2026-11-23T10:00:00+08:00"}, TZ)
    assert "当地时间 10:00，不在 22:00–06:00 时段" in reason


def test_normalise_attributes_types_and_errors(district):
    minor = district.minor_class("E0301")
    clean, errors = rules.normalise_attributes(minor, {
        "pm10": "180.5", "missing_measures": ["fence", "fence", "wet"], "unknown": "x"}, TZ)
    assert clean == {"pm10": 180.5, "missing_measures": ["fence", "wet"]} and errors == {}
    clean, errors = rules.normalise_attributes(minor, {"pm10": "lots", "missing_measures": ["roof"]}, TZ)
    assert clean == {} and set(errors) == {"pm10", "missing_measures"}
    for bad in (True, float("nan"), 1e30, [1], {"a": 1}, "1" * 40):
        assert "pm10" in rules.normalise_attributes(minor, {"pm10": bad}, TZ)[1]
    noise = district.minor_class("E0306")
    clean, _ = rules.normalise_attributes(noise, {"observed_at": "2026-11-23T23:30:00"}, TZ)
    assert clean["observed_at"] == "2026-11-23T23:30:00+08:00"        # naive → local time
    assert rules.normalise_attributes(noise, {"observed_at": "yesterday"}, TZ)[1]
    lamp = district.minor_class("C0108")
    assert rules.normalise_attributes(lamp, {"fault": ["off"]}, TZ)[0] == {"fault": "off"}
    assert rules.normalise_attributes(lamp, {"fault": "on"}, TZ)[1]
    parking = district.minor_class("E0504")
    assert rules.normalise_attributes(parking, {"plate": "渝B\n12345"}, TZ)[1]       # string: no line breaks
    assert rules.normalise_attributes(parking, {"notes": "第一行\n第二行"}, TZ)[0]["notes"]
    assert rules.missing_required(district.minor_class("C0101"), {}) == ["condition"]


def test_rejections_unknown_class_stale_outside_and_inspector_photo(district):
    assert decide(district, report("E9999")) == {"accepted": False, "reason": "未知的问题类别 E9999",
                                                  "reason_code": "unknown_class"}
    stale = decide(district, report(reported_at=NOW - timedelta(days=8)))
    assert stale["reason_code"] == "stale" and "已超过 7 天受理时限" in stale["reason"]
    assert decide(district, report(reported_at=NOW - timedelta(days=6)))["accepted"]
    outside = decide(district, report(location={"lon": 106.37, "lat": 29.81}))
    assert outside["reason_code"] == "outside_district" and "不在嘉陵区辖区内" in outside["reason"]
    assert decide(district, report(location={"lon": 106.3840, "lat": 29.8200}))["accepted"]   # 100 m out
    inspector = report(channel="inspector", inspector_id="insp-1")
    assert decide(district, inspector)["reason_code"] == "no_photo"
    assert decide(district, dict(inspector, photo_refs=["photo://a/1.jpg"]))["accepted"]
    policy = district.policy()
    policy["filing"]["inspector_requires_photo"] = False
    assert decide(district, inspector, policy=policy)["accepted"]


def test_road_office_notes_bypass_the_standard_and_are_urgent(district):
    note = report(channel="road_office", leader={"name": "周区长", "title": "副区长"},
                  attributes={"area_m2": 0.1})
    decision = decide(district, note)
    assert decision["accepted"] and decision["case"]["urgency"] == "urgent"
    assert decision["case"]["time_limit"] == "2h" and decision["case"]["reporter_id"] == "leader:周区长"
    assert decide(district, dict(note, urgency="normal"))["case"]["urgency"] == "normal"


# ------------------------------------------------------------------ location and owner
def test_owner_street_class_gap_and_deadline_inputs(district):
    case = decide(district, report())["case"]
    assert (case["grid_code"], case["community_name"], case["street_id"], case["owner_unit"],
            case["owner_source"]) == ("500190001001001", "天生路社区", "street.tianshengjie",
                                      "street.tianshengjie", "grid_street")
    assert (case["case_kind"], case["time_limit"], case["gap"]) == ("committed", "4h", False)
    cover = decide(district, report("C0101", attributes={"condition": "missing"}))["case"]
    assert cover["owner_unit"] == "dept.water" and cover["owner_source"] == "class"
    building = decide(district, report("E0303", urgency="urgent"))["case"]
    assert building["stages"] == [{"name": "责令停工", "deadline": "4h"}, {"name": "拆除", "deadline": "20d"}]
    assert building["joint_partners"] == ["construction", "planning"]
    gap = decide(district, report(location=GAP))
    assert gap["case"]["owner_unit"] == "street.dongyang" and gap["case"]["owner_source"] == "gap_nearest_street"
    assert gap["gap_place"]["kind"] == "enclosed_gap" and gap["gap_place"]["place_id"].startswith("gap-")
    # every point of the same 盲区 has the same place
    other = decide(district, report(location={"lon": 106.3975, "lat": 29.8302}))
    assert other["gap_place"]["place_id"] == gap["gap_place"]["place_id"]


def test_a_decided_ownership_overrides_the_default_owner(district):
    hole = district.gap_place(GAP["lon"], GAP["lat"])
    area = {"_id": "OD-1", "state": "decided", "scope": "area", "owner_unit": "street.beiquan",
            "geometry": hole["geometry"]}
    decision = decide(district, report(location=GAP), overrides=[area])
    assert decision["case"]["owner_unit"] == "street.beiquan" and decision["gap_place"] is None
    assert decision["case"]["owner_source"] == "ownership_decided" and decision["override"] == "OD-1"
    lamp = decide(district, report("C0108", location=GAP), overrides=[area])
    assert lamp["case"]["owner_unit"] == "op.municipal" and lamp["gap_place"] is not None
    lamp_rule = {"_id": "OD-2", "state": "decided", "scope": "class", "class_code": "C0108",
                 "owner_unit": "dept.municipal", "geometry": mapping(disc(INSIDE["lon"], INSIDE["lat"], 100))}
    assert decide(district, report("C0108"), overrides=[lamp_rule])["case"]["owner_unit"] == "dept.municipal"
    assert decide(district, report("E0101"), overrides=[lamp_rule])["case"]["owner_unit"] == "street.tianshengjie"
    assert decide(district, report("C0108", location={"lon": 106.3934, "lat": 29.8338}),
                  overrides=[lamp_rule])["case"]["owner_unit"] == "op.municipal"       # 290 m away


def test_border_point_resolves_to_the_smaller_grid_code(district):
    case = decide(district, report(location={"lon": 106.395943, "lat": 29.832929}))["case"]
    assert case["grid_code"] == "500190001001002" and case["owner_unit"] == "street.tianshengjie"


def test_legacy_assess_shape(district):
    assert filing.assess(report("E9999"), district) == {"accepted": False, "reason": "未知的问题类别 E9999"}
    assert set(filing.assess(report(), district)) == {"accepted", "case"}


# ------------------------------------------------------------------ duplicates and reopening
def case(case_id, state="dispatched", lon=INSIDE["lon"], lat=INSIDE["lat"], class_code="E0101",
         registered=NOW - timedelta(days=1), closed=None):
    return {"_id": case_id, "class_code": class_code, "location": {"lon": lon, "lat": lat}, "state": state,
            "registered_at": registered, "closed_at": closed}


def test_match_existing(district):
    policy = district.policy()
    assert distance_m(106.3904, 29.8338, 106.3904 + 0.000311, 29.8338) == pytest.approx(30.0, abs=0.3)
    near = {"lon": INSIDE["lon"] + 0.000311, "lat": INSIDE["lat"]}
    assert filing.match_existing([case("A")], "E0101", near, NOW, policy)["action"] == "duplicate"
    assert filing.match_existing([case("A")], "E0102", near, NOW, policy) is None
    far = {"lon": INSIDE["lon"] + 0.000828, "lat": INSIDE["lat"]}                # 80 m
    assert filing.match_existing([case("A")], "E0101", far, NOW, policy) is None
    old = case("A", registered=NOW - timedelta(days=31))                          # outside the open window
    assert filing.match_existing([old], "E0101", near, NOW, policy) is None
    closed = case("B", state="closed", closed=NOW - timedelta(days=6))
    assert filing.match_existing([closed], "E0101", near, NOW, policy)["action"] == "reopen"
    closed_long_ago = case("B", state="closed", closed=NOW - timedelta(days=8))
    assert filing.match_existing([closed_long_ago], "E0101", near, NOW, policy) is None
    # an open case beats a closed one; the nearest open case wins
    both = [closed, case("C", lon=INSIDE["lon"] + 0.0002), case("D")]
    assert filing.match_existing(both, "E0101", near, NOW, policy)["case_id"] == "C"
    box = filing.bbox_around(INSIDE["lon"], INSIDE["lat"], 50)
    east_50m, north_50m = INSIDE["lon"] + 50 / 96580, INSIDE["lat"] + 50 / 110574
    assert box["min_lon"] < 2 * INSIDE["lon"] - east_50m and east_50m < box["max_lon"] < INSIDE["lon"] + 0.0007
    assert box["min_lat"] < 2 * INSIDE["lat"] - north_50m and north_50m < box["max_lat"] < INSIDE["lat"] + 0.0006


# ------------------------------------------------------------------ the dispute ladder
def test_dispute_levels_arbiters_deadlines_and_decisions(district):
    policy = district.policy()
    assert [disputes.next_level(level) for level in ("community", "street", "department", "leadership")] == \
        ["street", "department", "leadership", None]
    assert disputes.arbiter(policy, "community", "street.dongyang", "东阳社区") == "community:东阳社区"
    assert disputes.arbiter(policy, "street", "street.dongyang", "东阳社区") == "street.dongyang"
    assert disputes.arbiter(policy, "department", "street.dongyang", None) == "dept.chengguan"
    assert disputes.arbiter(policy, "leadership", "street.dongyang", None) == "lead.group"
    friday_evening = datetime(2026, 11, 27, 10, 0, tzinfo=timezone.utc)       # Fri 18:00 local
    # after hours: the clock starts Monday 08:30 local; one working day later is Tuesday 08:30 local
    assert disputes.level_deadline(district, policy, "community", friday_evening) == \
        datetime(2026, 12, 1, 0, 30, tzinfo=timezone.utc)
    open_dispute = {"_id": "OD-1", "state": "open"}
    assert disputes.can_decide(open_dispute, "street.beiquan", district.units) is None
    assert disputes.can_decide(open_dispute, "lead.group", district.units)[0] == "invalid"
    assert disputes.can_decide(open_dispute, "street.nowhere", district.units)[0] == "invalid"
    assert disputes.can_decide({"_id": "OD-1", "state": "decided"}, "street.beiquan", district.units)[0] == "conflict"


def test_ids_and_reporter(district):
    assert rules.report_id_for({"channel": "hotline", "external_id": "T-1"}, "x") == "hotline-T-1"
    assert rules.case_id_for("r", NOW).startswith("C20261123-")
    assert rules.reporter_id({"inspector_id": "i9"}) == "inspector:i9"
    assert rules.reporter_id({"reporter": {"phone": "138"}}) == "phone:138"
    assert rules.reporter_id({"sensor_id": "s1", "reporter": {}}) == "sensor:s1"
    assert rules.reporter_id({}) is None


def test_two_points_within_the_radius_always_share_a_filing_claim():
    import random
    rng = random.Random(7)
    for _ in range(3000):
        lon, lat = rng.uniform(106.2, 106.6), rng.uniform(29.6, 30.0)
        bearing, metres = rng.uniform(0, 360), rng.uniform(0, 50)
        other = disc(lon, lat, metres).exterior.coords[int(bearing) % 64]    # a point `metres` away
        assert distance_m(lon, lat, other[0], other[1]) <= 50.5
        mine, theirs = filing.claim_keys("E0101", lon, lat, 50), filing.claim_keys("E0101", other[0], other[1], 50)
        assert len(mine) == 4 and set(mine) & set(theirs), (lon, lat, other)
    far = filing.claim_keys("E0101", 106.40, 29.83, 50)
    assert not set(far) & set(filing.claim_keys("E0101", 106.41, 29.83, 50))      # ~1 km apart
    assert not set(far) & set(filing.claim_keys("E0102", 106.40, 29.83, 50))      # another class


def test_case_numbers_use_the_platform_local_date():
    from shared import clock
    clock.reset()
    try:
        clock.advance(seconds=(datetime(2026, 12, 1, 19, 45, tzinfo=timezone.utc)
                               - datetime.now(timezone.utc)).total_seconds())      # 03:45 on 2 Dec, +08:00
        assert rules.case_id_for("web-1", clock.now(), TZ).startswith("C20261202-")
    finally:
        clock.reset()
