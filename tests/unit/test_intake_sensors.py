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


# ------------------------------------------------------------------ late readings after filing
def test_late_low_readings_after_an_episode_was_filed_do_not_file_it_again():
    """Two hours above the threshold arrive first (one report); then low readings that were held
    up in a retry arrive, every half hour inside the episode. The episode was filed: the pieces
    they cut it into are the same episode, not five more reports on the same case."""
    high = readings([200] * 150)                       # minutes 0..149
    late_lows = [{"measured_at": START + timedelta(minutes=m), "value": 100} for m in (31, 55, 80, 105, 130)]
    state, triggers = run(high)
    assert [t["episode_start"] for t in triggers] == [START]
    for low in late_lows:
        state, new = sensors.observe(state, low, PM10, TZ)
        assert new == []
    # a late reading before the start that extends the episode backwards is the same episode too
    earlier = {"measured_at": START - timedelta(minutes=1), "value": 210}
    assert sensors.observe(state, earlier, PM10, TZ)[1] == []


def test_a_new_episode_after_the_filed_one_ended_is_filed():
    _, triggers = run(readings([200] * 40 + [100] * 5 + [200] * 40))
    assert [t["episode_start"] for t in triggers] == [START, START + timedelta(minutes=45)]


def _series(runs):
    """Runs above the threshold, each followed by a low reading (and by a silence when asked)."""
    values, minute = [], 0
    for length, silent in runs:
        for _ in range(length):
            values.append((minute, 200))
            minute += 1
        minute += 12 if silent else 0
        values.append((minute, 100))
        minute += 1
    return [{"measured_at": START + timedelta(minutes=m), "value": v} for m, v in values]


def _final_episodes(state):
    ordered = sorted((sensors._at(a), v) for a, v in state["readings"])
    return [r for r in sensors.episodes(ordered, PM10, TZ)
            if r["end"] - r["start"] >= timedelta(minutes=PM10["sustained_minutes"])]


def _covered(episode, state):
    return any(sensors._at(a) <= episode["end"] and episode["start"] <= sensors._at(b)
               for a, b in state["triggered"])


RUNS = st.lists(st.tuples(st.integers(min_value=0, max_value=100), st.booleans()), min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), RUNS)
def test_in_any_order_no_episode_is_missed_and_none_is_filed_twice(rand, runs):
    items = _series(runs)
    shuffled = list(items) + [rand.choice(items) for _ in range(len(items) // 4)]     # and duplicates
    rand.shuffle(shuffled)
    state, triggers = run(shuffled)
    starts = [t["episode_start"] for t in triggers]
    assert len(starts) == len(set(starts))
    assert all(_covered(episode, state) for episode in _final_episodes(state))
