"""Live updates by Server-Sent Events with the real services: a page signed in as the operator
sees a unit's action arrive without asking again; another unit does not; a page that reconnects
with Last-Event-ID gets what happened while it was away."""
import json

import requests

from tests.integration.gateway_auth_support import BEIQUAN_GRID, TIANSHENG_PLACES, place_in, platform  # noqa: F401


def events(platform, role, until_type, case_id, last_event_id=None):  # noqa: F811
    """Read the stream as ``role`` until an event of ``until_type`` on ``case_id`` (or the stream's end)."""
    headers = {"Authorization": f"Bearer {platform.keys[role]}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    seen, current = [], {}
    with requests.get(f"{platform.base}/api/stream", headers=headers, stream=True, timeout=(5, 30)) as answer:
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/event-stream")
        for line in answer.iter_lines(decode_unicode=True):
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                seen.append(current)
                if current.get("event") == "change" and current["data"]["type"] == until_type \
                        and current["data"]["case_id"] == case_id:
                    return seen
                current = {}
    return seen


def test_the_operator_sees_a_units_step_arrive_and_catches_up_after_reconnecting(platform):  # noqa: F811
    case_id = platform.report(TIANSHENG_PLACES[0])
    platform.dispatched(case_id)
    start = events(platform, "operator", "case_dispatched", case_id, last_event_id=0)
    position = start[-1]["id"]
    answer = platform.as_("unit").post(f"/api/cases/{case_id}/actions/accept",
                                       json={"expected_version": platform.version(case_id)})
    assert answer.status_code == 200, answer.text
    # reconnecting after the dispatch: exactly what came since, in order, with its Chinese label
    caught_up = events(platform, "operator", "case_accepted", case_id, last_event_id=position)
    changes = [item for item in caught_up if item.get("event") == "change"]
    assert changes and all(item["id"] > position for item in changes)
    accepted = changes[-1]["data"]
    assert accepted["label"] == "签收" and accepted["at"].endswith("+08:00")
    # the owning unit sees its case's steps; another unit sees none of them
    assert events(platform, "unit", "case_accepted", case_id, last_event_id=0)[-1]["data"]["case_id"] == case_id
    # another unit: its own case's dispatch arrives, nothing of the first case ever does
    theirs = platform.report(place_in(BEIQUAN_GRID))
    platform.dispatched(theirs)
    seen = events(platform, "unit_b", "case_dispatched", theirs, last_event_id=0)
    assert seen[-1]["data"]["case_id"] == theirs
    assert case_id not in json.dumps(seen, ensure_ascii=False)


def test_a_page_catches_up_after_a_gateway_restart_with_what_happened_while_it_was_down(
        container_factory, config, db):
    """The gateway stops; the unit's acceptance happens meanwhile (straight to dispatch); a new
    gateway on the same address answers the page's Last-Event-ID with it."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from services.gateway.service import GatewayService
    from tests.conftest import free_port
    from tests.integration.gateway_auth_support import Platform, backing_services
    port = free_port()
    for cls in backing_services():
        container_factory(cls, dict(config, TIMER_POLL_SECONDS=0.2)).start()
    gateway_config = dict(config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    first = container_factory(GatewayService, gateway_config)
    first.start()
    site = Platform(f"http://127.0.0.1:{port}", db, config)
    case_id = site.report(TIANSHENG_PLACES[1])
    site.dispatched(case_id)
    position = events(site, "operator", "case_dispatched", case_id, last_event_id=0)[-1]["id"]
    first.stop()
    with ClusterRpcProxy(config) as rpc:           # while no gateway runs
        answer = rpc.dispatch.act(case_id, "accept", {"expected_version": site.version(case_id),
                                                      "actor": "天生街道 处置员", "actor_unit": "street.tianshengjie"})
        assert answer["status"] == "ok"
    container_factory(GatewayService, gateway_config).start()
    caught_up = events(site, "operator", "case_accepted", case_id, last_event_id=position)
    assert [item["data"]["type"] for item in caught_up if item.get("event") == "change"][-1] == "case_accepted"
