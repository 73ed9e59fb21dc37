"""721 工作法 and the 双街长/双路长's own indicators (services/scoring/practices.py), against values
worked out by hand here."""
from __future__ import annotations

import pytest

from services.scoring import practices
from services.scoring.settings import parse_settings
from shared.refdata import load_district

DISTRICT = load_district()
SETTINGS = parse_settings({})
STREET = "street.tianshengjie"


def closure(case_id, unit=STREET):
    return {"case_id": case_id, "unit_id": unit}


def decision(case_id, step, in_period=True):
    return {"case_id": case_id, "step": step, "in_period": in_period}


def test_a_closed_case_is_classed_by_the_highest_ladder_step_else_by_its_class():
    closures = [closure("A"), closure("B"), closure("C"), closure("D"), closure("E"), closure("A")]
    classes = {"A": "E0101", "B": "E0501", "C": "C0101", "D": "E0502", "E": "E0303"}
    decisions = [decision("D", "educate", False), decision("D", "warn"), decision("E", "penalise")]
    items = practices.disposals(closures, classes, decisions, SETTINGS)
    assert [(i["case_id"], i["mode"], i["basis"]) for i in items] == [
        ("A", "service", "class:E0101"),          # 暴露垃圾 cleaned: 服务 (closed twice: once)
        ("B", "management", "class:E0501"),       # 街面秩序 without a decision: 管理
        ("C", "service", "class:C0101"),          # a 部件 repaired: 服务
        ("D", "management", "ladder:warn"),       # 教育 then 警告: the highest step, 管理
        ("E", "enforcement", "ladder:penalise"),  # 处罚: 执法
    ]


def test_a_decision_on_no_closed_case_counts_for_the_lead_unit():
    items = practices.disposals([], {}, [decision("X", "persuade"), decision("Y", "guide", False)], SETTINGS)
    assert items == [{"unit_id": "dept.chengguan", "case_id": "X", "mode": "service", "basis": "ladder:persuade"}]


def test_the_mix_against_70_20_10_computed_by_hand():
    # 7 service, 2 management, 1 enforcement for the street: exactly on target
    items = ([{"unit_id": STREET, "mode": "service"}] * 7 + [{"unit_id": STREET, "mode": "management"}] * 2
             + [{"unit_id": STREET, "mode": "enforcement"}]
             # 城管: 1 service, 1 management, 2 enforcement = 25/25/50: off target
             + [{"unit_id": "dept.chengguan", "mode": m} for m in ("service", "management", "enforcement",
                                                                   "enforcement")])
    report = practices.mode_721(items, DISTRICT, SETTINGS)
    assert report["target"] == {"service": 70, "management": 20, "enforcement": 10}
    street = report["units"][STREET]
    assert street["total"] == 10 and street["mix_text"] == "70/20/10"
    assert street["meets_target"] is True and street["status"] == "达标"
    chengguan = report["units"]["dept.chengguan"]
    assert {m: r["share"] for m, r in chengguan["modes"].items()} == {
        "service": 25.0, "management": 25.0, "enforcement": 50.0}
    assert chengguan["modes"]["service"]["gap_points"] == -45.0
    assert chengguan["modes"]["enforcement"]["gap_points"] == 40.0
    assert chengguan["status"] == "偏离" and chengguan["name"].startswith("区城市管理局")
    # district: 8/3/3 of 14 → 57.1/21.4/21.4
    assert report["district"]["mix_text"] == "57.1/21.4/21.4" and report["district"]["meets_target"] is False


def test_no_disposal_is_shown_as_no_cases_and_the_target_is_a_setting():
    report = practices.mode_721([], DISTRICT, SETTINGS)
    assert report["district"]["status"] == "无案件" and report["district"]["mix_text"] == "—"
    other = parse_settings({"practices": {"mode_721": {"target": {"service": 60, "management": 30,
                                                                  "enforcement": 10}}}})
    assert practices.mode_721([], DISTRICT, other)["target"]["management"] == 30
    with pytest.raises(ValueError, match="721"):
        parse_settings({"practices": {"mode_721": {"target": {"service": 80}}}})


def test_a_chiefs_indicators_are_their_stretchs_cases():
    grids = {   # the report's grid rows: 天生路 runs through 001001001 and 001001002
        "500190001001001": {"counts": {"due": 3, "closed": 2, "closed_on_time": 1, "reworked": 1}},
        "500190001001002": {"counts": {"due": 1, "closed": 1, "closed_on_time": 1}},
        "500190001002001": {"counts": {"due": 4, "closed": 4, "closed_on_time": 4}},
    }
    rows = {row["key"]: row for row in practices.chief_indicators(grids, DISTRICT)}
    road = rows["road:天生路:chengguan"]
    assert (road["name"], road["kind_name"]) == ("万天欣", "双路长")
    assert road["counts"]["due"] == 4 and road["indicators"]["closure_rate"]["value"] == 0.75   # 3/4
    assert road["indicators"]["ontime_rate"]["value"] == 0.5                                     # 2/4
    assert road["indicators"]["rework_rate"]["value"] == 0.25                                    # 1/4
    street = rows["street:street.tianshengjie:street"]                                           # all 3 grids
    assert (street["name"], street["kind_name"]) == ("袁欣国", "双街长")
    assert street["indicators"]["closure_rate"]["value"] == 0.875                                # 7/8
    assert street["indicators"]["ontime_rate"]["value"] == 0.75                                  # 6/8
    assert rows["street:street.beiquan:chengguan"]["status"] == "无案件"
    assert rows["street:street.beiquan:chengguan"]["indicators"]["closure_rate"]["value"] is None


def test_the_bulletin_lines_name_the_mix_and_the_units_off_target():
    items = [{"unit_id": STREET, "mode": "service"}] * 7 + [{"unit_id": "dept.chengguan", "mode": "enforcement"}] * 3
    section = {"mode_721": practices.mode_721(items, DISTRICT, SETTINGS),
               "chiefs": practices.chief_indicators({"500190001001001": {"counts": {"due": 1}}}, DISTRICT)}
    lines = practices.bulletin_lines(section)
    assert lines[0] == "721 工作法：全区处置 10 件，服务/管理/执法 70/0/30（目标 70/20/10，偏离）。"
    assert lines[1] == "721 偏离目标的单位：区城市管理局（区城市管理综合行政执法支队） 0/0/100；天生街道 100/0/0。"
    assert lines[2] == "双街长/双路长：76 人，6 人责任段内有案件。"
