"""What the caller may do on a case now — one function for the check and for the list. Pure.

``case_action_denial(principal, action, case)`` is the gateway's whole check of a case action:
who may (the role's actions in services/gateway/auth.py ``CASE_ACTION_ROLES`` and the endpoint's
declared relation, services/gateway/access.py) × what the state allows (the contract's rule,
shared/contracts/api/case_actions.py, which dispatch checks again when it commits). It answers
the error to raise, or None. ``allowed_actions`` lists the actions for which it answers None:
every case answer carries that list for the caller, and the pages show exactly those actions.
"""
from __future__ import annotations

from shared.contracts.api.case_actions import ACTION_LABELS, ACTION_STATES, pending_extension, refusal
from shared.contracts.errors import Refused

from .access import Access, command_and, holds
from .auth import APPROVER_RANKS, CASE_ACTION_ROLES, IDENTITY_FIELDS, Forbidden, forbidden_role

# POST /api/cases/<id>/actions/<action>: what it acts on, the relation each role needs
CASE_ACTION = Access("case", command_and(unit="owning_unit", inspector="any"), write=True,
                     identity=IDENTITY_FIELDS, label="案件")


def _rank(role) -> int:
    return APPROVER_RANKS.index(role) if role in APPROVER_RANKS else -1


def case_action_denial(principal, action: str, case: dict):
    """The error that refuses ``principal`` doing ``action`` on ``case`` (dispatch's view), or None."""
    if principal.role not in CASE_ACTION_ROLES.get(action, ()):
        return forbidden_role(principal)
    relation = CASE_ACTION.by_role.get(principal.role)
    if not relation or not holds(relation, principal, case):
        return Forbidden("这不是本单位/本账号可操作的案件 (not yours to act on)")
    reason = refusal(action, case)
    if reason:
        return Refused(reason)
    if action == "decide_extension":
        needed = pending_extension(case).get("required_role")
        if _rank(principal.approval_role) < _rank(needed):
            return Forbidden(f"此次延期需要「{needed}」或更高级别的审批人，当前为「{principal.approval_role}」"
                             f"(needs role {needed} or higher)")
    return None


def allowed_actions(principal, case) -> list[dict]:
    """The actions ``principal`` may do on ``case`` now, in the contract's order, with their labels."""
    if not isinstance(case, dict) or principal is None:
        return []
    return [{"action": action, "path": action.replace("_", "-"), "label": ACTION_LABELS[action]}
            for action in ACTION_STATES if case_action_denial(principal, action, case) is None]


def with_allowed(principal, case):
    """Dispatch's view of a case with ``allowed_actions`` for the caller (None stays None)."""
    if not isinstance(case, dict):
        return case
    return dict(case, allowed_actions=allowed_actions(principal, case))


# ------------------------------------------------------------------ operations
OPERATION_ACTIONS = (("update", "发送更新", "OPERATION_WRITE"), ("cancel", "解除部门/取消行动", "OPERATION_WRITE"),
                     ("close", "结束行动", "OPERATION_WRITE"), ("reply", "答复（接受/拒绝/报到/进展/处置）", "REPLY"))


def operation_actions(principal, operation) -> list[dict]:
    """What ``principal`` may do on ``operation`` now: the endpoints' own declarations (the same
    ``Caller.allows`` their check applies), on an open operation (a closed one takes nothing more;
    leaving is always refused, 事不完，人不走, so it is never listed)."""
    from . import operations_api
    from .access import Caller
    if not isinstance(operation, dict) or principal is None or operation.get("state") != "open":
        return []
    allowed = []
    for action, label, name in OPERATION_ACTIONS:
        declared = getattr(operations_api, name)
        if principal.role in declared.roles and Caller(principal, declared).allows(operation):
            allowed.append({"action": action, "label": label})
    return allowed


def with_operation_actions(principal, operation):
    if not isinstance(operation, dict):
        return operation
    return dict(operation, allowed_actions=operation_actions(principal, operation))
