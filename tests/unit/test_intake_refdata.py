"""The reference data intake reads beyond the base files: typed attributes with measurable
filing standards, the intake policy, sensors, the gazetteer and the 盲区 places — all editable
without code, all validated at load time with the file and entry named."""
import shutil
from pathlib import Path

import pytest

from shared.refdata import DEFAULT_DIR, load_district

ATTRIBUTED = {"C0101", "C0102", "C0108", "C0205", "C0402", "E0101", "E0102", "E0103", "E0104", "E0201",
              "E0301", "E0303", "E0306", "E0404", "E0505", "E0501", "E0502", "E0504"}


@pytest.fixture(scope="module")
def district():
    return load_district(DEFAULT_DIR)


@pytest.fixture
def copy(tmp_path) -> Path:
    target = tmp_path / "district"
    shutil.copytree(DEFAULT_DIR, target)
    return target


def test_attributes_and_measurable_standards(district):
    with_attributes = {code for code, cls in district.taxonomy.items() if cls["attributes"]}
    assert with_attributes == ATTRIBUTED
    datatypes = {a["datatype"] for cls in district.taxonomy.values() for a in cls["attributes"]}
    assert datatypes == {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
    garbage = district.minor_class("E0101")
    assert garbage["filing_mode"] == "any"
    assert [(a["code"], a["files_if"]) for a in garbage["attributes"]] == [("area_m2", {"gt": 0.5}),
                                                                          ("bags", {"gt": 3})]
    lamp = district.minor_class("C0108")["attributes"][0]
    assert lamp["values"][0] == {"key": "off", "name": "不亮"}          # quoted: YAML would read off as false
    assert district.minor_class("C0101")["attributes"][0]["required"] is True
    assert all(cls["filing_mode"] in ("any", "all") for cls in district.taxonomy.values())


def test_policy_sensors_places(district):
    policy = district.policy()
    assert policy["duplicates"] == {"radius_m": 50, "open_case_window_days": 30, "reopen_within_days": 7}
    assert [level["level"] for level in policy["ownership"]["levels"]] == \
        ["community", "street", "department", "leadership"]
    assert [level["deadline"] for level in policy["ownership"]["levels"]] == ["1d", "2d", "3d", "5d"]
    assert {rule["metric"]: rule["class_code"] for rule in policy["sensor_rules"]} == \
        {"pm10": "E0301", "noise_db": "E0306"}
    assert len(district.sensors) == 5 and district.sensor("dust-tsl-001")["metric"] == "pm10"
    with pytest.raises(KeyError):
        district.sensor("nobody")
    assert district.geocode("重庆市嘉陵区天生路18号")["name"] == "天生路"
    assert district.geocode("天生路社区第1网格旁")["name"] == "天生路社区第1网格"     # the longest name wins
    assert district.geocode("北泉街道某处")["source"] == "street street.beiquan"
    assert district.geocode("火星") is None and district.geocode("") is None


def test_gap_places(district):
    hole = district.gap_place(106.3960, 29.8302)
    assert hole["kind"] == "enclosed_gap" and hole["geometry"]["type"] == "Polygon"
    assert district.gap_place(106.3990, 29.8305)["place_id"] == hole["place_id"]
    edge = district.gap_place(106.3840, 29.8200)
    assert edge["kind"] == "edge" and edge["place_id"].startswith("edge-")


def _replace(path: Path, old: str, new: str):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize("file,old,new,expected", [
    ("taxonomy.yaml", "datatype: number\n", "datatype: integer\n", "datatype 'integer'"),
    ("taxonomy.yaml", "files_if: {gt: 0.5}", "files_if: {in: [a]}", "files_if for a number"),
    ("taxonomy.yaml", "files_if: {in: [missing, broken, displaced, height_gap]}",
     "files_if: {in: [missing, gone]}", "files_if.in must list keys"),
    ("taxonomy.yaml", "files_if: {local_time_between: [\"22:00\", \"06:00\"]}",
     "files_if: {local_time_between: [\"25:00\", \"06:00\"]}", "local_time_between"),
    ("intake.yaml", "radius_m: 50", "radius_m: -5", "duplicates.radius_m must be a number"),
    ("intake.yaml", "{level: street, name: 街镇协调（属地街镇召集）, deadline: 2d}",
     "{level: town, name: x, deadline: 2d}", "ownership.levels must list"),
    ("intake.yaml", "deadline: 3d, arbiter: dept.chengguan", "deadline: soon, arbiter: dept.nobody",
     "arbiter 'dept.nobody'"),
    ("intake.yaml", "class_code: E0301", "class_code: E9999", "class_code 'E9999'"),
    ("sensors.yaml", "location: {lon: 106.3915, lat: 29.8340}", "location: {lon: 106.3960, lat: 29.8302}",
     "lies in no grid"),
    ("sensors.yaml", "metric: noise_db", "metric: radiation", "no rule"),
    ("places.yaml", "{name: 天生路, kind: road, location: {lon: 106.3904, lat: 29.8338}}",
     "{name: 天生路, kind: road, location: {lon: east}}", "location needs numeric"),
])
def test_mistakes_name_the_file_and_entry(copy, file, old, new, expected):
    _replace(copy / file, old, new)
    with pytest.raises(ValueError) as info:
        load_district(copy)
    assert file in str(info.value) and expected in str(info.value)


def test_the_intake_files_are_optional(copy):
    for name in ("intake.yaml", "sensors.yaml", "places.yaml"):
        (copy / name).unlink()
    district = load_district(copy)
    assert district.policy()["duplicates"]["radius_m"] == 50 and district.policy()["sensor_rules"] == []
    assert district.sensors == {} and district.geocode("天生路社区") is not None
