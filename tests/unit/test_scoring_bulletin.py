"""The bulletin's rendering without a store: the November scenario computed in memory, rendered to
HTML and PDF (no charts), and the PDF read back."""
import io
from datetime import datetime, timezone

import pytest
from pypdf import PdfReader

from services.scoring import bulletin, indicators, rules
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
    return {"period": period, "report": report, "months": [S.MONTH], "trend": {},
            "district_trend": {}, "settings": settings, "district": district, "as_of": AS_OF}


def test_overview_sentence_has_the_district_numbers(data):
    text = bulletin.overview_text(data["report"])
    assert "本期共受理问题 17 件，立案 15 件，立案率 88.2%" in text
    assert "应结案 13 件，结案 11 件，结案率 84.6%；按期结案 8 件，按期结案率 61.5%" in text
    assert "超期案件 3 件列入曝光台" in text


def test_html_and_pdf_render_in_chinese(data):
    html_text = bulletin.render_html(data, {})
    assert "嘉陵区城市综合管理考核月度通报" in html_text and "2026年11月" in html_text
    assert html_text.count('class="unranked"') == 2               # 童家溪镇, 区水务集团
    assert "https://media.dcg.example/A2-after.png" in html_text   # remote photos linked as is
    pdf = bulletin.render_pdf(data, {}, bulletin.find_font())
    assert pdf.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    flat = text.replace("\n", "").replace(" ", "")
    for expected in ("北泉街道", "85.00", "天生街道", "48.83", "曝光台",
                     "处置后照片：https://media.dcg.example/A2-after.png"):
        assert expected in flat, expected


def test_formatting_helpers():
    assert bulletin.pct(None) == "—" and bulletin.pct(0.61538) == "61.5%"
    assert bulletin.local("2026-11-25T09:00:00Z", "Asia/Shanghai") == "11-25 17:00"
    with pytest.raises(bulletin.BulletinError):
        bulletin.gather(None, "2026-W45", load_settings(), load_district(), AS_OF)
