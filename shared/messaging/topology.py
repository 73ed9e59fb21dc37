"""Every exchange, queue, binding, retry and dead-letter queue of the platform, in one place.

Naming says who owns what:
- ``<service>.events``            topic exchange a service publishes its lifecycle events on;
- ``<owner>.<purpose>``           a consumer's queue (``dispatch.case-registered``);
- ``<queue>.dlq``                 that consumer's dead-letter queue;
- ``platform.retry.<ms>ms``       delay queues; after the delay a message returns to its queue;
- ``departments.requests``        platform → department systems, routing key ``<dept>.<kind>``;
- ``departments.replies``         department systems → platform, routing key ``<dept>.<kind>``;
- ``dept.<id>.inbox``             one inbox per department.

``apply()`` declares all of it idempotently. It runs before services start and before tests,
so no event is ever published to an exchange with no queue bound.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kombu import Connection, Exchange, Queue

from ..config import retry_delays
from ..departments import department_ids
from .connection import amqp_connection

DEAD_LETTER_EXCHANGE = "platform.dead-letter"
INBOUND_EXCHANGE = "intake.inbound"
DEPT_REQUESTS = "departments.requests"
DEPT_REPLIES = "departments.replies"

SERVICE_EXCHANGES = {
    "intake": "intake.events",
    "dispatch": "dispatch.events",
    "coordination": "coordination.events",
    "scoring": "scoring.events",
    "participation": "participation.events",
}


@dataclass(frozen=True)
class QueueSpec:
    name: str
    owner: str
    bindings: tuple = ()           # (exchange, routing_key) pairs
    description: str = ""
    dead_letter: bool = True
    extra_arguments: dict = field(default_factory=dict)


# Each owner's consumer queues. Add a queue to its owner's list; every queue gets a DLQ.
def _intake_queues() -> list[QueueSpec]:
    lifecycle = ("case_dispatched", "case_accepted", "case_returned", "case_feedback_given",
                 "case_verified", "case_closed", "case_rework_ordered", "case_parked",
                 "case_unparked", "extension_decided", "case_supervised", "case_escalated")
    return [
        QueueSpec("intake.inbound-reports", "intake",
                  ((INBOUND_EXCHANGE, "report.#"),),
                  "reports from the 12345 hotline bridge, sensors, inspectors, road-office notes"),
        QueueSpec("intake.sensor-readings", "intake",
                  ((INBOUND_EXCHANGE, "reading.#"),),
                  "IoT sensor readings (PM10, noise …); a sustained exceedance becomes a report"),
        QueueSpec("intake.case-lifecycle", "intake",
                  tuple(("dispatch.events", key) for key in lifecycle),
                  "dispatch's case lifecycle: intake's projection of case status (duplicates, "
                  "reopen, Open311 status)"),
        QueueSpec("intake.ownership-disputes", "intake",
                  (("dispatch.events", "case_ownership_disputed"),),
                  "a case returned twice: intake opens a four-level ownership dispute"),
        QueueSpec("notify.reporter-outbox", "intake",
                  (("intake.events", "reporter_notified"),),
                  "notices to the citizens who reported a case (dispatched, closed); stands in for "
                  "the SMS gateway and app push"),
    ]


def _dispatch_queues() -> list[QueueSpec]:
    return [
        QueueSpec("dispatch.case-registered", "dispatch",
                  (("intake.events", "case_registered"),),
                  "new cases to route to their owning unit"),
        QueueSpec("dispatch.case-reopened", "dispatch",
                  (("intake.events", "case_reopened"),),
                  "repeat reports after closing: rework back to the unit"),
        QueueSpec("dispatch.ownership", "dispatch",
                  (("intake.events", "ownership_dispute_opened"), ("intake.events", "ownership_decided")),
                  "ownership disputes and decisions: re-dispatch a case held by the interim owner"),
        QueueSpec("notify.sms-outbox", "dispatch",
                  (("dispatch.events", "owner_notified"),),
                  "notifications to responsible people; stands in for the SMS gateway"),
    ]


def _coordination_queues() -> list[QueueSpec]:
    return [
        QueueSpec("coordination.case-registered", "coordination",
                  (("intake.events", "case_registered"),),
                  "new cases whose class needs joint enforcement"),
        QueueSpec("coordination.department-replies", "coordination",
                  ((DEPT_REPLIES, "#"),),
                  "Ack / Update / Error from department systems"),
    ]


def _scoring_queues() -> list[QueueSpec]:
    lifecycle = tuple((exchange, "#") for exchange in SERVICE_EXCHANGES.values()
                      if exchange != "scoring.events")
    return [
        QueueSpec("scoring.lifecycle-events", "scoring", lifecycle,
                  "every lifecycle event, for the indicators"),
    ]


def _participation_queues() -> list[QueueSpec]:
    return [
        QueueSpec("participation.case-registered", "participation",
                  (("intake.events", "case_registered"),),
                  "new cases: citizen points (积分) and frontage links (门前三包)"),
        # owned by coordination, declared here with the feature it serves (move to
        # _coordination_queues() when convenient): a frontage report enters the shop's history
        QueueSpec("coordination.frontage-reports", "coordination",
                  (("participation.events", "frontage_report_linked"),),
                  "cases on a shop's frontage stretch: they count in the shop's violation history"),
    ]


def _gateway_queues() -> list[QueueSpec]:
    return [
        QueueSpec("gateway.live-events", "gateway",
                  (("dispatch.events", "#"), ("coordination.events", "#"), ("intake.events", "case_registered"),
                   ("intake.events", "ownership_dispute_opened"), ("intake.events", "ownership_decided")),
                  "lifecycle events the gateway streams to the signed-in pages (Server-Sent Events)"),
    ]


def consumer_queues() -> list[QueueSpec]:
    """The platform's own consumer queues (each with a DLQ)."""
    return (_intake_queues() + _dispatch_queues() + _coordination_queues() + _scoring_queues()
            + _participation_queues() + _gateway_queues())


def department_inbox(dept_id: str) -> QueueSpec:
    return QueueSpec(f"dept.{dept_id}.inbox", f"dept.{dept_id}",
                     ((DEPT_REQUESTS, f"{dept_id}.#"),),
                     f"requests from the platform to the {dept_id} department")


def all_queues() -> list[QueueSpec]:
    return consumer_queues() + [department_inbox(dept) for dept in department_ids()]


def queue_spec(name: str) -> QueueSpec:
    for spec in all_queues():
        if spec.name == name:
            return spec
    raise KeyError(f"no queue named {name!r} in the topology")


def retry_queue_name(delay_ms: int) -> str:
    return f"platform.retry.{delay_ms}ms"


def exchanges() -> list[Exchange]:
    names = list(SERVICE_EXCHANGES.values()) + [INBOUND_EXCHANGE, DEPT_REQUESTS, DEPT_REPLIES]
    result = [Exchange(name, type="topic", durable=True) for name in names]
    result.append(Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True))
    return result


def quorum(config: dict) -> bool:
    return config.get("QUEUE_TYPE", "classic") == "quorum"


def replicated_arguments(config: dict, *, dead_letters: bool = False) -> dict:
    """The arguments that make a queue survive the loss of a node (QUEUE_TYPE=quorum): a quorum
    queue on QUORUM_GROUP_SIZE nodes (3; fewer when the cluster has fewer). A queue that
    dead-letters does so at least once (RabbitMQ >= 3.10: the message stays in its queue until
    the dead-letter target confirmed it), which needs ``x-overflow: reject-publish``. Empty for
    classic queues (one node)."""
    if not quorum(config):
        return {}
    arguments = {"x-queue-type": "quorum",
                 "x-quorum-initial-group-size": int(config.get("QUORUM_GROUP_SIZE") or 3)}
    if dead_letters:
        arguments["x-dead-letter-strategy"] = "at-least-once"
        arguments["x-overflow"] = "reject-publish"
    return arguments


def _queue_arguments(config: dict, spec: QueueSpec) -> dict:
    arguments = replicated_arguments(config, dead_letters=spec.dead_letter)
    if spec.dead_letter:
        arguments["x-dead-letter-exchange"] = DEAD_LETTER_EXCHANGE
        arguments["x-dead-letter-routing-key"] = spec.name
    arguments.update(spec.extra_arguments)
    return arguments


def dead_letter_queue_arguments(config: dict) -> dict | None:
    return replicated_arguments(config) or None


def rpc_reply_queue_arguments(config: dict, arguments: dict | None) -> dict:
    """A caller's RPC reply queue: nameko's own arguments (``x-expires``), replicated as well on a
    cluster (a durable classic reply queue is lost to its caller when its node dies)."""
    return {**(arguments or {}), **replicated_arguments(config)}


def retry_queue_arguments(config: dict, delay_ms: int) -> dict:
    """A delay queue: after ``delay_ms`` the broker dead-letters the message to the default
    exchange with its own routing key (the name of the queue it came from)."""
    return {**replicated_arguments(config, dead_letters=True),
            "x-message-ttl": int(delay_ms), "x-dead-letter-exchange": ""}


def rpc_queue_arguments(config: dict) -> dict | None:
    """nameko's ``rpc-<service>`` request queue (declared by shared.messaging.rpc): replicated too,
    so RPC survives the loss of the node that holds it. (Reply queues stay classic: each belongs
    to one connection and is declared again on the node the caller reconnects to.)"""
    return replicated_arguments(config) or None


def kombu_queue(config: dict, spec: QueueSpec) -> Queue:
    """The kombu Queue for a spec, with exactly the arguments ``apply`` declares."""
    by_name = {exchange.name: exchange for exchange in exchanges()}
    bindings = [kombu_binding(by_name[exchange], key) for exchange, key in spec.bindings]
    return Queue(spec.name, bindings=bindings, durable=True,
                 queue_arguments=_queue_arguments(config, spec))


def kombu_binding(exchange, routing_key):
    from kombu import binding
    return binding(exchange, routing_key=routing_key)


def declarations(config: dict) -> list:
    """Everything to declare, in order: exchanges, queues (with bindings), DLQs, retry queues."""
    items: list = list(exchanges())
    dead_letter = Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True)
    for spec in all_queues():
        items.append(kombu_queue(config, spec))
        if spec.dead_letter:
            items.append(Queue(f"{spec.name}.dlq", exchange=dead_letter, routing_key=spec.name,
                               durable=True, queue_arguments=dead_letter_queue_arguments(config)))
    for delay in retry_delays(config):
        retry_exchange = Exchange(retry_queue_name(delay), type="fanout", durable=True)
        items.append(retry_exchange)
        items.append(Queue(retry_queue_name(delay), exchange=retry_exchange, durable=True,
                           queue_arguments=retry_queue_arguments(config, delay)))
    return items


def apply(config: dict, connection: Connection | None = None) -> list[str]:
    """Declare the whole topology (idempotent). Returns the names declared."""
    own = connection is None
    connection = connection or amqp_connection(config["AMQP_URI"])
    declared = []
    try:
        with connection.channel() as channel:
            for item in declarations(config):
                item.maybe_bind(channel)
                item.declare()
                declared.append(item.name)
    finally:
        if own:
            connection.release()
    return declared
