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
