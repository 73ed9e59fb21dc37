"""Reading and checking a district's files (district.yaml, units.yaml, taxonomy.yaml,
calendar.yaml, grids.geojson, components.yaml and the optional intake files): every problem is
collected and raised at once as :class:`~shared.refdata.common.RefdataError`."""
from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from shapely import STRtree
from shapely.geometry import shape

from shared.calendar import BusinessCalendar, valid_duration

from . import intake_data
from .common import (_CLASS_CODE, _GRID_CODE, _OBJECT_CODE, _OVERLAP_TOLERANCE, CASE_KINDS, FILES,
                     KIND_LETTERS, LEAD_UNIT, PARTNER_KEYS, PARTNER_UNITS, UNIT_TYPES, URGENCIES,
                     MOBILE_NUMBER, RefdataError, _digits, _number, _text, _two_digits, sms_number)


class Loader:
    """Builds a :class:`~shared.refdata.District` from its folder (the loading half of it)."""

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
        self._load_practices(problems)          # practices.yaml (optional): shared/refdata/practices.py
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
                    elif "mobile" in contact and not (isinstance(contact["mobile"], str)
                                                      and MOBILE_NUMBER.match(contact["mobile"])):
                        problems.append(
                            f"{label}: contacts[{cindex}] ({contact['name']}).mobile "
                            f"{contact['mobile']!r} 不是手机号码，短信发不到座机 (the SMS field needs an "
                            f"11-digit mobile number such as '13900016800', quoted; a landline "
                            f"cannot receive SMS)")
                    elif "值班" in contact["role"] and not sms_number(contact):
                        problems.append(
                            f"{label}: contacts[{cindex}] ({contact['name']}) 值班人员需要手机号码收短信 "
                            f"(the duty officer needs a `mobile` for SMS; {contact['phone']!r} is a landline)")
                if contacts and not any(isinstance(c, dict) and sms_number(c) for c in contacts):
                    problems.append(f"{label}: 没有能收短信的联系人 (no contact has a mobile number "
                                    f"for SMS: give the duty officer a `mobile`)")
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
