"""allowed_actions: the actions a caller may do on a case now — the same check the action endpoint
applies (services/gateway/allowed.py), over the state rule dispatch refuses by
(shared/contracts/api/case_actions.py)."""
import pytest

from services.dispatch import rules
from services.gateway import auth
from services.gateway.allowed import allowed_actions, case_action_denial
from shared.contracts.api.case_actions import ACTION_STATES, refusal
from shared.contracts.api.dispatch import STATES


UNIT = auth.Principal("k1", "天生街道 处置员", "unit", unit_id="street-a")
OTHER_UNIT = auth.Principal("k2", "另一街道", "unit", unit_id="street-b")
OPERATOR = auth.Principal("k3", "值班员", "operator")                 # approves as centre
ADMIN = auth.Principal("k4", "管理员", "admin")                       # approves as leader
LEADER = auth.Principal("k5", "区领导", "leader")
INSPECTOR = auth.Principal("k6", "采集员", "inspector", person_id="P001")
PARTNER = auth.Principal("k7", "公安", "partner", department="police")


def case(state="dispatched", **extra):
    return {"case_id": "C1", "version": 3, "state": state, "unit_id": "street-a", "sequence": 1, **extra}


def names(principal, doc):
    return [entry["action"] for entry in allowed_actions(principal, doc)]


def test_the_owning_unit_may_accept_return_and_ask_on_a_dispatched_case_nothing_else():
    assert names(UNIT, case()) == ["accept", "return", "request_extension", "request_park"]
    assert names(UNIT, case("accepted")) == ["return", "request_extension", "request_park",
                                             "report_stage", "feedback"]
    assert names(UNIT, case("feedback_given")) == []


def test_another_unit_the_leader_and_a_partner_may_do_nothing():
    for principal in (OTHER_UNIT, LEADER, PARTNER):
        for state in STATES:
            assert names(principal, case(state)) == []


def test_the_inspector_only_verifies_and_only_a_case_awaiting_verification():
    assert names(INSPECTOR, case("feedback_given")) == ["verify"]
    assert names(INSPECTOR, case("accepted")) == []


def test_approvals_are_listed_only_while_a_request_awaits_and_for_a_high_enough_rank():
    pending = {"state": "pending", "assignment": 1, "required_role": "centre", "number": 1}
    assert "decide_extension" not in names(OPERATOR, case("accepted"))
    assert "decide_extension" in names(OPERATOR, case("accepted", extensions=[pending]))
    second = dict(pending, required_role="leader", number=2)
    assert "decide_extension" not in names(OPERATOR, case("accepted", extensions=[second]))
    assert "decide_extension" in names(ADMIN, case("accepted", extensions=[second]))
    # a request from an earlier assignment is not pending any more
    assert "decide_extension" not in names(OPERATOR, case("accepted", extensions=[dict(pending, assignment=0)]))
    assert "decide_park" in names(OPERATOR, case("accepted", park={"state": "requested"}))
    assert "decide_park" not in names(OPERATOR, case("accepted", park={"state": "refused"}))
    assert names(OPERATOR, case("parked")) == ["unpark"]
    # the unit may not ask again while its request awaits
    assert "request_park" not in names(UNIT, case("accepted", park={"state": "requested"}))
    assert "request_extension" not in names(UNIT, case("accepted", extensions=[pending]))


def test_the_list_is_exactly_the_actions_the_check_lets_through():
    docs = [case(state) for state in STATES] + [case("accepted", park={"state": "requested"})]
    for principal in (UNIT, OTHER_UNIT, OPERATOR, ADMIN, LEADER, INSPECTOR, PARTNER):
        for doc in docs:
            listed = set(names(principal, doc))
            for action in ACTION_STATES:
                assert (action in listed) == (case_action_denial(principal, action, doc) is None)


def test_a_foreign_case_is_forbidden_not_merely_unlisted():
    assert isinstance(case_action_denial(OTHER_UNIT, "accept", case()), auth.Forbidden)


@pytest.mark.parametrize("action", sorted(ACTION_STATES))
@pytest.mark.parametrize("state", STATES)
def test_dispatch_refuses_by_the_same_rule_with_the_same_words(action, state):
    doc = {"_id": "C1", "_version": 3, "state": state, "unit_id": "street-a", "sequence": 1,
           "extensions": [], "park": None}
    reason = refusal(action, doc)
    if reason is None:
        return                                   # the state allows it: other rules decide
    with pytest.raises(rules.Refused) as refused:
        rules.apply_action(doc, action, {"actor_unit": "street-a", "actor": "x"}, None)
    assert str(refused.value) == reason


def test_operation_actions_follow_the_endpoints_declarations_and_stop_when_closed():
    from services.gateway.allowed import operation_actions
    operation = {"_id": "OP-1", "state": "open", "lead_unit": "street-a", "requested_by": "street-a",
                 "departments": {"police": {"state": "requested"}}, "case": {"owner_unit": "street-a"}}
    police = auth.Principal("k8", "公安联络员", "partner", department="police")
    acts = lambda who, op=operation: [entry["action"] for entry in operation_actions(who, op)]  # noqa: E731
    assert acts(UNIT) == ["update", "cancel", "close"]              # the lead
    assert acts(OPERATOR) == ["update", "cancel", "close"]          # the command centre
    assert acts(police) == ["reply"] and acts(PARTNER) == ["reply"]
    assert acts(OTHER_UNIT) == [] and acts(LEADER) == []
    assert acts(UNIT, dict(operation, state="closed")) == []
