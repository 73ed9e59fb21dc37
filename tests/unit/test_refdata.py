"""Reference data of the default district (shared/refdata) and its loader's validation."""
import json
import re
import shutil
from pathlib import Path

import pytest
from shapely.geometry import Point

from shared.calendar import BusinessCalendar
from shared.refdata import (DEFAULT_DIR, PARTNER_KEYS, District, RefdataError, clear_cache, sms_number,
                            load_district)

GAP_POINT = (106.3960, 29.8302)                       # the documented 盲区
KNOWN_POINT = (106.3904, 29.8338)                     # inside 天生路社区第1网格
KNOWN_GRID = "500190001001001"
# A vertex of the border shared by exactly two grids of two streets:
# 500190001001002 (天生街道 西师街社区) and 500190002001001 (北泉街道 温泉路社区).
BORDER_POINT = (106.395943, 29.832929)
BORDER_GRIDS = ("500190001001002", "500190002001001")

JOINT_CLASSES = {
    "E0301": {"environment", "construction"},           # 施工扬尘
    "E0302": {"transport", "police", "environment"},    # 渣土车抛洒滴漏
    "E0303": {"construction", "planning"},              # 违法建设
    "E0406": {"police"},                                 # 暴力抗法
    "E0502": {"market"},                                 # 无照经营游商
}


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(DEFAULT_DIR)


@pytest.fixture
def broken_copy(tmp_path) -> Path:
    target = tmp_path / "district"
    shutil.copytree(DEFAULT_DIR, target)
    return target


# ------------------------------------------------------------------ counts and ids
def test_counts(district):
    streets = district.streets()
    assert len(streets) == 17
    assert sum(1 for s in streets if s["type"] == "street") == 9
    assert sum(1 for s in streets if s["type"] == "town") == 8
    assert len(district.units_of_type("park")) == 5
    assert len(district.units_of_type("department")) >= 30
    assert len(district.units_of_type("operator")) >= 3
    assert [u["id"] for u in district.units_of_type("leadership")] == ["lead.group"]
    assert len(district.taxonomy) >= 40
    assert len(district.classes("component")) >= 20 and len(district.classes("event")) >= 20
    assert len(district.grids) >= 34
    assert len(district.components) >= 50
    assert district.code == "500190" and district.name == "嘉陵区"
    assert district.timezone == "Asia/Shanghai"
    assert isinstance(district.calendar, BusinessCalendar)


def test_required_units(district):
    for uid in ("dept.chengguan", "dept.police", "dept.traffic_police", "dept.environment",
                "dept.transport", "dept.construction", "dept.planning", "dept.market",
                "dept.water", "dept.gas", "dept.power", "dept.telecom", "dept.landscaping",
                "dept.sanitation", "dept.housing", "dept.emergency", "dept.education",
                "dept.health", "dept.culture_tourism", "op.cleaning", "op.landscaping",
                "op.municipal", "lead.group", "street.tianshengjie"):
        assert district.unit(uid)["id"] == uid
    with pytest.raises(KeyError):
        district.unit("dept.nowhere")
    for unit in district.units.values():
        prefix = {"street": "street.", "town": "town.", "park": "park.", "department": "dept.",
                  "operator": "op.", "leadership": "lead."}[unit["type"]]
        assert unit["id"].startswith(prefix)
        for contact in unit["contacts"]:
            assert contact["name"] and contact["role"] and isinstance(contact["phone"], str)


def test_every_unit_has_a_duty_mobile_for_sms(district):
    """The person on duty (值班员, or an operator's 调度员) of every unit is reachable by SMS."""
    for unit in district.units.values():
        duty = [c for c in unit["contacts"] if "值班" in c["role"] or "调度" in c["role"]]
        assert duty and all(re.fullmatch(r"1[3-9]\d{9}", sms_number(c) or "") for c in duty), unit["id"]


def test_a_landline_in_the_sms_field_is_refused_naming_file_and_entry(broken_copy):
    path = broken_copy / "units.yaml"
    text = path.read_text(encoding="utf-8")
    assert "phone: 023-68280002, mobile: '13900026800'" in text
    path.write_text(text.replace("mobile: '13900026800'", "mobile: 023-68280002"), encoding="utf-8")
    with pytest.raises(RefdataError) as info:
        load_district(broken_copy)
    [problem] = info.value.problems
    assert problem.startswith("units.yaml: unit 'street.tianshengjie': contacts[3] (冯伟远).mobile")
    assert "023-68280002" in problem and "不是手机号码" in problem


def test_a_duty_officer_without_a_mobile_is_refused(broken_copy):
    path = broken_copy / "units.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("phone: 023-68280002, mobile: '13900026800'", "phone: 023-68280002"), encoding="utf-8")
    with pytest.raises(RefdataError) as info:
        load_district(broken_copy)
    [problem] = info.value.problems
    assert problem.startswith("units.yaml: unit 'street.tianshengjie': contacts[3] (冯伟远) 值班人员需要手机号码")


def test_a_unit_no_sms_reaches_is_refused(broken_copy):
    path = broken_copy / "units.yaml"
    text = path.read_text(encoding="utf-8")
    for number in ("'13810540000'", "'13810550000'"):        # park.hightech: its two mobiles
        text = text.replace(number, "023-68000000")
    text = text.replace("phone: 023-68280019, mobile: '13900196800'", "phone: 023-68280019")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RefdataError) as info:
        load_district(broken_copy)
    assert any("没有能收短信的联系人" in problem for problem in info.value.problems)


def test_every_street_has_grids(district):
    per_street = {}
    for grid in district.grids:
        per_street.setdefault(grid["street_id"], []).append(grid["code"])
    assert set(per_street) == {s["id"] for s in district.streets()}
    assert all(len(codes) >= 2 for codes in per_street.values())
    assert sum(1 for codes in per_street.values() if len(codes) >= 3) >= 3


# ------------------------------------------------------------------ codes
def test_codes_well_formed(district):
    streets = {s["id"]: s for s in district.streets()}
    for grid in district.grids:
        code = grid["code"]
        assert re.fullmatch(r"\d{15}", code)
        assert code[:6] == "500190"
        assert code[6:9] == grid["street_code"] == streets[grid["street_id"]]["code"]
        assert code[9:12] == grid["community_code"]
        assert grid["responsible"]["street"] == grid["street_id"]
        for key in ("community_liaison", "grid_inspector", "double_chief"):
            assert grid["responsible"][key]
    for code, cls in district.taxonomy.items():
        assert re.fullmatch(r"[CE]\d{4}", code)
        assert code[0] == {"component": "C", "event": "E"}[cls["kind"]]
        assert code[1:3] == cls["major_code"]
        assert cls["filing_standard"] and cls["closing_standard"]
        assert set(cls["deadline"]) == {"normal", "urgent"}
        assert cls["case_kind"] in ("immediate", "committed", "coordination")
        assert cls["owner"] == "street" or cls["owner"] in district.units
    for code, comp in district.components.items():
        assert re.fullmatch(r"\d{16}", code)
        cls = district.minor_class(comp["class_code"])
        assert cls["kind"] == "component"
        assert code[:6] + code[6:8] + code[8:10] == "500190" + cls["major_code"] + comp["class_code"][3:5]
        assert comp["owner"] in district.units
    assert len({g["code"] for g in district.grids}) == len(district.grids)


def test_major_classes(district):
    majors = {(c["kind"], c["major_code"]): c["major_name"] for c in district.taxonomy.values()}
    assert [majors[("component", m)] for m in ("01", "02", "03", "04", "05", "06")] == \
        ["公用设施", "道路交通", "市容环境", "园林绿化", "房屋土地", "其他设施"]
    assert [majors[("event", m)] for m in ("01", "02", "03", "04", "05", "06")] == \
        ["市容环境", "宣传广告", "施工管理", "突发事件", "街面秩序", "其他事件"]


def test_known_classes_and_manual_deadlines(district):
    cover = district.minor_class("C0101")
    assert (cover["name"], cover["kind"], cover["major_name"], cover["owner"]) == \
        ("上水井盖", "component", "公用设施", "dept.water")
    assert district.minor_class("C0102")["name"] == "污水井盖"
    assert district.minor_class("C0108")["name"] == "路灯"
    garbage = district.minor_class("E0101")
    assert garbage["name"] == "暴露垃圾" and garbage["deadline"]["normal"] == "4h"
    assert garbage["owner"] == "street"
    assert district.deadline("E0102") == "2h"                      # 道路不洁
    assert district.minor_class("E0102")["owner"] == "op.cleaning"
    building = district.minor_class("E0303")
    assert building["name"] == "违法建设" and building["deadline"]["normal"] == "20d"
    assert building["stages"] == [{"name": "责令停工", "deadline": "4h"},
                                  {"name": "拆除", "deadline": "20d"}]
    assert district.minor_class("E0501")["name"] == "占道经营"
    assert district.minor_class("E0503")["name"] == "店外经营"
    assert district.minor_class("E0504")["name"] == "机动车乱停放"
    with pytest.raises(KeyError):
        district.minor_class("E9999")
    with pytest.raises(ValueError):
        district.deadline("E0101", "whenever")
    # minor_class returns a copy: editing it does not change the shared data
    copy_ = district.minor_class("E0101")
    copy_["deadline"]["normal"] = "1m"
    assert district.deadline("E0101") == "4h"


# ------------------------------------------------------------------ joint enforcement
def test_joint_partners(district):
    for code, cls in district.taxonomy.items():
        assert set(cls["joint"]) <= set(PARTNER_KEYS), code
    with_partners = {code for code, cls in district.taxonomy.items() if cls["joint"]}
    assert with_partners >= set(JOINT_CLASSES)
    for code, partners in JOINT_CLASSES.items():
        assert set(district.joint_partners(code)) == partners, code
    muck = district.minor_class("E0302")
    assert muck["name"] == "渣土车抛洒滴漏"
    assert set(district.joint_partners("E0302")) == {"transport", "police", "environment"}
    assert len(district.joint_partners("E0302")) == 3
    assert district.joint_partners("E0101") == []
    assert district.minor_class("E0406")["name"] == "暴力抗法"
    assert district.partner_unit("police") == "dept.police"
    with pytest.raises(KeyError):
        district.joint_partners("X0000")


# ------------------------------------------------------------------ geometry
def test_grids_do_not_overlap(district):
    grids = district.grids
    for i, a in enumerate(grids):
        assert a["geometry"].is_valid and a["geometry"].area > 0
        for b in grids[i + 1:]:
            assert a["geometry"].intersection(b["geometry"]).area < 1e-12, (a["code"], b["code"])


def test_locate_representative_points(district):
    for grid in district.grids:
        point = grid["geometry"].representative_point()
        found = district.locate(point.x, point.y)
        assert found is not None and found["grid_code"] == grid["code"]
        assert found["street_id"] == grid["street_id"]
        assert found["community_name"] == grid["community_name"]


def test_locate_known_point(district):
    found = district.locate(*KNOWN_POINT)
    assert found == {
        "grid_code": KNOWN_GRID,
        "grid_name": "天生路社区第1网格",
        "community_code": "001",
        "community_name": "天生路社区",
        "street_id": "street.tianshengjie",
        "street_code": "001",
        "responsible": found["responsible"],
    }
    assert found["responsible"]["street"] == "street.tianshengjie"


def test_point_on_shared_border_resolves_to_one_grid(district):
    point = Point(*BORDER_POINT)
    a, b = (district.grid(code)["geometry"] for code in BORDER_GRIDS)
    assert a.covers(point) and b.covers(point)          # really on the shared border
    assert not a.contains(point) and not b.contains(point)
    results = {district.locate(*BORDER_POINT)["grid_code"] for _ in range(5)}
    assert results == {"500190001001002"}                # the smaller code, every time
    assert district.nearest_street(*BORDER_POINT) == "street.tianshengjie"


def test_gap_point(district):
    assert district.locate(*GAP_POINT) is None
    assert district.nearest_street(*GAP_POINT) == "street.dongyang"
    nearest = district.nearest_grid(*GAP_POINT)
    assert nearest["grid_code"] == "500190005001001" and 0 < nearest["distance_m"] < 500
    owner = district.resolve_owner("E0101", *GAP_POINT)   # 暴露垃圾 in the gap: 属地兜底
    assert owner["gap"] is True and owner["grid"] is None and owner["owner"] == "street.dongyang"
    owner = district.resolve_owner("C0101", *KNOWN_POINT)  # water manhole cover in a grid
    assert owner["gap"] is False and owner["owner"] == "dept.water"
    assert owner["street_id"] == "street.tianshengjie"
    assert [gap["lon"] for gap in district.known_gaps] == [GAP_POINT[0]]
    assert district.locate(0.0, 0.0) is None            # far outside the district
    with pytest.raises(ValueError):
        district.locate("east", 29.8)


def test_components_lie_inside_grids(district):
    for code, comp in district.components.items():
        point = Point(comp["location"]["lon"], comp["location"]["lat"])
        grid = district.grid(comp["grid_code"])
        assert grid["geometry"].covers(point), code
        assert district.locate(point.x, point.y)["grid_code"] == comp["grid_code"]
    first = district.components["5001900101000001"]
    assert first["class_code"] == "C0101"                # 500190 01 01 000001: water manhole cover


def test_geojson_is_a_copy(district):
    fc = district.geojson()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(district.grids)
    fc["features"].clear()
    assert len(district.geojson()["features"]) == len(district.grids)
    json.dumps(district.geojson(), ensure_ascii=False)  # serialisable for the web map


# ------------------------------------------------------------------ validation and override
def _edit_json(path: Path, edit):
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def test_unknown_street_in_grid_is_rejected(broken_copy):
    def edit(fc):
        fc["features"][0]["properties"]["street_id"] = "street.nowhere"
    _edit_json(broken_copy / "grids.geojson", edit)
    with pytest.raises(ValueError) as info:
        load_district(broken_copy)
    message = str(info.value)
    assert "grids.geojson" in message and "street.nowhere" in message
    assert "500190001001001" in message
    assert isinstance(info.value, RefdataError)


def test_overlapping_grid_is_rejected(broken_copy):
    def edit(fc):
        fc["features"][1]["geometry"] = fc["features"][0]["geometry"]
    _edit_json(broken_copy / "grids.geojson", edit)
    with pytest.raises(ValueError, match="overlap"):
        load_district(broken_copy)


def test_unknown_owner_in_taxonomy_is_rejected(broken_copy):
    path = broken_copy / "taxonomy.yaml"
    text = path.read_text(encoding="utf-8")
    assert "owner: dept.water\n" in text
    path.write_text(text.replace("owner: dept.water\n", "owner: dept.waterworks\n", 1), encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_district(broken_copy)
    assert "taxonomy.yaml" in str(info.value) and "C0101" in str(info.value)
    assert "dept.waterworks" in str(info.value)


def test_bad_class_code_and_partner_are_rejected(broken_copy):
    path = broken_copy / "taxonomy.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("code: C0102\n", "code: C102\n", 1)
    text = text.replace("joint: [police]\n", "joint: [army]\n", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_district(broken_copy)
    assert "'C102'" in str(info.value)
    assert "'army'" in str(info.value) and "E0406" in str(info.value)


def test_duplicate_unit_and_component_outside_grid_are_rejected(broken_copy):
    path = broken_copy / "units.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("- id: street.beiquan\n", "- id: street.tianshengjie\n", 1),
                    encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate id"):
        load_district(broken_copy)
    shutil.copy(DEFAULT_DIR / "units.yaml", path)
    comp = broken_copy / "components.yaml"
    text = comp.read_text(encoding="utf-8")
    first_lon = re.search(r"location: \{lon: ([0-9.]+), lat: ([0-9.]+)\}", text)
    comp.write_text(text.replace(first_lon.group(0), "location: {lon: 106.396, lat: 29.8302}", 1),
                    encoding="utf-8")
    with pytest.raises(ValueError, match="lies in no grid"):
        load_district(broken_copy)


def test_refdata_dir_override(broken_copy, monkeypatch):
    path = broken_copy / "district.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("name: 嘉陵区", "name: 测试区", 1),
                    encoding="utf-8")
    monkeypatch.setenv("REFDATA_DIR", str(broken_copy))
    overridden = load_district()
    assert overridden.name == "测试区"
    assert overridden.path == broken_copy.resolve()
    assert load_district() is overridden                 # cached per folder
    monkeypatch.setenv("REFDATA_DIR", "")
    assert load_district().name == "嘉陵区"              # empty means the default
    monkeypatch.delenv("REFDATA_DIR")
    assert load_district() is load_district(DEFAULT_DIR)
    clear_cache()
    assert load_district() is not overridden


def test_missing_folder(tmp_path):
    with pytest.raises(ValueError):
        load_district(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="district.yaml: file missing"):
        load_district(tmp_path / "empty")
