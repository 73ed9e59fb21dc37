"""The platform on a real three-node RabbitMQ cluster (issue 17): clt-a/b/c on 5751-5753, started
by deploy/rabbit_nodes.py for this module and stopped afterwards.

- the quorum topology applies on it, and every queue is a quorum queue with three members
  (dead-letter and retry queues included; the ones that dead-letter do so at least once);
- failover for real: the dispatch service (a subprocess) and a confirming publisher are both
  connected to clt-a, which also leads every queue; clt-a is SIGKILLed in the middle of the
  stream. The publisher sends again every event it got no confirm for (and, to be sure, the
  last ones before the kill), the service reconnects to another node, and in the end every
  event produced exactly one case, each applied once, and dispatch's own events (its outbox
  relay failed over too) all reached the queues downstream.
"""
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from deploy.rabbit_nodes import Cluster, port_open
from shared.config import load_config
from shared.management import Management
from shared.messaging import topology
from shared.messaging.publisher import ConfirmedPublisher
from shared.storage import mongo_client
from tests.factories import case_registered
from tests.helpers import drain, wait_until

ROOT = Path(__file__).resolve().parents[2]
NAMES, FIRST_PORT = ("clt-a", "clt-b", "clt-c"), 5751
N, KILL_AT, RESEND = 120, 40, 10


@pytest.fixture(scope="module")
def cluster():
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        pytest.fail("the cluster tests need RabbitMQ's rabbitmq-server and rabbitmqctl "
                    "(apt-get install -y rabbitmq-server); they start clt-a/b/c on 5751-5753 themselves")
    group = Cluster(NAMES, FIRST_PORT)
    for node in group.nodes:                 # a run killed half-way may have left them
        if not port_open(node.port):
            shutil.rmtree(node.home, ignore_errors=True)
    try:
        group.start()
    except Exception as exc:  # noqa: BLE001
        group.stop()
        pytest.fail(f"the three test nodes clt-a/b/c (5751-5753) did not start and join: {exc} "
                    f"(logs in var/rabbit/clt-*/log)")
    yield group
    # SIGKILL and forget: a clean stop of a cluster takes longer than the tests, and the next
    # run starts from empty folders (the nodes join afresh)
    for node in group.nodes:
        node.kill()
        shutil.rmtree(node.home, ignore_errors=True)


@pytest.fixture
def cluster_config(cluster, store_uri):
    """A fresh vhost on the cluster, the quorum topology applied through clt-a."""
    vhost = f"dcg-clt-{uuid.uuid4().hex[:8]}"
    mgmt = Management(";".join(n.management_url for n in cluster.nodes), "guest", "guest", vhost)
    mgmt.put_vhost(vhost)
    mgmt.put_permissions(vhost, "guest", {"configure": ".*", "write": ".*", "read": ".*"})
    env = {"AMQP_URI": cluster.amqp_uri(vhost=quote(vhost, safe="")), "QUEUE_TYPE": "quorum",
           "RABBIT_MANAGEMENT_URL": ";".join(n.management_url for n in cluster.nodes),
           "MONGO_URI": store_uri, "DB_PREFIX": f"c{uuid.uuid4().hex[:8]}_", "RETRY_DELAYS_MS": "200,400",
           "OUTBOX_POLL_SECONDS": "0.2", "OUTBOX_LEASE_SECONDS": "2", "HEARTBEAT_SECONDS": "0.5"}
    config = load_config(environ={**os.environ, **env})
    topology.apply(config)
    yield config, env, mgmt            # the vhost goes with the nodes' folders at the end
    client = mongo_client(store_uri)
    try:
        for name in client.list_database_names():
            if name.startswith(env["DB_PREFIX"]):
                client.drop_database(name)
    finally:
        client.close()


def test_every_queue_is_a_quorum_queue_on_three_nodes(cluster_config):
    config, _, mgmt = cluster_config
    queues = {q["name"]: q for q in mgmt.queues()}
    expected = {spec.name for spec in topology.all_queues()}
    expected |= {f"{name}.dlq" for name in expected}
    expected |= {topology.retry_queue_name(delay) for delay in (200, 400)}
    assert expected <= set(queues)
    for name in expected:
        queue = queues[name]
        assert queue["type"] == "quorum", name
        assert len(queue["members"]) == 3, (name, queue["members"])
        if "x-dead-letter-exchange" in queue["arguments"]:
            assert queue["arguments"]["x-dead-letter-strategy"] == "at-least-once", name


def connected_node(mgmt) -> set:
    return {c["node"] for c in mgmt.get("connections") if c.get("vhost") == mgmt.vhost}


def test_sigkill_of_the_node_everything_is_connected_to_loses_nothing_and_applies_nothing_twice(
        cluster, cluster_config, tmp_path):
    config, env, mgmt = cluster_config
    log_path = tmp_path / "dispatch.log"
    service = subprocess.Popen([sys.executable, "-m", "services.dispatch"], cwd=ROOT,
                               env={**os.environ, **env, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO"},
                               stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    publisher = ConfirmedPublisher(config["AMQP_URI"])
    events = [case_registered() for _ in range(N)]
    resent = 0
    try:
        wait_until(lambda: any(q["name"] == "dispatch.case-registered" and q.get("consumers")
                               for q in mgmt.queues()), timeout=60, what="dispatch consuming on the cluster")
        assert connected_node(mgmt) == {"clt-a@localhost"}          # service and publisher on clt-a
        leaders = {q["name"]: q.get("leader") for q in mgmt.queues()}
        assert leaders["dispatch.case-registered"] == "clt-a@localhost"
        def publish_until_confirmed(event):
            nonlocal resent
            deadline = time.time() + 60
            while True:                       # a publish that got no confirm is sent again
                try:
                    return publisher.publish("intake.events", "case_registered", event,
                                             message_id=event["event_id"])
                except Exception:  # noqa: BLE001 - connection lost, or nacked while a leader is elected
                    resent += 1
                    assert time.time() < deadline, "no node took the publish for 60 s"
                    time.sleep(0.2)

        for number, event in enumerate(events):
            if number == KILL_AT:
                cluster.node("clt-a").kill()                       # SIGKILL, as a crash would
                for earlier in events[number - RESEND:number]:     # as if their confirms were lost
                    publish_until_confirmed(earlier)
                    resent += 1
            publish_until_confirmed(event)
        assert "clt-a@localhost" not in connected_node(mgmt)
        client = mongo_client(config["MONGO_URI"])
        cases = client[f"{config['DB_PREFIX']}dispatch"].cases
        wait_until(lambda: cases.count_documents({}) == N and cases.count_documents({"_pending": True}) == 0,
                   timeout=90, interval=0.5, what="every case dispatched after the failover")
        docs = list(cases.find({}, {"_version": 1}))
        client.close()
    finally:
        publisher.close()
        service.terminate()
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
    assert resent >= RESEND
    assert {doc["_id"] for doc in docs} == {event["payload"]["case_id"] for event in events}   # nothing lost
    assert all(doc["_version"] == 1 for doc in docs)                                         # none twice
    # dispatch's relay published each case's events with confirms across the failover too
    dispatched = {body["payload"]["case_id"] for body, _ in drain(config, "intake.case-lifecycle")
                  if isinstance(body, dict) and body.get("type") == "case_dispatched"}
    assert dispatched == {event["payload"]["case_id"] for event in events}
