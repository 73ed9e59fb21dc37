"""Where a point is — pure: the grid covering it, the nearest grid and street (属地兜底), the
owner of a point for a class, the place of a point in no grid; distances by shared.geo."""
from __future__ import annotations

import copy
import math

from shapely.geometry import Point

from shared import geo

from . import intake_data


class Spatial:
    """The spatial API of a :class:`~shared.refdata.District`."""

    def gap_place(self, lon, lat) -> dict:
        """For a point in no grid: its place (the enclosed 盲区 it lies in, or a disc at the
        edge of the grid map), as ``{place_id, kind, geometry}`` (GeoJSON)."""
        point = self._point(lon, lat)
        radius = self.intake_policy["location"]["edge_place_radius_m"]
        return self.grid_map.gap_place(point.x, point.y, radius)

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

    def resolve_owner(self, class_code: str, lon, lat, decisions=()) -> dict:
        """Who owns this point for this class — the responsibility map, the one answer for intake's
        filing (and so for dispatch, which routes a decided owner under every rule).

        A decided ownership (确权) covering the point comes first (``decisions``: decided disputes
        with ``geometry``, ``scope`` area|class, ``class_code``, ``owner_unit``, see
        :func:`covering_decision`); else point → grid → street → owner: the grid's street for
        ``owner: street`` classes and the class's unit otherwise; in a gap the nearest street
        (属地兜底), so the clock can start while the ownership dispute is settled.

        An area decided for a street or town makes it the point's street (属地) for every class.
        Returns ``{owner, source, decision, class_code, grid (locate() result or None), street_id,
        gap}``; ``source`` is ownership_decided | class | grid_street | gap_nearest_street.
        """
        cls = self._class(class_code)
        located = self.locate(lon, lat)
        street_id = located["street_id"] if located else self.nearest_street(lon, lat)
        areas = [entry for entry in decisions or () if entry.get("scope", "area") == "area"]
        area = covering_decision(areas, class_code, "street", lon, lat)
        if area is not None and (self.units.get(area["owner_unit"]) or {}).get("type") in ("street", "town"):
            street_id = area["owner_unit"]             # the decided 属地 of the point, for every class
        decision = covering_decision(decisions, class_code, cls["owner"], lon, lat)
        if decision is not None:
            owner, source = decision["owner_unit"], "ownership_decided"
        elif cls["owner"] != "street":
            owner, source = cls["owner"], "class"
        else:
            owner, source = street_id, "grid_street" if located else "gap_nearest_street"
        return {"owner": owner, "source": source, "decision": decision, "class_code": class_code,
                "grid": located, "street_id": street_id, "gap": located is None}

    def geojson(self) -> dict:
        """A copy of the grids FeatureCollection, as read from grids.geojson (for the web map)."""
        return copy.deepcopy(self._geojson)


def covering_decision(decisions, class_code: str, class_owner: str | None, lon: float, lat: float):
    """The decided ownership that applies to this class at this point: a class-scoped decision
    for the same class first, then an area decision (which sets the 属地 owner, so it applies to
    classes owned by 'street'). None when no decision covers the point."""
    best = None
    for decision in decisions or ():
        if decision.get("state") not in (None, "decided"):
            continue
        if not intake_data.geometry_covers(decision["geometry"], lon, lat):
            continue
        if decision.get("scope") == "class":
            if decision.get("class_code") == class_code:
                return decision
        elif (class_owner or "street") == "street" and best is None:
            best = decision
    return best
