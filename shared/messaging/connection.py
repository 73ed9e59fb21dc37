"""One broker or a cluster: the node lists in AMQP_URI and RABBIT_MANAGEMENT_URL.

On a cluster, AMQP_URI lists every node in kombu's failover form, separated by ``;``::

    pyamqp://u:p@10.0.0.1:5672/%2F;pyamqp://u:p@10.0.0.2:5672/%2F;pyamqp://u:p@10.0.0.3:5672/%2F

kombu (and so nameko: its consumers, RPC and event dispatch all build a ``kombu.Connection``
from the whole string) connects to the first node that answers and, when that node dies, moves
round-robin to the next one on reconnecting. Everything in the platform that reads a part of
the URI (user, vhost) or hands it to another client (pika for the department programs, the
management API) goes through these helpers, so a list works everywhere a single URI does.
RABBIT_MANAGEMENT_URL may list several management URLs the same way (``;`` or ``,``).
"""
from __future__ import annotations

import re

from kombu import Connection

FAILOVER_STRATEGY = "round-robin"


def node_uris(uri: str) -> list[str]:
    """The node URLs of a (possibly ';'- or ','-separated) AMQP or management URL list."""
    return [part.strip() for part in re.split(r";|,(?=\s*[a-z][a-z0-9+.-]*://)", str(uri or "")) if part.strip()]


def plain_amqp(node: str) -> str:
    """kombu's ``pyamqp://`` as the ``amqp://`` other clients take (the same wire protocol)."""
    return node.replace("pyamqp://", "amqp://", 1)


def first_uri(uri: str) -> str:
    """The first node's URL: its user, password and vhost are those of every node."""
    nodes = node_uris(uri)
    return nodes[0] if nodes else str(uri)


def is_cluster(uri: str) -> bool:
    return len(node_uris(uri)) > 1


def amqp_connection(uri: str, **kwargs) -> Connection:
    """A kombu Connection over every listed node, failing over round-robin."""
    return Connection(";".join(node_uris(uri)), failover_strategy=FAILOVER_STRATEGY, **kwargs)


def map_nodes(uri: str, change) -> str:
    """Apply ``change`` to each node URL and join them again (e.g. other credentials)."""
    return ";".join(change(node) for node in node_uris(uri))


def pika_parameters(uri: str, start: int = 0, heartbeat: int | None = None) -> list:
    """For the platform's own pika processes (the SMS sender): one ``pika.URLParameters`` per
    node, beginning at node ``start`` (the one after the node that failed last); pika's
    BlockingConnection tries them in turn. (The department program has its own copy on purpose:
    a department runs it with pika alone, without the platform's code.)"""
    import pika
    nodes = [plain_amqp(node) for node in node_uris(uri)]
    params = []
    for node in nodes[start % len(nodes):] + nodes[:start % len(nodes)]:
        one = pika.URLParameters(node)
        one.connection_attempts = 1
        if heartbeat is not None:
            one.heartbeat = heartbeat
        params.append(one)
    return params
