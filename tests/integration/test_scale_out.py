"""Deployment: two instances of dispatch share one queue as competing consumers, the work is
split between them with no double effects; a consumer on the current schema accepts an event
from a newer producer that carries extra fields."""
import os
import subprocess
import sys
from pathlib import Path

from services.dispatch.service import DispatchService
from shared import health
from tests.factories import case_registered
from tests.helpers import publish, wait_until

ROOT = Path(__file__).resolve().parents[2]
N = 120
HANDLED = "handled a message from dispatch.case-registered"


def test_two_instances_split_the_work_with_no_double_effects(test_env, config, db, tmp_path):
    logs = [tmp_path / "dispatch-a.log", tmp_path / "dispatch-b.log"]
    procs = [subprocess.Popen([sys.executable, "-m", "services.dispatch"], cwd=ROOT,
                              env={**os.environ, **test_env, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO",
                                   "MAX_WORKERS": "4"},
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT) for log in logs]
    try:
        wait_until(lambda: health.service_states(db("platform"))["dispatch"]["instances"] == 2,
                   timeout=30, what="both instances up")
        events = [case_registered() for _ in range(N)]
        for event in events:
            publish(config, "intake.events", "case_registered", event)
        cases = db("dispatch").cases
        wait_until(lambda: cases.count_documents({}) == N and cases.count_documents({"_pending": True}) == 0,
                   timeout=60, what="every case dispatched")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    handled = [log.read_text(encoding="utf-8").count(HANDLED) for log in logs]
    assert all(count > 0 for count in handled), f"both instances must take work: {handled}"
    assert sum(handled) == N                               # each message handled once
    docs = list(db("dispatch").cases.find({}))
    assert {doc["_id"] for doc in docs} == {event["payload"]["case_id"] for event in events}
    assert all(doc["_version"] == 1 for doc in docs)


def test_an_event_from_a_newer_producer_is_handled_by_the_current_consumer(container_factory, config, db):
    container_factory(DispatchService, config).start()
    event = case_registered()
    event["schema_version"] = 2
    event["trace"] = {"span": "abc"}                        # a field v1 does not know
    event["payload"]["priority_score"] = 0.93               # a payload field v1 does not know
    event["payload"]["geometry_precision_m"] = 3
    publish(config, "intake.events", "case_registered", event)
    case = wait_until(lambda: db("dispatch").cases.find_one({"_id": event["payload"]["case_id"]}),
                      what="the newer event to be handled")
    assert case["unit_id"] == "street.tianshengjie"


def test_the_quorum_queue_topology_for_a_cluster_applies_on_a_real_broker(config, vhost):
    """QUEUE_TYPE=quorum (the cluster configuration) is accepted by RabbitMQ, retries included.
    Run here on one node; a three-node cluster is configuration only (docs/operations.md)."""
    import requests
    from shared.messaging import topology
    from tests.conftest import MANAGEMENT, MGMT_AUTH
    from tests.helpers import drain, queue_depth
    quorum = dict(config, QUEUE_TYPE="quorum")
    # a fresh vhost's queues were declared classic by the fixture: start from an empty one
    from shared.config import retry_delays
    names = [name for spec in topology.all_queues() for name in (spec.name, f"{spec.name}.dlq")]
    for name in names + [topology.retry_queue_name(delay) for delay in retry_delays(quorum)]:
        requests.delete(f"{MANAGEMENT}/api/queues/{vhost}/{name}", auth=MGMT_AUTH, timeout=10)
    topology.apply(quorum)
    info = requests.get(f"{MANAGEMENT}/api/queues/{vhost}/dispatch.case-registered", auth=MGMT_AUTH,
                        timeout=10).json()
    assert info["type"] == "quorum"
    event = case_registered()
    publish(quorum, "intake.events", "case_registered", event)
    assert queue_depth(quorum, "dispatch.case-registered") == 1
    assert drain(quorum, "dispatch.case-registered")[0][0]["event_id"] == event["event_id"]
