"""The cluster configuration (QUEUE_TYPE=quorum): every queue the platform declares is a quorum
queue on three nodes, and every queue that dead-letters does so at least once. The node lists in
AMQP_URI / RABBIT_MANAGEMENT_URL reach every client (kombu, pika, the management API)."""
import pytest
import requests

from departments.program import node_parameters
from shared import broker_users
from shared.management import Management, vhost_of
from shared.messaging import topology
from shared.messaging.connection import amqp_connection, node_uris

QUORUM = {"QUEUE_TYPE": "quorum", "RETRY_DELAYS_MS": "1000,5000"}
CLUSTER_URI = ("pyamqp://u:p@127.0.0.1:5701/dcg;pyamqp://u:p@127.0.0.1:5702/dcg;"
               "pyamqp://u:p@127.0.0.1:5703/dcg")


def declared_queues(config):
    return [item for item in topology.declarations(config) if hasattr(item, "queue_arguments")]


def test_every_declared_queue_is_quorum_on_three_nodes():
    queues = declared_queues(QUORUM)
    names = {queue.name for queue in queues}
    assert {spec.name for spec in topology.all_queues()} <= names
    assert any(name.endswith(".dlq") for name in names) and any(name.startswith("platform.retry.") for name in names)
    for queue in queues:
        arguments = queue.queue_arguments or {}
        assert arguments.get("x-queue-type") == "quorum", queue.name
        assert arguments.get("x-quorum-initial-group-size") == 3, queue.name
        assert queue.durable and not queue.auto_delete and not queue.exclusive, queue.name


def test_every_queue_that_dead_letters_does_so_at_least_once():
    dead_lettering = [q for q in declared_queues(QUORUM) if "x-dead-letter-exchange" in (q.queue_arguments or {})]
    # every consumer queue (→ its .dlq) and every retry queue (→ back to its queue)
    assert len(dead_lettering) == len(topology.all_queues()) + 2
    for queue in dead_lettering:
        assert queue.queue_arguments["x-dead-letter-strategy"] == "at-least-once", queue.name
        assert queue.queue_arguments["x-overflow"] == "reject-publish", queue.name   # required by 3.10
    retry = next(q for q in dead_lettering if q.name == "platform.retry.1000ms")
    assert retry.queue_arguments["x-message-ttl"] == 1000 and retry.queue_arguments["x-dead-letter-exchange"] == ""


def test_the_rpc_queue_is_replicated_too():
    assert topology.rpc_queue_arguments(QUORUM)["x-queue-type"] == "quorum"
    assert topology.rpc_queue_arguments({"QUEUE_TYPE": "classic"}) is None


def test_classic_queues_keep_their_arguments_unchanged():
    """A queue cannot change its arguments in place: one node (the default) declares as before."""
    for queue in declared_queues({"RETRY_DELAYS_MS": "1000"}):
        arguments = queue.queue_arguments or {}
        assert not {"x-queue-type", "x-dead-letter-strategy", "x-overflow",
                    "x-quorum-initial-group-size"} & set(arguments), queue.name
    assert topology.kombu_queue({}, topology.queue_spec("dispatch.case-registered")).queue_arguments == {
        "x-dead-letter-exchange": "platform.dead-letter", "x-dead-letter-routing-key": "dispatch.case-registered"}


def test_the_group_size_is_a_setting():
    queue = topology.kombu_queue({**QUORUM, "QUORUM_GROUP_SIZE": "5"}, topology.queue_spec("dispatch.case-registered"))
    assert queue.queue_arguments["x-quorum-initial-group-size"] == 5


def test_a_node_list_reaches_kombu_pika_and_the_users_file():
    assert len(node_uris(CLUSTER_URI)) == 3
    connection = amqp_connection(CLUSTER_URI)
    assert connection.alt == node_uris(CLUSTER_URI) and connection.port == 5701
    assert vhost_of(CLUSTER_URI) == "dcg"
    url = broker_users.amqp_url(CLUSTER_URI, "police", "s3cret", "dcg")
    assert url.split(";") == [f"amqp://police:s3cret@127.0.0.1:{port}/dcg" for port in (5701, 5702, 5703)]
    params = node_parameters(url, start=1)          # after a failure: begin one node further
    assert [p.port for p in params] == [5702, 5703, 5701]
    assert {p.credentials.username for p in params} == {"police"} and params[0].heartbeat == 30


def test_the_management_client_moves_to_a_node_that_answers(monkeypatch):
    calls = []

    def request(method, url, **kwargs):
        calls.append(url)
        if url.startswith("http://127.0.0.1:15701"):
            raise requests.ConnectionError("node down")
        answer = requests.Response()
        answer.status_code, answer._content = 200, b"[]"
        return answer

    monkeypatch.setattr(requests, "request", request)
    mgmt = Management("http://127.0.0.1:15701;http://127.0.0.1:15702", "guest", "guest")
    assert mgmt.queues() == []
    assert mgmt.queues() == []
    assert calls == ["http://127.0.0.1:15701/api/queues/%2F", "http://127.0.0.1:15702/api/queues/%2F",
                     "http://127.0.0.1:15702/api/queues/%2F"]      # the answering node comes first now
    with pytest.raises(requests.ConnectionError):
        Management("http://127.0.0.1:15701", "guest", "guest").queues()
