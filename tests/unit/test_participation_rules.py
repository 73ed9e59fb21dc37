"""Pure rules of participation and intake's 四定 check — edges of place and time, hand-computed."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from services.intake import stalls
from services.participation import qrcodes, rules
from services.participation.settings import default_shops, load_settings
from shared.refdata import load_district

TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)
M_PER_DEG_LAT = 6_371_008.8 * 3.141592653589793 / 180          # ≈ 111 195.08 m


def local(y, mo, d, h, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=SH).astimezone(timezone.utc)


def permit(**extra):
    base = {"permit_id": "P1", "holder": "甲", "goods": "水果", "quantity": 1,
            "place": {"point": [106.392, 29.835], "radius_m": 10},
            "window": {"start": "18:00", "end": "23:00"},
            "valid_from": "2026-01-01", "valid_to": "2026-12-31"}
    base.update(extra)
    return stalls.load_permit(base)


def test_radius_edge_inclusive():
    p = permit()
    inside = 29.835 + 9.99 / M_PER_DEG_LAT                       # 9.99 m north
    outside = 29.835 + 10.01 / M_PER_DEG_LAT                     # 10.01 m north
    at = local(2026, 6, 1, 20)
    assert stalls.permitted_stall([p], "E0501", 106.392, inside, at, TZ)["permit_id"] == "P1"
    assert stalls.permitted_stall([p], "E0501", 106.392, outside, at, TZ) is None
    assert stalls.permitted_stall([p], "E0101", 106.392, 29.835, at, TZ) is None     # not street trading


def test_a_permit_covers_no_more_stalls_than_its_quantity():
    p = permit(quantity=2)
    at = local(2026, 6, 1, 20)
    assert stalls.permitted_stall([p], "E0501", 106.392, 29.835, at, TZ, stall_count=2)["permit_id"] == "P1"
    assert stalls.permitted_stall([p], "E0501", 106.392, 29.835, at, TZ, stall_count=3) is None      # 超出定量
    assert stalls.permitted_stall([p], "E0501", 106.392, 29.835, at, TZ)["permit_id"] == "P1"        # not counted


def test_polygon_edge_covers_its_boundary():
    ring = [[106.3915, 29.8355], [106.3918, 29.8355], [106.3918, 29.8357], [106.3915, 29.8357], [106.3915, 29.8355]]
    p = permit(place={"polygon": ring})
    at = local(2026, 6, 1, 20)
    assert stalls.in_place(p["place"], 106.3918, 29.8356)             # on the east edge
    assert stalls.in_place(p["place"], 106.3915, 29.8355)             # a corner
    assert not stalls.in_place(p["place"], 106.39181, 29.8356)        # ~1 m east of it
    assert stalls.permitted_stall([p], "E0502", 106.3916, 29.8356, at, TZ) is not None


@pytest.mark.parametrize("moment, expected", [
    (local(2026, 6, 1, 17, 59, 59), False),
    (local(2026, 6, 1, 18, 0, 0), True),          # start included
    (local(2026, 6, 1, 22, 59, 59), True),
    (local(2026, 6, 1, 23, 0, 0), False),         # end excluded
])
def test_window_start_included_end_excluded(moment, expected):
    assert stalls.in_window(permit(), moment, TZ) is expected


def test_window_across_midnight_belongs_to_the_day_it_started():
    p = permit(window={"start": "21:00", "end": "02:00"}, valid_from="2026-01-01", valid_to="2026-06-01",
               days=[1])                                           # Mondays only; 2026-06-01 is a Monday
    assert stalls.in_window(p, local(2026, 6, 1, 21), TZ)
    assert stalls.in_window(p, local(2026, 6, 2, 1, 59), TZ)       # Tuesday 01:59 — Monday's night
    assert not stalls.in_window(p, local(2026, 6, 2, 2), TZ)
    assert not stalls.in_window(p, local(2026, 6, 2, 21), TZ)      # Tuesday evening: not a Monday
    assert not stalls.in_window(p, local(2026, 5, 31, 23), TZ)     # Sunday


def test_validity_dates_both_included():
    p = permit(valid_from="2026-06-01", valid_to="2026-06-30")
    assert stalls.in_window(p, local(2026, 6, 1, 18), TZ) and stalls.in_window(p, local(2026, 6, 30, 22), TZ)
    assert not stalls.in_window(p, local(2026, 7, 1, 18), TZ) and not stalls.in_window(p, local(2026, 5, 31, 20), TZ)
    assert stalls.permitted_stall([dict(p, revoked=True)], "E0501", 106.392, 29.835, local(2026, 6, 2, 20), TZ) is None


def test_permit_schema_and_default_register():
    with pytest.raises(Exception):
        permit(place={"point": [106.39, 29.83]})                   # no radius
    with pytest.raises(Exception):
        permit(window={"start": "25:00", "end": "02:00"})
    defaults = stalls.default_permits()
    assert {p["permit_id"] for p in defaults} >= {"SP-2026-001", "SP-2026-002", "SP-2026-003"}
    assert all(isinstance(p["valid_from"], date) for p in defaults)


def test_citizen_identity_and_points():
    assert rules.citizen_id("phone:13800000000") == "phone:13800000000"
    assert rules.citizen_id("account_id:u1") == "account_id:u1"
    assert rules.citizen_id("inspector:i1") is None and rules.citizen_id(None) is None
    assert rules.citizen_from_query(phone="138-0000 0000") == "phone:13800000000"
    settings = load_settings()
    assert rules.points_for({"class_code": "E0101", "urgency": "normal"}, settings) == 10
    assert rules.points_for({"class_code": "E0101", "urgency": "urgent"}, settings) == 15
    assert rules.redemption_problem(29, 30) and rules.redemption_problem(30, 30) is None


def test_review_period_and_who_may_be_rated():
    now = local(2026, 11, 23, 10)
    assert rules.current_period(now, TZ) == "2026-11"
    assert rules.period_problem("2026-11", now, TZ, 1) is None
    assert rules.period_problem("2026-10", now, TZ, 1) is None
    assert rules.period_problem("2026-09", now, TZ, 1)             # closed
    assert rules.period_problem("2026-12", now, TZ, 1)             # not started
    assert rules.period_problem("2026-13", now, TZ, 1)
    assert rules.month_start("2026-11", TZ) == datetime(2026, 10, 31, 16, tzinfo=timezone.utc)
    district = load_district()
    community = rules.community_of(district.grids, "500190001001")
    assert community == {"community_code": "500190001001", "community_name": "天生路社区",
                         "street_id": "street.tianshengjie"}
    assert rules.community_of(district.grids, "001") is None
    types = load_settings()["reviews"]["unit_types"]
    unit = lambda uid: dict(district.units[uid], id=uid)  # noqa: E731
    assert rules.review_problem(community, unit("street.tianshengjie"), types) is None
    assert rules.review_problem(community, unit("dept.chengguan"), types) is None
    assert rules.review_problem(community, unit("street.beiquan"), types)
    assert rules.review_problem(community, None, types)
    assert rules.review_id("2026-11", "rep 1", "dept.water") == "RV-2026-11-rep_1-dept.water"


def test_frontage_stretch_edges():
    shops = default_shops()
    width = load_settings()["frontage"]["default_width_m"]
    lat_in = 29.834 + 4.99 / M_PER_DEG_LAT                        # 4.99 m from the line (width 5)
    lat_out = 29.834 + 5.01 / M_PER_DEG_LAT
    assert rules.shop_at(shops, 106.39015, lat_in, width)["shop_id"] == "shop-tsl-001"
    assert rules.shop_at(shops, 106.39015, lat_out, width) is None
    assert rules.shop_at(shops, 106.3895, 29.8330, width)["shop_id"] == "shop-tsl-003"   # polygon
    assert rules.shop_at(shops, 106.3904, 29.8338, width) is None
    assert rules.frontage_counts("E0503", load_settings()) and not rules.frontage_counts("E0302", load_settings())


def test_qr_codes_png_and_pdf_decode_back_to_their_components(tmp_path):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image
    district = load_district()
    result = qrcodes.generate(tmp_path, "https://dcg.example.gov.cn", district)
    assert result["count"] == len(district.components) and (tmp_path / "components-qrcodes.pdf").stat().st_size > 10_000
    for png in result["pngs"][:5] + result["pngs"][-2:]:
        texts = [r.text for r in zxingcpp.read_barcodes(Image.open(png))]
        assert len(texts) == 1 and texts[0].startswith("https://dcg.example.gov.cn/inspector?component=")
        code = qrcodes.object_code_from_url(texts[0])
        assert code in district.components and png.endswith(f"{code}.png")


def test_no_label_text_is_cut_on_any_of_the_components():
    """Every label's texts (full name, address, owner, code, URL) wrap inside the label's text box
    and join back to the whole text; before, 25 of the 62 labels were cut at 22/30 characters."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase.pdfmetrics import stringWidth
    district, font = load_district(), qrcodes._font()
    cells = qrcodes.label_cells(*A4)
    assert len(district.components) == 62
    for index, component in enumerate(sorted(district.components.values(), key=lambda c: c["object_code"])):
        (_, qr_y, _), (x, top, width, height) = qrcodes.label_layout(cells[index % len(cells)])
        texts = qrcodes.label_texts(component, district, "https://dcg.example.gov.cn")
        assert component["name"] in texts[0] and texts[1].startswith("地址：") and len(texts[1]) > 6
        size, wrapped = qrcodes.fit_label(texts, font, width, height)
        assert ["".join(lines) for lines in wrapped] == texts
        assert all(stringWidth(line, font, size) <= width for lines in wrapped for line in lines)
        lines = sum(len(lines) for lines in wrapped)
        assert top - lines * size * qrcodes.LEADING >= cells[index % len(cells)][1] and top < qr_y


def test_the_printed_sheet_holds_every_full_name_and_the_public_url(tmp_path, monkeypatch):
    from pypdf import PdfReader
    district = load_district()
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://dcg.example.gov.cn")
    result = qrcodes.generate(tmp_path, district=district)
    text = "".join(page.extract_text() for page in PdfReader(result["pdf"]).pages).replace("\n", "")
    for component in district.components.values():
        assert component["name"] in text
        assert f"https://dcg.example.gov.cn/inspector?component={component['object_code']}" in text
    assert "127.0.0.1" not in text


@pytest.mark.parametrize("base", ["", None, "http://127.0.0.1:8000", "http://localhost:8000", "http://0.0.0.0:8000",
                                  "http://[::1]:8000"])
def test_labels_are_never_printed_for_a_loopback_or_missing_address(tmp_path, monkeypatch, base):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="PUBLIC_BASE_URL"):
        qrcodes.generate(tmp_path, base)
    assert not (tmp_path / "components-qrcodes.pdf").exists()
