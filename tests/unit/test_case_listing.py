"""The unfiltered case list's page from dispatch's day lists (services/dispatch/listing.py)."""
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.dispatch import listing

T0 = datetime(2026, 11, 30, 15, 30, tzinfo=timezone.utc)


def day_docs(entries):
    days: dict[str, list] = {}
    for case_id, at in entries:
        day, entry = listing.listing(case_id, at)
        days.setdefault(day, []).append(entry)
    return [{"_id": day, "cases": items} for day, items in days.items()]


def test_the_day_is_the_utc_day_of_the_dispatch():
    assert listing.day_key(datetime(2026, 12, 1, 7, 0, tzinfo=timezone(timedelta(hours=8)))) == "2026-11-30"
    assert listing.day_key(datetime(2026, 12, 1, 7, 0)) == "2026-12-01"          # naive: UTC


def test_a_day_is_split_in_shards_by_case_id_and_the_same_case_always_lands_in_the_same_one():
    keys = {listing.listing(f"C{n}", T0)[0] for n in range(400)}
    assert {key.split("#")[0] for key in keys} == {"2026-11-30"}
    assert len(keys) == listing.SHARDS                  # 400 cases of one day spread over every shard
    assert listing.listing("C7", T0)[0] == listing.listing("C7", T0 + timedelta(hours=2))[0]


def test_an_unsharded_day_document_of_an_older_store_still_counts():
    older = {"_id": "2026-11-29", "cases": [{"id": "C9", "at": T0 - timedelta(days=1)}]}
    assert listing.page(day_docs([("C1", T0)]) + [older], 1, 10) == (2, ["C1", "C9"])


def test_newest_first_ties_by_id_and_pages_cut_in_order():
    entries = [("C3", T0), ("C1", T0), ("C2", T0 + timedelta(days=1)), ("C4", T0 - timedelta(days=3))]
    assert listing.page(day_docs(entries), 1, 10) == (4, ["C2", "C1", "C3", "C4"])
    assert listing.page(day_docs(entries), 2, 3) == (4, ["C4"])
    assert listing.page(day_docs(entries), 3, 3) == (4, [])
    assert listing.page([], 1, 20) == (0, [])


ids = st.sampled_from([f"C{n}" for n in range(8)])
moments = st.integers(0, 5 * 24 * 60).map(lambda minutes: T0 + timedelta(minutes=minutes))


@given(st.lists(st.tuples(ids, moments), min_size=0, max_size=20, unique_by=lambda e: e[0]),
       st.lists(st.tuples(st.integers(0, 19), st.integers(1, 600)), max_size=10),
       st.randoms(), st.integers(1, 5))
def test_a_case_listed_again_later_keeps_its_place(cases, repeats, rnd, per_page):
    """A delivery seen twice lists the case again with a later time: the page is unchanged,
    in whatever order the day lists hold their entries."""
    repeated = [(cases[i][0], cases[i][1] + timedelta(seconds=s)) for i, s in repeats if i < len(cases)]
    entries = cases + repeated
    rnd.shuffle(entries)
    expected = [case_id for case_id, _ in sorted(sorted(cases), key=lambda e: e[1], reverse=True)]
    pages = [listing.page(day_docs(entries), number, per_page) for number in range(1, len(cases) // per_page + 3)]
    assert all(total == len(cases) for total, _ in pages)
    assert [case_id for _, page in pages for case_id in page] == expected
