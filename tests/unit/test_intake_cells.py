"""The keys intake's searches read (cells.py, filing.received_day): a search by key must find
everything the old range query found."""
import math
from datetime import datetime, timedelta, timezone

from services.intake import cells, filing
from shared.refdata.intake_data import disc, distance_m

BEIBEI = (106.3904, 29.8338)


def around(lon0, lat0, radius_m, steps=24):
    """Points on rings inside the radius, on every side."""
    for ring in (0.2, 0.5, 0.8, 0.99):
        for step in range(steps):
            angle = 2 * math.pi * step / steps
            yield (lon0 + ring * radius_m * math.cos(angle) / (111_320 * math.cos(math.radians(lat0))),
                   lat0 + ring * radius_m * math.sin(angle) / 110_574)


def test_a_case_within_the_radius_is_in_a_cell_the_duplicate_search_reads():
    for radius in (10, 50, 150, 400):
        # many origins, some right beside a cell's edge
        origins = [(BEIBEI[0] + dx * 0.00037, BEIBEI[1] + dy * 0.00041) for dx in range(-6, 7) for dy in range(-6, 7)]
        for lon0, lat0 in origins:
            searched = set(cells.duplicate_cells("E0101", filing.bbox_around(lon0, lat0, radius)))
            for lon, lat in around(lon0, lat0, radius):
                assert distance_m(lon0, lat0, lon, lat) <= radius
                assert cells.duplicate_cell("E0101", lon, lat) in searched, (radius, lon0, lat0, lon, lat)
    # another class is another key; a 50 m search reads a few cells, not a neighbourhood
    assert cells.duplicate_cell("E0102", *BEIBEI) not in cells.duplicate_cells(
        "E0101", filing.bbox_around(*BEIBEI, 50))
    assert 1 <= len(cells.duplicate_cells("E0101", filing.bbox_around(*BEIBEI, 50))) <= 4


def test_a_point_inside_a_disputed_place_reads_a_cell_the_dispute_is_listed_in():
    for radius in (100, 600):
        place = disc(*BEIBEI, radius)
        listed = set(cells.cells_over(*place.bounds))
        for lon, lat in around(*BEIBEI, radius):
            assert cells.cell(lon, lat) in listed


def test_a_cancelled_case_is_never_linked():
    now = datetime(2026, 11, 28, 2, 0, tzinfo=timezone.utc)
    policy = {"duplicates": {"radius_m": 50, "open_case_window_days": 30, "reopen_within_days": 7}}
    point = {"lon": BEIBEI[0], "lat": BEIBEI[1]}
    case = {"_id": "C1", "class_code": "E0101", "location": point, "registered_at": now - timedelta(hours=1)}
    assert filing.match_existing([dict(case, state="registered")], "E0101", point, now, policy)["case_id"] == "C1"
    assert filing.match_existing([dict(case, state="cancelled")], "E0101", point, now, policy) is None


def test_a_date_window_is_read_by_its_utc_days_newest_first():
    local = timezone(timedelta(hours=8))
    assert filing.received_day(datetime(2026, 11, 28, 7, 59, tzinfo=local)) == "2026-11-27"    # 23:59 UTC
    start, end = datetime(2026, 11, 27, 23, 0, tzinfo=timezone.utc), datetime(2026, 11, 29, 1, 0, tzinfo=local)
    assert filing.days_back(start, end) == ["2026-11-28", "2026-11-27"]
    ninety = filing.days_back(end - timedelta(days=90), end)
    assert len(ninety) == 91 and ninety[0] == "2026-11-28" and ninety[-1] == "2026-08-30"
