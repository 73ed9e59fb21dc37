"""The broker goes away and comes back.

- A service answering an RPC at that moment stays alive and answers again once the broker is
  back (nameko 2's own ``@rpc`` lets the failed reply kill the whole service).
- Meanwhile the gateway answers reports with a clear 503, and takes them again afterwards; the
  report then goes all the way to dispatch.

The outage is the test's vhost deleted and created again (its connections are closed, new ones
refused), then the topology applied as the operator would after a broker rebuild.
"""
from urllib.parse import quote

import eventlet
import requests
from eventlet.event import Event
from nameko.standalone.rpc import ClusterRpcProxy

from shared.messaging import topology
from shared.messaging.rpc import rpc
from tests.conftest import MANAGEMENT, MGMT_AUTH
from tests.integration.gateway_auth_support import INSIDE, platform  # noqa: F401  (fixture)
from tests.helpers import wait_until

STARTED = Event()
GATE = Event()


class Answering:
    name = "outage_toy"

    @rpc
    def slow_echo(self, value):
        if value == "hold":
            STARTED.send(True)
            GATE.wait()
        return value


def _vhost(vhost, method):
    quoted = quote(vhost, safe="")
    requests.request(method, f"{MANAGEMENT}/api/vhosts/{quoted}", auth=MGMT_AUTH, timeout=30).raise_for_status()
    if method == "PUT":
        requests.put(f"{MANAGEMENT}/api/permissions/{quoted}/{MGMT_AUTH[0]}", auth=MGMT_AUTH, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()


def test_reply_that_cannot_be_sent_does_not_kill_the_service(container_factory, config, vhost):
    global STARTED, GATE
    STARTED, GATE = Event(), Event()
    container = container_factory(Answering, config)
    container.start()

    def call_and_wait():
        try:
            with ClusterRpcProxy(config, timeout=60) as proxy:
                proxy.outage_toy.slow_echo("hold")
        except Exception:  # noqa: BLE001 - this caller loses its broker; it does not matter here
            pass

    caller = eventlet.spawn(call_and_wait)
    STARTED.wait()                       # the service is working on the call …
    _vhost(vhost, "DELETE")              # … when the broker goes away under it
    GATE.send(True)
    wait_until(lambda: not container._worker_threads, what="the worker to finish", timeout=60)
    caller.kill()

    assert not container._died.ready(), "the service died because its reply could not be sent"

    _vhost(vhost, "PUT")                 # the broker is back (empty: the service redeclares)

    def answers():
        try:
            with ClusterRpcProxy(config, timeout=5) as proxy:
                return proxy.outage_toy.slow_echo("again") == "again"
        except Exception:  # noqa: BLE001 - still reconnecting
            return False
    assert wait_until(answers, what="an answer after the broker came back", timeout=90)
    assert not container._died.ready()


def test_gateway_answers_503_while_the_broker_is_away_then_takes_reports_again(platform, config, vhost):
    operator = platform.as_("operator")
    platform.dispatched(platform.report(INSIDE))          # the platform works before the outage
    report = {"class_code": "E0101", "location": INSIDE, "address": "测试地址", "external_id": "outage-1",
              "channel": "web", "description": "路口暴露垃圾约2平方米", "attributes": {"area_m2": 2}}

    _vhost(vhost, "DELETE")
    answer = operator.post("/api/reports", json=report)
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unavailable" and "稍后重试" in error["message"]

    _vhost(vhost, "PUT")
    topology.apply(config)

    def accepted():
        answer = operator.post("/api/reports", json=report)
        return answer.json() if answer.status_code == 201 else None
    body = wait_until(accepted, what="the gateway to take reports again", timeout=90, interval=1)
    assert body["status"] in ("registered", "duplicate")
    platform.dispatched(body["case_id"])
