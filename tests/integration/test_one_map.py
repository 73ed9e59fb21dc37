"""一张图's layers over HTTP: street and town outlines dissolved from the grids (one per street or
town, named, with a label point inside), and the components layer — all from the reference data."""
from shapely.geometry import Point, shape

from shared.refdata import load_district
from tests.integration.gateway_auth_support import platform  # noqa: F401


def test_the_map_has_a_named_outline_per_street_and_the_components(platform):  # noqa: F811
    answer = platform.as_("leader").get("/api/map")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    district = load_district()
    outlines = {f["properties"]["id"]: f for f in body["streets"]["features"]}
    assert set(outlines) == {grid["street_id"] for grid in district.grids}
    for street_id, feature in outlines.items():
        outline = shape(feature["geometry"])
        assert Point(feature["properties"]["label"]).within(outline)
        assert feature["properties"]["name"] == district.units[street_id]["name"]
        for grid in district.grids:                  # each grid lies inside its own street's outline
            if grid["street_id"] == street_id:
                assert outline.buffer(1e-9).contains(grid["geometry"])
    assert len(body["components"]) == len(district.components)
