"""intake's start-up migrations (services/intake/migrations.py), on the real broker and store:
a store saved by an intake before the search keys (no ``dup_cell``, ``report_cases``,
``dispute_cells``, ``received_day``) is still searched right after a restart: an old case is
found as a duplicate, a report whose report document was lost finds its case, a decided dispute
still decides the owner at its place, the Open311 date window lists the old reports."""
from datetime import timedelta

from nameko.standalone.rpc import ClusterRpcProxy

from services.intake import migrations
from services.intake.service import IntakeService
from shared import storage
from tests.integration.intake_support import GAP, INSIDE

NORTH_10M = {"lon": INSIDE["lon"], "lat": INSIDE["lat"] + 0.00009}
GAP_WEST = {"lon": GAP["lon"] - 0.0002, "lat": GAP["lat"]}


def report(location, class_code="E0101", **extra):
    return {"channel": "web", "class_code": class_code, "location": location, "description": "测试", **extra}


def as_saved_by_an_older_intake(store):
    """Take away what this version adds, as if the documents were saved before it."""
    store.cases.update_many({}, {"$unset": {"dup_cell": ""}})
    store.reports.update_many({}, {"$unset": {"received_day": ""}})
    for name in ("report_cases", "dispute_cells", "migrations"):
        store[name].delete_many({})


def test_a_store_saved_before_the_search_keys_is_searched_after_a_restart(container_factory, config, db):
    cfg = dict(config, TIMER_POLL_SECONDS=0.1)
    intake = container_factory(IntakeService, cfg)
    intake.start()
    with ClusterRpcProxy(cfg) as rpc:
        first = rpc.intake.submit_report(report(INSIDE, external_id="OLD-1"))
        gap = rpc.intake.submit_report(report(GAP, "E0506"))
        dispute_id = gap["dispute_id"]
        assert rpc.intake.decide_ownership(dispute_id, {"owner_unit": "street.beiquan",
                                                        "decided_by": "区城管局"})["status"] == "decided"
    intake.stop()
    store = db("intake")
    as_saved_by_an_older_intake(store)
    store.reports.delete_one({"_id": first["report_id"]})        # stopped between the case and the report

    container_factory(IntakeService, cfg).start()                # the migrations run at start
    marked = {doc["_id"] for doc in store.migrations.find()}      # (the timer loop marks its own too)
    assert {name for name, _ in migrations.STEPS} <= marked
    assert store.cases.find_one({"_id": first["case_id"]})["dup_cell"].startswith("E0101:")
    with ClusterRpcProxy(cfg) as rpc:
        again = rpc.intake.submit_report(report(INSIDE, external_id="OLD-1"))          # the channel re-sends
        near = rpc.intake.submit_report(report(NORTH_10M))
        west = rpc.intake.submit_report(report(GAP_WEST, "E0501"))
        now = storage.now_utc()
        listed = rpc.intake.open311_requests({"start": (now - timedelta(hours=1)).isoformat(),
                                              "end": (now + timedelta(minutes=1)).isoformat()})
    assert again["status"] == "registered" and again["case_id"] == first["case_id"]
    assert near["status"] == "duplicate" and near["case_id"] == first["case_id"]
    assert west["owner_unit"] == "street.beiquan" and west["owner_source"] == "ownership_decided"
    ids = {item["service_request_id"] for item in listed["items"]}
    assert {gap["report_id"], first["report_id"], near["report_id"], west["report_id"]} <= ids

    # a start with nothing missing changes nothing (each migration marked as run)
    marked = {doc["_id"]: doc["ran_at"] for doc in store.migrations.find()}
    assert migrations.run(store) == {}
    assert {doc["_id"]: doc["ran_at"] for doc in store.migrations.find()} == marked
