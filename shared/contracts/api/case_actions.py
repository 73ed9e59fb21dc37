"""What a case's state allows — pure, one owner for the rule and for its words.

Dispatch refuses an action its case's state does not allow (services/dispatch/actions.py checks
``ACTION_STATES``); the gateway lists, on every case answer, the actions the caller may do now
(services/gateway/allowed.py: this rule × the gateway's access declarations). The pages show
exactly that list, with the labels below: one vocabulary for states and actions, API and pages.
"""
from __future__ import annotations

from .dispatch import STATES

# the states in which each action is allowed (dispatch's rule)
ACTION_STATES = {
    "accept": ("dispatched",),
    "return": ("dispatched", "accepted"),
    "request_extension": ("dispatched", "accepted"),
    "decide_extension": ("dispatched", "accepted"),
    "request_park": ("dispatched", "accepted"),
    "decide_park": ("dispatched", "accepted"),
    "unpark": ("parked",),
    "report_stage": ("accepted",),
    "feedback": ("accepted",),
    "verify": ("feedback_given",),
    "set_urgency": ("dispatched", "accepted"),
}

STATE_LABELS = {"dispatched": "已派遣（待签收）", "accepted": "处置中", "parked": "挂账",
                "feedback_given": "已反馈（待核查）", "closed": "已结案"}
ACTION_LABELS = {"accept": "签收", "return": "回退", "request_extension": "申请延期",
                 "decide_extension": "审批延期", "request_park": "申请挂账", "decide_park": "审批挂账",
                 "unpark": "解除挂账", "report_stage": "阶段报告", "feedback": "处置反馈",
                 "verify": "核查", "set_urgency": "调整紧急程度"}
assert set(STATE_LABELS) == set(STATES) and set(ACTION_LABELS) == set(ACTION_STATES)


def pending_extension(case: dict) -> dict | None:
    """The extension request of the current assignment awaiting a decision, if any."""
    return next((entry for entry in case.get("extensions") or []
                 if entry.get("state") == "pending" and entry.get("assignment") == case.get("sequence")), None)


def park_requested(case: dict) -> bool:
    return (case.get("park") or {}).get("state") == "requested"


def refusal(action: str, case: dict) -> str | None:
    """Why the case (dispatch's document or its view) does not allow ``action`` now; None: it does."""
    states = ACTION_STATES.get(action)
    if states is None:
        return f"未知的操作 {action} (unknown action)"
    what = ACTION_LABELS[action]
    if action == "decide_extension" and pending_extension(case) is None:
        return "没有待审批的延期申请 (no pending extension request)"
    if action == "decide_park" and not park_requested(case):
        return "没有待审批的挂账申请 (no pending parking request)"
    if action == "request_extension" and pending_extension(case) is not None and case.get("state") in states:
        return "已有待审批的延期申请 (an extension request is already pending)"
    if action == "request_park" and park_requested(case) and case.get("state") in states:
        return "已有待审批的挂账申请 (a parking request is already pending)"
    state = case.get("state")
    if state not in states:
        allowed = "、".join(STATE_LABELS[name] for name in states)
        hint = "（请先签收）" if action in ("feedback", "report_stage") else ""
        return (f"案件当前状态为「{STATE_LABELS.get(state, state)}」，只有「{allowed}」的案件才能{what}{hint} "
                f"(not allowed in state {state})")
    return None


def state_allows(action: str, case: dict) -> bool:
    return refusal(action, case) is None
