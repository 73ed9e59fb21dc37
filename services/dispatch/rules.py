"""Dispatch rules — pure. Routing (条块结合、以块为主) and deadlines on the business calendar."""
from __future__ import annotations

from datetime import datetime


def plan_dispatch(case: dict, district, now: datetime) -> dict:
    minor = district.minor_class(case["class_code"])
    deadlines = minor.get("deadline") or {}
    duration = deadlines.get(case.get("urgency", "normal")) or deadlines.get("normal") or "1d"
    deadline = district.calendar.add_working_time(now, duration)
    return {
        "unit_id": case["owner_unit"],
        "case_kind": minor.get("case_kind", "committed"),
        "time_limit": duration,
        "deadline": deadline,
    }


def notification_text(case: dict, plan: dict, unit_name: str, local_deadline: datetime) -> str:
    return (f"【大城管】{unit_name}：案件 {case['case_id']}（{case['class_name']}）已派遣给贵单位，"
            f"请于 {local_deadline:%Y-%m-%d %H:%M} 前处置。")
