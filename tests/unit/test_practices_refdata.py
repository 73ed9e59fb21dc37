"""双街长/双路长, 社区城管联络员 and the three service levels in the reference data
(shared/refdata/practices.py), and the dispatch notifications that reach them (services/dispatch/stretch.py)."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from services.dispatch import rules
from services.dispatch.routing import load_settings
from shared.refdata import DEFAULT_DIR, RefdataError, load_district

DISTRICT = load_district()
TIANSHENG_GRID = "500190001001001"          # 天生路社区第1网格: 天生路 and 庐山路 run through it


def test_every_street_and_town_has_two_chiefs_one_of_each_side():
    streets = [uid for uid, u in DISTRICT.units.items() if u["type"] in ("street", "town")]
    assert len(streets) == 17
    for street_id in streets:
        chiefs = DISTRICT.street_chiefs(street_id)
        assert sorted(c["side"] for c in chiefs) == ["chengguan", "street"], street_id
        assert all(c["name"] and c["phone"] for c in chiefs)


def test_a_grid_answers_with_its_street_chiefs_road_chiefs_and_liaison():
    people = DISTRICT.stretch_people(TIANSHENG_GRID)
    assert [c["name"] for c in people["street_chiefs"]] == ["袁欣国", "万子豪"]
    assert {r["road"]: [c["name"] for c in r["chiefs"]] for r in people["road_chiefs"]} == {
        "天生路": ["万天欣", "夏欣"], "庐山路": ["张晓", "余建"]}
    assert [p["name"] for p in people["liaisons"]] == ["金建"]
    assert DISTRICT.stretch_people(None) == {"street_chiefs": [], "road_chiefs": [], "liaisons": []}


def test_the_responsibility_map_carries_chiefs_and_liaisons_without_phones():
    feature = next(f for f in DISTRICT.geojson()["features"] if f["properties"]["code"] == TIANSHENG_GRID)
    responsible = feature["properties"]["responsible"]
    assert [c["name"] for c in responsible["street_chiefs"]] == ["袁欣国", "万子豪"]
    assert responsible["road_chiefs"][0] == {"road": "天生路", "chiefs": [
        {"name": "万天欣", "role": "区城管局机关（路长）", "side_name": "区城管局"},
        {"name": "夏欣", "role": "天生街道负责人（路长）", "side_name": "街道（属地）"}]}
    assert responsible["liaisons"] == [{"name": "金建", "role": "社区城管联络员"}]
    assert "phone" not in str(responsible)
    assert DISTRICT.locate(106.3904, 29.8338)["responsible"]["liaisons"] == [{"name": "金建", "role": "社区城管联络员"}]


def test_the_unit_tree_has_three_service_levels():
    tree = DISTRICT.unit_tree()
    assert (tree["level"], tree["level_name"]) == ("district", "区级")
    assert {"dept.chengguan", "lead.group"} <= {u["id"] for u in tree["units"]}
    assert len(tree["towns"]) == 17 and all(t["level"] == "town" for t in tree["towns"])
    tiansheng = next(t for t in tree["towns"] if t["id"] == "street.tianshengjie")
    assert [(c["level_name"], c["name"], [p["name"] for p in c["liaisons"]]) for c in tiansheng["communities"]] == [
        ("社区级", "天生路社区", ["金建"]), ("社区级", "西师街社区", ["郝杰俊"])]
    assert sum(len(c["grids"]) for t in tree["towns"] for c in t["communities"]) == len(DISTRICT.grids)
    assert DISTRICT.level_of("street.tianshengjie") == "town" and DISTRICT.level_of("dept.water") == "district"


def test_every_chief_has_a_stretch_of_grids():
    stretches = {s["key"]: s for s in DISTRICT.chief_stretches()}
    tiansheng = stretches["street:street.tianshengjie:street"]
    assert tiansheng["name"] == "袁欣国" and tiansheng["grids"] == ["500190001001001", "500190001001002",
                                                                  "500190001002001"]
    assert stretches["road:天生路:chengguan"]["grids"] == ["500190001001001", "500190001001002"]


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "district"
    shutil.copytree(DEFAULT_DIR, folder)
    return folder


def _edit(folder: Path, change) -> None:
    file = folder / "practices.yaml"
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    change(data)
    file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_a_street_with_two_chiefs_of_the_same_side_is_refused(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, lambda d: d["street_chiefs"]["street.beiquan"][1].update(side="street"))
    with pytest.raises(RefdataError, match=r"street_chiefs.street.beiquan: needs exactly two chiefs"):
        load_district(folder)


def test_a_road_through_an_unknown_grid_is_refused(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, lambda d: d["roads"][0].update(grids=["500190999001001"]))
    with pytest.raises(RefdataError, match=r"roads\[0\] 天生路: grids must list grid codes"):
        load_district(folder)


def test_a_liaison_the_grids_do_not_name_is_refused(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, lambda d: d["communities"][0].update(
        liaisons=[{"id": "lsn-x", "name": "别人", "role": "社区城管联络员", "phone": "1"}]))
    with pytest.raises(RefdataError, match="names community_liaison '金建', who is not a liaison of 天生路社区"):
        load_district(folder)


def test_a_district_without_practices_file_loads_with_none(tmp_path):
    folder = _copy(tmp_path)
    (folder / "practices.yaml").unlink()
    district = load_district(folder)
    assert district.stretch_people(TIANSHENG_GRID) == {"street_chiefs": [], "road_chiefs": [], "liaisons": []}


# ------------------------------------------------------------------ dispatch: who hears of the case
def _new_case(grid_code, street_id, lon, lat):
    minor = DISTRICT.minor_class("E0101")
    case = {"case_id": "C9", "report_id": "r9", "channel": "web", "class_code": "E0101",
            "class_name": minor["name"], "class_kind": "event", "urgency": "normal",
            "location": {"lon": lon, "lat": lat}, "address": "天生路18号", "grid_code": grid_code,
            "street_id": street_id, "owner_unit": street_id, "joint_partners": [], "description": "",
            "registered_at": datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)}
    ctx = rules.Context(datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc), DISTRICT,
                        load_settings(district=DISTRICT))
    return rules.new_case(case, ctx)


def test_the_first_dispatch_tells_the_double_chiefs_and_the_liaison():
    _, change = _new_case(TIANSHENG_GRID, "street.tianshengjie", 106.3904, 29.8338)
    notes = {note["kind"]: note for note in change.notes}
    assert set(notes) == {"dispatch", "double_chief", "liaison"}
    assert [p["name"] for p in notes["double_chief"]["recipients"]] == ["袁欣国", "万子豪", "万天欣", "夏欣",
                                                                       "张晓", "余建"]
    assert notes["double_chief"]["message"].startswith("【大城管·双长制】天生路、庐山路街长/路长：案件 C9（暴露垃圾")
    assert notes["liaison"]["recipients"] == [{"name": "金建", "role": "社区城管联络员", "phone": "13841010000"}]
    assert "已派遣天生街道处置" in notes["liaison"]["message"]


def test_a_case_in_no_grid_tells_no_chief():
    _, change = _new_case(None, "street.dongyang", 106.3960, 29.8302)
    assert [note["kind"] for note in change.notes] == ["dispatch"]


def test_a_liaison_is_found_by_community_and_person_id():
    assert DISTRICT.liaison("500190001001", "lsn-500190001001-1")["name"] == "金建"
    assert DISTRICT.liaison("500190001002", "lsn-500190001001-1") is None      # another community's
    assert DISTRICT.liaison("500190001001", "key:abc") is None


def test_a_road_chief_the_map_label_does_not_name_is_refused(tmp_path):
    folder = _copy(tmp_path)
    _edit(folder, lambda d: d["roads"][0]["chiefs"][0].update(name="别人"))
    with pytest.raises(RefdataError, match="double_chief .* does not name 别人, the 双路长 of 天生路"):
        load_district(folder)
