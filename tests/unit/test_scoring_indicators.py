"""Scoring rules without I/O: the hand-built November scenario (tests/scoring_scenario.py) folded
and computed in memory must give every hand-computed value; the fold is order-independent and
duplicate-proof; periods and settings parse and refuse bad input."""
import random
from datetime import datetime, timezone

import pytest

from services.scoring import indicators, rules
from services.scoring.periods import PeriodError, parse_period, previous_months
from services.scoring.settings import load_settings, parse_settings
from shared.contracts.events import load_event
from shared.refdata import load_district
from tests import scoring_scenario as S

AS_OF = datetime(2026, 12, 2, 4, 0, tzinfo=timezone.utc)     # 12-02 12:00 local


@pytest.fixture(scope="module")
def district():
    return load_district()


@pytest.fixture(scope="module")
def settings():
    return load_settings()


def log_entries(events):
    return [rules.log_entry(load_event(event)) for event in events]


def compute(period_text, events, district, settings, as_of=AS_OF):
    facts = rules.fold_all(log_entries(events), district.locate)
    return indicators.compute(parse_period(period_text, district.timezone), facts, settings, district, as_of)


@pytest.fixture(scope="module")
def november(district, settings):
    return compute(S.MONTH, S.build(), district, settings)


def check_block(block, expected, where):
    for code, (numerator, denominator) in expected.items():
        got = block[code]
        assert (got["numerator"], got["denominator"]) == (numerator, denominator), f"{where} {code}"
        assert got["value"] == S.r(numerator, denominator), f"{where} {code}"


def test_every_unit_indicator_matches_the_hand_computed_values(november):
    for unit_id, expected in S.EXPECTED_UNITS.items():
        check_block(november["units"][unit_id]["indicators"], expected, unit_id)


def test_district_grid_inspector_and_partner_indicators(november):
    check_block(november["district"]["indicators"], S.EXPECTED_DISTRICT, "district")
    for code, expected in S.EXPECTED_GRIDS.items():
        check_block(november["grids"][code]["indicators"], expected, code)
    assert set(november["inspectors"]) == set(S.EXPECTED_INSPECTORS)
    for key, expected in S.EXPECTED_INSPECTORS.items():
        check_block(november["inspectors"][key]["indicators"], expected, key)
    assert set(november["partners"]) == set(S.EXPECTED_PARTNERS)
    for key, expected in S.EXPECTED_PARTNERS.items():
        check_block(november["partners"][key]["indicators"], expected, key)


def test_composite_deductions_ranking_and_exposure(november):
    for unit_id, expected in S.EXPECTED_COMPOSITE.items():
        got = november["units"][unit_id]["composite"]
        assert {key: got[key] for key in expected} == expected, unit_id
    a = november["units"][S.A]
    assert a["counts"]["exposed"] == 3 and a["counts"]["supervised"] == 1
    assert november["units"][S.B]["counts"]["returns_caused"] == 1
    streets = next(t for t in november["rankings"] if t["group"] == "street")
    assert [(e["rank"], e["unit_id"], e["composite"]) for e in streets["ranked"]] == S.EXPECTED_STREET_RANKING
    assert [e["unit_id"] for e in streets["unranked"]] == S.EXPECTED_STREET_UNRANKED
    assert "少于 5" in streets["unranked"][0]["reason"]
    departments = next(t for t in november["rankings"] if t["group"] == "department")
    assert departments["ranked"] == [] and [e["unit_id"] for e in departments["unranked"]] == [S.WATER]
    exposure = [(item["case_id"], item["overdue_hours"], item["status"]) for item in november["exposure"]]
    assert exposure == S.EXPECTED_EXPOSURE
    first = november["exposure"][0]
    assert first["problem_photos"] == ["https://media.dcg.example/A6-problem.png"]
    assert first["after_photo"] is None
    assert november["exposure"][1]["after_photo"] == "https://media.dcg.example/A2-after.png"


def test_other_periods_week_day_october(district, settings):
    events = S.build()
    week = compute(S.EXPECTED_WEEK_A["period"], events, district, settings)
    check_block(week["units"][S.A]["indicators"], {k: v for k, v in S.EXPECTED_WEEK_A.items()
                                                    if k != "period"}, "week")
    day = compute("2026-11-03", events, district, settings)
    check_block(day["units"][S.A]["indicators"], {"closure_rate": (1, 1), "ontime_rate": (1, 1)}, "day")
    october = compute("2026-10", events, district, settings)
    a = october["units"][S.A]
    check_block(a["indicators"], {k: v for k, v in S.EXPECTED_OCTOBER_A.items() if k != "composite"}, "oct")
    assert a["composite"]["value"] == S.EXPECTED_OCTOBER_A["composite"]
    custom = compute("2026-11-01..2026-11-30", events, district, settings)
    assert custom["units"] == compute(S.MONTH, events, district, settings)["units"]


def test_the_month_in_progress_counts_only_what_is_due_by_now(district, settings):
    # As of 11-04 12:00 local: A1 (closed 11-03) is due; A2 (deadline 11-05) is not yet.
    report = compute(S.MONTH, S.build(), district, settings,
                     as_of=datetime(2026, 11, 4, 4, 0, tzinfo=timezone.utc))
    check_block(report["units"][S.A]["indicators"], {"closure_rate": (1, 1), "ontime_rate": (1, 1)}, "now")


def test_fold_ignores_arrival_order_and_duplicates(district):
    entries = log_entries(S.build())
    expected = rules.fold_all(entries, district.locate)
    shuffled = entries + random.Random(7).sample(entries, 40)     # 40 duplicates
    random.Random(11).shuffle(shuffled)
    assert rules.fold_all(shuffled, district.locate) == expected


def test_subjects_of_events():
    events = {event["payload"].get("case_id") or event["payload"].get("report_id"): event
              for event in S.build() if event["type"] in ("case_registered", "report_rejected")}
    assert rules.subjects_of(events["A1"]) == ["case:A1", "report:rpt-A1"]
    assert rules.subjects_of(events["X1"]) == ["report:X1"]
    replied = next(e for e in S.build() if e["type"] == "department_replied")
    assert rules.subjects_of(replied) == ["request:OP2:police"]


def test_parked_and_extended_cases_are_never_on_time_even_when_dispatch_says_so(district):
    facts = {f["_id"]: f for f in rules.fold_all(log_entries(S.build()), district.locate)}
    end = parse_period(S.MONTH).end
    assert indicators.case_state(facts["case:A3"], end) == {
        "closed": True, "on_time": False, "reworked": False, "extended": True, "parked": False,
        "overdue_open": False}
    assert indicators.case_state(facts["case:A4"], end)["on_time"] is False
    assert facts["case:A4"]["effective_deadline"] == S.T("11-18 17:00")
    assert facts["case:A6"]["unit"] == S.A and facts["case:A6"]["deadline"] == S.T("11-25 17:00")


def test_composite_weights_come_from_the_settings():
    counts = {"due": 4, "closed": 4, "closed_on_time": 2, "reworked": 0, "extended": 0,
              "exposed": 1, "returns_caused": 0, "supervised": 0}
    block = indicators.indicator_block(counts, indicators.INDICATORS)
    only_ontime = parse_settings({"composite": {"weights": {
        "closure_rate": 0, "ontime_rate": 1, "rework_rate": 0, "extension_rate": 0, "satisfaction_rate": 0},
        "deductions": {"exposed_case": 10}}})
    assert indicators.composite(block, counts, only_ontime) == {
        "value": 40.0, "base": 50.0, "deducted": 10.0,
        "deductions": {"exposed_case": 10.0, "return_caused": 0.0, "supervised": 0.0},
        "parts": {"ontime_rate": {"weight": 1.0, "score": 0.5}}}
    floor = parse_settings({"composite": {"deductions": {"exposed_case": 500}}})
    assert indicators.composite(block, counts, floor)["value"] == 0.0


def test_periods():
    month = parse_period("2026-11")
    assert (month.start.isoformat(), month.end.isoformat()) == (
        "2026-10-31T16:00:00+00:00", "2026-11-30T16:00:00+00:00")
    assert parse_period("2026-W45").label == "2026-W45"
    assert (parse_period("2026-W45").first_day.isoformat(), parse_period("2026-W45").last_day.isoformat()) == (
        "2026-11-02", "2026-11-08")
    assert parse_period("2026-11-03").title == "2026年11月3日"
    assert parse_period("2026-12").title == "2026年12月"
    assert [p.label for p in previous_months(parse_period("2026-02"), 3)] == ["2025-12", "2026-01", "2026-02"]
    for bad in ("2026-13", "2026-11-31", "2026-W60", "2026-11-20..2026-11-01", "November", ""):
        with pytest.raises(PeriodError):
            parse_period(bad)


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="weights"):
        parse_settings({"composite": {"weights": {"closure_rate": -1}}})
    with pytest.raises(ValueError, match="groups"):
        parse_settings({"ranking": {"groups": [{"key": "a", "name": "甲", "types": ["street"]},
                                               {"key": "b", "name": "乙", "types": ["street"]}]}})
    shipped = load_settings()
    assert shipped["ranking"]["minimum_cases"] == 5
    weights = shipped["composite"]["weights"]
    # the composite is normalised by the weights of the parts a unit has: the five loop
    # indicators share 100, and community reviews add 10 where a unit has been reviewed
    assert sum(w for key, w in weights.items() if key != "community_review_rate") == 100
    assert weights["community_review_rate"] == 10


def test_a_return_charged_to_the_command_centre_counts_for_it(district, settings):
    s = S.Scenario()
    s.new_case("R1", S.GA, "11-02 08:40", "11-02 08:50")
    s.dispatched("R1", S.B, "11-02 09:00", "11-03 17:00")
    s.returned("R1", S.B, "center.command", "11-02 09:30")
    s.dispatched("R1", S.A, "11-02 10:00", "11-04 17:00", seq=2)
    report = compute(S.MONTH, s.events, district, settings)
    centre = report["units"]["center.command"]
    assert centre["counts"]["returns_caused"] == 1 and centre["type"] is None
    assert centre["composite"] == {"value": None, "base": None, "deducted": 1.0,
                                   "deductions": {"exposed_case": 0.0, "return_caused": 1.0, "supervised": 0.0},
                                   "parts": {}}
    assert report["units"][S.B]["counts"]["returns_caused"] == 0
    assert all(row["unit_id"] != "center.command" for table in report["rankings"]
               for row in table["ranked"] + table["unranked"])


# ------------------------------------------------------------------ evaluation by role (issue 18)
def test_handling_units_indicators_match_the_hand_computed_values(november, district, settings):
    from services.scoring import roles
    handlers = {row["unit_id"]: row for row in roles.evaluate(november, district, settings)["handlers"]}
    for unit_id, expected in S.EXPECTED_HANDLERS.items():
        row = handlers[unit_id]
        check_block(row["indicators"], {k: v for k, v in expected.items() if k.endswith("_rate")}, unit_id)
        assert row["counts"]["overdue_closed"] == expected["overdue_closed"], unit_id
        assert row["counts"]["overdue_open"] == expected["overdue_open"], unit_id
        assert row["counts"]["due"] == expected["handle_ontime_rate"][1], unit_id      # 应处置数
        assert row["status"] is None


def test_centre_and_inspector_indicators_match_the_hand_computed_values(november, district, settings):
    from services.scoring import roles
    evaluation = roles.evaluate(november, district, settings)
    check_block(evaluation["centre"]["indicators"], S.EXPECTED_CENTRE, "centre")
    assert evaluation["centre"]["counts"]["returns_caused"] == 1
    inspectors = {row["inspector_id"]: row for row in evaluation["inspectors"]}
    for key, expected in S.EXPECTED_INSPECTOR_ROLES.items():
        check_block(inspectors[key]["indicators"], expected, key)


def test_every_unit_appears_with_no_cases_rather_than_being_dropped(november, district, settings):
    from services.scoring import roles
    evaluation = roles.evaluate(november, district, settings)
    regions = {row["unit_id"]: row for row in evaluation["regions"]}
    # every street, town and park of the reference data is a region, busy or not
    assert set(regions) == {uid for uid, unit in district.units.items()
                            if unit["type"] in ("street", "town", "park")}
    assert any(row["type"] == "park" for row in regions.values())
    idle = [row for row in regions.values() if row["unit_id"] not in (S.A, S.B, S.TOWN)]
    assert idle and all(row["status"] == "无案件" for row in idle)
    assert regions[S.A]["status"] is None
    # A's territory, by hand (see EXPECTED_UNITS): 立案 7/8, 派遣 6/7, 结案 5/6, 按期结案 2/6
    check_block(regions[S.A]["indicators"], {"filing_rate": (7, 8), "dispatch_rate": (6, 7),
                                             "closure_rate": (5, 6), "ontime_rate": (2, 6)}, "region A")
    check_block(regions[S.TOWN]["indicators"], {"filing_rate": (2, 2), "dispatch_rate": (2, 2)}, "region T")
    # the ranking tables list them too
    streets = next(g for g in november["rankings"] if g["group"] == "street")
    listed = {e["unit_id"] for e in streets["ranked"] + streets["unranked"] + streets["no_cases"]}
    assert listed == {uid for uid, unit in district.units.items() if unit["type"] in ("street", "town")}
    assert all(e["reason"] == "无案件" for e in streets["no_cases"])


def test_inspectors_appear_by_name_from_the_roster(november, district, settings):
    from services.scoring import roles
    named = parse_settings({"standard": {"inspector_names": {"insp.li": "李明"}}})
    rows = {row["inspector_id"]: row["name"] for row in roles.evaluate(november, district, named)["inspectors"]}
    assert rows == {"insp.li": "李明", "insp.wang": "工号 insp.wang（未登记姓名）"}


def test_inspectors_appear_by_the_name_their_reports_carried(district, settings):
    """An inspector's report carries the reporting account's name (the gateway fills it from the
    key); the evaluation shows it. The roster, when it has the 工号, still wins."""
    from services.scoring import roles
    events = S.build()
    for event in events:
        if event["type"] == "report_received" and event["payload"].get("inspector_id") == "insp.wang":
            event["payload"]["inspector_name"] = "王芳"
    report = compute(S.MONTH, events, district, settings)
    rows = {row["inspector_id"]: row["name"] for row in roles.evaluate(report, district, settings)["inspectors"]}
    assert rows == {"insp.li": "工号 insp.li（未登记姓名）", "insp.wang": "王芳"}
    named = parse_settings({"standard": {"inspector_names": {"insp.wang": "王芳芳"}}})
    assert {row["inspector_id"]: row["name"] for row in roles.evaluate(report, district, named)["inspectors"]}[
        "insp.wang"] == "王芳芳"


def test_the_settings_choose_where_local_practice_varies(district):
    # A3: extension approved 11-09 (11-10 17:00 → 11-12 17:00), handled and closed 11-11 — within the
    # extended deadline. Standard default: not 按期; with extension_moves_deadline: 按期.
    moved = parse_settings({"standard": {"extension_moves_deadline": True}})
    strict = compute(S.MONTH, S.build(), district, parse_settings({}))
    lenient = compute(S.MONTH, S.build(), district, moved)
    assert strict["units"][S.A]["indicators"]["ontime_rate"]["numerator"] == 2
    assert lenient["units"][S.A]["indicators"]["ontime_rate"]["numerator"] == 3       # A1, A3, A5
    # parking never counts as on time, whatever the setting (A4)
    facts = {f["_id"]: f for f in rules.fold_all(log_entries(S.build()), district.locate)}
    assert indicators.case_state(facts["case:A4"], parse_period(S.MONTH).end, moved)["on_time"] is False
    # 返工率 over 结案数: A 1 rework / 5 closed
    closed = compute(S.MONTH, S.build(), district, parse_settings({"standard": {"rework_denominator": "closed"}}))
    check_block(closed["units"][S.A]["indicators"], {"rework_rate": (1, 5)}, "A closed")
    check_block(strict["units"][S.A]["indicators"], {"rework_rate": (1, 6)}, "A due")


# ------------------------------------------------------------------ periods (issue 18)
def test_quarter_and_year_periods_parse():
    q4 = parse_period("2026-Q4")
    assert (q4.kind, q4.first_day.isoformat(), q4.last_day.isoformat(), q4.title) == \
        ("quarter", "2026-10-01", "2026-12-31", "2026年第4季度")
    year = parse_period("2026")
    assert (year.kind, year.first_day.isoformat(), year.last_day.isoformat(), year.title) == \
        ("year", "2026-01-01", "2026-12-31", "2026年度")
    with pytest.raises(PeriodError):
        parse_period("2026-Q5")


def test_the_yearly_score_is_the_weighted_mean_of_the_months(district, settings):
    from services.scoring import evaluation
    events = S.build()
    october = compute("2026-10", events, district, settings)
    november = compute(S.MONTH, events, district, settings)
    units = {uid: district.units[uid] for uid in (S.A, S.B, S.WATER)}
    # equal weights: A = (26.41 + 48.83) / 2 = 37.62; B has November only → 85.0
    equal = evaluation.compose([(10, "2026-10", october), (11, "2026-11", november)], {}, units)
    assert equal[S.A]["value"] == 37.62
    assert equal[S.B]["value"] == 85.0
    # November weighs 3: A = (26.41 + 3 × 48.83) / 4 = 172.9 / 4 = 43.225 → 43.23 (2 decimals)
    weighted = evaluation.compose([(10, "2026-10", october), (11, "2026-11", november)], {11: 3}, units)
    assert weighted[S.A]["value"] == 43.23
    assert weighted[S.A]["months"]["2026-11"] == {"score": 48.83, "weight": 3.0}
    # W had nothing to score in either month: listed as 无案件, not dropped
    assert weighted[S.WATER]["value"] is None and weighted[S.WATER]["status"] == "无案件"
    # the weights are validated
    with pytest.raises(ValueError):
        parse_settings({"periods": {"month_weights": {13: 1}}})
