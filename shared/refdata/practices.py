"""The people of the source articles' practices — pure: 双街长/双路长 (Beibei), the three service
levels 区—镇街—社区 and the 社区城管联络员 (Linping), read from the optional ``practices.yaml``.

* **双街长**: every street and town has two chiefs, one from the street office (``side: street``)
  and one from the district city-management bureau (``side: chengguan``).
* **双路长**: every road has a stretch (the grids it runs through) and the same two sides; the
  ``double_chief`` label of its first grid in grids.geojson must name both.
* **社区城管联络员**: every community (the third service level) has one or two liaison officers;
  the grids' ``responsible.community_liaison`` must name one of them.

The responsibility map (``geojson()``, ``locate()``) carries the chiefs and liaisons of each grid
(names and roles, no phone numbers); :meth:`Practices.stretch_people` gives dispatch whom to tell
about a case in a grid, :meth:`Practices.chief_stretches` gives scoring each chief's grids, and
:meth:`Practices.unit_tree` the three levels.
"""
from __future__ import annotations

import copy

from .common import _text

SIDES = {"street": "街道（属地）", "chengguan": "区城管局"}
LEVELS = ("district", "town", "community")
LEVEL_NAMES = {"district": "区级", "town": "镇街级", "community": "社区级"}
FILE = "practices.yaml"


def _person(raw, label: str, problems: list[str], sides: bool = True) -> dict | None:
    if not isinstance(raw, dict):
        problems.append(f"{label}: must be a mapping {{name, role, phone{', side' if sides else ''}}}")
        return None
    bad = len(problems)
    for field in ("name", "role", "phone"):
        if not _text(raw.get(field)):
            problems.append(f"{label}: {field} is missing (quote phone numbers)")
    if sides and raw.get("side") not in SIDES:
        problems.append(f"{label}: side {raw.get('side')!r} must be one of {', '.join(SIDES)}")
    if len(problems) != bad:
        return None
    person = {"name": raw["name"], "role": raw["role"], "phone": str(raw["phone"])}
    if sides:
        person["side"] = raw["side"]
        person["side_name"] = SIDES[raw["side"]]
    return person


def _pair(raw, label: str, problems: list[str]) -> list[dict]:
    """Two chiefs, one of each side."""
    if not isinstance(raw, list):
        problems.append(f"{label}: must be a list of two chiefs")
        return []
    people = [p for i, item in enumerate(raw) if (p := _person(item, f"{label}[{i}]", problems))]
    if len(people) == len(raw) and sorted(p["side"] for p in people) != sorted(SIDES):
        problems.append(f"{label}: needs exactly two chiefs, one with side street and one with side "
                        f"chengguan (双街长/双路长)")
    return people


class Practices:
    """The practices' API of a :class:`~shared.refdata.District` (loaded by the Loader)."""

    # ================================================================== loading
    def _load_practices(self, problems: list[str]) -> None:
        raw = self._read_optional(FILE, problems) or {}
        self.street_chief_map: dict[str, list[dict]] = {}
        self.roads: list[dict] = []
        self.communities: dict[tuple[str, str], dict] = {}
        self._liaison_ids: set[str] = set()
        if problems:
            return
        streets = {uid for uid, unit in self.units.items() if unit.get("type") in ("street", "town")}
        for street_id, chiefs in (raw.get("street_chiefs") or {}).items():
            label = f"{FILE}: street_chiefs.{street_id}"
            if street_id not in streets:
                problems.append(f"{label}: not a street or town of units.yaml")
                continue
            self.street_chief_map[street_id] = _pair(chiefs, label, problems)
        for index, road in enumerate(raw.get("roads") or []):
            label = f"{FILE}: roads[{index}]" + (f" {road.get('name')}" if isinstance(road, dict) else "")
            if not isinstance(road, dict) or not _text(road.get("name")):
                problems.append(f"{label}: needs a name, street_id, grids and chiefs")
                continue
            grids = road.get("grids") or []
            unknown = [code for code in grids if code not in self._grid_by_code]
            if not grids or unknown:
                problems.append(f"{label}: grids must list grid codes of grids.geojson (unknown: {unknown})")
            if road.get("street_id") not in streets:
                problems.append(f"{label}: street_id {road.get('street_id')!r} is not a street or town")
            self.roads.append({"name": road["name"], "street_id": road.get("street_id"),
                               "grids": [str(code) for code in grids],
                               "chiefs": _pair(road.get("chiefs"), f"{label}.chiefs", problems)})
        for index, item in enumerate(raw.get("communities") or []):
            label = f"{FILE}: communities[{index}]"
            if not isinstance(item, dict) or item.get("street_id") not in streets:
                problems.append(f"{label}: street_id must be a street or town of units.yaml")
                continue
            street_code = self.units[item["street_id"]].get("code")
            key = (street_code, str(item.get("code")))
            grids = [g["code"] for g in self.grids if (g["street_code"], g["community_code"]) == key]
            if not grids:
                problems.append(f"{label}: community {item.get('code')!r} of {item['street_id']} has no grid")
                continue
            liaisons = []
            for i, raw_person in enumerate(item.get("liaisons") or []):
                person = _person(raw_person, f"{label}.liaisons[{i}]", problems, sides=False)
                if person is None:
                    continue
                if not _text(raw_person.get("id")) or raw_person["id"] in self._liaison_ids:
                    problems.append(f"{label}.liaisons[{i}]: id (the person id of the liaison's "
                                    f"community account) is missing or used twice")
                    continue
                person["id"] = raw_person["id"]
                self._liaison_ids.add(person["id"])
                liaisons.append(person)
            if not 1 <= len(item.get("liaisons") or []) <= 2:
                problems.append(f"{label}: a community has 1 or 2 社区城管联络员")
            self.communities[key] = {"street_id": item["street_id"], "code": key[1],
                                     "name": item.get("name"), "grids": grids, "liaisons": liaisons}
        if problems:
            return
        for road in self.roads:           # one fact, one owner: the map label must agree
            label = (self._grid_by_code[road["grids"][0]].get("responsible") or {}).get("double_chief") or ""
            missing = [c["name"] for c in road["chiefs"] if label and c["name"] not in label]
            if missing:
                problems.append(f"grids.geojson: grid {road['grids'][0]} double_chief {label!r} does not name "
                                f"{'、'.join(missing)}, the 双路长 of {road['name']} in {FILE}")
        if self.communities:
            for grid in self.grids:
                community = self.communities.get((grid["street_code"], grid["community_code"]))
                named = (grid.get("responsible") or {}).get("community_liaison")
                if community is None:
                    problems.append(f"{FILE}: community {grid['community_name']} (grid {grid['code']}) "
                                    f"is missing from communities")
                elif named and named not in [p["name"] for p in community["liaisons"]]:
                    problems.append(f"grids.geojson: grid {grid['code']} names community_liaison {named!r}, "
                                    f"who is not a liaison of {community['name']} in {FILE}")
        if not problems:
            self._carry_on_map()

    def _carry_on_map(self) -> None:
        """The responsibility map carries each grid's chiefs and liaisons (names and roles)."""
        def public(people):
            return [{key: p[key] for key in ("name", "role", "side_name") if key in p} for p in people]
        by_code = {}
        for grid in self.grids:
            people = self.stretch_people(grid["code"])
            extra = {"street_chiefs": public(people["street_chiefs"]),
                     "road_chiefs": [{"road": r["road"], "chiefs": public(r["chiefs"])}
                                     for r in people["road_chiefs"]],
                     "liaisons": public(people["liaisons"])}
            grid.setdefault("responsible", {}).update(extra)
            by_code[grid["code"]] = extra
        for feature in (self._geojson or {}).get("features", []):
            props = feature.get("properties") or {}
            if props.get("code") in by_code:
                props.setdefault("responsible", {}).update(copy.deepcopy(by_code[props["code"]]))

    # ================================================================== queries
    def street_chiefs(self, street_id: str) -> list[dict]:
        """The 双街长 of a street or town (copies; empty when none are given)."""
        return copy.deepcopy(self.street_chief_map.get(street_id, []))

    def community_of(self, grid_code: str) -> dict | None:
        grid = self._grid_by_code.get(grid_code)
        if grid is None:
            return None
        found = self.communities.get((grid["street_code"], grid["community_code"]))
        return copy.deepcopy(found) if found else None

    def liaison(self, community_code: str, person_id: str | None) -> dict | None:
        """The 社区城管联络员 of a community (12-digit code: district + street + community) with
        this person id, or None."""
        code = community_code or ""
        community = self.communities.get((code[6:9], code[9:12])) if code[:6] == self.code else None
        for person in (community or {}).get("liaisons", []):
            if person_id and person["id"] == person_id:
                return copy.deepcopy(person)
        return None

    def stretch_people(self, grid_code: str | None) -> dict:
        """Who answers for a grid beside its owner: ``{street_chiefs, road_chiefs: [{road, chiefs}],
        liaisons}`` (the street's 双街长, the 双路长 of every road through it, its community's
        联络员). Empty lists for an unknown grid or a point in no grid."""
        grid = self._grid_by_code.get(grid_code or "")
        if grid is None:
            return {"street_chiefs": [], "road_chiefs": [], "liaisons": []}
        community = self.community_of(grid_code) or {}
        return {"street_chiefs": self.street_chiefs(grid["street_id"]),
                "road_chiefs": [{"road": road["name"], "chiefs": copy.deepcopy(road["chiefs"])}
                                for road in self.roads if grid_code in road["grids"]],
                "liaisons": community.get("liaisons", [])}

    def chief_stretches(self) -> list[dict]:
        """Every chief with their stretch, for their own indicators: ``{key, name, role, side,
        kind: street|road, stretch, stretch_name, grids}``. ``key`` is stable (kind:stretch:side)."""
        out = []
        for street_id, chiefs in self.street_chief_map.items():
            grids = [g["code"] for g in self.grids if g["street_id"] == street_id]
            for chief in chiefs:
                out.append({"key": f"street:{street_id}:{chief['side']}", "name": chief["name"],
                            "role": chief["role"], "side": chief["side"], "kind": "street",
                            "stretch": street_id, "stretch_name": self.units[street_id]["name"],
                            "grids": grids})
        for road in self.roads:
            for chief in road["chiefs"]:
                out.append({"key": f"road:{road['name']}:{chief['side']}", "name": chief["name"],
                            "role": chief["role"], "side": chief["side"], "kind": "road",
                            "stretch": road["name"], "stretch_name": road["name"],
                            "grids": list(road["grids"])})
        return out

    def level_of(self, unit_id: str) -> str | None:
        """The service level of a unit: district (区级部门, 领导小组, 园城, 作业单位), town (街道, 镇)."""
        unit = self.units.get(unit_id)
        if unit is None:
            return None
        return "town" if unit.get("type") in ("street", "town") else "district"

    def unit_tree(self, people: bool = True) -> dict:
        """The three service levels (区—镇街—社区) as a tree: the district with its district-level
        units, its streets and towns (with their 双街长), and their communities (with their
        联络员). ``people=False`` leaves the people out (for the public)."""
        def brief(unit):
            return {"id": unit["id"], "name": unit["name"], "type": unit["type"]}
        towns = []
        for unit in self.units.values():
            if unit.get("type") not in ("street", "town"):
                continue
            communities = [{"level": "community", "level_name": LEVEL_NAMES["community"],
                            "code": c["code"], "name": c["name"], "grids": list(c["grids"]),
                            "liaisons": copy.deepcopy(c["liaisons"]) if people else []}
                           for (street_code, _), c in sorted(self.communities.items())
                           if c["street_id"] == unit["id"]]
            towns.append(dict(brief(unit), level="town", level_name=LEVEL_NAMES["town"],
                              chiefs=self.street_chiefs(unit["id"]) if people else [], communities=communities))
        return {"level": "district", "level_name": LEVEL_NAMES["district"], "code": self.code,
                "name": self.name,
                "units": [brief(u) for u in self.units.values() if self.level_of(u["id"]) == "district"],
                "towns": towns}
