"""The command centre's work queues over HTTP with the real services: a unit's request appears in
its queue with the actions that decide it; the decision (with the version it saw) empties it; a
stale version is 409 and says why."""
from tests.integration.gateway_auth_support import TIANSHENG_PLACES, platform  # noqa: F401


def test_requests_wait_in_their_queues_until_decided(platform):  # noqa: F811
    a, b = (platform.report(place) for place in TIANSHENG_PLACES[:2])
    for case_id in (a, b):
        platform.dispatched(case_id)
    unit, operator = platform.as_("unit"), platform.as_("operator")

    def act(client, case_id, action, **body):
        return client.post(f"/api/cases/{case_id}/actions/{action}",
                           json={"expected_version": platform.version(case_id), **body})

    assert act(unit, a, "request-extension", reason="需调运机械", extra="1d").status_code == 200
    assert act(unit, b, "request-park", reason="需财政立项").status_code == 200
    queues = operator.get("/api/queues").json()["queues"]
    assert [item["case_id"] for item in queues["extensions"]["items"]] == [a] and queues["extensions"]["count"] == 1
    assert [item["case_id"] for item in queues["parks"]["items"]] == [b]
    item = queues["extensions"]["items"][0]
    assert "decide_extension" in [entry["action"] for entry in item["allowed_actions"]]

    # the decision sends the version it saw; a stale one is refused with the reason, nothing changes
    seen = item["version"]
    assert act(unit, a, "accept").status_code == 200                  # the case moves on meanwhile
    stale = operator.post(f"/api/cases/{a}/actions/decide-extension",
                          json={"expected_version": seen, "approved": True})
    assert stale.status_code == 409 and "请刷新" in stale.json()["error"]["message"]
    fresh = operator.get("/api/queues").json()["queues"]["extensions"]["items"][0]
    decided = operator.post(f"/api/cases/{a}/actions/decide-extension",
                            json={"expected_version": fresh["version"], "approved": True, "reason": "同意"})
    assert decided.status_code == 200, decided.text
    queues = operator.get("/api/queues").json()["queues"]
    assert queues["extensions"]["count"] == 0 and queues["parks"]["count"] == 1
    # the leader and the units have no work queues
    assert platform.as_("leader").get("/api/queues").status_code == 403
    assert unit.get("/api/queues").status_code == 403
