"""Distances and shapes in metres on lon/lat degrees — the platform's one geo module. Pure.

One Earth for everything: a sphere of the mean radius (``EARTH_M``), so a distance (haversine),
a disc drawn around a point, the box that contains it and a local projection all agree: a point
on the rim of ``disc(lon, lat, r)`` is ``r`` metres away by ``distance_m``. At city scale the
sphere is within 0.5 % of the ellipsoid, far below a report's GPS error.
"""
from __future__ import annotations

import math

from shapely.geometry import Point, Polygon
from shapely.ops import nearest_points

EARTH_M = 6_371_008.8                          # mean Earth radius (IUGG)
METRES_PER_DEGREE = math.pi * EARTH_M / 180    # along a meridian; along a parallel × cos(lat)


def distance_m(a_lon, a_lat, b_lon, b_lat) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(a_lat), math.radians(b_lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b_lon - a_lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(h)))


def degrees(metres: float, lat: float) -> tuple[float, float]:
    """``metres`` as (degrees of longitude at latitude ``lat``, degrees of latitude)."""
    return (metres / (METRES_PER_DEGREE * max(0.01, math.cos(math.radians(lat)))),
            metres / METRES_PER_DEGREE)


def projector(lon0: float, lat0: float):
    """A local flat projection around (lon0, lat0): ``(lon, lat) → (x, y)`` metres east/north."""
    kx = math.cos(math.radians(lat0)) * METRES_PER_DEGREE
    return lambda lon, lat: ((lon - lon0) * kx, (lat - lat0) * METRES_PER_DEGREE)


def disc(lon: float, lat: float, radius_m: float, resolution: int = 16) -> Polygon:
    """A polygon approximating a circle of ``radius_m`` metres around a point (lon/lat degrees)."""
    dx, dy = degrees(radius_m, lat)
    points = [(lon + dx * math.cos(2 * math.pi * k / (4 * resolution)),
               lat + dy * math.sin(2 * math.pi * k / (4 * resolution))) for k in range(4 * resolution)]
    return Polygon(points)


def distance_to_m(lon: float, lat: float, geometry) -> float:
    """Metres from a point to the nearest point of a shapely geometry in lon/lat (0 inside)."""
    point = Point(lon, lat)
    if geometry.covers(point):
        return 0.0
    _, nearest = nearest_points(point, geometry)
    return distance_m(lon, lat, nearest.x, nearest.y)
