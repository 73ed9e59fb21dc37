"""The IoT rule (pure): a value above the threshold for N minutes becomes one report per
episode, whatever order the readings arrive in."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake import sensors
from shared.refdata import load_district

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc)
PM10 = {"metric": "pm10", "unit": "µg/m³", "threshold": 150, "sustained_minutes": 30,
        "max_gap_minutes": 10, "class_code": "E0301", "urgency": "normal", "active_hours": None,
        "description": "PM10 持续超标"}


def readings(values, step=1, start=START):
    return [{"measured_at": start + timedelta(minutes=i * step), "value": v} for i, v in enumerate(values)]


def run(items, rule=PM10):
    state, triggers = None, []
    for item in items:
        state, new = sensors.observe(state, item, rule, TZ)
        triggers += new
    return state, triggers


def test_thirty_minutes_above_triggers_once_at_the_thirtieth_minute():
    _, triggers = run(readings([180] * 29 + [181]))          # minutes 0..29: not yet 30 minutes
    assert triggers == []
    _, triggers = run(readings([180] * 31 + [200] * 20))    # 0..50: one episode, one report
    assert len(triggers) == 1
    assert triggers[0]["episode_start"] == START and triggers[0]["at"] == START + timedelta(minutes=30)
    assert triggers[0]["minutes"] == 30 and triggers[0]["peak"] == 180     # the peak when it fired


def test_a_value_at_or_below_the_threshold_or_a_long_silence_ends_the_episode():
    _, triggers = run(readings([180] * 20 + [150] + [180] * 20))     # 150 is not above
    assert triggers == []
    gap = readings([180] * 20) + readings([180] * 20, start=START + timedelta(minutes=31))   # 12-minute silence
    assert run(gap)[1] == []
    ok = readings([180] * 20) + readings([180] * 20, start=START + timedelta(minutes=28))    # 9-minute gap
    assert len(run(ok)[1]) == 1
    two = readings([180] * 31 + [100] + [190] * 31)                   # two episodes → two reports
    assert [t["episode_start"] for t in run(two)[1]] == [START, START + timedelta(minutes=32)]


def test_active_hours_limit_a_rule_to_the_night():
    noise = dict(PM10, metric="noise_db", threshold=55, sustained_minutes=10, max_gap_minutes=5,
                 active_hours=["22:00", "06:00"], class_code="E0306")
    evening = datetime(2026, 11, 23, 13, 45, tzinfo=timezone.utc)    # 21:45 local
    _, triggers = run(readings([70] * 30, start=evening), noise)
    assert [t["episode_start"] for t in triggers] == [datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)]
    day = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)          # 10:00 local
    assert run(readings([70] * 30, start=day), noise)[1] == []


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False), st.lists(st.sampled_from([100, 160, 200]), min_size=1, max_size=80))
def test_the_order_of_arrival_does_not_change_the_reports(rand, values):
    items = readings(values)
    _, in_order = run(items)
    shuffled = list(items)
    rand.shuffle(shuffled)
    duplicated = shuffled + shuffled[: len(shuffled) // 2]            # and some delivered twice
    _, any_order = run(duplicated)
    assert sorted(t["episode_start"] for t in any_order) == sorted(t["episode_start"] for t in in_order)


def test_the_report_a_trigger_files():
    district = load_district()
    sensor = district.sensor("dust-tsl-001")
    rule = district.sensor_rule("pm10")
    trigger = {"episode_start": START, "at": START + timedelta(minutes=30), "peak": 231.4, "minutes": 30}
    report = sensors.report_for(sensor, rule, trigger, district.minor_class("E0301"), TZ)
    assert report["external_id"] == "dust-tsl-001-20261123T010000Z" and report["channel"] == "sensor"
    assert report["class_code"] == "E0301" and report["attributes"] == {"pm10": 231.4}
    assert report["location"] == sensor["location"] and report["sensor_id"] == "dust-tsl-001"
    assert "自 2026-11-23 09:00 起连续 30 分钟超过 150µg/m³，峰值 231.4µg/m³" in report["description"]
    noise = sensors.report_for(district.sensor("noise-dy-001"), district.sensor_rule("noise_db"),
                               trigger, district.minor_class("E0306"), TZ)
    assert noise["attributes"] == {"observed_at": "2026-11-23T09:00:00+08:00"}
