"""The command centre's work queues — pure: which case, dispute or operation waits in which queue.

``GET /api/queues`` (services/gateway/queues_api.py) fetches dispatch's open cases, intake's open
disputes and coordination's open operations, and these rules sort them into the queues the
operator works through, each item one click from its decision (its ``allowed_actions``):

=================  ==========================================  ==============================
queue              holds                                        decided by
=================  ==========================================  ==============================
extensions         a case with an extension request pending     decide-extension
parks              a case with a parking request pending        decide-park
returns            a returned case not yet accepted again       return (to another unit)
disputes           an ownership dispute (确权) still open        the dispute's decision
overdue            an open case past its deadline (督办)         set-urgency, return …
escalations        an overdue case escalated (升级)              set-urgency, return …
silent             an open joint operation in which a           an update, the whistle again
                   department did not answer or check in
=================  ==========================================  ==============================
"""
from __future__ import annotations

from shared.contracts.api.case_actions import park_requested, pending_extension

QUEUES = {"extensions": "延期待审批", "parks": "挂账待审批", "returns": "回退待处理",
          "disputes": "权属争议待裁定", "overdue": "超期与督办", "escalations": "升级案件",
          "silent": "联合行动未响应"}
SILENT_STATES = ("requested", "accepted")          # a department that has not answered / checked in


def escalated(case: dict) -> bool:
    return any(entry.get("type") == "case_escalated" for entry in case.get("history") or [])


def silent_departments(operation: dict) -> list[str]:
    return sorted(dept for dept, state in (operation.get("departments") or {}).items()
                  if state.get("escalated") and state.get("state") in SILENT_STATES)


def sort_into_queues(open_cases: list, overdue_cases: list, disputes: list, operations: list) -> dict:
    """``{queue: {"label", "count", "items"}}``; cases are dispatch's views (with allowed_actions)."""
    queues = {name: [] for name in QUEUES}
    for case in open_cases:
        if pending_extension(case) is not None:
            queues["extensions"].append(case)
        if park_requested(case):
            queues["parks"].append(case)
        if case.get("return_count") and case.get("state") == "dispatched":
            queues["returns"].append(case)
    for case in overdue_cases:
        queues["escalations" if escalated(case) else "overdue"].append(case)
    queues["disputes"] = [dispute for dispute in disputes if dispute.get("state", "open") == "open"]
    for operation in operations:
        silent = silent_departments(operation)
        if operation.get("state") == "open" and silent:
            queues["silent"].append(dict(operation, silent_departments=silent))
    for name in ("extensions", "parks", "returns", "overdue", "escalations"):
        queues[name].sort(key=lambda case: case.get("deadline_utc") or case.get("deadline") or "")
    return {name: {"label": QUEUES[name], "count": len(items), "items": items} for name, items in queues.items()}
