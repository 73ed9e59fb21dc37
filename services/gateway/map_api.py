"""GET /api/map — the 一张图 layers drawn from the district's own reference data (no outside tiles):
street and town boundaries dissolved from the grids with shapely, each with its label point, and
the components (部件) layer. The grids themselves come from GET /api/grids."""
from __future__ import annotations

import functools

from nameko.web.handlers import http
from shapely.geometry import mapping
from shapely.ops import unary_union

from shared.refdata import load_district

from .access import Access, roles_with
from .auth import ROLES
from .http import endpoint, json_response

MAP = Access(None, roles_with("any", ROLES))


@functools.lru_cache(maxsize=4)
def layers(district) -> dict:
    """The streets' and towns' outlines (the union of their grids) and the components."""
    shapes: dict = {}
    for grid in district.grids:
        shapes.setdefault(grid["street_id"], []).append(grid["geometry"])
    features = []
    for street_id, parts in sorted(shapes.items()):
        outline = unary_union(parts)
        unit = district.units.get(street_id) or {}
        label = outline.representative_point()
        features.append({"type": "Feature", "geometry": mapping(outline),
                         "properties": {"id": street_id, "name": unit.get("name") or street_id,
                                        "type": unit.get("type"), "label": [label.x, label.y]}})
    components = [{"object_code": code, "class_code": item["class_code"], "name": item.get("name"),
                   "class_name": (district.taxonomy.get(item["class_code"]) or {}).get("name"),
                   "street_id": item.get("street_id"), "grid_code": item.get("grid_code"),
                   "location": item.get("location")}
                  for code, item in sorted(district.components.items()) if item.get("location")]
    return {"streets": {"type": "FeatureCollection", "features": features}, "components": components}


def _docs() -> dict:
    from .openapi import Doc
    return {("GET", "/api/map"): Doc(
        "一张图 Street and town boundaries (dissolved from the grids) and the components layer", "web",
        "街镇边界由网格合并而成（shapely），附标注点；部件图层。")}


class MapApi:
    """HTTP entrypoint mixed into GatewayService (services/gateway/service.py)."""

    OPENAPI_DOCS = _docs()

    @http("GET", "/api/map")
    @endpoint(MAP)
    def get_map(self, request, principal):
        return json_response(layers(load_district()))
