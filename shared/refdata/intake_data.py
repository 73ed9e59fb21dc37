"""The parts of a district's reference data that intake reads, beyond the base files.

Pure: it reads files and nothing else.  Four things, each editable without code changes:

* ``taxonomy.yaml`` → per minor class, optional ``attributes`` (Open311 typed attributes, each
  optionally with ``files_if``: the measurable part of the class's 立案标准) and ``filing_mode``
  (``any``: one met condition is enough; ``all``: every given one must be met);
* ``intake.yaml``  → intake policy: duplicate radius and windows, reopen window, the four levels
  of ownership arbitration (争议确权) with their deadlines, outside-district tolerance,
  inspector photo rule, report age limit, and the sensor rules (PM10 over a threshold …);
* ``sensors.yaml`` → registered IoT sensors (id, metric, site, position);
* ``places.yaml``  → a small gazetteer (roads, landmarks) to locate an Open311
  ``address_string`` that comes without lat/long.

Missing ``intake.yaml`` / ``sensors.yaml`` / ``places.yaml`` mean defaults / none.
"""
from __future__ import annotations

import copy
import hashlib
import math
import re
from datetime import time

from shapely.geometry import Point, Polygon, mapping, shape
from shapely.ops import unary_union

from shared import geo
from shared.calendar import valid_duration

ATTRIBUTE_TYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
RESERVED_ATTRIBUTES = ("urgency", "object_code")        # added by intake to every service
ARBITRATION_LEVELS = ("community", "street", "department", "leadership")
_ATTR_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CONDITIONS = {
    "number": {"gt", "gte", "lt", "lte"},
    "singlevaluelist": {"in"},
    "multivaluelist": {"in"},
    "datetime": {"local_time_between"},
    "string": set(), "text": set(),
}

DEFAULT_POLICY = {
    "duplicates": {"radius_m": 50.0, "open_case_window_days": 30, "reopen_within_days": 7},
    "location": {"outside_tolerance_m": 300.0, "edge_place_radius_m": 100.0},
    "ownership": {
        "levels": [
            {"level": "community", "name": "社区协调", "deadline": "1d"},
            {"level": "street", "name": "街镇协调", "deadline": "2d"},
            {"level": "department", "name": "主管部门裁定", "deadline": "3d", "arbiter": "dept.chengguan"},
            {"level": "leadership", "name": "领导小组确权", "deadline": "5d", "arbiter": "lead.group"},
        ],
        "returned_case_place_radius_m": 100.0,
    },
    "filing": {"inspector_requires_photo": True, "road_office_bypasses_standard": True,
               "max_report_age_days": 7},
    "sensor_rules": [],
}

# distances and discs: shared.geo (one Earth for the platform); importable from here as before
distance_m, disc = geo.distance_m, geo.disc


def place_id_for(prefix: str, geometry) -> str:
    digest = hashlib.sha1(geometry.wkt.encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hhmm(value) -> time | None:
    if isinstance(value, str) and re.fullmatch(r"\d{2}:\d{2}", value):
        hours, minutes = int(value[:2]), int(value[3:])
        if hours < 24 and minutes < 60:
            return time(hours, minutes)
    return None


_duration_ok = valid_duration


# ============================================================ taxonomy attributes
def check_class_attributes(code: str, minor: dict, problems: list[str]) -> tuple[list, str]:
    """Validate a minor class's ``attributes`` and ``filing_mode``; returns clean copies."""
    label = f"taxonomy.yaml: class {code}"
    raw = minor.get("attributes") or []
    mode = minor.get("filing_mode", "any")
    if mode not in ("any", "all"):
        problems.append(f"{label}: filing_mode {mode!r} must be any or all")
    if not isinstance(raw, list):
        problems.append(f"{label}: attributes must be a list")
        return [], mode
    clean, seen = [], set()
    for index, attribute in enumerate(raw):
        where = f"{label}: attributes[{index}]"
        if not isinstance(attribute, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        acode = attribute.get("code")
        if not (isinstance(acode, str) and _ATTR_CODE.match(acode)):
            problems.append(f"{where}: code {acode!r} must be lower-case letters, digits, _")
            continue
        if acode in RESERVED_ATTRIBUTES or acode in seen:
            problems.append(f"{where}: code {acode!r} is reserved or used twice")
            continue
        seen.add(acode)
        datatype = attribute.get("datatype")
        if datatype not in ATTRIBUTE_TYPES:
            problems.append(f"{where} {acode}: datatype {datatype!r} is not one of {', '.join(ATTRIBUTE_TYPES)}")
            continue
        if not _text(attribute.get("description")):
            problems.append(f"{where} {acode}: description is missing")
        entry = {"code": acode, "datatype": datatype, "description": attribute.get("description"),
                 "required": bool(attribute.get("required", False)),
                 "datatype_description": attribute.get("datatype_description") or "",
                 "unit": attribute.get("unit") or "", "values": []}
        if datatype.endswith("valuelist"):
            values = attribute.get("values")
            if not isinstance(values, list) or not values:
                problems.append(f"{where} {acode}: a {datatype} needs values [{{key, name}}]")
            else:
                keys = set()
                for value in values:
                    if not (isinstance(value, dict) and _text(str(value.get("key", "")))
                            and _text(value.get("name"))):
                        problems.append(f"{where} {acode}: every value needs key and name")
                        continue
                    key = str(value["key"])
                    if key in keys:
                        problems.append(f"{where} {acode}: value key {key!r} used twice")
                    keys.add(key)
                    entry["values"].append({"key": key, "name": value["name"]})
        condition = attribute.get("files_if")
        if condition is not None:
            allowed = _CONDITIONS[datatype]
            if not isinstance(condition, dict) or not condition or set(condition) - allowed:
                problems.append(f"{where} {acode}: files_if for a {datatype} may use "
                                f"{', '.join(sorted(allowed)) or 'nothing'}")
            else:
                for key, value in condition.items():
                    if key in ("gt", "gte", "lt", "lte") and not _number(value):
                        problems.append(f"{where} {acode}: files_if.{key} must be a number")
                    if key == "in":
                        known = {v["key"] for v in entry["values"]}
                        if not (isinstance(value, list) and value and {str(v) for v in value} <= known):
                            problems.append(f"{where} {acode}: files_if.in must list keys of values")
                    if key == "local_time_between" and not (
                            isinstance(value, list) and len(value) == 2 and all(_hhmm(v) for v in value)):
                        problems.append(f"{where} {acode}: files_if.local_time_between needs two "
                                        f"quoted times [\"22:00\", \"06:00\"]")
                entry["files_if"] = {key: ([str(v) for v in value] if key == "in" else value)
                                     for key, value in condition.items()}
        entry["order"] = index + 1
        clean.append(entry)
    return clean, mode


# ============================================================ intake.yaml
def load_policy(data: dict | None, units: dict, taxonomy: dict, problems: list[str]) -> dict:
    where = "intake.yaml"
    policy = copy.deepcopy(DEFAULT_POLICY)
    if data is None:
        return policy
    for section in ("duplicates", "location", "filing"):
        given = data.get(section) or {}
        if not isinstance(given, dict):
            problems.append(f"{where}: {section} must be a mapping")
            continue
        for key, value in given.items():
            if key not in policy[section]:
                problems.append(f"{where}: {section}.{key} is not a known setting "
                                f"({', '.join(policy[section])})")
            elif isinstance(policy[section][key], bool):
                if not isinstance(value, bool):
                    problems.append(f"{where}: {section}.{key} must be true or false")
                else:
                    policy[section][key] = value
            elif not _number(value) or value < 0:
                problems.append(f"{where}: {section}.{key} must be a number ≥ 0")
            else:
                policy[section][key] = value
    ownership = data.get("ownership") or {}
    if ownership:
        levels = ownership.get("levels")
        if levels is not None:
            if not isinstance(levels, list) or [lvl.get("level") if isinstance(lvl, dict) else None
                                                for lvl in levels] != list(ARBITRATION_LEVELS):
                problems.append(f"{where}: ownership.levels must list, in order, "
                                f"{' → '.join(ARBITRATION_LEVELS)}")
            else:
                for lvl in levels:
                    if not _duration_ok(lvl.get("deadline")):
                        problems.append(f"{where}: ownership level {lvl['level']}: deadline "
                                        f"{lvl.get('deadline')!r} must be working time like 1d or 4h")
                    if lvl.get("arbiter") is not None and lvl["arbiter"] not in units:
                        problems.append(f"{where}: ownership level {lvl['level']}: arbiter "
                                        f"{lvl['arbiter']!r} is not a unit of units.yaml")
                    if not _text(lvl.get("name")):
                        problems.append(f"{where}: ownership level {lvl['level']}: name is missing")
                policy["ownership"]["levels"] = [dict(lvl) for lvl in levels]
        radius = ownership.get("returned_case_place_radius_m")
        if radius is not None:
            if not _number(radius) or radius <= 0:
                problems.append(f"{where}: ownership.returned_case_place_radius_m must be > 0")
            else:
                policy["ownership"]["returned_case_place_radius_m"] = radius
    rules = data.get("sensor_rules") or []
    if not isinstance(rules, list):
        problems.append(f"{where}: sensor_rules must be a list")
        rules = []
    policy["sensor_rules"] = []
    metrics = set()
    for index, rule in enumerate(rules):
        label = f"{where}: sensor_rules[{index}]"
        if not isinstance(rule, dict):
            problems.append(f"{label}: must be a mapping")
            continue
        metric = rule.get("metric")
        if not (isinstance(metric, str) and _ATTR_CODE.match(metric)):
            problems.append(f"{label}: metric {metric!r} must be a lower-case name like pm10")
            continue
        if metric in metrics:
            problems.append(f"{label}: a second rule for metric {metric!r}")
        metrics.add(metric)
        for key in ("threshold", "sustained_minutes", "max_gap_minutes"):
            if not _number(rule.get(key)) or rule.get(key) <= 0:
                problems.append(f"{label} {metric}: {key} must be a number > 0")
        if rule.get("class_code") not in taxonomy:
            problems.append(f"{label} {metric}: class_code {rule.get('class_code')!r} is not a class")
        if rule.get("urgency", "normal") not in ("normal", "urgent"):
            problems.append(f"{label} {metric}: urgency must be normal or urgent")
        hours = rule.get("active_hours")
        if hours is not None and not (isinstance(hours, list) and len(hours) == 2
                                      and all(_hhmm(h) for h in hours)):
            problems.append(f"{label} {metric}: active_hours needs two quoted times [\"22:00\", \"06:00\"]")
        if not _text(rule.get("unit")):
            problems.append(f"{label} {metric}: unit is missing")
        policy["sensor_rules"].append({
            "metric": metric, "unit": rule.get("unit"), "threshold": rule.get("threshold"),
            "sustained_minutes": rule.get("sustained_minutes"),
            "max_gap_minutes": rule.get("max_gap_minutes"), "class_code": rule.get("class_code"),
            "urgency": rule.get("urgency", "normal"), "active_hours": hours,
            "description": rule.get("description") or ""})
    unknown = set(data) - {"duplicates", "location", "filing", "ownership", "sensor_rules"}
    for key in sorted(unknown):
        problems.append(f"{where}: unknown section {key!r}")
    return policy


# ============================================================ sensors.yaml, places.yaml
def load_sensors(data: dict | None, policy: dict, locate, problems: list[str]) -> dict:
    where = "sensors.yaml"
    sensors: dict[str, dict] = {}
    if data is None:
        return sensors
    metrics = {rule["metric"] for rule in policy["sensor_rules"]}
    items = data.get("sensors") or []
    if not isinstance(items, list):
        problems.append(f"{where}: 'sensors' must be a list")
        return sensors
    for index, item in enumerate(items):
        sid = item.get("id") if isinstance(item, dict) else None
        label = f"{where}: sensors[{index}]" + (f" {sid}" if sid else "")
        if not (isinstance(sid, str) and re.fullmatch(r"[A-Za-z0-9_.:\-]{1,64}", sid)):
            problems.append(f"{label}: id must be letters, digits, _ . : - (≤ 64)")
            continue
        if sid in sensors:
            problems.append(f"{label}: duplicate id")
            continue
        if item.get("metric") not in metrics:
            problems.append(f"{label}: metric {item.get('metric')!r} has no rule in intake.yaml sensor_rules")
        if not _text(item.get("name")):
            problems.append(f"{label}: name is missing")
        location = item.get("location") or {}
        if not (_number(location.get("lon")) and _number(location.get("lat"))):
            problems.append(f"{label}: location needs numeric lon and lat")
            continue
        if locate(location["lon"], location["lat"]) is None:
            problems.append(f"{label}: location {location['lon']}, {location['lat']} lies in no grid")
        sensors[sid] = {"id": sid, "name": item.get("name"), "metric": item.get("metric"),
                        "site": item.get("site") or "", "address": item.get("address") or "",
                        "location": {"lon": float(location["lon"]), "lat": float(location["lat"])}}
    return sensors


def load_places(data: dict | None, problems: list[str]) -> list[dict]:
    where = "places.yaml"
    places: list[dict] = []
    if data is None:
        return places
    items = data.get("places") or []
    if not isinstance(items, list):
        problems.append(f"{where}: 'places' must be a list")
        return places
    names = set()
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        label = f"{where}: places[{index}]" + (f" {name}" if name else "")
        if not _text(name) or len(name) < 2:
            problems.append(f"{label}: name (at least 2 characters) is missing")
            continue
        if name in names:
            problems.append(f"{label}: duplicate name")
            continue
        names.add(name)
        location = item.get("location") or {}
        if not (_number(location.get("lon")) and _number(location.get("lat"))):
            problems.append(f"{label}: location needs numeric lon and lat")
            continue
        places.append({"name": name, "kind": item.get("kind") or "place",
                       "lon": float(location["lon"]), "lat": float(location["lat"])})
    return places


# ============================================================ geometry helpers
class GridMap:
    """The union of the unit grids, its holes (enclosed 盲区) and a gazetteer."""

    def __init__(self, grids: list[dict], units: dict, places: list[dict]):
        self.union = unary_union([grid["geometry"] for grid in grids])
        polygons = list(getattr(self.union, "geoms", [self.union]))
        self.holes = [Polygon(ring) for polygon in polygons for ring in polygon.interiors]
        self.gazetteer = self._gazetteer(grids, units, places)

    def enclosed_gap(self, lon: float, lat: float):
        """The hole of the grid map (an enclosed 盲区) that covers the point, or None."""
        point = Point(lon, lat)
        for hole in self.holes:
            if hole.covers(point):
                return hole
        return None

    def gap_place(self, lon: float, lat: float, edge_radius_m: float) -> dict:
        """The place of a point in no grid: the enclosed gap it lies in, or a disc around it
        (outside the grid map's edge), minus every grid.  Returns {place_id, geometry (GeoJSON)}."""
        hole = self.enclosed_gap(lon, lat)
        if hole is not None:
            return {"place_id": place_id_for("gap", hole), "kind": "enclosed_gap",
                    "geometry": mapping(hole)}
        area = disc(lon, lat, edge_radius_m).difference(self.union)
        if area.is_empty or not area.covers(Point(lon, lat)):
            area = disc(lon, lat, edge_radius_m)
        area = area.simplify(0)
        return {"place_id": place_id_for("edge", area), "kind": "edge",
                "geometry": mapping(area)}

    @staticmethod
    def _gazetteer(grids, units, places) -> list[dict]:
        entries: list[dict] = []
        for place in places:
            entries.append({"name": place["name"], "lon": place["lon"], "lat": place["lat"],
                            "rank": 0, "source": f"places.yaml ({place['kind']})"})
        communities: dict[str, list] = {}
        streets: dict[str, list] = {}
        for grid in grids:
            point = grid["geometry"].representative_point()
            entries.append({"name": grid["name"], "lon": point.x, "lat": point.y, "rank": 1,
                            "source": f"grid {grid['code']}"})
            communities.setdefault(grid["community_name"], []).append(grid["geometry"])
            streets.setdefault(grid["street_id"], []).append(grid["geometry"])
        for name, shapes in communities.items():
            point = unary_union(shapes).representative_point()
            entries.append({"name": name, "lon": point.x, "lat": point.y, "rank": 2,
                            "source": "community"})
        for street_id, shapes in streets.items():
            point = unary_union(shapes).representative_point()
            name = (units.get(street_id) or {}).get("name") or street_id
            entries.append({"name": name, "lon": point.x, "lat": point.y, "rank": 3,
                            "source": f"street {street_id}"})
        return entries

    def geocode(self, text: str) -> dict | None:
        """The best gazetteer entry named in ``text``: the longest name wins, then the most
        specific kind (place → grid → community → street).  None when nothing matches."""
        if not isinstance(text, str) or not text.strip():
            return None
        hits = [entry for entry in self.gazetteer if entry["name"] in text]
        if not hits:
            return None
        best = min(hits, key=lambda entry: (-len(entry["name"]), entry["rank"], entry["name"]))
        return {"lon": round(best["lon"], 6), "lat": round(best["lat"], 6), "name": best["name"],
                "source": best["source"]}


def geometry_covers(geojson: dict, lon: float, lat: float) -> bool:
    return shape(geojson).covers(Point(lon, lat))


def local_time_between(moment_local: time, start: str, end: str) -> bool:
    """Whether a local time of day lies in [start, end); a window may wrap midnight."""
    lo, hi = _hhmm(start), _hhmm(end)
    if lo <= hi:
        return lo <= moment_local < hi
    return moment_local >= lo or moment_local < hi
