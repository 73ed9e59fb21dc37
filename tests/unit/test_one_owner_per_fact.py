"""One owner per fact (issue 14): after 确权 the decided owner is the answer under every routing
rule; intake's filing notice and dispatch's deadline use one time-limit rule; dispatch's copy of
the disputes converges whatever the order of intake's events."""
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from services.dispatch import disputes
from services.dispatch.routing import load_settings
from services.intake import filing as intake_rules
from shared import projection, time_limits
from shared.refdata import load_district

DISTRICT = load_district()
SETTINGS = load_settings(district=DISTRICT)
UTC = timezone.utc
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
GAP = {"lon": 106.3960, "lat": 29.8302}              # the 盲区, nearest street 东阳街道
TONGJIAXI = {"lon": 106.386074, "lat": 29.822771}    # a grid of 童家溪镇 (a town)
GAP_SQUARE = {"type": "Polygon", "coordinates": [[[106.3950, 29.8295], [106.3970, 29.8295],
                                                  [106.3970, 29.8310], [106.3950, 29.8310],
                                                  [106.3950, 29.8295]]]}


def filed(class_code, location, overrides=()):
    decision = intake_rules.decide({"channel": "web", "class_code": class_code, "location": location,
                                    "description": "测试"}, DISTRICT, now=NOW, overrides=overrides)
    assert decision["accepted"], decision
    return dict(decision["case"], case_id="C1", report_id="r1", registered_at=NOW)


DECIDED_AREA = {"_id": "OD-gap-1", "state": "decided", "scope": "area", "geometry": GAP_SQUARE,
                "owner_unit": "street.longfengqiao"}


# ====================================================================== 确权 beats the routing table
def test_a_decided_owner_is_where_dispatch_sends_a_street_order_case():
    # the reproduction: a gap decided for 龙凤桥街道; a later E0506 (街面秩序) report at that point
    case = filed("E0506", GAP, overrides=[DECIDED_AREA])
    assert case["owner_unit"] == "street.longfengqiao" and case["owner_source"] == "ownership_decided"
    assert case["street_id"] == "street.longfengqiao"      # the decided 属地, not the nearest 东阳
    plan = SETTINGS.route(case, DISTRICT)
    assert plan["unit_id"] == "street.longfengqiao"        # not 东阳街道 by the 街面秩序 rule
    assert "确权" in plan["rule"]


def test_a_decision_beats_every_rule_even_one_that_routes_away_from_the_owner():
    # outsourced work in a town goes to the town (镇辖区不实行作业外包) — unless 确权 decided otherwise
    case = filed("E0102", TONGJIAXI)
    assert SETTINGS.route(case, DISTRICT)["unit_id"] == "town.tongjiaxi"
    decided = dict(case, owner_unit="op.cleaning", owner_source="ownership_decided")
    assert SETTINGS.route(decided, DISTRICT)["unit_id"] == "op.cleaning"
    # a component class decided for another unit: the object's registered owner no longer routes it
    lamp = dict(filed("C0101", {"lon": 106.3904, "lat": 29.8338}), owner_unit="street.tianshengjie",
                owner_source="ownership_decided")
    assert SETTINGS.route(lamp, DISTRICT)["unit_id"] == "street.tianshengjie"


def test_without_a_decision_routing_is_unchanged():
    case = filed("E0506", GAP)
    assert case["owner_source"] == "gap_nearest_street"
    assert SETTINGS.route(case, DISTRICT)["unit_id"] == "street.dongyang"


def test_an_area_decision_is_the_place_of_every_class_there():
    # a gap decided for a town: outsourced street cleaning there goes to the town (镇辖区不外包)
    town_gap = dict(DECIDED_AREA, owner_unit="town.tongjiaxi")
    case = filed("E0102", GAP, overrides=[town_gap])
    assert case["owner_unit"] == "op.cleaning" and case["street_id"] == "town.tongjiaxi"
    assert SETTINGS.route(case, DISTRICT)["unit_id"] == "town.tongjiaxi"
    assert SETTINGS.route(filed("E0102", GAP), DISTRICT)["unit_id"] == "op.cleaning"


# ====================================================================== one time-limit rule
def test_the_filing_notice_and_the_dispatch_deadline_use_one_time_limit():
    # 暴露垃圾 in a town: the routing table's 镇村 rule gives 1 working day (4h would be the urban limit)
    case = filed("E0101", TONGJIAXI)
    plan = SETTINGS.route(case, DISTRICT)
    assert case["time_limit"] == plan["time_limit"] == "1d"
    urgent = filed("E0101", TONGJIAXI)
    assert time_limits.time_limit(DISTRICT, urgent, "urgent") == \
        SETTINGS.time_limit(urgent, DISTRICT, "urgent") == "4h"


def test_the_time_limit_in_the_city_is_the_taxonomys():
    case = filed("E0101", {"lon": 106.3904, "lat": 29.8338})
    assert case["time_limit"] == SETTINGS.route(case, DISTRICT)["time_limit"] == \
        DISTRICT.deadline("E0101", "normal")


# ====================================================================== dispatch's dispute copy
def opened(version=1):
    return {"type": "ownership_dispute_opened", "event_id": "OD-1.opened", "aggregate_id": "OD-1",
            "aggregate_version": version, "aggregate_seq": 0, "correlation_id": "C1",
            "payload": {"dispute_id": "OD-1", "case_id": "C1", "interim_owner": "street.dongyang",
                        "level": "community", "opened_at": "2026-11-30T02:00:00Z"}}


def decided(version=5):
    return {"type": "ownership_decided", "event_id": "OD-1.decided", "aggregate_id": "OD-1",
            "aggregate_version": version, "aggregate_seq": 0, "correlation_id": "C1",
            "payload": {"dispute_id": "OD-1", "owner_unit": "street.longfengqiao", "level": "leadership",
                        "decided_by": "区领导小组", "decided_at": "2026-12-01T02:00:00Z", "case_id": "C1",
                        "case_ids": ["C1", "C2"], "interim_owner": "street.dongyang"}}


def escalated(version=3):
    return {"type": "ownership_dispute_escalated", "event_id": "OD-1.escalated.street",
            "aggregate_version": version, "aggregate_seq": 0,
            "payload": {"dispute_id": "OD-1", "from_level": "community", "to_level": "street"}}


def fold(events):
    doc = None
    for event in events:
        changes = disputes.changes(doc, event)
        if changes:
            doc = projection.apply_in_memory(doc or {"_id": "OD-1"}, changes)
    return doc


IN_ORDER = [opened(), escalated(), decided()]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(range(len(IN_ORDER))), max_size=6)          # duplicates …
       .flatmap(lambda extra: st.permutations(list(range(len(IN_ORDER))) + extra)))  # … in any order
def test_the_dispute_copy_converges_in_any_order_with_duplicates(picks):
    expected = fold(IN_ORDER)
    got = fold([IN_ORDER[index] for index in picks])
    assert disputes.view(got) == disputes.view(expected)
    assert disputes.state(got) == "decided"
    assert disputes.decision("OD-1", got)["owner_unit"] == "street.longfengqiao"
    assert disputes.case_ids(got) == ["C1", "C2"]


def test_an_opening_after_the_decision_does_not_reopen_the_copy():
    doc = fold([decided(), opened()])
    assert disputes.state(doc) == "decided" and doc["interim_owner"] == "street.dongyang"
    assert doc["level"] == "community" and doc["decided_level"] == "leadership"
    assert disputes.state(fold([opened()])) == "open" and disputes.decision("OD-1", fold([opened()])) is None


# ====================================================================== the on-time rule (按期), once
def test_the_on_time_rule():
    from datetime import timedelta

    from shared import on_time
    deadline = NOW + timedelta(hours=4)
    assert on_time.closed_on_time(extended=False, parked=False, handled_at=deadline, original_deadline=deadline)
    assert not on_time.closed_on_time(extended=False, parked=False, handled_at=deadline + timedelta(seconds=1),
                                      original_deadline=deadline)
    # an extension or a parking never makes a case on time, whatever the handling time
    assert not on_time.closed_on_time(extended=True, parked=False, handled_at=NOW, original_deadline=deadline)
    assert not on_time.closed_on_time(extended=False, parked=True, handled_at=NOW, original_deadline=deadline)
    # an old event without the two times: dispatch's verdict, still under the same rule
    assert on_time.closed_on_time(extended=False, parked=False, judged=True)
    assert not on_time.closed_on_time(extended=True, parked=False, judged=True)
    # naive UTC (a store that drops tzinfo) compares with aware
    assert on_time.in_time(deadline.replace(tzinfo=None), deadline) and not on_time.in_time(None, deadline)


def test_the_on_time_rule_under_each_extension_setting():
    """Handled after the original deadline (10:00), within the extended one (next day 10:00)."""
    from datetime import timedelta

    from shared import on_time
    original = NOW
    extended = original + timedelta(days=1)
    late = dict(extended=True, parked=False, handled_at=original + timedelta(hours=3), original_deadline=original,
                extended_deadline=extended)
    assert on_time.closed_on_time(**late) is False                                   # the standard
    assert on_time.closed_on_time(**late, extension_moves_deadline=True) is True
    # past the extended deadline too: late under both settings
    later = dict(late, handled_at=extended + timedelta(minutes=1))
    assert not on_time.closed_on_time(**later) and not on_time.closed_on_time(**later, extension_moves_deadline=True)
    # parked: never on time, whatever the setting
    assert not on_time.closed_on_time(**dict(late, parked=True), extension_moves_deadline=True)
    # the one setting, read from a platform config (YAML bool or an environment string)
    assert on_time.extension_moves_deadline({}) is False                              # the standard's default
    assert on_time.extension_moves_deadline({"EXTENSION_MOVES_DEADLINE": True}) is True
    assert on_time.extension_moves_deadline({"EXTENSION_MOVES_DEADLINE": "yes"}) is True
    assert on_time.extension_moves_deadline({"EXTENSION_MOVES_DEADLINE": "false"}) is False
    with pytest.raises(ValueError):
        on_time.extension_moves_deadline({"EXTENSION_MOVES_DEADLINE": "sometimes"})


@pytest.mark.parametrize("moves", [False, True])
def test_dispatch_and_scoring_read_the_one_platform_setting(moves):
    """Both services take EXTENSION_MOVES_DEADLINE from the same platform config; scoring's own
    file may not carry a second copy."""
    from services.dispatch.routing import load_settings as dispatch_settings
    from services.scoring import settings as scoring
    from shared.config import load_config
    config = load_config(EXTENSION_MOVES_DEADLINE=moves)
    assert dispatch_settings(config, DISTRICT).extension_moves_deadline is moves
    assert scoring.load_settings(config)["standard"]["extension_moves_deadline"] is moves
    assert load_config()["EXTENSION_MOVES_DEADLINE"] is False                         # shipped: the standard


def test_scoring_refuses_a_second_copy_of_the_setting(tmp_path):
    from services.scoring import settings as scoring
    path = tmp_path / "scoring.yaml"
    path.write_text("standard:\n  extension_moves_deadline: true\n", encoding="utf-8")
    with pytest.raises(ValueError, match="EXTENSION_MOVES_DEADLINE"):
        scoring.load_settings({"SCORING_CONFIG": str(path)})


def test_dispatch_and_scoring_call_the_one_rule(monkeypatch):
    """Both services judge by shared.on_time: change the rule, both follow."""
    from services.scoring import indicators
    from shared import on_time
    calls = []
    monkeypatch.setattr(on_time, "closed_on_time", lambda **kw: calls.append(kw) or True)
    fact = {"closes": [{"at": NOW, "on_time": False, "extended": False, "parked": False,
                        "handled_at": NOW, "original_deadline": NOW}],
            "reopens": [], "extension_approvals": [], "parks": [], "reworks": []}
    assert indicators.case_state(fact, NOW.replace(year=2027))["on_time"] is True
    from tests.unit.test_dispatch_rules import UNIT, act, dispatched, local
    doc, _ = dispatched()
    doc, _ = act(doc, "accept", local(2026, 11, 30, 9), **UNIT)
    doc, _ = act(doc, "feedback", local(2026, 12, 4, 10), after_photo="http://img/a.jpg", **UNIT)  # days late
    doc, change = act(doc, "verify", local(2026, 12, 4, 11), actor="严勇", passed=True)
    assert change.events[1][0] == "case_closed" and change.events[1][1]["on_time"] is True
    assert len(calls) == 2 and calls[1]["handled_at"] == doc["feedback"]["at"]


# ====================================================================== one geo module
def test_a_disc_its_box_and_the_distance_agree():
    from shared import geo
    lon, lat = 106.3904, 29.8338
    rim = geo.disc(lon, lat, 50).exterior.coords
    assert all(abs(geo.distance_m(lon, lat, x, y) - 50) < 0.05 for x, y in rim)
    project = geo.projector(lon, lat)
    x, y = project(rim[0][0], rim[0][1])
    assert abs((x ** 2 + y ** 2) ** 0.5 - 50) < 0.05
    # the nearest grid from a gap: the same metres as the distance to the grid's nearest point
    gap = DISTRICT.nearest_grid(GAP["lon"], GAP["lat"])
    grid = DISTRICT.grid(gap["grid_code"])["geometry"]
    assert gap["distance_m"] == round(geo.distance_to_m(GAP["lon"], GAP["lat"], grid), 1) > 0


def test_no_other_module_carries_its_own_earth():
    """Every distance, disc and nearest computation calls shared.geo: no second constant."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"111_?3\d\d|110_?5\d\d|111_?000\b|6_?371|haversine|cos\(math\.radians")
    found = [f"{path.relative_to(root)}:{number}" for folder in ("services", "shared", "bridges", "departments")
             for path in sorted((root / folder).rglob("*.py")) if path.name != "geo.py"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if pattern.search(line)]
    assert found == []


# ====================================================================== local time in answers
def test_scoring_answers_in_local_time_with_offset():
    from services.scoring import indicators, rules as scoring_rules
    from services.scoring.periods import parse_period
    from services.scoring.settings import load_settings as scoring_settings
    from shared.contracts.events import load_event
    from tests import scoring_scenario as S
    facts = scoring_rules.fold_all([scoring_rules.log_entry(load_event(event)) for event in S.build()],
                                   DISTRICT.locate)
    as_of = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)                          # 12:00 in the district
    report = indicators.compute(parse_period(S.MONTH, DISTRICT.timezone), facts, scoring_settings(),
                                DISTRICT, as_of)
    assert report["as_of"] == "2026-12-02T12:00:00+08:00"
    assert report["period"]["start"].endswith("T00:00:00+08:00")
    times = [value for item in report["exposure"] for value in item.values()
             if isinstance(value, str) and value[:2] == "20" and "T" in value]
    assert times and all(value.endswith("+08:00") for value in times)


def test_the_decided_owner_cannot_hand_the_case_back():
    from services.dispatch import rules as dispatch_rules
    case = filed("E0506", GAP, overrides=[DECIDED_AREA])
    doc, change = dispatch_rules.new_case(case, dispatch_rules.Context(NOW, DISTRICT, SETTINGS))
    doc = dict(doc, **change.set, _version=1)
    assert doc["unit_id"] == "street.longfengqiao"
    import pytest
    with pytest.raises(dispatch_rules.Refused, match="权属已裁定"):
        dispatch_rules.apply_action(doc, "return", {"actor": "x", "actor_unit": "street.longfengqiao",
                                                    "reason": "不归我们"},
                                    dispatch_rules.Context(NOW, DISTRICT, SETTINGS))


def test_the_responsibility_map_answers_who_owns_a_point():
    """One function answers "who owns this point" (shared.refdata), and intake files with it."""
    decided = DISTRICT.resolve_owner("E0506", GAP["lon"], GAP["lat"], [DECIDED_AREA])
    assert (decided["owner"], decided["source"]) == ("street.longfengqiao", "ownership_decided")
    assert decided["decision"]["_id"] == "OD-gap-1"
    assert decided["street_id"] == "street.longfengqiao"        # the decided 属地, no longer the nearest
    lamp = DISTRICT.resolve_owner("C0108", GAP["lon"], GAP["lat"], [DECIDED_AREA])   # a class's own unit
    assert (lamp["owner"], lamp["source"]) == (DISTRICT.minor_class("C0108")["owner"], "class")
    undecided = DISTRICT.resolve_owner("E0506", GAP["lon"], GAP["lat"])
    assert (undecided["owner"], undecided["source"]) == ("street.dongyang", "gap_nearest_street")
    for class_code, decisions in (("E0506", [DECIDED_AREA]), ("C0108", [DECIDED_AREA]), ("E0506", [])):
        case = filed(class_code, GAP, overrides=decisions)
        owned = DISTRICT.resolve_owner(class_code, GAP["lon"], GAP["lat"], decisions)
        assert (case["owner_unit"], case["owner_source"]) == (owned["owner"], owned["source"])
