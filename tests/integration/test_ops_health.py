"""Health that sees the queues, on the real broker: `dcgctl health`, `dcgctl queues` and the
gateway's `GET /health` report "degraded" with the reason when a dead-letter queue holds
messages, an inbox or outbox holds messages that nobody consumes, or a backlog passes
QUEUE_BACKLOG_LIMIT (before, all three said "up" while the DLQs and notify.sms-outbox filled)."""
import json

import pytest
import requests

from services.dispatch.service import DispatchService
from services.enforcement_coordination.service import CoordinationService
from services.gateway.service import GatewayService
from services.intake.service import IntakeService
from services.participation.service import ParticipationService
from services.scoring.service import ScoringService
from shared import ops
from shared.cli import main
from tests.conftest import free_port
from tests.helpers import publish, wait_until


def run(capsys, config, *argv):
    code = main(list(argv), config=config)
    return code, capsys.readouterr().out


def reasons_for(capsys, config, queue):
    """dcgctl health --json, once the management API's statistics show the queue flagged."""
    def flagged():
        code, out = run(capsys, config, "health", "--json")
        state = json.loads(out)
        found = [reason for reason in state["reasons"] if reason.startswith(f"{queue}:")]
        return (code, state, found) if found else None
    return wait_until(flagged, timeout=30, interval=1, what=f"{queue} flagged")


def test_dead_letters_make_the_platform_degraded(config, capsys):
    publish(config, "platform.dead-letter", "dispatch.case-registered", {"event_id": "x"}, message_id="x")
    code, state, found = reasons_for(capsys, config, "dispatch.case-registered.dlq")
    assert code == 1 and state["status"] == "degraded"
    assert "dead letters" in found[0]


def test_an_outbox_without_consumer_makes_the_platform_degraded(config, capsys):
    for n in range(3):
        publish(config, "", "notify.sms-outbox", {"n": n})
    code, state, found = reasons_for(capsys, config, "notify.sms-outbox")
    assert code == 1 and "no consumer" in found[0] and "3" in found[0]
    code, out = run(capsys, config, "queues")
    line = next(line for line in out.splitlines() if "notify.sms-outbox" in line)
    assert "⚠" in line and "no consumer" in line and code == 1


def test_a_backlog_past_the_limit_makes_the_platform_degraded(config, capsys):
    config = dict(config, QUEUE_BACKLOG_LIMIT=3)
    for n in range(4):
        publish(config, "", "scoring.lifecycle-events", {"n": n})
    code, state, found = reasons_for(capsys, config, "scoring.lifecycle-events")
    assert "backlog" in found[0] and "3" in found[0]
    grouped = json.loads(run(capsys, config, "queues", "--json")[1])
    row = next(row for row in grouped["scoring"] if row["name"] == "scoring.lifecycle-events")
    assert "backlog" in row["problem"]


@pytest.fixture
def gateway(container_factory, config):
    port = free_port()
    for cls in (IntakeService, DispatchService, CoordinationService, ScoringService, ParticipationService):
        container_factory(cls, config).start()
    container_factory(GatewayService, dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")).start()
    return f"http://127.0.0.1:{port}"


def test_gateway_health_is_degraded_while_an_outbox_fills_with_no_consumer(gateway, config):
    def status(code):
        answer = requests.get(f"{gateway}/health", timeout=15)
        return [answer.json()] if answer.status_code == code else None     # a 503 Response is falsy
    wait_until(lambda: status(200), timeout=20, what="health 200 with every service up")
    for n in range(5):
        publish(config, "", "notify.sms-outbox", {"n": n})
    body = wait_until(lambda: status(503), timeout=30, interval=1, what="health 503")[0]
    assert body["status"] == "degraded"
    assert any(r.startswith("notify.sms-outbox:") and "no consumer" in r for r in body["reasons"])
    assert all(entry["state"] == "up" for entry in body["services"].values())
    assert ops.platform_health(config)["reasons"] == body["reasons"]      # dcgctl says the same
