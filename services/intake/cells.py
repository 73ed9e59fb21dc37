"""The grid cells intake's searches are keyed by — pure: no store, no clock.

The embedded store serves a query from an index only when it is ONE equality on a scalar,
top-level field (docs/performance.md, "Every query served by an index"): no ranges beside an
equality, no ``$in``, no array (multikey) fields. So the searches "cases of this class near
this point" and "disputes whose place covers this point" read fixed grid cells by key:

- a case carries ``dup_cell`` (``<class>:<x>:<y>``, the cell of its location), indexed; the
  duplicate search reads the few cells its radius box touches, one equality each, and the
  rule (filing.match_existing) picks among those candidates;
- a dispute's id is listed in one ``dispute_cells`` document per cell its place's bounding box
  touches (``_id`` = ``<x>:<y>``); a point reads its own cell by ``_id``.

Cells are CELL_M high and at least CELL_M wide (their width in degrees is taken at 70°
latitude, where a degree of longitude is shortest of anywhere this runs). The size is fixed,
not the policy's radius, so keys stored under one radius are still found under another."""
from __future__ import annotations

import math

from shared import geo

CELL_M = 200.0
MAX_CELLS = 400        # a place larger than this many cells is listed by its first ones (logged by the caller)


def _size() -> tuple[float, float]:
    return geo.degrees(CELL_M, 70)


def cell(lon: float, lat: float) -> str:
    """``<x>:<y>``: the cell of a point."""
    width, height = _size()
    return f"{math.floor(float(lon) / width)}:{math.floor(float(lat) / height)}"


def cells_over(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> list[str]:
    """Every cell a lon/lat box touches (``<x>:<y>``), in order."""
    width, height = _size()
    xs = range(math.floor(min_lon / width), math.floor(max_lon / width) + 1)
    ys = range(math.floor(min_lat / height), math.floor(max_lat / height) + 1)
    return [f"{x}:{y}" for x in xs for y in ys][:MAX_CELLS]


def duplicate_cell(class_code: str, lon: float, lat: float) -> str:
    """A case's ``dup_cell``: its class and the cell of its location."""
    return f"{class_code}:{cell(lon, lat)}"


def duplicate_cells(class_code: str, box: dict) -> list[str]:
    """The ``dup_cell`` keys the duplicate search reads for a radius box (filing.bbox_around)."""
    return [f"{class_code}:{key}" for key in
            cells_over(box["min_lon"], box["min_lat"], box["max_lon"], box["max_lat"])]
