"""The hand-built scoring scenario: November 2026 in 嘉陵区, every event made by hand through the
real contracts (make_event), with the expected value of every indicator computed by hand below.

Units: A = 天生街道 (street.tianshengjie), B = 北泉街道 (street.beiquan), T = 童家溪镇
(town.tongjiaxi), W = 区水务集团 (dept.water). Grids: GA (A), GB (B), GT (T).
Inspectors: insp.li, insp.wang. Partners: police, environment (late 报到), transport (rejects).
Calendar: working hours 08:30–12:00 and 14:00–17:30, Monday to Friday (no holiday in November
2026; 2026-10-31/11-01 and 11-28/29 are weekends). Times below are local (UTC+8).

The cases
    O1  A  October case: deadline 10-30 17:00, closed late 11-02 10:00 → October's due cohort;
           overdue during November 10-30 17:00 → 11-02 10:00 = 0.5 h + 1.5 h = 2.0 working h
    A1  A  on time (deadline 11-03 17:00, closed 11-03 11:05); li verifies 11:00 ≤ due 14:00
    A2  A  late (deadline 11-05 12:00, closed 11-06 10:00): overdue 3.5 h + 1.5 h = 5.0 h;
           wang verifies 11-06 09:50 > due 09:00 → late verification
    A3  A  extension approved 11-09 (11-10 17:00 → 11-12 17:00), closed 11-11 on_time=true,
           extended → NOT 按期 (an extension must not inflate the on-time rate)
    A4  A  parked 11-11, unparked 11-16 (new deadline 11-18 17:00), closed 11-17 on_time=true,
           parked → NOT 按期
    A5  A  rework: verification fails 11-18 (li, on time), rework ordered, verified again 11-19
           15:00 by li (due 12:00 → late), closed 11-19 15:05 on time (deadline 11-20 17:00) → 按期
    A6  A  first dispatched to B 11-23 09:00, B returns it (caused_by B), re-dispatched to A
           (sequence 2, deadline 11-25 17:00); never closed; 督办 11-26. Overdue at the end of
           November: 11-25 0.5 h + 11-26 7 h + 11-27 7 h + 11-30 7 h = 21.5 h
    N1  A  registered 11-30 20:00, not dispatched yet
    B1  B  on time; wang verifies with no due_at → fallback: feedback 11-04 09:40 + 4 working h
           = 15:40 ≥ verification 09:50 → on time
    B2..B4 B  on time
    B5  B  deadline 11-27 17:00, extension approved 11-26 to 12-03 17:00, not closed → due,
           extended, not overdue in November. Joint operation OP1 (police, environment, transport)
    T1, T2 T  on time (2 cases: below the minimum volume of 5 → not ranked)
    W1  W  registered in B's territory, deadline 12-10 → not due in November
Reports not filed: X1 (wang, in GA, rejected), X2 (web, in GB, rejected); D1 (li, duplicate of A5).
Joint operations: OP1 on B5 11-20 09:00: police accepts 09:03 (no on_time flag, no ack deadline
→ departments.yaml ack_minutes 5 (or scoring.yaml's 10): 3 min → on time), on site 09:20 ≤ check-in deadline 09:30, disposed 10:30; environment accepts 09:05
(on_time=true), on site 09:50 (on_time=false: LATE), disposed 11:00; transport rejects 09:04.
OP2 on A6 11-24 10:00, police only, no checkin_deadline in the event: accepts 10:20 (20 min >
5 (or 10) → late), on site 10:25 ≤ 10:00 + 30 min (departments.yaml police normal) → on time.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from shared.contracts.events import PRODUCERS, make_event

TZ = ZoneInfo("Asia/Shanghai")
A, B, TOWN, WATER = "street.tianshengjie", "street.beiquan", "town.tongjiaxi", "dept.water"
GA, GB, GT = "500190001001001", "500190002001001", "500190101001001"
POINTS = {GA: (106.3904, 29.833793), GB: (106.398024, 29.833482), GT: (106.386074, 29.822771)}
STREET_OF = {GA: A, GB: B, GT: TOWN}
MONTH = "2026-11"


def T(text: str) -> datetime:
    """'11-03 09:00' (2026) or '2026-10-30 17:00' → aware local time."""
    if len(text) == len("11-03 09:00"):
        text = f"2026-{text}"
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)


class Scenario:
    def __init__(self, photo_base: str = "https://media.dcg.example/"):
        self.events: list[dict] = []
        self.photo_base = photo_base

    def _add(self, kind: str, payload: dict, correlation_id: str):
        event_id = f"scn-{len(self.events) + 1:03d}-{kind}"
        self.events.append(make_event(kind, payload, producer=PRODUCERS[kind],
                                      correlation_id=correlation_id, event_id=event_id))

    def photo(self, case: str, what: str) -> str:
        return f"{self.photo_base}{case}-{what}.png"

    # -- intake
    def received(self, rid, at, grid, channel="hotline", inspector=None):
        lon, lat = POINTS[grid]
        self._add("report_received", {"report_id": rid, "channel": channel, "class_code": "E0101",
                                      "location": {"lon": lon, "lat": lat}, "description": "暴露垃圾",
                                      "inspector_id": inspector, "received_at": T(at)}, rid)

    def rejected(self, rid, reason, channel="hotline", inspector=None, at=None):
        self._add("report_rejected", {"report_id": rid, "channel": channel, "reason": reason,
                                      "inspector_id": inspector,
                                      "rejected_at": T(at) if at else None}, rid)

    def duplicate(self, rid, case, at):
        self._add("report_linked_as_duplicate", {"report_id": rid, "case_id": case, "distance_m": 12.0,
                                                 "linked_at": T(at)}, case)

    def new_case(self, case, grid, received, registered, inspector=None, channel=None, owner=None):
        rid = f"rpt-{case}"
        channel = channel or ("inspector" if inspector else "hotline")
        self.received(rid, received, grid, channel, inspector)
        lon, lat = POINTS[grid]
        self._add("case_registered", {
            "case_id": case, "report_id": rid, "channel": channel, "class_code": "E0101",
            "class_name": "暴露垃圾", "class_kind": "event", "urgency": "normal",
            "location": {"lon": lon, "lat": lat}, "address": f"{case} 号路口", "grid_code": grid,
            "street_id": STREET_OF[grid], "owner_unit": owner or STREET_OF[grid],
            "description": f"{case} 路边垃圾堆积", "inspector_id": inspector,
            "media_urls": [self.photo(case, "problem")], "registered_at": T(registered)}, case)

    def satisfaction(self, case, at, responded, resolved, satisfied, unit=None):
        self._add("satisfaction_recorded", {"case_id": case, "report_id": f"rpt-{case}", "unit_id": unit,
                                            "responded": responded, "resolved": resolved,
                                            "satisfied": satisfied, "recorded_at": T(at)}, case)

    # -- dispatch
    def dispatched(self, case, unit, at, deadline, seq=1):
        self._add("case_dispatched", {"case_id": case, "unit_id": unit, "case_kind": "committed",
                                      "dispatched_at": T(at), "deadline": T(deadline), "sequence": seq}, case)

    def returned(self, case, unit, caused_by, at, count=1):
        self._add("case_returned", {"case_id": case, "unit_id": unit, "caused_by": caused_by,
                                    "actor": "王主任", "reason": "不属于本单位", "return_count": count,
                                    "at": T(at)}, case)

    def extension(self, case, unit, asked, decided, approved, new_deadline=None, seq=1):
        self._add("extension_requested", {"case_id": case, "unit_id": unit, "actor": "处置人",
                                          "reason": "需调配机械", "extra": "2d", "sequence": seq,
                                          "at": T(asked)}, case)
        self._add("extension_decided", {"case_id": case, "unit_id": unit, "approved": approved,
                                        "actor": "指挥中心", "sequence": seq, "at": T(decided),
                                        "new_deadline": T(new_deadline) if new_deadline else None}, case)

    def parked(self, case, unit, at):
        self._add("case_parked", {"case_id": case, "unit_id": unit, "actor": "处置人", "approver": "指挥长",
                                  "reason": "需等待产权确认", "at": T(at)}, case)

    def unparked(self, case, unit, at, new_deadline):
        self._add("case_unparked", {"case_id": case, "unit_id": unit, "actor": "指挥长",
                                    "new_deadline": T(new_deadline), "at": T(at)}, case)

    def feedback(self, case, unit, at):
        self._add("case_feedback_given", {"case_id": case, "unit_id": unit, "actor": "处置人",
                                          "note": "已清理", "after_photo": self.photo(case, "after"),
                                          "at": T(at)}, case)

    def verified(self, case, unit, inspector, at, passed=True, due=None):
        self._add("case_verified", {"case_id": case, "unit_id": unit, "inspector_id": inspector,
                                    "passed": passed, "at": T(at), "due_at": T(due) if due else None}, case)

    def rework(self, case, unit, at):
        self._add("case_rework_ordered", {"case_id": case, "unit_id": unit, "reason": "核查未通过",
                                          "at": T(at)}, case)

    def closed(self, case, unit, at, deadline, on_time, extended=False, parked=False):
        self._add("case_closed", {"case_id": case, "unit_id": unit, "deadline": T(deadline),
                                  "on_time": on_time, "extended": extended, "parked": parked,
                                  "closed_at": T(at)}, case)

    def supervised(self, case, unit, at, deadline):
        self._add("case_supervised", {"case_id": case, "unit_id": unit, "deadline": T(deadline),
                                      "at": T(at)}, case)

    # -- coordination
    def operation(self, op, case, departments, at):
        self._add("joint_operation_opened", {"operation_id": op, "case_id": case, "lead_unit": "dept.chengguan",
                                             "departments": departments, "trigger": "class_rule",
                                             "opened_at": T(at)}, case)

    def request(self, op, case, dept, at, checkin_deadline=None):
        self._add("department_request_sent", {
            "operation_id": op, "department": dept, "distribution_id": f"{op}.{dept}.request",
            "sent_at": T(at), "checkin_deadline": T(checkin_deadline) if checkin_deadline else None}, case)

    def replied(self, op, case, dept, kind, status, at, on_time=None, reason=""):
        self._add("department_replied", {
            "operation_id": op, "department": dept, "distribution_id": f"{op}.{dept}.{status}",
            "kind": kind, "status": status, "reason": reason, "on_time": on_time,
            "replied_at": T(at)}, case)


def simple_case(s: Scenario, case, unit, grid, day, deadline, closed, inspector=None):
    """A case received 08:40, registered 08:50, dispatched 09:00 on ``day``, closed on time."""
    s.new_case(case, grid, f"{day} 08:40", f"{day} 08:50", inspector=inspector)
    s.dispatched(case, unit, f"{day} 09:00", deadline)
    s.feedback(case, unit, closed)
    s.closed(case, unit, closed, deadline, on_time=True)


def build(photo_base: str = "https://media.dcg.example/") -> list[dict]:
    s = Scenario(photo_base)
    # ---------------------------------------------------------------- October carry-over
    s.new_case("O1", GA, "2026-10-28 08:40", "2026-10-28 08:50")
    s.dispatched("O1", A, "2026-10-28 09:00", "2026-10-30 17:00")
    s.feedback("O1", A, "11-02 09:50")
    s.closed("O1", A, "11-02 10:00", "2026-10-30 17:00", on_time=False)

    # ---------------------------------------------------------------- street A
    s.new_case("A1", GA, "11-02 08:40", "11-02 09:00", inspector="insp.li")
    s.dispatched("A1", A, "11-02 09:30", "11-03 17:00")
    s.feedback("A1", A, "11-03 10:00")
    s.verified("A1", A, "insp.li", "11-03 11:00", due="11-03 14:00")
    s.closed("A1", A, "11-03 11:05", "11-03 17:00", on_time=True)
    s.satisfaction("A1", "11-04 10:00", True, True, True)

    s.new_case("A2", GA, "11-03 08:40", "11-03 09:00", inspector="insp.li")
    s.dispatched("A2", A, "11-03 09:30", "11-05 12:00")
    s.feedback("A2", A, "11-06 08:45")
    s.verified("A2", A, "insp.wang", "11-06 09:50", due="11-06 09:00")
    s.closed("A2", A, "11-06 10:00", "11-05 12:00", on_time=False)
    s.satisfaction("A2", "11-07 10:00", True, True, False)

    s.new_case("A3", GA, "11-06 08:40", "11-06 09:00")
    s.dispatched("A3", A, "11-06 09:30", "11-10 17:00")
    s.extension("A3", A, "11-09 09:00", "11-09 10:00", True, "11-12 17:00")
    s.feedback("A3", A, "11-11 09:30")
    s.closed("A3", A, "11-11 10:00", "11-12 17:00", on_time=True, extended=True)
    s.satisfaction("A3", "11-12 10:00", False, False, False)

    s.new_case("A4", GA, "11-09 08:40", "11-09 09:00")
    s.dispatched("A4", A, "11-09 09:30", "11-12 17:00")
    s.parked("A4", A, "11-11 09:00")
    s.unparked("A4", A, "11-16 09:00", "11-18 17:00")
    s.feedback("A4", A, "11-17 09:30")
    s.closed("A4", A, "11-17 10:00", "11-18 17:00", on_time=True, parked=True)
    s.satisfaction("A4", "11-18 10:00", True, False, False)

    s.new_case("A5", GA, "11-16 08:40", "11-16 09:00", inspector="insp.wang")
    s.dispatched("A5", A, "11-16 09:30", "11-20 17:00")
    s.received("D1", "11-16 10:00", GA, channel="inspector", inspector="insp.li")
    s.duplicate("D1", "A5", "11-16 10:01")
    s.feedback("A5", A, "11-18 09:00")
    s.verified("A5", A, "insp.li", "11-18 10:00", passed=False, due="11-18 15:00")
    s.rework("A5", A, "11-18 10:05")
    s.feedback("A5", A, "11-19 09:00")
    s.verified("A5", A, "insp.li", "11-19 15:00", due="11-19 12:00")
    s.closed("A5", A, "11-19 15:05", "11-20 17:00", on_time=True)

    s.new_case("A6", GA, "11-23 08:40", "11-23 08:50", owner=B)
    s.dispatched("A6", B, "11-23 09:00", "11-24 17:00", seq=1)
    s.returned("A6", B, B, "11-23 10:00")
    s.dispatched("A6", A, "11-23 10:30", "11-25 17:00", seq=2)
    s.supervised("A6", A, "11-26 09:00", "11-25 17:00")
    s.operation("OP2", "A6", ["police"], "11-24 10:00")
    s.request("OP2", "A6", "police", "11-24 10:00")
    s.replied("OP2", "A6", "police", "Ack", "accepted", "11-24 10:20")
    s.replied("OP2", "A6", "police", "Update", "on_site", "11-24 10:25")

    s.new_case("N1", GA, "11-30 19:50", "11-30 20:00")

    s.received("X1", "11-10 09:00", GA, channel="inspector", inspector="insp.wang")
    s.rejected("X1", "不符合立案标准", channel="inspector", inspector="insp.wang", at="11-10 09:30")

    # ---------------------------------------------------------------- street B
    s.new_case("B1", GB, "11-02 08:40", "11-02 08:50", inspector="insp.wang")
    s.dispatched("B1", B, "11-02 09:00", "11-04 17:00")
    s.feedback("B1", B, "11-04 09:40")
    s.verified("B1", B, "insp.wang", "11-04 09:50")           # no due_at: fallback 15:40
    s.closed("B1", B, "11-04 10:00", "11-04 17:00", on_time=True)
    s.satisfaction("B1", "11-05 10:00", True, True, True)
    simple_case(s, "B2", B, GB, "11-05", "11-10 17:00", "11-09 10:00")
    s.satisfaction("B2", "11-10 10:00", True, True, True)
    simple_case(s, "B3", B, GB, "11-10", "11-12 17:00", "11-12 10:00")
    simple_case(s, "B4", B, GB, "11-16", "11-18 17:00", "11-17 10:00")

    s.new_case("B5", GB, "11-20 08:30", "11-20 08:40")
    s.dispatched("B5", B, "11-20 08:50", "11-27 17:00")
    s.extension("B5", B, "11-26 09:00", "11-26 10:00", True, "12-03 17:00")
    s.operation("OP1", "B5", ["police", "environment", "transport"], "11-20 09:00")
    for dept in ("police", "environment", "transport"):
        s.request("OP1", "B5", dept, "11-20 09:00", checkin_deadline="11-20 09:30")
    s.replied("OP1", "B5", "police", "Ack", "accepted", "11-20 09:03")
    s.replied("OP1", "B5", "police", "Update", "on_site", "11-20 09:20")
    s.replied("OP1", "B5", "police", "Update", "disposed", "11-20 10:30")
    s.replied("OP1", "B5", "environment", "Ack", "accepted", "11-20 09:05", on_time=True)
    s.replied("OP1", "B5", "environment", "Update", "on_site", "11-20 09:50", on_time=False)
    s.replied("OP1", "B5", "environment", "Update", "disposed", "11-20 11:00")
    s.replied("OP1", "B5", "transport", "Ack", "rejected", "11-20 09:04", reason="不属于本部门职责")

    s.new_case("W1", GB, "11-24 08:40", "11-24 08:50", owner=WATER)
    s.dispatched("W1", WATER, "11-24 09:00", "12-10 17:00")

    s.received("X2", "11-12 09:00", GB, channel="web")
    s.rejected("X2", "描述不清且无照片", channel="web", at="11-12 14:30")

    # ---------------------------------------------------------------- town T
    simple_case(s, "T1", TOWN, GT, "11-03", "11-05 17:00", "11-04 10:00")
    s.satisfaction("T1", "11-05 10:00", True, True, True)
    simple_case(s, "T2", TOWN, GT, "11-11", "11-13 17:00", "11-12 10:00")
    return s.events


def r(numerator, denominator):
    """A hand-computed rate, rounded as the platform rounds (4 decimals)."""
    return round(numerator / denominator, 4) if denominator else None


# ---------------------------------------------------------------------------------------------
# Expected values for November 2026, computed by hand (numerator / denominator).
# Weights 25/35/15/10/15 (结案率/按期/1−返工率/1−延期率/满意率); deductions 3 per exposed case,
# 1 per return caused, 0.5 per 督办; minimum 5 应结案 cases to be ranked (config/scoring.yaml).
# ---------------------------------------------------------------------------------------------
EXPECTED_UNITS = {
    A: {
        # territory GA: reports A1..A6, N1, X1 (D1 is a duplicate: not 受理) = 8; filed 7
        "filing_rate": (7, 8),
        # registered in November in A's territory: A1..A6, N1 = 7; dispatched all but N1 = 6
        "dispatch_rate": (6, 7),
        # due: A1..A6 = 6 (O1 was due in October; N1 has no deadline)
        "closure_rate": (5, 6),          # A1..A5 closed; A6 open
        "ontime_rate": (2, 6),           # A1, A5 (A2 late, A3 extended, A4 parked)
        "rework_rate": (1, 6),           # A5
        "extension_rate": (1, 6),        # A3
        "return_rate": (0, 6),           # dispatches to A: A1..A5 + A6 (sequence 2) = 6
        "response_rate": (3, 4),         # callbacks A1..A4; A3 did not respond
        "resolution_rate": (2, 3),       # A1, A2 resolved out of 3 responding
        "satisfaction_rate": (1, 3),     # A1 satisfied
    },
    B: {
        "filing_rate": (6, 7),           # B1..B5, W1, X2 (rejected)
        "dispatch_rate": (6, 6),         # B1..B5, W1 (A6 lies in A's territory)
        "closure_rate": (4, 5),          # B1..B4 of B1..B5
        "ontime_rate": (4, 5),
        "rework_rate": (0, 5),
        "extension_rate": (1, 5),        # B5
        "return_rate": (1, 6),           # A6 returned (caused_by B) / dispatches B1..B5 + A6#1
        "response_rate": (2, 2),
        "resolution_rate": (2, 2),
        "satisfaction_rate": (2, 2),
    },
    TOWN: {
        "filing_rate": (2, 2), "dispatch_rate": (2, 2), "closure_rate": (2, 2),
        "ontime_rate": (2, 2), "rework_rate": (0, 2), "extension_rate": (0, 2),
        "return_rate": (0, 2), "response_rate": (1, 1), "resolution_rate": (1, 1),
        "satisfaction_rate": (1, 1),
    },
}
EXPECTED_COMPOSITE = {
    # A: 25·5/6 + 35·2/6 + 15·(1−1/6) + 10·(1−1/6) + 15·1/3 = (125+70+75+50)/6 + 5 = 58.3333
    #    → base 58.33; exposed O1, A2, A6 → 3×3 = 9; 督办 A6 → 0.5; 58.33 − 9.5 = 48.83
    A: {"base": 58.33, "deducted": 9.5, "value": 48.83},
    # B: 25·0.8 + 35·0.8 + 15·1 + 10·0.8 + 15·1 = 86 → base 86.0; 1 return caused → 85.0
    B: {"base": 86.0, "deducted": 1.0, "value": 85.0},
    # T: every rate perfect → 100.0, but only 2 due cases (< 5): not ranked
    TOWN: {"base": 100.0, "deducted": 0.0, "value": 100.0},
    # W: nothing due in November → no rate, no composite
    WATER: {"base": None, "deducted": 0.0, "value": None},
}
EXPECTED_DISTRICT = {
    # reports received in November: 14 cases + N1 + X1 + X2 + D1 = 18; 受理 = 18 − D1 = 17
    "filing_rate": (15, 17),
    # registered in November: A1..A6, N1, B1..B5, W1, T1, T2 = 15; dispatched 14 (not N1)
    "dispatch_rate": (14, 15),
    # due: A1..A6, B1..B5, T1, T2 = 13
    "closure_rate": (11, 13),        # A 5 + B 4 + T 2
    "ontime_rate": (8, 13),          # A 2 + B 4 + T 2
    "rework_rate": (1, 13),          # A5
    "extension_rate": (2, 13),       # A3, B5
    "return_rate": (1, 15),          # 15 dispatches in November, 1 return
    "response_rate": (6, 7),         # callbacks A1..A4, B1, B2, T1; A3 silent
    "resolution_rate": (5, 6),       # A1, A2, B1, B2, T1
    "satisfaction_rate": (4, 6),     # A1, B1, B2, T1
}
EXPECTED_GRIDS = {
    GA: {"filing_rate": (7, 8), "dispatch_rate": (6, 7), "closure_rate": (5, 6), "ontime_rate": (2, 6),
         "rework_rate": (1, 6), "extension_rate": (1, 6), "response_rate": (3, 4),
         "resolution_rate": (2, 3), "satisfaction_rate": (1, 3)},
    GB: {"filing_rate": (6, 7), "dispatch_rate": (6, 6), "closure_rate": (4, 5), "ontime_rate": (4, 5),
         "rework_rate": (0, 5), "extension_rate": (1, 5), "response_rate": (2, 2),
         "resolution_rate": (2, 2), "satisfaction_rate": (2, 2)},
    GT: {"filing_rate": (2, 2), "dispatch_rate": (2, 2), "closure_rate": (2, 2), "ontime_rate": (2, 2),
         "rework_rate": (0, 2), "extension_rate": (0, 2), "response_rate": (1, 1),
         "resolution_rate": (1, 1), "satisfaction_rate": (1, 1)},
}
EXPECTED_INSPECTORS = {
    # li: reports A1, A2 (filed), D1 (duplicate: valid, not filed) → valid 3/3, filed 2/3;
    #     verifications A1 (11:00 ≤ 14:00), A5 (10:00 ≤ 15:00), A5 again (15:00 > 12:00) → 2/3
    "insp.li": {"valid_report_rate": (3, 3), "filing_rate": (2, 3), "verify_ontime_rate": (2, 3)},
    # wang: reports A5, B1 (filed), X1 (rejected) → 2/3; verifications A2 (09:50 > 09:00, late),
    #       B1 (no due_at: 09:40 + 4 working h = 15:40 ≥ 09:50, on time) → 1/2
    "insp.wang": {"valid_report_rate": (2, 3), "filing_rate": (2, 3), "verify_ontime_rate": (1, 2)},
}
EXPECTED_PARTNERS = {
    # police: OP1 (accept 3 min ≤ 5: on time; 报到 09:20 ≤ 09:30; disposed) and OP2 (accept
    #         20 min > 5: late; 报到 10:25 ≤ 10:30 by departments.yaml; not disposed yet)
    "police": {"accept_ontime_rate": (1, 2), "checkin_ontime_rate": (2, 2), "disposition_rate": (1, 2)},
    # environment: accepted on time, checked in LATE, disposed
    "environment": {"accept_ontime_rate": (1, 1), "checkin_ontime_rate": (0, 1), "disposition_rate": (1, 1)},
    # transport: rejected → nothing on time, nothing disposed
    "transport": {"accept_ontime_rate": (0, 1), "checkin_ontime_rate": (0, 1), "disposition_rate": (0, 1)},
}
# Evaluation by role (services/scoring/roles.py), November — by hand.
# Handling units: 应处置 = the due cohort; 超期处置 = closed but not 按期; 超期未处置 = open, not
# parked, past its (extended) deadline at the end of November.
EXPECTED_HANDLERS = {
    # A: due A1..A6; 按期 A1, A5; closed late or extended/parked A2, A3, A4 → 3; A6 open past
    #    11-25 17:00 → 1; 返工 A5
    A: {"handle_ontime_rate": (2, 6), "closure_rate": (5, 6), "rework_rate": (1, 6),
        "overdue_closed": 3, "overdue_open": 1},
    # B: due B1..B5; B1..B4 按期; B5 open but extended to 12-03 → not overdue
    B: {"handle_ontime_rate": (4, 5), "closure_rate": (4, 5), "rework_rate": (0, 5),
        "overdue_closed": 0, "overdue_open": 0},
    TOWN: {"handle_ontime_rate": (2, 2), "closure_rate": (2, 2), "rework_rate": (0, 2),
           "overdue_closed": 0, "overdue_open": 0},
}
EXPECTED_CENTRE = {
    "filing_rate": (15, 17), "dispatch_rate": (14, 15),
    # 15 dispatches in November (14 first dispatches + A6's second), 1 回退 (A6 from B) → 14/15
    "accurate_dispatch_rate": (14, 15),
    # 核实 within 2 working hours of receipt: 18 reports decided; the 16 registered ones 10 min
    # to 20 min after receipt (N1 at 20:00 Monday: due Tuesday 10:30), D1 merged 1 min after,
    # X1 rejected 09:30 ≤ 11:00; X2 rejected 14:30 > 11:00 (08:30–12:00 window) → 17/18
    "verify_ontime_rate": (17, 18),
    # 核查: li 2 of 3 + wang 1 of 2 → 3/5
    "check_ontime_rate": (3, 5),
}
EXPECTED_INSPECTOR_ROLES = {
    "insp.li": {"valid_report_rate": (3, 3), "check_ontime_rate": (2, 3), "verify_ontime_rate": (0, 0)},
    "insp.wang": {"valid_report_rate": (2, 3), "check_ontime_rate": (1, 2), "verify_ontime_rate": (0, 0)},
}
# The exposure list, worst first (working hours overdue within November)
EXPECTED_EXPOSURE = [("A6", 21.5, "超期未结"), ("A2", 5.0, "超期结案"), ("O1", 2.0, "超期结案")]
EXPECTED_STREET_RANKING = [(1, B, 85.0), (2, A, 48.83)]
EXPECTED_STREET_UNRANKED = [TOWN]

# Other periods (same events)
# week 2026-W45 (11-02 … 11-08), A: due A1 (due_at = first closing 11-03 11:05) and A2 (deadline
# 11-05 12:00) → closed 2/2, on time 1/2
EXPECTED_WEEK_A = {"period": "2026-W45", "closure_rate": (2, 2), "ontime_rate": (1, 2)}
# October, A: due O1 only (deadline 10-30 17:00), not closed before 11-01 00:00 → 0/1.
#   composite: (25·0 + 35·0 + 15·1 + 10·1) / 85 × 100 = 29.41; O1 overdue 0.5 h in October →
#   exposed → −3 → 26.41 (not ranked: 1 case)
EXPECTED_OCTOBER_A = {"closure_rate": (0, 1), "ontime_rate": (0, 1), "composite": 26.41}
