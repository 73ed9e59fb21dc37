"""The bulletin's rendering without a store: the November scenario computed in memory, rendered to
HTML and PDF (no charts), and the PDF read back."""
import io
from datetime import datetime, timezone

import pytest
from pypdf import PdfReader

from services.scoring import bulletin, bulletin_sections, indicators, rules
from services.scoring.settings import parse_settings
from services.scoring.periods import parse_period
from services.scoring.settings import load_settings
from shared.contracts.events import load_event
from shared.refdata import load_district
from tests import scoring_scenario as S

AS_OF = datetime(2026, 12, 2, 4, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def data():
    district, settings = load_district(), load_settings()
    facts = rules.fold_all([rules.log_entry(load_event(e)) for e in S.build()], district.locate)
    period = parse_period(S.MONTH, district.timezone)
    report = indicators.compute(period, facts, settings, district, AS_OF)
    october = parse_period("2026-10", district.timezone)
    return {"period": period, "report": report, "months": [S.MONTH], "trend": {},
            "district_trend": {}, "settings": settings, "district": district, "as_of": AS_OF,
            "previous": indicators.compute(october, facts, settings, district, AS_OF),
            "last_year": indicators.compute(parse_period("2025-11"), [], settings, district, AS_OF),
            "counts": bulletin_sections.problem_counts(facts, period),
            "previous_counts": bulletin_sections.problem_counts(facts, october)}


def test_overview_sentence_has_the_district_numbers(data):
    text = bulletin.overview_text(data["report"])
    assert "本期共受理问题 17 件，立案 15 件，立案率 88.2%" in text
    assert "应结案 13 件，结案 11 件，结案率 84.6%；按期结案 8 件，按期结案率 61.5%" in text
    assert "超期案件 3 件列入曝光台" in text


def test_html_and_pdf_render_in_chinese(data):
    html_text = bulletin.render_html(data, {})
    assert "嘉陵区城市综合管理考核月度通报" in html_text and "2026年11月" in html_text
    idle = sum(len(group["no_cases"]) for group in data["report"]["rankings"])
    assert idle > 0                                                # units without cases: listed
    assert html_text.count('class="unranked"') == 2 + idle        # 童家溪镇, 区水务集团 + 无案件
    assert "https://media.dcg.example/A2-after.png" in html_text   # remote photos linked as is
    pdf = bulletin.render_pdf(data, {}, bulletin.find_font())
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    flat = text.replace("\n", "").replace(" ", "")
    for expected in ("北泉街道", "85.00", "天生街道", "48.83", "曝光台",
                     "处置后照片（整改后）：https://media.dcg.example/A2-after.png"):
        assert expected in flat, expected


def test_formatting_helpers():
    assert bulletin.pct(None) == "—" and bulletin.pct(0.61538) == "61.5%"
    assert bulletin.local("2026-11-25T09:00:00Z", "Asia/Shanghai") == "11-25 17:00"
    with pytest.raises(bulletin.BulletinError):
        bulletin.gather(None, "2026-W45", load_settings(), load_district(), AS_OF)


# ------------------------------------------------------------------ the 通报's sections (issue 18)
def test_front_matter_comes_from_the_settings(data):
    front = bulletin_sections.sections(data)["front"]
    assert front["doc_number"] == "嘉城管考〔2026〕11号"
    assert front["main_to"] == "各街道办事处、镇人民政府、区级各相关部门"
    assert front["copy_to"] == "区委办公室、区政府办公室"
    assert front["date"] == "2026年12月2日"               # as_of 12-02 12:00 local
    dated = dict(data, settings=parse_settings({"bulletin": {"issue_date": "2026-12-05", "signature": "某某办公室",
                                                             "doc_number": "测〔{year}〕第{month}期"}}))
    front = bulletin_sections.sections(dated)["front"]
    assert (front["date"], front["signature"], front["doc_number"]) == ("2026年12月5日", "某某办公室", "测〔2026〕第11期")


def test_overall_gives_month_on_month_and_year_on_year(data):
    rows = {row[0]: row for row in bulletin_sections.sections(data)["overall"]}
    # 受理: November 17, October 1 (O1) → +1600.0 %; November 2025 had nothing → "新增"
    assert rows["受理数"] == ["受理数", "17", "1", "+1600.0%", "0", "新增"]
    # 立案率: 15/17 = 88.2 % against October's 1/1 = 100 % → −11.8 points; last year no data
    assert rows["立案率"] == ["立案率", "88.2%", "100.0%", "-11.8个百分点", "—", "—"]
    # 按期结案率: 8/13 = 61.5 % against October 0/1 → +61.5 points
    assert rows["按期结案率"][1:4] == ["61.5%", "0.0%", "+61.5个百分点"]


def test_hot_problems_and_sources_are_counted_by_hand(data):
    sec = bulletin_sections.sections(data)
    # every case of the scenario is 暴露垃圾: 15 registered in November, 1 (O1) in October
    assert sec["hot"]["classes"] == [["暴露垃圾", "15", "1", "+1400.0%"]]
    # by street: A 7 (A1..A6, N1), B 6 (B1..B5, W1), T 2; October: A 1
    assert sec["hot"]["streets"] == [["天生街道", "7", "1", "+600.0%"], ["北泉街道", "6", "0", "新增"],
                                     ["童家溪镇", "2", "0", "新增"]]
    # 18 reports received: inspectors 6 (A1, A2, D1 li; A5, B1, X1 wang), web 1 (X2), 12345 the other 11
    rows = {row[0]: row for row in sec["sources"]}
    assert rows["12345热线"] == ["12345热线", "11", "61.1%", "1", "+1000.0%"]
    assert rows["监督员上报"] == ["监督员上报", "6", "33.3%", "0", "新增"]
    assert rows["市民App"][1:3] == ["1", "5.6%"]
    assert rows["物联感知"][1] == "0" and rows["领导交办"][1] == "0"


def test_red_black_list_and_drafted_findings(data):
    sec = bulletin_sections.sections(data)
    streets = next(entry for entry in sec["red_black"] if entry["group"] == "街镇")
    assert [i["name"] for i in streets["red"]] == ["北泉街道"] and [i["name"] for i in streets["black"]] == ["天生街道"]
    problems = sec["findings"]["problems"]
    # a class that grows by 2× or more: 暴露垃圾 15 against 1
    assert "暴露垃圾类问题本月立案 15 件，较上月 1 件增长 15.0 倍。" in problems
    # exposure: A2, A6 and O1 are 天生街道's
    assert "天生街道有 3 件案件超期，列入曝光台。" in problems
    assert len(sec["findings"]["requirements"]) == len(problems)


def test_a_unit_that_falls_three_places_is_named(data):
    settings = data["settings"]
    ranked = lambda order: {"rankings": [{"group": "street", "name": "街镇", "ranked": [  # noqa: E731
        {"unit_id": uid, "name": uid, "rank": n} for n, uid in enumerate(order, 1)]}], "exposure": []}
    empty = {"classes": {}, "streets": {}, "sources": {}}
    before, now = ranked(["甲", "乙", "丙", "丁"]), ranked(["乙", "丙", "丁", "甲"])
    found = bulletin_sections.findings(now, before, empty, empty, settings)["problems"]
    assert found == ["甲在街镇综合排名中由上月第 1 位降至第 4 位，下降 3 位。"]
    # two places is not enough
    found = bulletin_sections.findings(ranked(["乙", "丙", "甲", "丁"]), before, empty, empty, settings)
    assert found["problems"] == ["本月各项指标平稳，未发现需要通报的突出问题。"]
