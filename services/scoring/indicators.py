"""Scoring rules, part 2 — pure: from facts to indicators, composite score, ranking, exposure.

Every numerator and denominator is documented in docs/scoring.md; in short, for a period P
(whole local days, end exclusive) and E = min(end of P, as_of):

cohorts
- report cohort   reports received in P                      → 受理数, 立案率, inspectors' 有效上报率
- case cohort     cases registered in P                      → 立案数, 派遣数, 派遣率
- due cohort      cases whose due date falls in P and ≤ as_of → 应结案数 and the rates over it;
                  due date = min(deadline of the last dispatch, first closing)
- returns / dispatches / verifications / 督办 / callbacks: the ones that happened in P
- partner requests sent in P

state "as of E" for a due case: closed (a closing before E not undone by a reopening before E),
按期 (closed, marked on time by dispatch, and never extended nor parked before E), 返工 (a rework
ordered before E), 延期 (an extension approved before E), 挂账 (parked before E).

Attribution: a case counts for the unit that has it (the last dispatch, or the unit that
closed it); a return counts for ``caused_by``; streets and towns also get the reports and
registrations of their territory (立案率 / 派遣率 are regional indicators).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone

from shared import on_time
from shared.contracts.base import local_times

from . import checks
from .periods import Period, local_iso

# code → (中文, numerator count, denominator count)
INDICATORS = {
    "filing_rate": ("立案率", "filed_reports", "accepted_reports"),
    "dispatch_rate": ("派遣率", "dispatched_cases", "registered_cases"),
    "closure_rate": ("结案率", "closed", "due"),
    "ontime_rate": ("按期结案率", "closed_on_time", "due"),
    "rework_rate": ("返工率", "reworked", "due"),
    "extension_rate": ("延期率", "extended", "due"),
    "return_rate": ("回退率", "returns_caused", "dispatches_received"),
    "response_rate": ("响应率", "responded", "callbacks"),
    "resolution_rate": ("解决率", "resolved", "responded"),
    "satisfaction_rate": ("满意率", "satisfied", "responded"),
    # 社区评议 (Linping): Σ scores / (100 × reviews) — the average score on a 0–1 scale
    "community_review_rate": ("社区评议得分率", "review_points", "review_max"),
}
INSPECTOR_INDICATORS = {
    "filing_rate": ("立案率", "filed_reports", "reports"),
    "valid_report_rate": ("有效上报率", "valid_reports", "reports"),
    "verify_ontime_rate": ("按期核查率", "verified_on_time", "verifications"),
}
PARTNER_INDICATORS = {
    "accept_ontime_rate": ("按时受理率", "accepted_on_time", "requests"),
    "checkin_ontime_rate": ("按时报到率", "checked_in_on_time", "requests"),
    "disposition_rate": ("处置率", "disposed", "requests"),
}
COUNT_LABELS = {
    "accepted_reports": "受理数", "filed_reports": "立案数(上报)", "registered_cases": "立案数",
    "dispatched_cases": "派遣数", "due": "应结案数", "closed": "结案数",
    "closed_on_time": "按期结案数", "reworked": "返工数", "extended": "延期数", "parked": "挂账数",
    "returns_caused": "回退数", "dispatches_received": "收到派遣数", "callbacks": "回访数",
    "responded": "响应数", "resolved": "解决数", "satisfied": "满意数", "supervised": "督办数",
    "exposed": "曝光数", "overdue_closed": "超期处置数", "overdue_open": "超期未处置数",
    "decided": "核实数(受理)", "decided_on_time": "按期核实数", "reports": "上报数", "valid_reports": "有效上报数",
    "verifications": "核查数", "verified_on_time": "按期核查数", "requests": "请求数",
    "accepted_on_time": "按时受理数", "checked_in_on_time": "按时报到数", "disposed": "处置数",
    "rejected": "拒绝数",
    "reviews": "社区评议数", "review_points": "社区评议总分", "review_max": "社区评议满分",
}
UNIT_COUNTS = ("accepted_reports", "filed_reports", "registered_cases", "dispatched_cases", "due",
               "closed", "closed_on_time", "reworked", "extended", "parked", "returns_caused",
               "dispatches_received", "callbacks", "responded", "resolved", "satisfied",
               "supervised", "exposed", "reviews", "review_points", "review_max",
               "overdue_closed", "overdue_open")
# The composite scores "good" rates as they are and "bad" rates as 1 − rate.
INVERTED = {"rework_rate", "extension_rate"}
VALID_OUTCOMES = {"registered", "duplicate", "reopened"}
TERRITORIAL_TYPES = {"street", "town", "park"}     # regions (区域): the standard's 街道、镇、园区


def unit_table(settings: dict) -> dict:
    """INDICATORS with the configured denominator of 返工率 (standard.rework_denominator)."""
    denominator = settings.get("standard", {}).get("rework_denominator", "due")
    table = dict(INDICATORS)
    table["rework_rate"] = ("返工率", "reworked", denominator)
    return table


def _utc(moment):
    if moment is None:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _before(moment, limit) -> bool:
    return moment is not None and _utc(moment) < limit


def rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def indicator_block(counts: dict, table: dict) -> dict:
    out = {}
    for code, (label, num, den) in table.items():
        n, d = counts.get(num, 0), counts.get(den, 0)
        out[code] = {"label": label, "value": rate(n, d), "numerator": n, "denominator": d}
    return out


# ---------------------------------------------------------------------------- case state
def case_state(fact: dict, limit: datetime, settings: dict | None = None) -> dict:
    """What was true of a case before ``limit``. ``settings.standard.extension_moves_deadline``:
    an approved extension moves the 按期 deadline (shared/on_time.py)."""
    closes = [c for c in fact["closes"] if _before(c["at"], limit)]
    reopens = [r for r in fact["reopens"] if _before(r, limit)]
    closed = None
    if closes and not any(_utc(r) > _utc(closes[-1]["at"]) for r in reopens):
        closed = closes[-1]
    extended = (any(_before(a["at"], limit) for a in fact["extension_approvals"])
                or bool(closed and closed["extended"]))
    parked = (any(p["what"] == "park" and _before(p["at"], limit) for p in fact["parks"])
              or bool(closed and closed["parked"]))
    approvals = [a for a in fact["extension_approvals"] if _before(a["at"], limit) and a.get("new_deadline")]
    extended_deadline = approvals[-1]["new_deadline"] if approvals else None
    moves = bool((settings or {}).get("standard", {}).get("extension_moves_deadline"))
    marks = [p["what"] for p in fact["parks"] if _before(p["at"], limit)]
    parked_now = bool(marks) and marks[-1] == "park"
    deadline_now = extended_deadline or fact.get("deadline")
    return {
        "closed": closed is not None,
        "on_time": bool(closed) and on_time.closed_on_time(
            extended=extended, parked=parked, handled_at=closed.get("handled_at"),
            original_deadline=closed.get("original_deadline"), judged=closed["on_time"],
            extension_moves_deadline=moves, extended_deadline=extended_deadline,
            closed_at=closed["at"]),
        # 超期未处置: still open, not parked, and its deadline (as extended) has passed
        "overdue_open": (closed is None and not parked_now and deadline_now is not None
                         and _utc(deadline_now) < limit),
        "reworked": any(_before(r["at"], limit) for r in fact["reworks"]),
        "extended": extended,
        "parked": parked,
    }


# ---------------------------------------------------------------------------- the report
class _Tally:
    def __init__(self):
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, key, name, n=1):
        if key is not None:
            self.counts[key][name] += n


def compute(period: Period, facts: list[dict], settings: dict, district, as_of: datetime) -> dict:
    """Every indicator of the period for the district, units, grids, inspectors and partners,
    the exposure list, the composite score of every unit and the rankings."""
    start, end = period.start, period.end
    tz = period.tz
    limit = min(end, _utc(as_of))
    cases = [f for f in facts if f.get("kind") == "case"]
    reports = [f for f in facts if f.get("kind") == "report"]
    requests_ = [f for f in facts if f.get("kind") == "request"]
    in_period = lambda moment: moment is not None and start <= _utc(moment) < limit  # noqa: E731

    district_t, units, grids, inspectors, partners = _Tally(), _Tally(), _Tally(), _Tally(), _Tally()
    ALL = "all"

    # -- report cohort: 受理数 / 立案数(上报); inspectors' reports
    for fact in reports:
        if not in_period(fact["received_at"]) or fact["outcome"] == "duplicate":
            continue
        filed = fact["outcome"] == "registered"
        for tally, key in ((district_t, ALL), (grids, fact["grid_code"]), (units, fact["street_id"])):
            tally.add(key, "accepted_reports")
            tally.add(key, "filed_reports", filed)
    names = {}                     # 工号 → 姓名, as the reports carried them
    for fact in reports:
        if not in_period(fact["received_at"]) or not fact["inspector_id"]:
            continue
        inspectors.add(fact["inspector_id"], "reports")
        if fact.get("inspector_name"):
            names[fact["inspector_id"]] = fact["inspector_name"]
        inspectors.add(fact["inspector_id"], "valid_reports", fact["outcome"] in VALID_OUTCOMES)
        inspectors.add(fact["inspector_id"], "filed_reports", fact["outcome"] == "registered")
    # -- the centre's 核实 (a decision on each report: 立案 / 不立案 / 合并) within its time limit
    hours = settings.get("standard", {}).get("verify_report_working_hours", 2)
    for fact in reports:
        if not in_period(fact["received_at"]) or fact["outcome"] == "pending":
            continue
        district_t.add(ALL, "decided")
        due = district.calendar.add_working_time(_utc(fact["received_at"]), timedelta(hours=hours))
        district_t.add(ALL, "decided_on_time", on_time.in_time(fact.get("decided_at"), due))

    for fact in cases:
        # -- case cohort: 立案数 / 派遣数 (district, grid, street territory)
        if in_period(fact["registered_at"]):
            dispatched = bool(fact["dispatches"])
            for tally, key in ((district_t, ALL), (grids, fact["grid_code"]), (units, fact["street_id"])):
                tally.add(key, "registered_cases")
                tally.add(key, "dispatched_cases", dispatched)
        # -- due cohort: 应结案数 and what became of those cases
        if in_period(fact["due_at"]) and not checks.cancelled_before(fact, limit):    # 不立案: not due
            state = case_state(fact, limit, settings)
            for tally, key in ((district_t, ALL), (grids, fact["grid_code"]), (units, fact["unit"])):
                tally.add(key, "due")
                tally.add(key, "closed", state["closed"])
                tally.add(key, "closed_on_time", state["on_time"])
                tally.add(key, "reworked", state["reworked"])
                tally.add(key, "extended", state["extended"])
                tally.add(key, "parked", state["parked"])
                tally.add(key, "overdue_closed", state["closed"] and not state["on_time"])
                tally.add(key, "overdue_open", state["overdue_open"])
        # -- events that happened in the period
        for dispatch in fact["dispatches"]:
            if in_period(dispatch["at"]):
                units.add(dispatch["unit_id"], "dispatches_received")
                district_t.add(ALL, "dispatches_received")
        for returned in fact["returns"]:
            if in_period(returned["at"]):
                units.add(returned["caused_by"], "returns_caused")
                district_t.add(ALL, "returns_caused")
        for supervision in fact["supervisions"]:
            if in_period(supervision["at"]):
                units.add(supervision["unit_id"] or fact["unit"], "supervised")
                district_t.add(ALL, "supervised")
        callback = fact["callback"]
        if callback and in_period(callback["at"]):
            for tally, key in ((district_t, ALL), (grids, fact["grid_code"]),
                               (units, callback["unit_id"] or fact["unit"])):
                tally.add(key, "callbacks")
                tally.add(key, "responded", callback["responded"])
                tally.add(key, "resolved", callback["responded"] and callback["resolved"])
                tally.add(key, "satisfied", callback["responded"] and callback["satisfied"])
        # -- inspectors' verifications (核查)
        for verification in fact["verifications"]:
            if not in_period(verification["at"]):
                continue
            due = verification_due(fact, verification, settings, district)
            if due is None:
                continue                        # no deadline known: neither on time nor late
            for tally, key in ((inspectors, verification["inspector_id"]), (district_t, ALL)):
                tally.add(key, "verifications")
                tally.add(key, "verified_on_time", on_time.in_time(verification["at"], due))

    checks.tally(cases, in_period, limit, inspectors.add, names)     # 核实 tasks (checks.py)

    # -- partners (城管+N): requests sent in the period
    for fact in requests_:
        if not in_period(fact["sent_at"]):
            continue
        dept = fact["department"]
        partners.add(dept, "requests")
        replies = fact["replies"]
        partners.add(dept, "accepted_on_time", accepted_on_time(fact, settings))
        partners.add(dept, "checked_in_on_time", checked_in_on_time(fact, settings))
        partners.add(dept, "disposed", "disposed" in replies and _before(replies["disposed"]["at"], limit))
        partners.add(dept, "rejected", "rejected" in replies)

    # -- 社区评议: reviews of the months that start in the period (filed at the month's start)
    for fact in facts:
        if fact.get("kind") != "review" or not in_period(fact["period_start"]) or fact["unit_id"] is None:
            continue
        for tally, key in ((units, fact["unit_id"]), (district_t, ALL)):
            tally.add(key, "reviews")
            tally.add(key, "review_points", int(fact["score"]))
            tally.add(key, "review_max", 100)

    # -- exposure list (曝光台) and its deductions
    exposure = exposure_list(cases, period, as_of, settings, district)
    for item in exposure:
        units.add(item["unit_id"], "exposed")
        district_t.add(ALL, "exposed")

    unit_rows = {}
    for unit_id, counts in sorted(units.counts.items()):
        unit = district.units.get(unit_id, {})
        kind = unit.get("type")
        row_counts = {name: counts.get(name, 0) for name in UNIT_COUNTS}
        if kind not in TERRITORIAL_TYPES:      # 立案率/派遣率 are regional: streets and towns
            for name in ("accepted_reports", "filed_reports", "registered_cases", "dispatched_cases"):
                row_counts[name] = 0
        if not any(row_counts.values()):
            continue
        indicators = indicator_block(row_counts, unit_table(settings))
        unit_rows[unit_id] = {
            "unit_id": unit_id, "name": unit.get("name") or _other_name(unit_id), "type": kind,
            "counts": row_counts, "indicators": indicators,
            "composite": composite(indicators, row_counts, settings),
        }
    return {
        "period": period.as_dict(),
        "as_of": local_iso(as_of, tz),
        "district": {"name": getattr(district, "name", ""),
                     "counts": {name: district_t.counts[ALL].get(name, 0) for name in UNIT_COUNTS},
                     "indicators": indicator_block(district_t.counts[ALL], unit_table(settings)),
                     "centre": {name: district_t.counts[ALL].get(name, 0) for name in
                                ("decided", "decided_on_time", "verifications", "verified_on_time")}},
        "units": unit_rows,
        "grids": {code: {"grid_code": code, "name": _grid_name(district, code),
                         "counts": {name: counts.get(name, 0) for name in UNIT_COUNTS
                                    if name not in ("returns_caused", "dispatches_received",
                                                    "supervised", "exposed", "reviews", "review_points", "review_max")},
                         "indicators": indicator_block(counts, unit_table(settings))}
                  for code, counts in sorted(grids.counts.items())},
        "inspectors": {key: {"inspector_id": key, "name": names.get(key), "counts": dict(counts),
                             "indicators": indicator_block(counts, INSPECTOR_INDICATORS)}
                       for key, counts in sorted(inspectors.counts.items())},
        "partners": {key: {"department": key, "name": _partner_name(key), "counts":
                           {name: counts.get(name, 0) for name in
                            ("requests", "accepted_on_time", "checked_in_on_time", "disposed", "rejected")},
                           "indicators": indicator_block(counts, PARTNER_INDICATORS)}
                     for key, counts in sorted(partners.counts.items())},
        "exposure": [local_times(item, tz) for item in exposure],
        "rankings": rankings(unit_rows, settings, district),
    }


def _grid_name(district, code):
    try:
        return district.grid(code)["name"]
    except (KeyError, AttributeError):
        return code


def _other_name(unit_id):
    """A name for an id that is not a unit of the reference data (e.g. the command centre,
    which returns are charged to when its routing was wrong)."""
    try:
        from shared.departments import coordination_settings
        settings = coordination_settings()
        if unit_id == settings.get("command_centre"):
            return settings.get("command_centre_name") or unit_id
    except (ImportError, AttributeError):
        pass
    return unit_id


def _partner_name(key):
    from shared.departments import department
    found = department(key)
    return found["name"] if found else key


# ---------------------------------------------------------------------------- partners
def _department_minutes(department: str, key: str, default: float) -> float:
    """``ack_minutes`` / ``checkin_minutes`` (normal urgency) of config/departments.yaml."""
    from shared.departments import department as lookup
    value = (lookup(department) or {}).get(key)
    if isinstance(value, dict):
        value = value.get("normal")
    return float(value) if value else float(default)


def _on_time(fact: dict, status: str, deadline_field: str, minutes_key: str, default: float) -> bool:
    """The reply of ``status`` was on time: coordination's own ``on_time`` when it set one; else
    against the deadline in the request event; else sent_at + the department's minutes."""
    reply = fact["replies"].get(status)
    if reply is None:
        return False
    if reply.get("on_time") is not None:
        return bool(reply["on_time"])
    deadline = fact.get(deadline_field)
    if deadline is None:
        minutes = _department_minutes(fact["department"], minutes_key, default)
        deadline = _utc(fact["sent_at"]) + timedelta(minutes=minutes)
    return on_time.in_time(reply["at"], deadline)


def accepted_on_time(fact: dict, settings: dict) -> bool:
    return _on_time(fact, "accepted", "ack_deadline", "ack_minutes", settings["partners"]["accept_minutes"])


def checked_in_on_time(fact: dict, settings: dict) -> bool:
    return _on_time(fact, "on_site", "checkin_deadline", "checkin_minutes",
                    settings["partners"]["checkin_minutes"])


# ---------------------------------------------------------------------------- inspectors
def verification_due(fact: dict, verification: dict, settings: dict, district):
    """The verification deadline: ``due_at`` of case_verified, else ``verify_due_at`` of the
    last feedback before it, else that feedback + the configured working hours; None when no
    feedback is known either."""
    if verification.get("due_at") is not None:
        return verification["due_at"]
    before = [f for f in fact["feedbacks"] if _utc(f["at"]) <= _utc(verification["at"])]
    if not before:
        return None
    if before[-1].get("verify_due_at") is not None:
        return before[-1]["verify_due_at"]
    hours = settings["verification"]["fallback_working_hours"]
    return district.calendar.add_working_time(_utc(before[-1]["at"]), timedelta(hours=hours))


# ---------------------------------------------------------------------------- exposure
def exposure_list(cases: list[dict], period: Period, as_of: datetime, settings: dict,
                  district) -> list[dict]:
    """The worst overdue cases of the period (曝光台): cases past their effective deadline
    (dispatch deadline, moved by an approved extension or an unparking; none while parked) at
    some moment of the period. Overdue time is counted in working hours up to the closing, the
    end of the period or now, whichever comes first."""
    start, limit = period.start, min(period.end, _utc(as_of))
    threshold = timedelta(hours=settings["exposure"]["min_overdue_hours"])
    found = []
    for fact in cases:
        deadline = _utc(fact.get("effective_deadline"))
        if deadline is None:
            continue
        ends = [limit] + ([_utc(fact["closed_at"])] if fact.get("closed_at") else [])
        stop = min(ends)
        if stop <= deadline or stop <= start:
            continue
        overdue = district.calendar.working_time_between(deadline, stop)
        if overdue <= threshold:
            continue
        unit = district.units.get(fact["unit"], {})
        found.append({
            "case_id": fact["case_id"], "unit_id": fact["unit"], "unit_name": unit.get("name", fact["unit"]),
            "class_code": fact["class_code"], "class_name": fact["class_name"],
            "address": fact["address"], "description": fact["description"],
            "grid_code": fact["grid_code"], "registered_at": fact["registered_at"],
            "deadline": deadline, "closed_at": fact.get("closed_at"),
            "status": "超期结案" if fact.get("closed_at") and _utc(fact["closed_at"]) <= limit else "超期未结",
            "overdue_hours": round(overdue.total_seconds() / 3600, 2),
            "problem_photos": list(fact.get("media_urls") or []),
            "after_photo": fact.get("after_photo"),
        })
    found.sort(key=lambda item: (-item["overdue_hours"], item["case_id"]))
    return found[: settings["exposure"]["size"]]


# ---------------------------------------------------------------------------- composite
def composite(indicators: dict, counts: dict, settings: dict) -> dict:
    """综合指标值 = 100 × Σ w·s / Σ w (indicators with data) − deductions, within [0, 100]."""
    weights = settings["composite"]["weights"]
    deductions = settings["composite"]["deductions"]
    total_weight, weighted = 0.0, 0.0
    parts = {}
    for code, weight in weights.items():
        item = indicators[code]
        if not item["denominator"] or weight <= 0:
            continue
        value = item["numerator"] / item["denominator"]        # exact, not the rounded rate
        score = 1 - value if code in INVERTED else value
        total_weight += weight
        weighted += weight * score
        parts[code] = {"weight": weight, "score": round(score, 4)}
    base = round(100 * weighted / total_weight, 2) if total_weight else None
    taken = {
        "exposed_case": counts.get("exposed", 0) * deductions["exposed_case"],
        "return_caused": counts.get("returns_caused", 0) * deductions["return_caused"],
        "supervised": counts.get("supervised", 0) * deductions["supervised"],
    }
    deducted = round(sum(taken.values()), 2)
    value = None if base is None else round(min(100.0, max(0.0, base - deducted)), 2)
    return {"value": value, "base": base, "deducted": deducted, "deductions": taken, "parts": parts}


def rankings(unit_rows: dict, settings: dict, district=None) -> list[dict]:
    """One table per group of unit types; units below the minimum volume are listed unranked;
    units of the group with nothing in the period are listed as 无案件 (never dropped)."""
    minimum = settings["ranking"]["minimum_cases"]
    out = []
    for group in settings["ranking"]["groups"]:
        members = [row for row in unit_rows.values() if row["type"] in group["types"]]
        ranked = [row for row in members
                  if row["counts"]["due"] >= minimum and row["composite"]["value"] is not None]
        ranked.sort(key=lambda row: (-row["composite"]["value"],
                                     -(row["indicators"]["ontime_rate"]["value"] or 0),
                                     -row["counts"]["due"], row["unit_id"]))
        unranked = sorted((row for row in members if row not in ranked), key=lambda row: row["unit_id"])
        entry = lambda row, rank: {  # noqa: E731
            "rank": rank, "unit_id": row["unit_id"], "name": row["name"], "type": row["type"],
            "composite": row["composite"]["value"], "due": row["counts"]["due"],
            "reason": None if rank else f"应结案数 {row['counts']['due']} 少于 {minimum}，不参与排名"}
        idle = sorted(uid for uid, unit in (getattr(district, "units", None) or {}).items()
                      if unit.get("type") in group["types"] and uid not in unit_rows)
        out.append({"group": group["key"], "name": group["name"], "types": list(group["types"]),
                    "minimum_cases": minimum,
                    "no_cases": [{"rank": None, "unit_id": uid, "name": district.units[uid].get("name", uid),
                                  "type": district.units[uid].get("type"), "composite": None, "due": 0,
                                  "reason": "无案件"} for uid in idle],
                    "ranked": [entry(row, index) for index, row in enumerate(ranked, 1)],
                    "unranked": [entry(row, None) for row in unranked]})
    return out


def group_for(unit_type: str, settings: dict) -> dict | None:
    for group in settings["ranking"]["groups"]:
        if unit_type == group["key"] or unit_type in group["types"]:
            return group
    return None
