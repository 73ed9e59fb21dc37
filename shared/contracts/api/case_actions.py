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
    # 核实 of a public report (services/dispatch/report_check.py)
    "request_check": ("dispatched", "accepted", "parked"),
    "check_report": ("dispatched", "accepted", "parked", "feedback_given"),
    "cancel": ("dispatched", "accepted", "parked", "feedback_given"),
}

STATE_LABELS = {"dispatched": "已派遣（待签收）", "accepted": "处置中", "parked": "挂账",
                "feedback_given": "已反馈（待核查）", "closed": "已结案", "cancelled": "已作废（不立案）"}
ACTION_LABELS = {"accept": "签收", "return": "回退", "request_extension": "申请延期",
                 "decide_extension": "审批延期", "request_park": "申请挂账", "decide_park": "审批挂账",
                 "unpark": "解除挂账", "report_stage": "阶段报告", "feedback": "处置反馈",
                 "verify": "核查", "set_urgency": "调整紧急程度", "request_check": "发起核实",
                 "check_report": "核实", "cancel": "不立案（作废）"}
assert set(STATE_LABELS) == set(STATES) and set(ACTION_LABELS) == set(ACTION_STATES)


def pending_extension(case: dict) -> dict | None:
    """The extension request of the current assignment awaiting a decision, if any."""
    return next((entry for entry in case.get("extensions") or []
                 if entry.get("state") == "pending" and entry.get("assignment") == case.get("sequence")), None)


def park_requested(case: dict) -> bool:
    return (case.get("park") or {}).get("state") == "requested"


# 核实: the channels whose reports an inspector checks on site (the public's: app/Open311, web, 12345)
CHECKED_CHANNELS = ("open311", "web", "hotline")


def channel(case: dict) -> str | None:
    """The report channel of a case (dispatch's document keeps it in ``case``; its view on top)."""
    return case.get("channel") or (case.get("case") or {}).get("channel")


def open_check(case: dict) -> dict | None:
    """The case's 核实 task awaiting the inspector's answer, if any."""
    check = case.get("check")
    return check if isinstance(check, dict) and check.get("answered_at") is None else None


def found_not_genuine(case: dict) -> bool:
    """The last 核实 answered 不属实 (the centre may then decide 不立案)."""
    check = case.get("check")
    return isinstance(check, dict) and check.get("answered_at") is not None and check.get("genuine") is False


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
    if case.get("state") in states:
        if action == "request_check" and channel(case) not in CHECKED_CHANNELS:
            return (f"只有公众上报（{'、'.join(CHECKED_CHANNELS)}）的案件需要核实，本案来源为 {channel(case)} "
                    f"(only public reports are checked)")
        if action == "request_check" and open_check(case) is not None:
            return "已有待答复的核实任务 (a 核实 task is already open)"
        if action == "check_report" and open_check(case) is None:
            return "没有待答复的核实任务 (no open 核实 task)"
        if action == "cancel" and not found_not_genuine(case):
            return "只有核实为不属实的案件才能不立案 (only a case checked 不属实 may be cancelled)"
    state = case.get("state")
    if state not in states:
        allowed = "、".join(STATE_LABELS[name] for name in states)
        hint = "（请先签收）" if action in ("feedback", "report_stage") else ""
        return (f"案件当前状态为「{STATE_LABELS.get(state, state)}」，只有「{allowed}」的案件才能{what}{hint} "
                f"(not allowed in state {state})")
    return None


def state_allows(action: str, case: dict) -> bool:
    return refusal(action, case) is None
