"""Graduated enforcement (分级执法) — pure rules: the ladder, 首违不罚 and 限期整改.

The ladder: 说服 persuade → 教育 educate → 引导 guide → 警告 warn → 处罚 penalise.

A party is a business (统一社会信用代码, ``licence``), a person (居民身份证号, ``id_card``) or a
vehicle (号牌, ``plate``). Its history is the list of its violations; each violation carries the
step it reached. For a new violation of class C:

- *serious* → 处罚 at once;
- *first* (no violation of C by this party within ``lookback_days``), *minor*, and C on the
  no-penalty list (首违不罚清单) → 首违不罚 (《行政处罚法》第三十三条): corrected on the spot →
  教育 and no penalty; not yet corrected → 说服 and a rectification order (限期整改); corrected by
  the deadline → 教育, no penalty; not corrected → the next step on the ladder;
- otherwise → one step above the highest step the party reached for C in the window, never
  below the severity's start step, capped at 处罚; not corrected on the spot and below 处罚 →
  a rectification order, and not corrected by its deadline → the next step (and a new order,
  until 处罚).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.contracts.parties import (PARTY_KINDS, SEVERITIES, id_card_check, normalise,  # noqa: F401
                                      party_problem, uscc_check)

LADDER = ["persuade", "educate", "guide", "warn", "penalise"]
STEP_NAMES = {"persuade": "说服", "educate": "教育", "guide": "引导", "warn": "警告", "penalise": "处罚"}
ART33 = "《中华人民共和国行政处罚法》第三十三条第一款"


@dataclass
class Policy:
    lookback_days: int = 365
    start_step: dict = field(default_factory=lambda: {"minor": "persuade", "general": "educate",
                                                      "serious": "penalise"})
    rectify_hours: dict = field(default_factory=lambda: {"default": 72})
    no_penalty: dict = field(default_factory=dict)     # class code → note

    @classmethod
    def from_mapping(cls, data: dict) -> "Policy":
        data = data or {}
        start = {"minor": "persuade", "general": "educate", "serious": "penalise", **(data.get("start_step") or {})}
        for severity, step in start.items():
            if step not in LADDER:
                raise ValueError(f"start_step.{severity}: {step!r} is not a ladder step ({', '.join(LADDER)})")
        hours = {"default": 72, **{str(k): v for k, v in (data.get("rectify_hours") or {}).items()}}
        no_penalty = {}
        for entry in data.get("no_penalty_list") or []:
            code = entry["class_code"] if isinstance(entry, dict) else str(entry)
            no_penalty[code] = entry.get("note", "") if isinstance(entry, dict) else ""
        return cls(int(data.get("lookback_days", 365)), start, hours, no_penalty)

    def rectify_period(self, class_code: str, hours: float | None = None) -> timedelta:
        value = hours if hours else self.rectify_hours.get(class_code, self.rectify_hours["default"])
        return timedelta(hours=float(value))


# ------------------------------------------------------------------ parties
# (which numbers are well formed is the contract's: shared/contracts/parties.py)


def party_ref(kind: str, number: str) -> str:
    """A pseudonymous, stable reference: events carry it instead of the licence/ID/plate number."""
    digest = hashlib.sha256(f"{kind}:{normalise(kind, number)}".encode("utf-8")).hexdigest()
    return f"P-{digest[:20]}"


# ------------------------------------------------------------------ decisions
def _index(step: str) -> int:
    return LADDER.index(step)


def prior_violations(history: list[dict], class_code: str, now: datetime, policy: Policy,
                     exclude: str | None = None) -> list[dict]:
    since = now - timedelta(days=policy.lookback_days)
    return [v for v in history if v["class_code"] == class_code and v["at"] >= since
            and v["violation_id"] != exclude]


def decide(history: list[dict], violation: dict, policy: Policy, now: datetime,
           taxonomy_eligible: bool | None = None) -> dict:
    """The step for a new violation. ``violation``: class_code, severity (minor | general |
    serious), corrected (on the spot), violation_id, optional rectify_hours.

    Returns step, exempt (首违不罚 applied), pending_exempt (首违不罚 if corrected in time),
    reason (Chinese, for the officer and the party), basis, prior (count), and ``order``
    ({due_at}) when a rectification order must be issued."""
    code, severity = violation["class_code"], violation["severity"]
    corrected = bool(violation.get("corrected"))
    prior = prior_violations(history, code, now, policy, exclude=violation.get("violation_id"))
    listed = code in policy.no_penalty and taxonomy_eligible is not False
    first = not prior
    result = {"prior": len(prior), "exempt": False, "pending_exempt": False, "order": None, "basis": ""}
    if severity == "serious":
        result.update(step="penalise", reason="情节严重，不适用分级教育，依法予以处罚")
        return result
    if first and severity == "minor" and listed:
        result["basis"] = f"{ART33}；首违不罚清单：{policy.no_penalty.get(code) or code}"
        if corrected:
            result.update(step="educate", exempt=True,
                          reason="首违不罚：初次违法、危害后果轻微并当场改正，予以教育，不予行政处罚")
            return result
        result.update(step="persuade", pending_exempt=True,
                      order={"due_at": now + policy.rectify_period(code, violation.get("rectify_hours"))},
                      reason="初次轻微违法，劝导说服并责令限期整改；按期改正的依法不予处罚（首违不罚），逾期未改正的进入下一执法层级")
        return result
    start = _index(policy.start_step.get(severity, "persuade"))
    last = max((_index(v["step"]) for v in prior if v.get("step") in LADDER), default=-1)
    index = min(max(start, last + 1), len(LADDER) - 1)
    step = LADDER[index]
    why = []
    if prior:
        why.append(f"{policy.lookback_days}天内同类违法已有{len(prior)}次（最高至{STEP_NAMES[LADDER[last]]}）" if last >= 0
                   else f"{policy.lookback_days}天内同类违法已有{len(prior)}次")
    elif severity != "minor":
        why.append("危害后果不属轻微")
    elif not listed:
        why.append("该类违法不在首违不罚清单内")
    result.update(step=step, reason=f"{'；'.join(why) or '依分级执法'}，本次执法层级：{STEP_NAMES[step]}")
    if not corrected and step != "penalise":
        result["order"] = {"due_at": now + policy.rectify_period(code, violation.get("rectify_hours"))}
        result["reason"] += "；责令限期整改，逾期未改正的进入下一执法层级"
    return result


def follow_up(violation: dict, corrected: bool, now: datetime, policy: Policy) -> dict:
    """The rectification check: corrected → closed (and 首违不罚 when it was pending);
    not corrected → the next step, with a new order unless that step is 处罚."""
    if corrected:
        if violation.get("pending_exempt"):
            return {"corrected": True, "step": "educate", "exempt": True, "order": None,
                    "basis": f"{ART33}",
                    "reason": "首违不罚：初次违法、危害后果轻微并在整改期限内改正，予以教育，不予行政处罚"}
        return {"corrected": True, "step": None, "exempt": False, "order": None, "basis": "",
                "reason": "已按期整改"}
    index = min(_index(violation["step"]) + 1, len(LADDER) - 1)
    step = LADDER[index]
    order = None
    reason = f"逾期未改正，执法层级由{STEP_NAMES[violation['step']]}升至{STEP_NAMES[step]}"
    if step != "penalise":
        order = {"due_at": now + policy.rectify_period(violation["class_code"], violation.get("rectify_hours"))}
        reason += "，再次责令限期整改"
    else:
        reason += "，依法予以处罚"
    return {"corrected": False, "step": step, "exempt": False, "order": order, "basis": "", "reason": reason}


# ------------------------------------------------------------------ what a decision records
def _order(violation_id: str, n: int, due_at: datetime, step: str, now: datetime) -> dict:
    return {"order_id": f"{violation_id}-R{n}", "n": n, "due_at": due_at, "step": step,
            "ordered_at": now, "status": "open", "checks": []}


def _decision_event(party: dict, violation: dict, decision_id: str, step: str, exempt: bool,
                    reason: str, basis: str, now: datetime, order_id: str | None) -> tuple:
    return ("enforcement_decided", {
        "decision_id": decision_id, "party_id": party["ref"], "party_kind": party["kind"], "step": step,
        "first_violation_exempt": exempt, "reason": reason, "operation_id": violation.get("operation_id"),
        "case_id": violation.get("case_id"), "at": now, "violation_id": violation["violation_id"],
        "class_code": violation["class_code"], "severity": violation["severity"],
        "prior_violations": violation.get("prior", 0), "order_id": order_id, "basis": basis}, decision_id)


def _order_event(party: dict, violation: dict, order: dict, now: datetime) -> tuple:
    return ("rectification_ordered", {
        "order_id": order["order_id"], "party_id": party["ref"], "due_at": order["due_at"], "at": now,
        "violation_id": violation["violation_id"], "step": order["step"],
        "class_code": violation["class_code"]}, f"{order['order_id']}.ordered")


def order_timer(order: dict, violation_id: str) -> dict:
    return {"id": order["order_id"], "due_at": order["due_at"], "kind": "rectification_check",
            "data": {"violation_id": violation_id, "order_id": order["order_id"]}}


def record_violation(history: list[dict], party: dict, data: dict, policy: Policy, now: datetime,
                     taxonomy_eligible: bool | None) -> tuple[dict, list, list]:
    """The violation record to append to the party's history, the events, and the timers to add.
    ``party``: kind and ref. ``data``: violation_id, class_code, severity, corrected, officer …"""
    decision = decide(history, data, policy, now, taxonomy_eligible)
    violation = {key: data.get(key) for key in ("violation_id", "class_code", "severity", "officer", "note",
                                                "operation_id", "case_id", "rectify_hours")}
    violation.update({"at": now, "corrected_on_spot": bool(data.get("corrected")), "prior": decision["prior"],
                      "step": decision["step"], "exempt": decision["exempt"],
                      "pending_exempt": decision["pending_exempt"], "order": None, "orders": [],
                      "status": "closed", "decisions": []})
    decision_id = f"{violation['violation_id']}.d1"
    events, timers = [], []
    order = None
    if decision["order"]:
        order = _order(violation["violation_id"], 1, decision["order"]["due_at"], decision["step"], now)
        violation.update(order=order, status="rectifying")
        timers.append(order_timer(order, violation["violation_id"]))
    violation["decisions"].append({"decision_id": decision_id, "at": now, "step": decision["step"],
                                   "exempt": decision["exempt"], "reason": decision["reason"],
                                   "basis": decision["basis"], "by": data.get("officer")})
    events.append(_decision_event(party, violation, decision_id, decision["step"], decision["exempt"],
                                  decision["reason"], decision["basis"], now, order and order["order_id"]))
    if order:
        events.append(_order_event(party, violation, order, now))
    return violation, events, timers


def resolve_order(violation: dict, party: dict, corrected: bool, now: datetime, policy: Policy,
                  checked_by: str) -> tuple[dict, list, list]:
    """The follow-up check of the violation's open order. Returns the updated violation, the
    events, and the timers to add (a new order's check)."""
    violation = {**violation, "decisions": list(violation.get("decisions") or []),
                 "orders": list(violation.get("orders") or [])}
    order = {**violation["order"], "status": "corrected" if corrected else "not_corrected",
             "checked_at": now, "checked_by": checked_by}
    outcome = follow_up(violation, corrected, now, policy)
    events = [("rectification_checked", {
        "order_id": order["order_id"], "party_id": party["ref"], "corrected": corrected,
        "next_step": None if corrected else outcome["step"], "at": now, "checked_by": checked_by,
        "violation_id": violation["violation_id"]}, f"{order['order_id']}.checked")]
    violation["orders"].append(order)
    violation.update(order=None, status="closed", pending_exempt=False)
    timers = []
    if outcome["step"]:
        n = len(violation["decisions"]) + 1
        decision_id = f"{violation['violation_id']}.d{n}"
        new_order = None
        if outcome["order"]:
            new_order = _order(violation["violation_id"], order["n"] + 1, outcome["order"]["due_at"],
                               outcome["step"], now)
            violation.update(order=new_order, status="rectifying")
            timers.append(order_timer(new_order, violation["violation_id"]))
        violation.update(step=outcome["step"], exempt=outcome["exempt"])
        violation["decisions"].append({"decision_id": decision_id, "at": now, "step": outcome["step"],
                                       "exempt": outcome["exempt"], "reason": outcome["reason"],
                                       "basis": outcome["basis"], "by": checked_by})
        events.append(_decision_event(party, violation, decision_id, outcome["step"], outcome["exempt"],
                                      outcome["reason"], outcome["basis"], now,
                                      new_order and new_order["order_id"]))
        if new_order:
            events.append(_order_event(party, violation, new_order, now))
    if corrected:
        violation["corrected_at"] = now
    return violation, events, timers


# ------------------------------------------------------------------ 门前三包 (frontage duties)
def frontage_entry(link: dict) -> dict:
    """A case on a shop's frontage stretch, as an entry of the shop's violation history.

    It has no ladder step of its own (no decision was taken on it), but it is a prior violation
    of its class: within ``lookback_days`` the shop's next violation of that class is no longer a
    first one (no 首违不罚), and the ladder starts from the history as usual."""
    return {"violation_id": f"FR-{link['case_id']}", "class_code": link["class_code"], "severity": None,
            "source": "frontage_report", "case_id": link["case_id"], "report_id": link.get("report_id"),
            "link_id": link["link_id"], "shop_id": link["shop_id"], "at": link["at"], "step": None,
            "exempt": False, "pending_exempt": False, "order": None, "orders": [], "status": "reported",
            "decisions": [], "note": "门前三包责任区内被上报并立案"}
