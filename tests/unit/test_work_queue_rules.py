"""The command centre's work queues (services/gateway/queues.py): each case, dispute and operation
in the queue where its decision waits."""
from services.gateway.queues import QUEUES, sort_into_queues


def case(case_id, state="accepted", **extra):
    return {"case_id": case_id, "state": state, "sequence": 1, "deadline_utc": f"2026-12-0{case_id[-1]}", **extra}


def ids(queue):
    return [item.get("case_id") or item.get("_id") or item.get("operation_id") for item in queue["items"]]


def test_each_item_waits_in_the_queue_of_its_decision_with_a_count():
    pending = {"state": "pending", "assignment": 1, "required_role": "centre"}
    queues = sort_into_queues(
        [case("C2", extensions=[pending]), case("C1", extensions=[pending]),
         case("C3", park={"state": "requested"}), case("C4", park={"state": "refused"}),
         case("C5", "dispatched", return_count=1), case("C6", "accepted", return_count=1)],
        [case("C7", history=[{"type": "case_supervised"}]), case("C8", history=[{"type": "case_escalated"}])],
        [{"_id": "D1", "state": "open"}, {"_id": "D2", "state": "decided"}],
        [{"operation_id": "J1", "state": "open", "departments": {
            "police": {"state": "requested", "escalated": ["acceptance"]},
            "environment": {"state": "on_site", "escalated": []}}},
         {"operation_id": "J2", "state": "open", "departments": {"police": {"state": "on_site", "escalated": ["checkin"]}}}])
    assert set(queues) == set(QUEUES)
    assert ids(queues["extensions"]) == ["C1", "C2"]                 # the nearest deadline first
    assert ids(queues["parks"]) == ["C3"]
    assert ids(queues["returns"]) == ["C5"]                          # accepted again: no longer waiting
    assert ids(queues["overdue"]) == ["C7"] and ids(queues["escalations"]) == ["C8"]
    assert ids(queues["disputes"]) == ["D1"]
    assert ids(queues["silent"]) == ["J1"] and queues["silent"]["items"][0]["silent_departments"] == ["police"]
    assert {name: queue["count"] for name, queue in queues.items()} == {
        "extensions": 2, "parks": 1, "returns": 1, "disputes": 1, "overdue": 1, "escalations": 1, "silent": 1}
    assert queues["parks"]["label"] == "挂账待审批"
