"""Reference data of a district: units, taxonomy, grids, components and business calendar.

Pure: it reads files and nothing else (no network, no database).  The data lives in a folder of
human-editable YAML/GeoJSON files; the default is the fictional district shipped in
``shared/refdata/default_district`` (see its README.md).  Point ``REFDATA_DIR`` at another folder
with the same files to run the platform on another district.

    >>> from shared.refdata import load_district
    >>> district = load_district()
    >>> district.minor_class("E0302")["joint"]
    ['transport', 'police', 'environment']
    >>> district.locate(106.3904, 29.8338)["grid_code"]
    '500190001001001'

Everything is validated at load time; a problem raises :class:`RefdataError` (a ``ValueError``)
naming the file and the entry.  Loaded districts are cached per folder and shared: treat the
attributes as read-only (the accessor methods return copies).
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from shapely import STRtree
from shapely.geometry import Point, shape

from shared import geo
from shared.calendar import BusinessCalendar, valid_duration

from . import intake_data

__all__ = [
    "DEFAULT_DIR", "PARTNER_KEYS", "PARTNER_UNITS", "LEAD_UNIT", "UNIT_TYPES", "CASE_KINDS",
    "URGENCIES", "District", "RefdataError", "load_district", "clear_cache",
]

DEFAULT_DIR = Path(__file__).resolve().parent / "default_district"
FILES = ("district.yaml", "units.yaml", "taxonomy.yaml", "grids.geojson", "components.yaml",
         "calendar.yaml")

#: 城管+N partner keys, as used in taxonomy ``joint`` lists and config/departments.yaml ids.
PARTNER_KEYS = ("police", "environment", "transport", "construction", "planning", "market")
#: The unit of units.yaml that stands for each partner key.
PARTNER_UNITS = {
    "police": "dept.police",
    "environment": "dept.environment",
    "transport": "dept.transport",
    "construction": "dept.construction",
    "planning": "dept.planning",
    "market": "dept.market",
}
#: The lead unit of every joint operation (城管).
LEAD_UNIT = "dept.chengguan"
UNIT_TYPES = {"street": "street.", "town": "town.", "park": "park.", "department": "dept.",
              "operator": "op.", "leadership": "lead."}
CASE_KINDS = ("immediate", "committed", "coordination")
URGENCIES = ("normal", "urgent")
KIND_LETTERS = {"component": "C", "event": "E"}

_CLASS_CODE = re.compile(r"^[CE]\d{4}$")
_GRID_CODE = re.compile(r"^\d{15}$")
_OBJECT_CODE = re.compile(r"^\d{16}$")
_OVERLAP_TOLERANCE = 1e-12  # square degrees, about 0.01 m²


class RefdataError(ValueError):
    """Invalid reference data; the message names the file and entry of every problem."""

    def __init__(self, root: Path, problems: list[str]):
        self.root = root
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid reference data in {root} ({len(problems)} problem(s)):\n{lines}")


def _resolve_dir(path) -> Path:
    if path is None or str(path) == "":
        env = os.environ.get("REFDATA_DIR", "").strip()
        path = env or DEFAULT_DIR
    return Path(path).expanduser().resolve()


def load_district(path: str | os.PathLike | None = None) -> "District":
    """The district in ``path``, else ``$REFDATA_DIR`` when set and non-empty, else the default.

    Cached per resolved folder: call :func:`clear_cache` after editing the files in a running
    process.
    """
    return _load_cached(str(_resolve_dir(path)))


@lru_cache(maxsize=16)
def _load_cached(root: str) -> "District":
    return District(Path(root))


def clear_cache() -> None:
    """Forget every loaded district (the next :func:`load_district` re-reads the files)."""
    _load_cached.cache_clear()


def _two_digits(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:02d}"
    if isinstance(value, str) and re.fullmatch(r"\d{2}", value):
        return value
    return None


def _digits(value, n: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:0{n}d}"
    if isinstance(value, str) and re.fullmatch(rf"\d{{{n}}}", value):
        return value
    return None


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class District:
    """One district's reference data, validated.  Build it with :func:`load_district`."""

    def __init__(self, root: Path):
        self.path = Path(root)
        if not self.path.is_dir():
            raise RefdataError(self.path, [f"{self.path}: not a folder of reference data"])
        problems: list[str] = []
        raw = {name: self._read(name, problems) for name in FILES}
        if problems:
            raise RefdataError(self.path, problems)

        self._load_district(raw["district.yaml"], problems)
        self._load_units(raw["units.yaml"], problems)
        self._load_taxonomy(raw["taxonomy.yaml"], problems)
        self._load_calendar(raw["calendar.yaml"], problems)
        if problems:  # grids and components refer to the above
            raise RefdataError(self.path, problems)
        self._load_grids(raw["grids.geojson"], problems)
        if problems:
            raise RefdataError(self.path, problems)
        self._load_components(raw["components.yaml"], problems)
        self._check_known_gaps(problems)
        if problems:
            raise RefdataError(self.path, problems)
        self._load_intake_files(problems)
        if problems:
            raise RefdataError(self.path, problems)

    def __repr__(self) -> str:
        return (f"<District {self.code} {self.name}: {len(self.units)} units, "
                f"{len(self.taxonomy)} classes, {len(self.grids)} grids, "
                f"{len(self.components)} components>")

    # ================================================================== reading
    def _read(self, name: str, problems: list[str]):
        file = self.path / name
        if not file.is_file():
            problems.append(f"{name}: file missing")
            return None
        try:
            text = file.read_text(encoding="utf-8")
            data = json.loads(text) if name.endswith(".geojson") else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems.append(f"{name}: cannot be parsed: {exc}")
            return None
        if not isinstance(data, dict):
            problems.append(f"{name}: the top level must be a mapping")
            return None
        return data

    # ================================================================== district.yaml
    def _load_district(self, data: dict, problems: list[str]) -> None:
        where = "district.yaml"
        self.info = data
        self.code = _digits(data.get("code"), 6)
        if self.code is None:
            problems.append(f"{where}: code {data.get('code')!r} must be 6 digits (quote it: \"500190\")")
            self.code = "000000"
        self.name = data.get("name")
        if not _text(self.name):
            problems.append(f"{where}: name is missing")
        self.timezone = data.get("timezone", "Asia/Shanghai")
        try:
            ZoneInfo(str(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"{where}: unknown timezone {self.timezone!r}")
        centre = ((data.get("map") or {}).get("center")) or {}
        if not (_number(centre.get("lon")) and _number(centre.get("lat"))):
            problems.append(f"{where}: map.center needs numeric lon and lat")
            self.center = (0.0, 0.0)
        else:
            self.center = (float(centre["lon"]), float(centre["lat"]))
        self.known_gaps = []
        for index, gap in enumerate(data.get("known_gaps") or []):
            if not (isinstance(gap, dict) and _number(gap.get("lon")) and _number(gap.get("lat"))):
                problems.append(f"{where}: known_gaps[{index}] needs numeric lon and lat")
                continue
            self.known_gaps.append(dict(gap))

    # ================================================================== units.yaml
    def _load_units(self, data: dict, problems: list[str]) -> None:
        where = "units.yaml"
        self.units: dict[str, dict] = {}
        street_codes: dict[str, str] = {}
        items = data.get("units")
        if not isinstance(items, list) or not items:
            problems.append(f"{where}: 'units' must be a non-empty list")
            return
        for index, unit in enumerate(items):
            label = f"{where}: units[{index}]"
            if not isinstance(unit, dict):
                problems.append(f"{label}: must be a mapping")
                continue
            uid = unit.get("id")
            if not _text(uid):
                problems.append(f"{label}: id is missing")
                continue
            label = f"{where}: unit {uid!r}"
            if uid in self.units:
                problems.append(f"{label}: duplicate id")
                continue
            kind = unit.get("type")
            if kind not in UNIT_TYPES:
                problems.append(f"{label}: type {kind!r} is not one of {', '.join(UNIT_TYPES)}")
            elif not uid.startswith(UNIT_TYPES[kind]):
                problems.append(f"{label}: a {kind} id must start with {UNIT_TYPES[kind]!r}")
            if not _text(unit.get("name")):
                problems.append(f"{label}: name is missing")
            if kind in ("street", "town"):
                code = _digits(unit.get("code"), 3)
                if code is None:
                    problems.append(f"{label}: a street/town needs a 3-digit code (quoted), got "
                                    f"{unit.get('code')!r}")
                elif code in street_codes:
                    problems.append(f"{label}: street code {code} is also used by {street_codes[code]!r}")
                else:
                    street_codes[code] = uid
                    unit = dict(unit, code=code)
            contacts = unit.get("contacts", [])
            if not isinstance(contacts, list):
                problems.append(f"{label}: contacts must be a list")
            else:
                for cindex, contact in enumerate(contacts):
                    if not (isinstance(contact, dict) and _text(contact.get("name"))
                            and _text(contact.get("role")) and _text(str(contact.get("phone") or ""))):
                        problems.append(f"{label}: contacts[{cindex}] needs name, role and phone")
                    elif not isinstance(contact.get("phone"), str):
                        problems.append(f"{label}: contacts[{cindex}].phone must be quoted text")
            self.units[uid] = unit
        self._street_codes = street_codes

    # ================================================================== taxonomy.yaml
    def _load_taxonomy(self, data: dict, problems: list[str]) -> None:
        where = "taxonomy.yaml"
        self.taxonomy: dict[str, dict] = {}
        self.majors: dict[str, dict] = {}
        kinds = data.get("kinds")
        if not isinstance(kinds, dict) or not kinds:
            problems.append(f"{where}: 'kinds' must map component/event to their classes")
            return
        for kind, body in kinds.items():
            if kind not in KIND_LETTERS:
                problems.append(f"{where}: unknown kind {kind!r} (component or event)")
                continue
            letter = KIND_LETTERS[kind]
            if not isinstance(body, dict) or body.get("letter", letter) != letter:
                problems.append(f"{where}: kind {kind}: letter must be {letter!r}")
                continue
            for mindex, major in enumerate(body.get("majors") or []):
                mcode = _two_digits(major.get("code") if isinstance(major, dict) else None)
                if mcode is None:
                    problems.append(f"{where}: {kind} majors[{mindex}]: code must be 2 digits (quoted)")
                    continue
                mkey = letter + mcode
                if mkey in self.majors:
                    problems.append(f"{where}: {kind} major {mcode}: duplicate major class")
                    continue
                if not _text(major.get("name")):
                    problems.append(f"{where}: {kind} major {mcode}: name is missing")
                self.majors[mkey] = {"kind": kind, "code": mcode, "name": major.get("name"),
                                     "classes": []}
                for nindex, minor in enumerate(major.get("minors") or []):
                    code = self._load_minor(kind, letter, mcode, major.get("name"), nindex, minor,
                                            problems)
                    if code:
                        self.majors[mkey]["classes"].append(code)

    def _load_minor(self, kind, letter, mcode, mname, index, minor, problems) -> str | None:
        where = "taxonomy.yaml"
        if not isinstance(minor, dict):
            problems.append(f"{where}: {kind} major {mcode} minors[{index}]: must be a mapping")
            return
        code = minor.get("code")
        if not (isinstance(code, str) and _CLASS_CODE.match(code)):
            problems.append(f"{where}: {kind} major {mcode} minors[{index}]: code {code!r} must look "
                            f"like {letter}{mcode}01 (kind letter + major + minor)")
            return
        label = f"{where}: class {code}"
        ok = True
        if code[0] != letter or code[1:3] != mcode:
            problems.append(f"{label}: code must start with {letter}{mcode} (it is listed under "
                            f"{kind} major {mcode})")
            ok = False
        if code in self.taxonomy:
            problems.append(f"{label}: duplicate class code")
            return
        for field in ("name", "filing_standard", "closing_standard"):
            if not _text(minor.get(field)):
                problems.append(f"{label}: {field} is missing")
                ok = False
        deadline = minor.get("deadline")
        if not isinstance(deadline, dict) or any(u not in deadline for u in URGENCIES):
            problems.append(f"{label}: deadline needs {' and '.join(URGENCIES)} (e.g. {{normal: 4h, "
                            f"urgent: 1h}})")
            ok = False
        else:
            for urgency, value in deadline.items():
                if not self._good_duration(value):
                    problems.append(f"{label}: deadline.{urgency} {value!r} is not a working-time "
                                    f"duration like 4h, 30m or 20d")
                    ok = False
        stages = minor.get("stages", [])
        if not isinstance(stages, list):
            problems.append(f"{label}: stages must be a list")
            ok = False
        else:
            for sindex, stage in enumerate(stages):
                if not (isinstance(stage, dict) and _text(stage.get("name"))
                        and self._good_duration(stage.get("deadline"))):
                    problems.append(f"{label}: stages[{sindex}] needs a name and a deadline like 4h")
                    ok = False
        if minor.get("case_kind") not in CASE_KINDS:
            problems.append(f"{label}: case_kind {minor.get('case_kind')!r} is not one of "
                            f"{', '.join(CASE_KINDS)}")
            ok = False
        owner = minor.get("owner")
        if owner != "street" and owner not in self.units:
            problems.append(f"{label}: owner {owner!r} is neither 'street' nor a unit id of units.yaml")
            ok = False
        joint = minor.get("joint", [])
        if joint is None:
            joint = []
        if not isinstance(joint, list):
            problems.append(f"{label}: joint must be a list of partner keys")
            ok = False
        else:
            for key in joint:
                if key not in PARTNER_KEYS:
                    problems.append(f"{label}: joint partner {key!r} is not one of "
                                    f"{', '.join(PARTNER_KEYS)}")
                    ok = False
                elif PARTNER_UNITS[key] not in self.units:
                    problems.append(f"{label}: joint partner {key!r} needs unit "
                                    f"{PARTNER_UNITS[key]!r} in units.yaml")
                    ok = False
            if len(set(joint)) != len(joint):
                problems.append(f"{label}: joint lists a partner twice")
                ok = False
            if joint and LEAD_UNIT not in self.units:
                problems.append(f"{label}: joint enforcement needs the lead unit {LEAD_UNIT!r}")
                ok = False
        eligible = minor.get("minor_violation_eligible", False)
        if not isinstance(eligible, bool):
            problems.append(f"{label}: minor_violation_eligible must be true or false")
            ok = False
        attributes, filing_mode = intake_data.check_class_attributes(code, minor, problems)
        if not ok:
            return None
        entry = dict(minor)
        entry["attributes"] = attributes
        entry["filing_mode"] = filing_mode
        entry.update({
            "kind": kind,
            "kind_name": "部件" if kind == "component" else "事件",
            "major_code": mcode,
            "major_name": mname,
            "minor_code": code[3:5],
            "deadline": dict(deadline),
            "stages": [dict(stage) for stage in stages],
            "joint": list(joint),
            "minor_violation_eligible": eligible,
        })
        self.taxonomy[code] = entry
        return code

    _good_duration = staticmethod(valid_duration)

    # ================================================================== calendar.yaml
    def _load_calendar(self, data: dict, problems: list[str]) -> None:
        try:
            self.calendar = BusinessCalendar.from_mapping(data)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"calendar.yaml: {exc}")
            self.calendar = None
            return
        if self.calendar.timezone_name != self.timezone:
            problems.append(f"calendar.yaml: timezone {self.calendar.timezone_name!r} differs from "
                            f"district.yaml's {self.timezone!r}")

    # ================================================================== grids.geojson
    def _load_grids(self, data: dict, problems: list[str]) -> None:
        where = "grids.geojson"
        self._geojson = data
        self.grids: list[dict] = []
        self._grid_by_code: dict[str, dict] = {}
        if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
            problems.append(f"{where}: must be a GeoJSON FeatureCollection")
            return
        communities: dict[tuple[str, str], str] = {}
        for index, feature in enumerate(data["features"]):
            props = (feature or {}).get("properties") or {}
            code = props.get("code")
            label = f"{where}: feature[{index}]" + (f" grid {code}" if code else "")
            if not (isinstance(code, str) and _GRID_CODE.match(code)):
                problems.append(f"{label}: code {code!r} must be 15 digits (district 6 + street 3 + "
                                f"community 3 + grid 3)")
                continue
            if code in self._grid_by_code:
                problems.append(f"{label}: duplicate grid code")
                continue
            bad = len(problems)
            if not code.startswith(self.code):
                problems.append(f"{label}: code must start with the district code {self.code}")
            street_id = props.get("street_id")
            unit = self.units.get(street_id)
            if unit is None or unit.get("type") not in ("street", "town"):
                problems.append(f"{label}: street_id {street_id!r} is not a street or town of units.yaml")
            else:
                if props.get("street_code") != unit.get("code"):
                    problems.append(f"{label}: street_code {props.get('street_code')!r} differs from "
                                    f"{street_id}'s code {unit.get('code')!r}")
                if code[6:9] != unit.get("code"):
                    problems.append(f"{label}: digits 7-9 of the code must be {street_id}'s code "
                                    f"{unit.get('code')!r}")
            if props.get("community_code") != code[9:12]:
                problems.append(f"{label}: community_code {props.get('community_code')!r} must equal "
                                f"digits 10-12 of the code ({code[9:12]})")
            for field in ("name", "community_name"):
                if not _text(props.get(field)):
                    problems.append(f"{label}: {field} is missing")
            key = (code[6:9], code[9:12])
            if key in communities and communities[key] != props.get("community_name"):
                problems.append(f"{label}: community {key[1]} of street {key[0]} is named both "
                                f"{communities[key]!r} and {props.get('community_name')!r}")
            communities.setdefault(key, props.get("community_name"))
            responsible = props.get("responsible")
            if not isinstance(responsible, dict):
                problems.append(f"{label}: responsible must be a mapping (street, community_liaison, "
                                f"grid_inspector, double_chief)")
            elif responsible.get("street") != street_id:
                problems.append(f"{label}: responsible.street {responsible.get('street')!r} differs from "
                                f"street_id {street_id!r}")
            geometry = None
            try:
                gtype = (feature.get("geometry") or {}).get("type")
                if gtype not in ("Polygon", "MultiPolygon"):
                    raise ValueError(f"geometry type {gtype!r} is not Polygon or MultiPolygon")
                geometry = shape(feature["geometry"])
                if geometry.is_empty or not geometry.is_valid:
                    raise ValueError("geometry is empty or invalid (self-intersecting ring?)")
            except Exception as exc:  # shapely raises several types for broken coordinates
                problems.append(f"{label}: {exc}")
            if len(problems) != bad:
                continue
            grid = dict(props)
            grid["geometry"] = geometry
            self.grids.append(grid)
            self._grid_by_code[code] = grid
        if problems:
            return
        self.grids.sort(key=lambda grid: grid["code"])
        self._geoms = [grid["geometry"] for grid in self.grids]
        self._tree = STRtree(self._geoms)
        for index, geom in enumerate(self._geoms):
            for other in self._tree.query(geom, predicate="intersects"):
                if other <= index:
                    continue
                area = geom.intersection(self._geoms[other]).area
                if area > _OVERLAP_TOLERANCE:
                    problems.append(f"{where}: grids {self.grids[index]['code']} and "
                                    f"{self.grids[other]['code']} overlap ({area:.3g} square degrees)")

    # ================================================================== components.yaml
    def _load_components(self, data: dict, problems: list[str]) -> None:
        where = "components.yaml"
        self.components: dict[str, dict] = {}
        items = data.get("components") or []
        if not isinstance(items, list):
            problems.append(f"{where}: 'components' must be a list")
            return
        for index, item in enumerate(items):
            code = item.get("object_code") if isinstance(item, dict) else None
            label = f"{where}: components[{index}]" + (f" {code}" if code else "")
            if not (isinstance(code, str) and _OBJECT_CODE.match(code)):
                problems.append(f"{label}: object_code {code!r} must be 16 digits (district 6 + major 2 "
                                f"+ minor 2 + sequence 6), quoted")
                continue
            if code in self.components:
                problems.append(f"{label}: duplicate object_code")
                continue
            bad = len(problems)
            class_code = item.get("class_code")
            cls = self.taxonomy.get(class_code)
            if cls is None or cls["kind"] != "component":
                problems.append(f"{label}: class_code {class_code!r} is not a component class of "
                                f"taxonomy.yaml")
            elif code[:6] != self.code or code[6:10] != class_code[1:5]:
                problems.append(f"{label}: object_code must start with {self.code}{class_code[1:5]} "
                                f"(district + major + minor of {class_code})")
            if not _text(item.get("name")):
                problems.append(f"{label}: name is missing")
            owner = item.get("owner")
            if owner not in self.units:
                problems.append(f"{label}: owner {owner!r} is not a unit id of units.yaml")
            location = item.get("location") or {}
            where_in = None
            if not (_number(location.get("lon")) and _number(location.get("lat"))):
                problems.append(f"{label}: location needs numeric lon and lat")
            else:
                where_in = self.locate(location["lon"], location["lat"])
                if where_in is None:
                    problems.append(f"{label}: location {location['lon']}, {location['lat']} lies in "
                                    f"no grid")
            if len(problems) != bad:
                continue
            component = dict(item)
            component["location"] = {"lon": float(location["lon"]), "lat": float(location["lat"])}
            component["grid_code"] = where_in["grid_code"]
            component["street_id"] = where_in["street_id"]
            self.components[code] = component

    def _check_known_gaps(self, problems: list[str]) -> None:
        for gap in self.known_gaps:
            hit = self.locate(gap["lon"], gap["lat"])
            if hit is not None:
                problems.append(f"district.yaml: known gap {gap.get('name', '')!r} at {gap['lon']}, "
                                f"{gap['lat']} lies in grid {hit['grid_code']}; remove it from known_gaps")

    # ================================================================== intake files
    def _read_optional(self, name: str, problems: list[str]):
        if not (self.path / name).is_file():
            return None
        return self._read(name, problems)

    def _load_intake_files(self, problems: list[str]) -> None:
        """intake.yaml (policy), sensors.yaml, places.yaml: optional; see intake_data."""
        policy_raw = self._read_optional("intake.yaml", problems)
        sensors_raw = self._read_optional("sensors.yaml", problems)
        places_raw = self._read_optional("places.yaml", problems)
        if problems:
            return
        self.intake_policy = intake_data.load_policy(policy_raw, self.units, self.taxonomy, problems)
        self.sensors = intake_data.load_sensors(sensors_raw, self.intake_policy, self.locate, problems)
        self.places = intake_data.load_places(places_raw, problems)
        self.grid_map = intake_data.GridMap(self.grids, self.units, self.places)

    def policy(self) -> dict:
        """A copy of the intake policy (intake.yaml merged over the defaults)."""
        return copy.deepcopy(self.intake_policy)

    def sensor(self, sensor_id: str) -> dict:
        """A copy of the registered sensor ``sensor_id`` (KeyError when unknown)."""
        try:
            return copy.deepcopy(self.sensors[sensor_id])
        except KeyError:
            raise KeyError(f"unknown sensor {sensor_id!r}") from None

    def sensor_rule(self, metric: str) -> dict | None:
        for rule in self.intake_policy["sensor_rules"]:
            if rule["metric"] == metric:
                return copy.deepcopy(rule)
        return None

    def gap_place(self, lon, lat) -> dict:
        """For a point in no grid: its place (the enclosed 盲区 it lies in, or a disc at the
        edge of the grid map), as ``{place_id, kind, geometry}`` (GeoJSON)."""
        point = self._point(lon, lat)
        radius = self.intake_policy["location"]["edge_place_radius_m"]
        return self.grid_map.gap_place(point.x, point.y, radius)

    def geocode(self, text: str) -> dict | None:
        """An approximate point for a written address (Open311 ``address_string``)."""
        return self.grid_map.geocode(text)

    # ================================================================== taxonomy API
    def minor_class(self, code: str) -> dict:
        """A copy of the minor class ``code`` (KeyError when unknown)."""
        try:
            return copy.deepcopy(self.taxonomy[code])
        except KeyError:
            raise KeyError(f"unknown class code {code!r}") from None

    def classes(self, kind: str | None = None) -> list[dict]:
        """All minor classes (copies), ordered by code; ``kind`` = component | event to filter."""
        return [copy.deepcopy(entry) for code, entry in sorted(self.taxonomy.items())
                if kind is None or entry["kind"] == kind]

    def joint_partners(self, class_code: str) -> list[str]:
        """The 城管+N partner keys of a class ([] for most; KeyError when the class is unknown)."""
        return list(self._class(class_code)["joint"])

    def deadline(self, class_code: str, urgency: str = "normal") -> str:
        """The 处置时限 of a class for an urgency, e.g. ``"4h"``."""
        if urgency not in URGENCIES:
            raise ValueError(f"urgency {urgency!r} is not one of {', '.join(URGENCIES)}")
        return self._class(class_code)["deadline"][urgency]

    def deadline_at(self, class_code: str, start, urgency: str = "normal"):
        """The deadline (aware UTC datetime) of a case of this class dispatched at ``start``."""
        return self.calendar.add_working_time(start, self.deadline(class_code, urgency))

    def _class(self, class_code: str) -> dict:
        try:
            return self.taxonomy[class_code]
        except KeyError:
            raise KeyError(f"unknown class code {class_code!r}") from None

    # ================================================================== units API
    def unit(self, unit_id: str) -> dict:
        """A copy of the unit ``unit_id`` (KeyError when unknown)."""
        try:
            return copy.deepcopy(self.units[unit_id])
        except KeyError:
            raise KeyError(f"unknown unit id {unit_id!r}") from None

    def units_of_type(self, kind: str) -> list[dict]:
        """Copies of the units of one type (street, town, park, department, operator, leadership)."""
        return [copy.deepcopy(unit) for uid, unit in sorted(self.units.items())
                if unit.get("type") == kind]

    def streets(self) -> list[dict]:
        """The streets and towns (街镇), as copies, ordered by street code."""
        found = [unit for unit in self.units.values() if unit.get("type") in ("street", "town")]
        return [copy.deepcopy(unit) for unit in sorted(found, key=lambda unit: unit["code"])]

    def partner_unit(self, key: str) -> str:
        """The unit id of a 城管+N partner key, e.g. ``police`` → ``dept.police``."""
        if key not in PARTNER_UNITS:
            raise KeyError(f"unknown partner key {key!r}")
        return PARTNER_UNITS[key]

    # ================================================================== spatial API
    def grid(self, code: str) -> dict:
        """The grid ``code`` (properties and shapely ``geometry``; KeyError when unknown)."""
        try:
            return self._grid_by_code[code]
        except KeyError:
            raise KeyError(f"unknown grid code {code!r}") from None

    @staticmethod
    def _point(lon, lat) -> Point:
        try:
            lon, lat = float(lon), float(lat)
        except (TypeError, ValueError):
            raise ValueError(f"lon/lat must be numbers, got {lon!r}, {lat!r}") from None
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError(f"lon/lat must be finite, got {lon!r}, {lat!r}")
        return Point(lon, lat)

    @staticmethod
    def _located(grid: dict) -> dict:
        return {
            "grid_code": grid["code"],
            "grid_name": grid["name"],
            "community_code": grid["community_code"],
            "community_name": grid["community_name"],
            "street_id": grid["street_id"],
            "street_code": grid["street_code"],
            "responsible": copy.deepcopy(grid.get("responsible") or {}),
        }

    def locate(self, lon, lat) -> dict | None:
        """The unit grid covering the point, or None in a gap (盲区) or outside the district.

        Returns ``{grid_code, grid_name, community_code, community_name, street_id, street_code,
        responsible}``.  A point on a border shared by several grids resolves to the one with the
        smallest code.
        """
        point = self._point(lon, lat)
        hits = self._tree.query(point, predicate="covered_by")
        if len(hits) == 0:
            return None
        return self._located(self.grids[int(min(hits))])  # grids are sorted by code

    def nearest_grid(self, lon, lat) -> dict:
        """The grid covering the point or, in a gap, the nearest grid (ties: smallest code).

        Same keys as :meth:`locate`, plus ``distance_m`` (approximate metres; 0 inside a grid).
        """
        point = self._point(lon, lat)
        hits = self._tree.query(point, predicate="covered_by")
        if len(hits):
            found = self._located(self.grids[int(min(hits))])
            found["distance_m"] = 0.0
            return found
        indices = self._tree.query_nearest(point, all_matches=True)
        index = int(min(indices))
        found = self._located(self.grids[index])
        found["distance_m"] = round(geo.distance_to_m(point.x, point.y, self._geoms[index]), 1)
        return found

    def nearest_street(self, lon, lat) -> str:
        """The street/town id of the covering or nearest grid (属地兜底 for points in a gap)."""
        return self.nearest_grid(lon, lat)["street_id"]

    def resolve_owner(self, class_code: str, lon, lat) -> dict:
        """Point → grid → street → owner, with the 属地兜底 fallback for gaps.

        Returns ``{owner, class_code, grid (locate() result or None), street_id, gap}``: ``owner`` is
        the grid's street for ``owner: street`` classes and the class's unit otherwise; in a gap
        (``gap`` True) the street is the nearest one, so the clock can start while the ownership
        dispute is settled.
        """
        cls = self._class(class_code)
        located = self.locate(lon, lat)
        street_id = located["street_id"] if located else self.nearest_street(lon, lat)
        owner = street_id if cls["owner"] == "street" else cls["owner"]
        return {"owner": owner, "class_code": class_code, "grid": located,
                "street_id": street_id, "gap": located is None}

    def geojson(self) -> dict:
        """A copy of the grids FeatureCollection, as read from grids.geojson (for the web map)."""
        return copy.deepcopy(self._geojson)
