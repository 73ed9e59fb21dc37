"""Ownership disputes (争议确权) — pure: the four-level ladder (community → street → department
→ leadership), each level's arbiter and working-time deadline, and whether a decision may be
recorded."""
from __future__ import annotations

from datetime import datetime

from shared.refdata.intake_data import ARBITRATION_LEVELS


# ===================================================================== ownership disputes
STATES = ("open", "decided")          # a dispute is open until its decision (确权)


def level_index(level: str) -> int:
    return ARBITRATION_LEVELS.index(level)


def level_info(policy: dict, level: str) -> dict:
    for entry in policy["ownership"]["levels"]:
        if entry["level"] == level:
            return dict(entry)
    raise KeyError(level)


def next_level(level: str) -> str | None:
    index = level_index(level)
    return ARBITRATION_LEVELS[index + 1] if index + 1 < len(ARBITRATION_LEVELS) else None


def arbiter(policy: dict, level: str, street_id: str | None, community: str | None) -> str:
    """Who settles the dispute at a level: the community (its liaison), the street, the
    competent department, the leadership group."""
    info = level_info(policy, level)
    if info.get("arbiter"):
        return info["arbiter"]
    if level == "street":
        return street_id or ""
    return f"community:{community}" if community else (street_id or "")


def level_deadline(district, policy: dict, level: str, start: datetime) -> datetime:
    return district.calendar.add_working_time(start, level_info(policy, level)["deadline"])


def can_decide(dispute: dict, owner_unit: str, units: dict) -> tuple[str, str] | None:
    """None if the decision may be recorded, else ``(status, reason)``: ``conflict`` (already
    decided) or ``invalid`` (not a unit that can own a place)."""
    if dispute.get("state") != "open":
        return "conflict", f"争议 {dispute['_id']} 已确权（{dispute.get('owner_unit')}），不能再次裁定"
    unit = units.get(owner_unit)
    if unit is None:
        return "invalid", f"未知的责任单位 {owner_unit}"
    if unit.get("type") == "leadership":
        return "invalid", "领导小组不能作为责任单位，请指定街镇、园城、部门或作业单位"
    return None
